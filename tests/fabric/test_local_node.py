"""The control plane's own worker as node `local`; task outputs nodes upload; completion
handlers that act on finished work once."""

import time

import pytest
from django.utils import timezone

from apps.fabric.models import (
    ComputeNode,
    FabricArtifact,
    FabricTask,
    NodeEvent,
    NodeEventKind,
    NodeState,
    TaskAttempt,
)
from apps.fabric.services import completion, consumption, dispatch, local, results, sweeper
from apps.fabric.services import nodes as node_services
from tests.conftest import client_for
from tests.fabric.conftest import node_client
from tests.fabric.local_node import message_of, ready_local_node
from tests.processes import child_database_url, start_worker, stop_process


def test_the_control_plane_enrols_itself_once_as_an_approved_online_node(db, settings):
    first = local.ensure_local_node(concurrency=3)
    again = local.ensure_local_node(concurrency=5)
    assert first.pk == again.pk
    assert ComputeNode.objects.filter(control_plane=True).count() == 1
    again.refresh_from_db()
    assert (again.name, again.state, again.is_approved) == ("local", NodeState.ONLINE, True)
    assert again.max_concurrent_tasks == 5  # follows the worker's concurrency
    assert again.labels == {"role": "control-plane"}
    assert again.detected["cpu_cores"] >= 1
    assert again.events.filter(kind=NodeEventKind.ENROLLED).count() == 1


def test_a_retired_local_node_takes_no_work(db, admin):
    node = local.ensure_local_node(concurrency=1)
    node_services.retire_node(node=node, actor=admin)
    assert local.ensure_local_node(concurrency=1) is None


def test_the_local_node_is_off_when_nodes_use_another_broker(settings):
    settings.ORCHCAP_NODE_BROKER_URL = "redis://127.0.0.1:6379/9"
    assert not local.local_node_enabled()
    settings.ORCHCAP_LOCAL_NODE = False
    settings.ORCHCAP_NODE_BROKER_URL = settings.CELERY_BROKER_URL
    assert not local.local_node_enabled()


def test_work_placed_on_local_runs_in_process_and_records_its_result(db):
    node = ready_local_node()
    task = dispatch.submit_task(kind="call", payload={"function": "echo", "args": {"x": 1}})
    task.refresh_from_db()
    assert task.node_id == node.pk
    local.run_message(message_of(task))
    task.refresh_from_db()
    assert (task.state, task.result) == ("done", {"x": 1})
    assert TaskAttempt.objects.get(task=task).state == "done"
    # The same message again (a redelivery) records nothing more.
    local.run_message(message_of(task))
    assert TaskAttempt.objects.filter(task=task).count() == 1


def test_a_failing_payload_fails_its_task_on_local(db):
    ready_local_node()
    task = dispatch.submit_task(
        kind="call", payload={"function": "artifact_digest", "args": {"artifact": "ab" * 32}},
        artifacts=[FabricArtifact.objects.create(
            sha256="ab" * 32, size=1, content=b"x").sha256],
    )  # fmt: skip
    local.run_message(message_of(task))
    task.refresh_from_db()
    assert task.state == "failed"
    assert "ArtifactMismatch" in task.error


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_control_plane_worker_is_node_local_runs_probes_and_clears_a_late_flag(
    admin, settings
):
    """One worker (a start costs seconds) for both: `local` runs an admin's probe; then the
    fabric stall. After a worker dies, a task its successor could not take (a message the dead
    worker had fetched) flags `local` not consuming. Nothing is sent to a flagged node, so only
    the probe for quiet nodes (ORCHCAP_FABRIC_PROBE_SECONDS, 300 s) used to clear it: minutes
    with nothing dispatched on a one-machine install. Now the sweep probes the flagged node."""
    settings.ORCHCAP_FABRIC_PROBE_SECONDS = 300  # the default: this test must not wait for it
    worker = start_worker(DATABASE_URL=child_database_url(), ORCHCAP_HEARTBEAT_SECONDS="1")
    try:
        deadline = time.monotonic() + 60
        node = None
        while time.monotonic() < deadline and worker.poll() is None:
            node = ComputeNode.objects.filter(control_plane=True, worker_ready=True).first()
            if node is not None:
                break
            time.sleep(0.2)
        assert node is not None, worker.poll()
        assert node.state == NodeState.ONLINE
        client = client_for(admin)
        created = client.post(
            "/api/v1/fabric/tasks", {"kind": "probe", "seconds": 0}, content_type="application/json"
        )
        assert created.status_code == 201, created.content
        task_id = created.json()["id"]
        while time.monotonic() < deadline:
            state = client.get(f"/api/v1/fabric/tasks/{task_id}").json()
            if state["state"] in ("done", "failed"):
                break
            time.sleep(0.2)
        assert state["state"] == "done", state
        assert state["node"]["name"] == "local"
        assert state["result"]["node_id"] == node.pk

        # The worker is running when `local` gets flagged (as by a task left behind a dead one).
        flagged_at = timezone.now()
        consumption.flag_not_consuming(node=node, now=flagged_at, why="a task was not taken")
        task = dispatch.submit_task(kind="probe")
        assert task.state == "pending"  # a flagged node gets nothing
        assert "not consuming" in task.placement["reason"]
        deadline = time.monotonic() + 60
        while task.state != "done":
            assert time.monotonic() < deadline, (task.state, task.placement)
            assert worker.poll() is None, stop_process(worker)[-3000:]
            sweeper.sweep()
            time.sleep(0.5)
            task.refresh_from_db()
    finally:
        output = stop_process(worker)
    node.refresh_from_db()
    assert node.state == NodeState.PLANNED_OFFLINE, output  # a stopped worker is not "lost"
    assert task.node_id == node.pk
    assert node.not_consuming_since is None
    event = NodeEvent.objects.get(node=node, kind=NodeEventKind.CONSUMING)
    # Taken by the worker (`local` renews the lease when it starts a message) and run.
    assert event.message == "it reported running work"
    assert (event.at - flagged_at).total_seconds() < 30  # not ORCHCAP_FABRIC_PROBE_SECONDS
    probe = FabricTask.objects.get(system=True)
    assert (probe.state, probe.node_id) == ("done", node.pk)
    assert probe.placement["reason"] == "consumption check: local is flagged not consuming"


def test_a_starting_control_plane_worker_clears_a_flag_left_by_the_one_before(db):
    node = ready_local_node()
    consumption.flag_not_consuming(node=node, now=timezone.now(), why="a task was not taken")
    again = local.ensure_local_node(concurrency=2)
    assert again.pk == node.pk
    node.refresh_from_db()
    assert node.not_consuming_since is None
    event = NodeEvent.objects.get(node=node, kind=NodeEventKind.CONSUMING)
    assert event.message == "the control plane's worker started"


# --- outputs a node uploads ----------------------------------------------------------------


def test_a_node_uploads_an_output_only_for_its_current_attempt(ready_node):
    node, credential = ready_node("a")
    other, other_credential = ready_node("b")
    task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    holder, holder_credential = (
        (node, credential) if task.node_id == node.pk else (other, other_credential)
    )
    stranger, stranger_credential = (
        (other, other_credential) if holder == node else (node, credential)
    )
    attempt = TaskAttempt.objects.get(task=task)
    url = f"/api/v1/fabric/tasks/{task.pk}/artifacts?attempt=1&token={attempt.token}&name=model"
    refused = node_client(stranger, stranger_credential).post(
        url, b"model bytes", content_type="application/octet-stream"
    )
    assert refused.status_code == 409
    forged = node_client(holder, holder_credential).post(
        f"/api/v1/fabric/tasks/{task.pk}/artifacts?attempt=1&token={'0' * 16}",
        b"model bytes", content_type="application/octet-stream",
    )  # fmt: skip
    assert forged.status_code == 409
    assert not FabricArtifact.objects.exists()
    stored = node_client(holder, holder_credential).post(
        url, b"model bytes", content_type="application/octet-stream"
    )
    assert stored.status_code == 201, stored.content
    artifact = FabricArtifact.objects.get(sha256=stored.json()["sha256"])
    assert (bytes(artifact.content), artifact.produced_by_id) == (b"model bytes", task.pk)
    # Once the task is done, its attempt can't add more.
    item = results.ResultIn(task_id=task.pk, attempt=1, token=attempt.token, ok=True, result={})
    results.record_results(node=holder, results=[item])
    late = node_client(holder, holder_credential).post(
        url, b"more", content_type="application/octet-stream"
    )
    assert late.status_code == 409


# --- completion handlers -------------------------------------------------------------------

handled: list[tuple[int, str]] = []


@completion.completion_handler("tests.remember")
def remember(task: FabricTask) -> None:
    handled.append((task.pk, task.state))
    FabricTask.objects.filter(pk=task.pk).update(error="handled")


@completion.completion_handler("tests.explode")
def explode(task: FabricTask) -> None:
    FabricTask.objects.filter(pk=task.pk).update(error="written, then rolled back")
    raise RuntimeError("handler bug")


def finished_task(node: ComputeNode, on_done: str, ok: bool = True) -> FabricTask:
    task = dispatch.submit_task(kind="probe")
    FabricTask.objects.filter(pk=task.pk).update(on_done=on_done)
    attempt = TaskAttempt.objects.get(task=task)
    results.record_results(node=node, results=[results.ResultIn(
        task_id=task.pk, attempt=1, token=attempt.token, ok=ok, result={} if ok else None,
        error="" if ok else "boom")])  # fmt: skip
    task.refresh_from_db()
    return task


def test_a_finished_tasks_handler_runs_once(db):
    node = ready_local_node()
    handled.clear()
    done = finished_task(node, "tests.remember")
    failed = finished_task(node, "tests.remember", ok=False)
    assert completion.unhandled_task_ids() == [done.pk, failed.pk]
    assert completion.handle_finished() == 2
    assert completion.handle_finished([done.pk]) == 0  # already handled
    assert handled == [(done.pk, "done"), (failed.pk, "failed")]
    assert FabricTask.objects.filter(handled_at__isnull=False).count() == 2


def test_a_failing_handler_is_rolled_back_logged_and_not_retried_forever(db, caplog):
    node = ready_local_node()
    task = finished_task(node, "tests.explode")
    assert completion.handle_finished() == 1
    task.refresh_from_db()
    assert task.handled_at is not None
    assert task.error == ""  # its writes were rolled back
    assert "handler failed" in caplog.text
    assert completion.unhandled_task_ids() == []


def test_the_fleet_and_node_pages_say_which_node_is_the_control_plane(db, admin):
    node = ready_local_node()
    client = client_for(admin)
    fleet = client.get("/fabric/").content.decode()
    assert "control plane ·" in fleet
    page = client.get(f"/fabric/nodes/{node.pk}/").content.decode()
    assert "the control plane's own Celery worker" in page
