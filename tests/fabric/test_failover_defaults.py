"""With default settings a dead node is found and its work runs elsewhere within 20 s
(5 s heartbeats, lost after 3 missed, a sweep at least every 4 s)."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.fabric.models import AttemptState, ComputeNode, TaskAttempt
from apps.fabric.services import dispatch, sweeper
from tests.fabric.conftest import node_client

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = "/api/v1/fabric/heartbeat"


def default_settings(*names: str) -> list[str]:
    """The values of these settings when no ORCHCAP_* variable is set (a fresh interpreter)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHCAP_")}
    code = "import orchcap.settings as s; print(*(getattr(s, n) for n in {names!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code.format(names=names)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


def test_by_default_agents_heartbeat_every_5_seconds_and_the_sweeper_runs_every_4():
    heartbeat, sweep = default_settings("ORCHCAP_HEARTBEAT_SECONDS", "ORCHCAP_FABRIC_SWEEP_SECONDS")
    assert (int(heartbeat), int(sweep)) == (5, 4)
    assert 3 * int(heartbeat) + int(sweep) <= 20


def test_the_heartbeat_reply_tells_agents_to_beat_every_5_seconds(online_node):
    node, credential = online_node
    reply = node_client(node, credential).post(
        "/api/v1/fabric/heartbeat", {}, content_type="application/json"
    )
    assert reply.status_code == 200, reply.content
    assert reply.json()["heartbeat_seconds"] == 5


def test_with_default_settings_a_dead_nodes_work_moves_elsewhere_within_20_seconds(ready_node):
    dead, credential = ready_node("edge-1", node_class="edge", max_concurrent_tasks=1)
    spare, _ = ready_node("server-2", max_concurrent_tasks=1)
    task = dispatch.submit_task(kind="probe", payload={"seconds": 60})
    task.refresh_from_db()
    assert task.node_id == dead.pk
    attempt = TaskAttempt.objects.get(task=task)
    # The node's last heartbeat says it runs the task; then it dies.
    held = [{"task": task.pk, "attempt": 1, "token": attempt.token}]
    reply = node_client(dead, credential).post(
        "/api/v1/fabric/heartbeat", {"tasks": held}, content_type="application/json"
    )
    assert reply.status_code == 200, reply.content
    dead.refresh_from_db()
    last = dead.last_heartbeat_at
    ComputeNode.objects.filter(pk=spare.pk).update(last_heartbeat_at=last + timedelta(minutes=5))

    # Two missed heartbeats and a bit: nothing moves yet.
    early = sweeper.sweep(now=last + timedelta(seconds=14))
    assert (early.lost_nodes, early.moved_tasks) == (0, 0)
    # The first sweep after 3 missed heartbeats comes at most 4 s later: by then it has moved.
    report = sweeper.sweep(now=last + timedelta(seconds=19))
    assert (report.lost_nodes, report.moved_tasks, report.placed) == (1, 1, 1)
    task.refresh_from_db()
    assert (task.node_id, task.attempts) == (spare.pk, 2)
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.LOST


def test_a_steady_heartbeat_costs_one_statement_besides_authentication(ready_node):
    # 1,000 nodes at the default interval send 200 heartbeats/s: the common one (online, worker
    # consuming, no work held) must not read and rewrite the whole node row under a lock.
    node, credential = ready_node("n1")
    client = node_client(node, credential)
    body = {"status": "running", "worker": "ready", "tasks": [], "cpu_percent": 10}
    assert client.post(HEARTBEAT, body, content_type="application/json").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        reply = client.post(HEARTBEAT, {**body, "cpu_percent": 55.5, "idle_seconds": 7},
                            content_type="application/json")  # fmt: skip
    assert reply.status_code == 200, reply.content
    assert (reply.json()["state"], reply.json()["accept_work"]) == ("online", True)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 2, statements  # the credential's node, then one UPDATE
    node.refresh_from_db()
    assert (node.cpu_percent, node.idle_seconds, node.heartbeat_count) == (55.5, 7, 2)


def test_a_drain_requested_meanwhile_still_moves_a_steady_node_to_draining(ready_node, admin):
    from apps.fabric.services import nodes as node_services

    node, credential = ready_node("n1")
    client = node_client(node, credential)
    body = {"status": "running", "worker": "ready", "tasks": []}
    client.post(HEARTBEAT, body, content_type="application/json")
    node_services.drain_node(node=node, actor=admin)
    reply = client.post(HEARTBEAT, body, content_type="application/json").json()
    assert (reply["state"], reply["accept_work"]) == ("draining", False)


def test_a_node_id_beyond_bigint_is_401_like_any_unknown_node(online_node):
    _, credential = online_node
    for node_id in ("0", str(2**63), "9" * 30):
        reply = Client().post(HEARTBEAT, {}, content_type="application/json",
                              HTTP_AUTHORIZATION=f"Node {node_id}:{credential}")  # fmt: skip
        assert reply.status_code == 401, (node_id, reply.content)
