"""POST /api/v1/fabric/heartbeat with the node credential; the sweeper marks silent nodes
offline."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from apps.fabric import tasks
from apps.fabric.models import ComputeNode, NodeEvent, NodeState
from apps.fabric.services import heartbeats
from apps.fabric.services import nodes as node_services

URL = "/api/v1/fabric/heartbeat"


def beat(node, credential, **fields):
    return Client().post(
        URL,
        {"cpu_percent": 12.5, "memory_percent": 40, "running_tasks": 0, **fields},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Node {node.pk}:{credential}",
    )


def test_heartbeat_stores_load_and_says_whether_to_take_work(online_node, settings):
    settings.ORCHCAP_HEARTBEAT_SECONDS = 30  # a deployment that chose 30 s heartbeats
    node, credential = online_node
    response = beat(node, credential, idle_seconds=120, detected={"cpu_cores": 16})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "node_id": node.pk, "state": "online", "accept_work": True, "reason": "available",
        "heartbeat_seconds": 30, "broker_url": settings.ORCHCAP_NODE_BROKER_URL,
        "queues": [f"node.{node.pk}", "fabric.class.server"], "max_concurrent_tasks": 8,
        "consuming": True,
    }  # fmt: skip
    node.refresh_from_db()
    assert node.cpu_percent == 12.5
    assert node.idle_seconds == 120
    assert node.detected == {"cpu_cores": 16}
    assert node.heartbeat_count == 1


def test_wrong_credential_or_unknown_node_is_401(online_node):
    node, credential = online_node
    assert beat(node, "ocn_wrong").status_code == 401
    other = Client().post(URL, {}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Node 99999:{credential}")  # fmt: skip
    assert other.status_code == 401
    assert Client().post(URL, {}, content_type="application/json").status_code == 401
    bearer = Client().post(URL, {}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {credential}")  # fmt: skip
    assert bearer.status_code == 401
    node.refresh_from_db()
    assert node.heartbeat_count == 0


def test_revoked_and_retired_nodes_are_403_with_the_reason(online_node, make_token, admin):
    node, credential = online_node
    node_services.revoke_node(node=node, actor=admin)
    response = beat(node, credential)
    assert response.status_code == 403
    assert "revoked" in response.json()["detail"]

    from tests.fabric.conftest import enroll

    second = enroll(make_token(auto_approve=True), name="old-box")
    node_services.retire_node(node=second.node, actor=admin)
    response = beat(second.node, second.credential)
    assert response.status_code == 403
    assert response.json() == {"detail": "this node is retired"}


def test_pending_node_heartbeats_but_takes_no_work(pending_node):
    node, credential = pending_node
    reply = beat(node, credential).json()
    assert reply["state"] == "pending"
    assert reply["accept_work"] is False
    assert reply["reason"] == "waiting for an admin to approve it"


def test_reclaimed_node_stays_online_but_takes_no_work(online_node, admin):
    node, credential = online_node
    node_services.reclaim_node(node=node, actor=admin)
    reply = beat(node, credential).json()
    assert (reply["state"], reply["accept_work"]) == ("online", False)
    assert "reclaimed" in reply["reason"]


def test_graceful_stop_goes_through_draining_to_planned_offline(online_node):
    node, credential = online_node
    assert beat(node, credential, status="stopping").json()["state"] == "draining"
    assert beat(node, credential, status="stopped").json()["state"] == "planned_offline"
    # The sweeper leaves a planned stop alone, however long it lasts.
    heartbeats.mark_lost_nodes(now=timezone.now() + timedelta(days=2))
    node.refresh_from_db()
    assert node.state == NodeState.PLANNED_OFFLINE
    assert beat(node, credential).json()["state"] == "online"


def test_admin_drain_survives_an_agent_restart(online_node, admin):
    node, credential = online_node
    node_services.drain_node(node=node, actor=admin)
    beat(node, credential, status="stopped")
    assert beat(node, credential).json()["state"] == "draining"
    node_services.resume_node(node=node, actor=admin)
    assert beat(node, credential).json()["state"] == "online"


def test_three_missed_heartbeats_mark_a_node_offline_and_the_next_one_brings_it_back(
    online_node, settings
):
    settings.ORCHCAP_HEARTBEAT_SECONDS = 30  # a deployment that chose 30 s heartbeats
    node, credential = online_node
    beat(node, credential)
    node.refresh_from_db()
    almost = node.last_heartbeat_at + timedelta(seconds=3 * 30 - 1)
    assert heartbeats.mark_lost_nodes(now=almost) == []
    lost = heartbeats.mark_lost_nodes(now=node.last_heartbeat_at + timedelta(seconds=3 * 30 + 1))
    assert [n.pk for n in lost] == [node.pk]
    node.refresh_from_db()
    assert node.state == NodeState.OFFLINE
    event = NodeEvent.objects.filter(node=node).first()
    assert (event.kind, event.to_state) == ("heartbeat_lost", "offline")
    assert "no heartbeat for 91 s" in event.message

    reply = beat(node, credential).json()
    assert reply["state"] == "online"
    assert NodeEvent.objects.filter(node=node, kind="state").first().message == "heartbeats resumed"


def test_the_periodic_task_runs_the_sweeper(online_node):
    node, _ = online_node
    ComputeNode.objects.filter(pk=node.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    assert tasks.mark_lost_nodes() == 1
    node.refresh_from_db()
    assert node.state == NodeState.OFFLINE


def test_the_sweeper_and_the_pending_scheduler_are_periodic(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["fabric-mark-lost-nodes"]
    assert entry["task"] == "apps.fabric.tasks.mark_lost_nodes"
    # At least every 4 s: a dead node's work must run elsewhere within 3 intervals + 5 s.
    assert entry["schedule"] == float(min(settings.ORCHCAP_HEARTBEAT_SECONDS, 4))
    pending = settings.CELERY_BEAT_SCHEDULE["fabric-schedule-pending"]
    assert pending["task"] == "apps.fabric.tasks.schedule_pending_tasks"
    assert pending["schedule"] == 5.0


def test_bad_status_is_422(online_node):
    node, credential = online_node
    assert beat(node, credential, status="sleeping").status_code == 422


def test_node_reads_its_own_state(online_node):
    node, credential = online_node
    response = Client().get(
        "/api/v1/fabric/node", HTTP_AUTHORIZATION=f"Node {node.pk}:{credential}"
    )
    assert response.status_code == 200
    assert response.json()["availability"] == "Any time"
    assert response.json()["name"] == "build-1"


def test_node_reads_the_same_slots_broker_and_queues_its_heartbeat_gets(online_node):
    node, credential = online_node
    ComputeNode.objects.filter(pk=node.pk).update(max_concurrent_tasks=2)
    heartbeat = beat(node, credential).json()
    own = Client().get("/api/v1/fabric/node", HTTP_AUTHORIZATION=f"Node {node.pk}:{credential}")
    body = own.json()
    assert body["max_concurrent_tasks"] == 2
    assert body["broker_url"]
    assert f"node.{node.pk}" in body["queues"]
    for key in ("max_concurrent_tasks", "broker_url", "queues", "consuming", "heartbeat_seconds"):
        assert body[key] == heartbeat[key], key
