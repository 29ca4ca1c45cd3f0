"""Helpers for tests that run orchcap as a user would: real processes, real ports."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def child_database_url() -> str:
    """The test database as a DATABASE_URL, so a child process sees what the test committed."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{quote(db['HOST'], safe='')}:{db['PORT']}/{db['NAME']}"


def run_manage(
    *args: str, timeout: float = 120, **env: str | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=manage_env(**env),
        cwd=ROOT,
    )


def start_worker(**env: str | None) -> subprocess.Popen[str]:
    """A real Celery worker on the test broker; stop it with stop_process()."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "orchcap", "worker", "--loglevel", "WARNING",
         "--hostname", "test-worker@%h", "--concurrency", "1", "--pool", "solo",
         "--without-gossip", "--without-mingle"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=manage_env(**env),
        cwd=ROOT,
    )  # fmt: skip


def stop_process(
    process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30
) -> str:
    """Stop `process` with `sig` and return what it printed."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.stdout.read() if process.stdout else ""
