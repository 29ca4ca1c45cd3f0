"""Real processes for fabric tests: a web server on the test database, and real agents."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.processes import ROOT, child_database_url, free_port, manage_env, stop_process

AGENT = Path(sys.executable).parent / "orchcap-agent"


def wait_for(predicate: Callable[[], object], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_server(**env: str) -> tuple[subprocess.Popen[str], str]:
    """runserver on a free port, on the test database (so it sees what the test committed)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", "--skip-checks",
         f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env=manage_env(DATABASE_URL=child_database_url(), **env),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"runserver exited: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/login/", timeout=5) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        wait_for(answers, timeout=90, what="runserver")
    except BaseException:
        stop_process(process)
        raise
    return process, url


def agent_command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert AGENT.exists(), f"{AGENT} is missing: run `pip install -e . --no-deps`"
    return subprocess.run(
        [str(AGENT), *args], capture_output=True, text=True, timeout=timeout, env=manage_env()
    )


class RunningAgent:
    """`orchcap-agent run` in its own session, so killing it kills its pool processes too (a
    machine that dies takes all of them)."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.process = subprocess.Popen(
            [str(AGENT), "run", "--config", str(config), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=manage_env(),
            start_new_session=True,
        )  # fmt: skip

    @property
    def authorization(self) -> str:
        saved = json.loads((self.config / "agent.json").read_text())
        return f"Node {saved['node_id']}:{saved['credential']}"

    def kill(self) -> None:
        """The machine dies: SIGKILL to the agent and every process it started."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> str:
        return stop_process(self.process, sig, timeout)

    def close(self) -> str:
        output = ""
        if self.process.poll() is None:
            output = self.stop(signal.SIGTERM, timeout=15)
        self.kill_leftovers()
        return output or (self.process.stdout.read() if self.process.stdout else "")

    def kill_leftovers(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def delete_node_queues(broker_url: str, count: int = 100) -> None:
    """An external broker outlives the test database: drop node queues an earlier session left
    behind (node ids start from 1 again). Deleting a missing queue is fine for RabbitMQ."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.channel()
        for node_id in range(1, count + 1):
            channel.queue_delete(f"node.{node_id}")
        channel.close()
