"""The heartbeat's fast path (apps/fabric/middleware.py): the common heartbeat in one UPDATE
that authenticates and records at once; everything else through the API as before."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.fabric.middleware import steady_fields
from apps.fabric.models import ComputeNode, NodeEvent, NodeState
from apps.fabric.services import heartbeats, last_seen
from apps.fabric.services import nodes as node_services
from tests.fabric.conftest import node_client

URL = "/api/v1/fabric/heartbeat"
# What orchcap-agent sends between probes when it holds no work.
STEADY = {"status": "running", "running_tasks": 0, "tasks": [], "worker": "ready",
          "software_version": "0.9.1", "cpu_percent": 12.5, "memory_percent": 40.0,
          "load_average": 0.7, "idle_seconds": 30}  # fmt: skip


def post(client, body=STEADY, **extra):
    return client.post(URL, body, content_type="application/json", **extra)


def statements(queries):
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.fixture
def batched(settings, monkeypatch):
    """Heartbeats buffered as in production, in a buffer of this test's own without a timer
    thread (which would write on another connection, outside the test's transaction): only
    heartbeats and the test flush it."""
    settings.ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS = 60
    buffer = last_seen.LastSeenBuffer(timer=False)
    monkeypatch.setattr(last_seen, "buffer", buffer)
    return buffer


def test_a_steady_heartbeat_costs_one_read_and_lands_at_the_next_flush(ready_node, batched):
    node, credential = ready_node("n1")
    client = node_client(node, credential)
    assert post(client).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        reply = post(client, {**STEADY, "cpu_percent": 55.5, "idle_seconds": 7})
    assert reply.status_code == 200, reply.content
    assert len(statements(queries)) == 1, statements(queries)  # the credential's node
    node.refresh_from_db()
    assert (node.heartbeat_count, node.cpu_percent) == (0, None)  # not written yet
    assert batched.flush() == 1
    node.refresh_from_db()
    assert (node.cpu_percent, node.idle_seconds, node.heartbeat_count) == (55.5, 7, 2)
    assert (node.memory_percent, node.load_average, node.software_version) == (40.0, 0.7, "0.9.1")
    assert timezone.now() - node.last_heartbeat_at < timedelta(seconds=5)


def test_a_heartbeat_that_finds_the_buffer_due_writes_it(ready_node, batched):
    first, first_credential = ready_node("n1")
    second, second_credential = ready_node("n2")
    post(node_client(first, first_credential))
    batched._oldest -= 60  # a flush interval ago
    with CaptureQueriesContext(connection) as queries:
        post(node_client(second, second_credential))
    assert len(statements(queries)) == 2  # its read, then one UPDATE for both nodes
    assert batched.pending() == {}
    assert set(
        ComputeNode.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "heartbeat_count", flat=True
        )
    ) == {1}


@pytest.mark.django_db(transaction=True)
def test_a_process_no_later_heartbeat_reaches_still_writes_within_a_flush_interval(
    ready_node, settings
):
    # Committed rows: the timer thread writes on a connection of its own.
    settings.ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS = 1
    node, credential = ready_node("n1")
    sent = time.monotonic()
    assert post(node_client(node, credential)).status_code == 200
    written = ComputeNode.objects.filter(pk=node.pk, heartbeat_count=1)
    while not written.exists() and time.monotonic() - sent < 10:
        time.sleep(0.05)
    assert written.exists()
    assert time.monotonic() - sent < settings.ORCHCAP_HEARTBEAT_SECONDS  # within one interval
    assert last_seen.buffer.pending() == {}


def test_a_written_heartbeat_is_never_replaced_by_an_older_one(ready_node):
    node, credential = ready_node("n1")
    post(node_client(node, credential))  # written at once (flush interval 0 in tests)
    node.refresh_from_db()
    older = node.last_heartbeat_at - timedelta(seconds=1)
    figures = {"cpu_percent": 99.0, "memory_percent": 1.0, "load_average": 1.0,
               "running_tasks": 0, "idle_seconds": None}  # fmt: skip
    last_seen.write_seen({node.pk: last_seen.Seen(at=older, figures=figures, version="")})
    stored = ComputeNode.objects.get(pk=node.pk)
    assert (stored.last_heartbeat_at, stored.cpu_percent) == (node.last_heartbeat_at, 12.5)


def test_the_fast_path_answers_what_the_api_answers(ready_node, settings):
    # A GPU node: the reply's queues come from the `detected` the UPDATE returns.
    detected = {"cpu_cores": 8, "memory_mb": 32_768, "gpus": [{"model": "L4"}]}
    node, credential = ready_node("gpu-1", node_class="gpu", detected=detected)
    client = node_client(node, credential)
    fast = post(client)
    settings.ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH = False
    full = post(client)
    assert fast.status_code == full.status_code == 200
    assert fast.json() == full.json()
    assert fast.json()["queues"] == [f"node.{node.pk}", "fabric.class.gpu", "fabric.gpu"]
    node.refresh_from_db()
    assert node.heartbeat_count == 2


def test_a_revoked_credential_is_refused_at_the_next_heartbeat(ready_node, admin, batched):
    node, credential = ready_node("n1")
    client = node_client(node, credential)
    assert post(client).status_code == 200
    node_services.revoke_node(node=node, actor=admin)
    refused = post(client)
    assert refused.status_code == 403
    assert "revoked" in refused.json()["detail"]
    # What it sent before the revocation, still buffered, is dropped with it.
    assert batched.flush() == 1
    node.refresh_from_db()
    assert (node.heartbeat_count, node.cpu_percent) == (0, None)


def test_a_wrong_or_unknown_credential_is_401_and_stores_nothing(ready_node):
    node, credential = ready_node("n1")
    other, other_credential = ready_node("n2")
    for authorization in (
        f"Node {node.pk}:ocn_wrong",
        f"Node {node.pk}:{other_credential}",  # another node's secret
        f"Node 99999:{credential}",
        f"Node {2**63}:{credential}",
    ):
        response = post(node_client(node, credential), HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 401, authorization
    assert set(
        ComputeNode.objects.filter(pk__in=[node.pk, other.pk]).values_list(
            "heartbeat_count", flat=True
        )
    ) == {0}


def test_a_silent_node_is_still_marked_offline_three_intervals_after_its_last_heartbeat(
    ready_node, settings, batched
):
    node, credential = ready_node("n1")
    client = node_client(node, credential)
    before = timezone.now()
    assert post(client).status_code == 200
    batched.flush()
    node.refresh_from_db()
    # The heartbeat's own time is stored, not the flush's: the sweeper's timing is unchanged.
    assert before <= node.last_heartbeat_at <= timezone.now()
    interval = settings.ORCHCAP_HEARTBEAT_SECONDS
    almost = node.last_heartbeat_at + timedelta(seconds=3 * interval - 1)
    assert heartbeats.mark_lost_nodes(now=almost) == []
    lost = heartbeats.mark_lost_nodes(now=almost + timedelta(seconds=2))
    assert [n.pk for n in lost] == [node.pk]
    # Offline is not the steady state: the fast path passes, the API brings it back at once.
    reply = post(client).json()
    assert (reply["state"], reply["accept_work"]) == ("online", True)
    event = NodeEvent.objects.filter(node=node, kind="state").first()
    assert event.message == "heartbeats resumed"
    assert batched.pending() == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**STEADY, "status": "sleeping"}, 422),
        ({**STEADY, "running_tasks": -1}, 422),
        ({**STEADY, "software_version": "v\u0000"}, 422),
        ({**STEADY, "idle_seconds": -5}, 422),
        ({**STEADY, "cpu_percent": "lots"}, 422),
        ({**STEADY, "cpu_percent": 10**400}, 422),  # beyond any float: not a 500
        ("[1, 2", 400),
    ],
)
def test_a_bad_body_gets_the_apis_answer_not_a_fast_200(ready_node, body, status):
    node, credential = ready_node("n1")
    response = post(node_client(node, credential), body)
    assert response.status_code == status, response.content
    assert "detail" in response.json()
    node.refresh_from_db()
    assert node.heartbeat_count == 0


def test_a_drained_or_stopping_node_moves_state_through_the_api(ready_node, admin):
    node, credential = ready_node("n1")
    client = node_client(node, credential)
    node_services.drain_node(node=node, actor=admin)
    assert post(client).json()["state"] == "draining"
    node_services.resume_node(node=node, actor=admin)
    assert post(client).json()["state"] == "online"
    assert post(client, {**STEADY, "status": "stopping"}).json()["state"] == "draining"
    node.refresh_from_db()
    assert node.state == NodeState.DRAINING


@pytest.mark.parametrize(
    "body",
    [
        {"status": "stopping"},
        {"worker": "starting"},
        {"tasks": [{"task": 1, "attempt": 1, "token": "x"}]},
        {"detected": {"cpu_cores": 4}},
        {"running_tasks": True},
        {"cpu_percent": float("nan")},
        {"load_average": 10**400},
        {"software_version": "x" * 41},
        {"surprise": 1},
    ],
)
def test_steady_fields_refuses_anything_but_a_plain_steady_beat(body):
    assert steady_fields({**STEADY, **body}) is None


def test_steady_fields_reads_a_steady_beat():
    assert steady_fields(STEADY) == {
        "running_tasks": 0, "software_version": "0.9.1", "tasks_reported": True,
        "cpu_percent": 12.5, "memory_percent": 40.0, "load_average": 0.7, "idle_seconds": 30,
    }  # fmt: skip
    assert steady_fields({})["tasks_reported"] is False
