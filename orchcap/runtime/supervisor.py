"""Run orchcap's processes (web, worker, beat) as children, stream their logs, stop them together."""

import ctypes
import ctypes.util
import fcntl
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from orchcap.runtime import paths
from orchcap.runtime.errors import EngineError

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


@dataclass
class Child:
    name: str
    args: list[str]
    log_file: Path
    process: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
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
        assert self.process is not None
        assert self.process.stdout is not None
        with self.log_file.open("a") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                say(f"{self.name:>6} | {line.rstrip()}")

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect (e.g. to https in production) already proves the server answers


def wait_for_http(url: str, *, timeout: float, alive: Callable[[], bool]) -> bool:
    """Poll `url` until the server answers with anything but a 5xx, or `alive()` turns false."""
    opener = urllib.request.build_opener(_NoRedirect)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with opener.open(url, timeout=2) as response:
                if response.status < 500:
                    return True
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


class Supervisor:
    """Start children, wait until one dies or a stop signal arrives, then stop all in reverse order."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self._stop = threading.Event()
        self.stop_reason = ""

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: object) -> None:
            self.stop_reason = signal.Signals(signum).name
            self._stop.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def start(self, env: dict[str, str]) -> None:
        for child in self.children:
            child.start(env)

    def any_died(self) -> Child | None:
        return next((child for child in self.children if child.exit_code() is not None), None)

    def alive(self) -> bool:
        return not self._stop.is_set() and self.any_died() is None

    def wait(self) -> int:
        """Block until stopped by a signal (returns 0) or a child exits (returns 1)."""
        while not self._stop.wait(0.5):
            dead = self.any_died()
            if dead is not None:
                say(
                    f"orchcap: {dead.name} exited with code {dead.exit_code()}; stopping the rest",
                    sys.stderr,
                )
                return 1
        return 0

    def stop_all(self, timeout: float = 20) -> None:
        for child in reversed(self.children):
            child.stop(timeout)
