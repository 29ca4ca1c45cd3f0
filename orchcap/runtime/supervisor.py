"""`up`'s supervisor: run the web server, worker and beat as children, watch them and the embedded
engines, restart whatever dies with exponential backoff, and stop everything together.

Its state (children, restarts, last death) goes to <run>/up-state.json after every change, for
/healthz to read (see `read_state`).
"""

import ctypes
import ctypes.util
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import psutil

from orchcap.runtime import paths
from orchcap.runtime.errors import EngineError

# Set in the environment of every process `up` runs: they leave the embedded engines to `up`
# (which restarts them with backoff and reports it) instead of starting one on first use.
SUPERVISED_ENV = "ORCHCAP_SUPERVISED"
STATE_FILE = "up-state.json"

_print_lock = threading.Lock()

try:  # Linux: let children die with `up` even when it is killed with SIGKILL
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:
    _libc = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: only a libc call, no Python locks.
    if _libc is not None and sys.platform.startswith("linux"):
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def under_supervisor() -> bool:
    """True in the processes `up` runs."""
    return bool(os.environ.get(SUPERVISED_ENV))


def say(line: str, stream: TextIO | None = None) -> None:
    with _print_lock:
        print(line, file=stream or sys.stdout, flush=True)


class InstanceLock:
    """One `up` per data dir: a second one is told where the first runs instead of fighting it."""

    def __init__(self, data: Path) -> None:
        self.path = paths.ensure_writable_dir(paths.run_dir(data)) / "up.lock"
        self._handle: TextIO | None = None

    def acquire(self, description: str) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise EngineError(
                f"already running on this data dir ({holder}); stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, {description}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM
    ) as sock:
        # As gunicorn binds: connections left in TIME_WAIT by the previous run don't count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise EngineError(
                f"cannot listen on {host}:{port} ({exc.strerror}); stop what uses that port or set PORT "
                "to another one, e.g. PORT=8001 make run"
            ) from None


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervised:
    """Something `up` keeps running; the supervisor's bookkeeping lives here too."""

    name: str
    # After a restart, whether it serves again (e.g. the web server answers); None: once started.
    probe: Callable[[], bool] | None = None
    # "running"; "restarting": dead, its next start is due at `restart_due`; "starting":
    # restarted, `probe` does not hold yet.
    state: str = "running"
    started: float = 0.0  # monotonic time of the last start
    ready: float = 0.0  # monotonic time since which it serves
    failures: int = 0  # deaths in a row, each before the child had served for `stable` seconds
    restarts: int = 0
    restart_due: float = 0.0
    last_death: dict[str, Any] | None = None
    degraded_until: float = 0.0  # wall clock: a restarted child counts as degraded until then
    last_probe: float = 0.0  # monotonic time of the last liveness probe while running
    missed: int = 0  # liveness probes in a row it did not answer
    answered: bool = False  # whether it answered a probe since it was started: booting otherwise

    def launch(self, env: dict[str, str]) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """Kill a child that is alive but hung (its next `death()` then says so)."""
        raise NotImplementedError

    def pid(self) -> int | None:
        raise NotImplementedError

    def death(self) -> str | None:
        """None while it runs; once it died, why (e.g. "killed by SIGKILL")."""
        raise NotImplementedError

    def stop(self, timeout: float) -> None:
        raise NotImplementedError


class Child(Supervised):
    """A process of ours (web, worker, beat), in its own session, its output streamed and logged."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_file: Path,
        *,
        probe: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.probe = probe
        self.args = args
        self.log_file = log_file
        self.process: subprocess.Popen[str] | None = None
        self.pump: threading.Thread | None = None

    def launch(self, env: dict[str, str]) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # Own session: Ctrl-C reaches only `up`, which then stops the children in order.
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pump = threading.Thread(target=self._pump, name=f"log-{self.name}", daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        process = self.process
        assert process is not None
        assert process.stdout is not None
        with self.log_file.open("a") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                say(f"{self.name:>6} | {line.rstrip()}")

    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def death(self) -> str | None:
        code = self.exit_code()
        if code is None:
            return None
        assert self.process is not None
        # What the dead leader leaves in its process group (gunicorn's workers holding the port,
        # Celery's pool processes) would outlive it and get in the way of its successor.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return describe_exit(code)

    def kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # SIGKILL also ends a stopped process
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(10)

    def stop(self, timeout: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"{self.name:>6} | did not stop within {timeout:.0f}s; killing it")
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        if self.pump is not None:
            self.pump.join(2)


class Engine(Protocol):
    def ensure_running(self) -> None: ...
    def pid(self) -> int | None: ...


class EngineChild(Supervised):
    """An embedded engine (PostgreSQL, the broker): it daemonizes, so it is watched by its pid.

    `up` starts and stops the engines around the supervisor (they must outlive the processes that
    use them); the supervisor only notices their death and starts them again.
    """

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine  # ensure_running() returns once it serves: no probe needed
        self._pid: int | None = None

    def launch(self, env: dict[str, str]) -> None:
        self.engine.ensure_running()
        self._pid = self.engine.pid()

    def pid(self) -> int | None:
        return self._pid

    def death(self) -> str | None:
        current = self.engine.pid()
        if current is None:
            return f"pid {self._pid} is gone"
        self._pid = current  # started again by hand (`engines start`): adopt it
        return None

    def stop(self, timeout: float) -> None:
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect (e.g. to https in production) already proves the server answers


def http_answers(url: str) -> bool:
    """Whether the server at `url` answers with anything but a 5xx."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class Backoff:
    """When to restart a dead child, and when to give up."""

    initial: float = 1.0  # wait before the first restart; doubles with each death in a row
    maximum: float = 30.0
    stable: float = 60.0  # a child that ran this long is healthy again: its next death starts over
    max_restarts: int = 5  # restarts that died again before `stable`, in a row, before giving up

    def delay(self, failures: int) -> float:
        return min(self.initial * 2 ** (failures - 1), self.maximum)


@dataclass(frozen=True)
class Liveness:
    """How `up` tells a hung child from a busy one: probes `every` seconds, `misses` in a row."""

    every: float = 30.0
    misses: int = 4


def state_path(data: Path) -> Path:
    return paths.run_dir(data) / STATE_FILE


def _process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def read_state(data: Path) -> dict[str, Any] | None:
    """What the `up` supervising this data dir last wrote, or None when none runs."""
    try:
        state = json.loads(state_path(data).read_text())
        pid, started = int(state["pid"]), float(state["pid_started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _process_started(pid) != started:  # that `up` is gone (its pid may have been reused)
        return None
    return state


class Supervisor:
    """Start the children, restart each one that dies (with backoff), until a stop signal arrives
    or a child keeps dying; then stop them all in reverse order."""

    def __init__(
        self,
        children: list[Supervised],
        *,
        backoff: Backoff | None = None,
        state_file: Path | None = None,
        poll_seconds: float = 0.5,
        liveness: Liveness | None = None,
    ) -> None:
        self.children = children
        self.backoff = backoff or Backoff()
        self.liveness = liveness or Liveness()
        self.state_file = state_file
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._env: dict[str, str] = {}
        self.stop_reason = ""
        self.gave_up = ""

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: object) -> None:
            self.stop_reason = signal.Signals(signum).name
            self._stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def start(self, env: dict[str, str]) -> None:
        self._env = env
        for child in self.children:
            child.launch(env)
            child.started = child.ready = child.last_probe = time.monotonic()
            child.answered = False
        self.write_state()

    def run(
        self,
        *,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 90,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Supervise until a stop signal (returns 0) or until a child keeps dying (returns 1).

        Until `ready()` first holds, it is polled too: then `on_ready()` runs once; if it does
        not hold within `ready_timeout` seconds, EngineError.
        """
        deadline = time.monotonic() + ready_timeout
        waiting = ready is not None
        while not self._stop.wait(self.poll_seconds):
            self.supervise()
            if self.gave_up:
                say(f"orchcap: {self.gave_up}; stopping everything", sys.stderr)
                return 1
            if waiting and ready is not None:
                if ready():
                    waiting = False
                    if on_ready is not None:
                        on_ready()
                elif time.monotonic() > deadline:
                    raise EngineError(
                        f"the web server did not come up within {ready_timeout:.0f}s; "
                        "see the 'web' lines above"
                    )
        return 0

    def supervise(self) -> None:
        """One round: notice deaths, start what is due, see restarted children serve again."""
        for child in self.children:
            if self.gave_up:
                return
            if child.state == "restarting":
                if time.monotonic() >= child.restart_due:
                    self._restart(child)
                continue
            reason = child.death()
            if reason is not None:
                self._died(child, reason)
            elif child.state == "starting":
                if child.probe is None or child.probe():
                    self._serving(child)
            elif self._hung(child):
                self._died(child, f"hung: it did not answer {child.missed} probes in a row")
            elif child.failures and time.monotonic() - child.ready >= self.backoff.stable:
                child.failures = 0
                say(f"orchcap: {child.name} has served for {self.backoff.stable:g}s; stable again")
                self.write_state()

    def _hung(self, child: Supervised) -> bool:
        """Probe a running child every `liveness.every` seconds; after `liveness.misses`
        unanswered probes in a row it is alive but of no use (stopped, deadlocked, stuck in a
        loop): kill it, so that it is restarted like a child that died."""
        now = time.monotonic()
        if child.probe is None or now - child.last_probe < self.liveness.every:
            return False
        if any(other.state != "running" for other in self.children):
            return False  # e.g. the worker can't answer while the broker restarts: not its fault
        child.last_probe = now
        if child.probe():
            child.missed, child.answered = 0, True
            return False
        if not child.answered:
            return False  # still starting (a slow boot is not a hang)
        child.missed += 1
        say(f"orchcap: {child.name} did not answer its probe ({child.missed} in a row)", sys.stderr)
        if child.missed < self.liveness.misses:
            return False
        child.kill()
        return True

    def _died(self, child: Supervised, reason: str) -> None:
        now = time.monotonic()
        ran = now - child.started
        if child.state == "running" and now - child.ready >= self.backoff.stable:
            child.failures = 0  # it was healthy: this death starts a new series
        child.failures += 1
        child.last_death = {"at": time.time(), "reason": reason, "after_seconds": round(ran, 1)}
        child.state = "restarting"
        if child.failures > self.backoff.max_restarts:
            self.gave_up = (
                f"{child.name} died {child.failures} times in a row, never staying up for "
                f"{self.backoff.stable:g}s (last: {reason}); giving up"
            )
            self.write_state()
            return
        delay = self.backoff.delay(child.failures)
        child.restart_due = now + delay
        say(
            f"orchcap: {child.name} died ({reason}) after {ran:.0f}s; restarting it in "
            f"{delay:g}s (restart {child.failures} of at most {self.backoff.max_restarts} "
            "in a row)",
            sys.stderr,
        )
        self.write_state()

    def _restart(self, child: Supervised) -> None:
        child.started = time.monotonic()
        child.state = "starting"
        try:
            child.launch(self._env)
        except Exception as exc:  # a failed start is one more death, whatever the cause
            self._died(child, f"restart failed: {_one_line(exc)}")
            return
        child.restarts += 1
        say(f"orchcap: {child.name} restarted (pid {child.pid()}, restart {child.restarts})")
        self.write_state()
        if child.probe is None:
            self._serving(child)

    def _serving(self, child: Supervised) -> None:
        # A restarted child counts as degraded until it has served for `stable` seconds; the
        # clock starts once it serves, as a slow start must not use up that time.
        child.state = "running"
        child.ready = child.last_probe = time.monotonic()
        child.missed, child.answered = 0, True
        child.degraded_until = time.time() + self.backoff.stable
        if child.probe is not None:
            say(f"orchcap: {child.name} serves again")
        self.write_state()

    def stop_all(self, timeout: float = 20) -> None:
        for child in reversed(self.children):
            child.stop(timeout)
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    def write_state(self) -> None:
        """Atomically replace the state file that /healthz reads."""
        if self.state_file is None:
            return
        state = {
            "pid": os.getpid(),
            "pid_started": _process_started(os.getpid()),
            "written_at": time.time(),
            "stable_seconds": self.backoff.stable,
            "gave_up": self.gave_up,
            "children": {
                child.name: {
                    "state": child.state,
                    "pid": child.pid(),
                    "restarts": child.restarts,
                    "last_death": child.last_death,
                    "degraded_until": child.degraded_until,
                }
                for child in self.children
            },
        }
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.state_file)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
