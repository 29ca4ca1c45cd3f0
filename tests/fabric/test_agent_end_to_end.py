"""The real orchcap-agent against a real server: enrol, status, run, stop, be refused."""

import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from apps.fabric.models import ComputeNode, NodeEventKind, NodeState
from apps.fabric.services import enrollment
from apps.fabric.services import nodes as node_services
from tests.processes import ROOT, child_database_url, free_port, manage_env, stop_process

AGENT = Path(sys.executable).parent / "orchcap-agent"
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server():
    """runserver on a free port, on the test database (so it sees what the test committed)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", "--skip-checks",
         f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env=manage_env(DATABASE_URL=child_database_url()),
    )  # fmt: skip

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"runserver exited: {process.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        wait_for(answers, timeout=90, what="runserver")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def agent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert AGENT.exists(), f"{AGENT} is missing: run `pip install -e . --no-deps`"
    return subprocess.run(
        [str(AGENT), *args], capture_output=True, text=True, timeout=timeout, env=manage_env()
    )


def test_enrol_run_and_stop_a_node_through_the_real_cli(server, admin, tmp_path):
    _, token = enrollment.create_enrollment_token(created_by=admin, labels={"site": "hq"})
    home = tmp_path / "agent-a"

    enrolled = agent("enroll", "--server", server, "--token", token, "--name", "e2e-box",
                     "--declare", "gpus=1", "--label", "room=2", "--config", str(home))  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert "waiting for an admin to approve it" in enrolled.stdout
    config_file = home / "agent.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    node = ComputeNode.objects.get(name="e2e-box")
    assert node.state == NodeState.PENDING
    assert node.declared == {"gpus": 1}
    assert node.labels == {"room": "2", "site": "hq"}
    assert node.detected["cpu_cores"] >= 1
    assert node.fingerprint in enrolled.stdout

    # The same token again, from another agent on the same machine: refused.
    reused = agent("enroll", "--server", server, "--token", token, "--config",
                   str(tmp_path / "agent-b"))  # fmt: skip
    assert reused.returncode == 1
    assert "enrolment refused: this enrolment token was already used" in reused.stderr
    assert not (tmp_path / "agent-b" / "agent.json").exists()

    status = agent("status", "--config", str(home))
    assert status.returncode == 0, status.stderr
    assert "state pending (no new work: waiting for an admin to approve it)" in status.stdout

    node_services.approve_node(node=node, actor=admin)
    run = subprocess.Popen(
        [str(AGENT), "run", "--interval", "0.3", "--config", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=manage_env(),
    )  # fmt: skip
    try:
        wait_for(
            lambda: ComputeNode.objects.filter(pk=node.pk, heartbeat_count__gte=2).exists(),
            what="two heartbeats",
        )
        node.refresh_from_db()
        assert node.state == NodeState.ONLINE
        assert node.cpu_percent is not None
        output = stop_process(run, signal.SIGTERM)
    finally:
        stop_process(run, signal.SIGKILL)
    assert run.returncode == 0, output
    assert "online, taking work" in output
    node.refresh_from_db()
    assert node.state == NodeState.PLANNED_OFFLINE
    messages = list(node.events.filter(kind=NodeEventKind.STATE).values_list("message", flat=True))
    assert messages[:2] == ["the agent stopped (planned)", "the agent is stopping"]

    # Revoked: the agent is told why and gives up instead of retrying forever.
    node_services.revoke_node(node=node, actor=admin)
    refused = agent("run", "--interval", "0.3", "--config", str(home))
    assert refused.returncode == 1
    assert "credential was revoked" in refused.stderr
    status = agent("status", "--config", str(home))
    assert status.returncode == 1
    assert "the server refuses this node" in status.stderr


def test_an_expired_token_and_an_unreachable_server_are_one_line_each(server, admin, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from apps.fabric.models import EnrollmentToken

    _, token = enrollment.create_enrollment_token(created_by=admin)
    EnrollmentToken.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    expired = agent("enroll", "--server", server, "--token", token, "--config", str(tmp_path))
    assert expired.returncode == 1
    assert "expired" in expired.stderr
    assert expired.stderr.count("\n") == 1

    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = agent("enroll", "--server", nobody, "--token", token, "--config", str(tmp_path))
    assert unreachable.returncode == 1
    assert "cannot reach" in unreachable.stderr
    assert not (tmp_path / "agent.json").exists()
