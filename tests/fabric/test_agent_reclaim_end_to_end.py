"""The owner at the machine: the real `orchcap-agent reclaim` and `release` against a real server."""

import pytest

from apps.fabric.agent import config
from apps.fabric.models import ComputeNode, NodeEventKind
from apps.fabric.services import enrollment
from apps.fabric.services import nodes as node_services
from tests.fabric.live import agent_command, start_server
from tests.processes import free_port, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server():
    process, url = start_server()
    try:
        yield url
    finally:
        stop_process(process)


def test_the_owner_reclaims_and_releases_the_machine_from_a_terminal(server, admin, tmp_path):
    _, token = enrollment.create_enrollment_token(created_by=admin, auto_approve=True)
    home = str(tmp_path / "agent")
    enrolled = agent_command("enroll", "--server", server, "--token", token, "--name", "desk-7",
                             "--config", home)  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    node = ComputeNode.objects.get(name="desk-7")

    reclaimed = agent_command("reclaim", "--config", home)
    assert reclaimed.returncode == 0, reclaimed.stderr
    assert reclaimed.stdout == (
        f"node {node.pk} “desk-7” reclaimed "
        "(no new work: reclaimed by its owner: no new work until released)\n"
    )
    node.refresh_from_db()
    assert node.availability["reclaim"] is True
    event = node.events.get(kind=NodeEventKind.RECLAIMED)
    assert event.actor is None
    assert event.message.endswith("by the owner at the machine")

    status = agent_command("status", "--config", home)
    assert "no new work: reclaimed by its owner" in status.stdout

    # Pressing it twice changes nothing: one line, exit 2.
    again = agent_command("reclaim", "--config", home)
    assert again.returncode == 2
    assert again.stderr == "orchcap-agent: desk-7 is already reclaimed.\n"
    assert again.stdout == ""

    released = agent_command("release", "--config", home)
    assert released.returncode == 0, released.stderr
    assert released.stdout.startswith(f"node {node.pk} “desk-7” released (")
    node.refresh_from_db()
    assert node.availability["reclaim"] is False
    assert node.events.get(kind=NodeEventKind.RELEASED).actor is None

    not_reclaimed = agent_command("release", "--config", home)
    assert not_reclaimed.returncode == 2
    assert not_reclaimed.stderr == "orchcap-agent: desk-7 is not reclaimed.\n"

    # A retired node's credential is refused: exit 1, as for every other command.
    node_services.retire_node(node=node, actor=admin)
    refused = agent_command("reclaim", "--config", home)
    assert refused.returncode == 1
    assert refused.stderr.startswith("orchcap-agent: the server refuses this node: ")
    assert refused.stderr.count("\n") == 1


def test_reclaim_without_a_server_or_enrolment_says_so_in_one_line(tmp_path):
    missing = agent_command("reclaim", "--config", str(tmp_path / "nobody"))
    assert missing.returncode == 1
    assert "not enrolled" in missing.stderr
    assert missing.stderr.count("\n") == 1

    home = tmp_path / "agent"
    config.save(
        home,
        config.AgentConfig(server=f"http://127.0.0.1:{free_port()}", node_id=1, credential="x",
                           name="gone", fingerprint="ab", enrolled_at="2025-01-01T00:00:00+00:00"),
    )  # fmt: skip
    unreachable = agent_command("release", "--config", str(home))
    assert unreachable.returncode == 1
    assert "cannot reach" in unreachable.stderr
    assert unreachable.stderr.count("\n") == 1
