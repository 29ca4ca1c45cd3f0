"""Submitting work: placement with reasons, capacity, pending work, idempotency, bad input."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.fabric import protocol
from apps.fabric.models import AttemptState, ComputeNode, FabricTask, FabricTaskState, TaskAttempt
from apps.fabric.services import artifacts, dispatch, results
from apps.fabric.services import nodes as node_services


def finish(task: FabricTask, node: ComputeNode, **fields: object) -> results.ResultOutcome:
    attempt = TaskAttempt.objects.get(task=task, number=task.attempts)
    item = results.ResultIn(
        task_id=task.pk, attempt=attempt.number, token=attempt.token, ok=True, result={"x": 1},
        **fields,
    )  # fmt: skip
    return results.record_results(node=node, results=[item])[0]


def test_a_task_goes_to_the_best_node_with_its_reason_an_attempt_and_a_lease(ready_node, settings):
    settings.ORCHCAP_HEARTBEAT_SECONDS = 30  # a deployment that chose 30 s heartbeats
    _server, _ = ready_node("server-1")
    edge, _ = ready_node("edge-1", node_class="edge")
    before = timezone.now()
    task = dispatch.submit_task(kind="probe", payload={"seconds": 1})
    task.refresh_from_db()
    assert (task.state, task.node_id, task.attempts) == ("placed", edge.pk, 1)
    assert task.placement["reason"] == (
        "placed on edge-1 (score 23, best of 2): 0 of 8 tasks running, edge class"
    )
    assert [c["name"] for c in task.placement["candidates"]] == ["edge-1", "server-1"]
    lease = task.lease_expires_at - before
    assert timedelta(seconds=89) < lease < timedelta(seconds=91)  # 3 heartbeats of 30 s
    attempt = TaskAttempt.objects.get(task=task)
    assert (attempt.number, attempt.node_id, attempt.state) == (1, edge.pk, "dispatched")
    assert len(attempt.token) == 16


def test_no_eligible_node_keeps_it_pending_with_every_reason(ready_node, admin):
    ready_node("cpu-1")
    task = dispatch.submit_task(kind="probe", requirements={"gpus": 1})
    task.refresh_from_db()
    assert task.state == FabricTaskState.PENDING
    assert task.node_id is None
    assert task.placement["reason"] == "no eligible node: cpu-1: needs 1 GPU, has 0"
    assert not TaskAttempt.objects.filter(task=task).exists()

    # A GPU node comes along; the pending-task scheduler places the task there.
    gpu, _ = ready_node("gpu-1", declared={"gpus": 1})
    assert dispatch.place_pending() == 1
    task.refresh_from_db()
    assert (task.state, task.node_id) == ("placed", gpu.pk)


def test_a_node_that_is_not_ready_or_not_available_gets_nothing(ready_node, make_token, admin):
    from tests.fabric.conftest import enroll

    enroll(make_token(auto_approve=True), name="no-worker")  # heartbeats, runs no worker
    reclaimed, _ = ready_node("reclaimed")
    node_services.reclaim_node(node=reclaimed, actor=admin)
    task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    assert task.state == FabricTaskState.PENDING
    reasons = {r["name"]: r["reasons"] for r in task.placement["rejected"]}
    assert reasons == {
        "no-worker": ["its agent runs no worker yet"],
        "reclaimed": ["reclaimed by its owner: no new work until released"],
    }


def test_capacity_is_its_maximum_minus_what_it_leased_and_a_result_frees_a_slot(ready_node):
    node, _ = ready_node("small", max_concurrent_tasks=1)
    first = dispatch.submit_task(kind="probe")
    second = dispatch.submit_task(kind="probe")
    second.refresh_from_db()
    assert second.state == FabricTaskState.PENDING
    assert second.placement["reason"] == "no eligible node: small: full: 1 of 1 tasks running"

    first.refresh_from_db()
    assert finish(first, node).recorded
    second.refresh_from_db()
    assert (second.state, second.node_id) == ("placed", node.pk)


def test_batch_submission_fills_nodes_by_load(ready_node):
    a, _ = ready_node("a", max_concurrent_tasks=2)
    b, _ = ready_node("b", max_concurrent_tasks=2)
    specs = [dispatch.TaskSpec(kind="probe") for _ in range(5)]
    tasks = dispatch.submit_tasks(specs=specs)
    states = [FabricTask.objects.get(pk=t.pk) for t in tasks]
    assert [t.node_id for t in states] == [a.pk, b.pk, a.pk, b.pk, None]
    assert states[-1].placement["reason"].startswith("no eligible node: a: full: 2 of 2")


def test_the_same_idempotency_key_returns_the_first_task(ready_node):
    ready_node()
    first = dispatch.submit_task(kind="probe", idempotency_key="nightly-42")
    again = dispatch.submit_task(kind="probe", idempotency_key="nightly-42")
    assert again.pk == first.pk
    assert FabricTask.objects.count() == 1
    with pytest.raises(ValidationError, match="was used for different work"):
        dispatch.submit_task(kind="probe", payload={"seconds": 5}, idempotency_key="nightly-42")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "shell"}, "kind must be one of call, probe"),
        ({"kind": "probe", "payload": {"seconds": 4000}}, "seconds must be from 0 to 3600"),
        ({"kind": "call", "payload": {"function": "os.system"}}, "function must be one of"),
        ({"kind": "probe", "requirements": {"gpu": 1}}, "unknown requirement"),
        ({"kind": "probe", "artifacts": ["ab" * 32]}, "unknown artefact"),
        ({"kind": "probe", "artifacts": ["not-a-hash"]}, "SHA-256"),
        (
            {"kind": "call", "payload": {"function": "score_batch", "args": {"rows": 3}}},
            "rows must be a list",
        ),
    ],
)
def test_bad_work_is_refused_before_it_reaches_a_node(db, fields, message):
    with pytest.raises(ValidationError, match=message):
        dispatch.submit_task(**fields)
    assert not FabricTask.objects.exists()


def test_known_artefacts_are_accepted(ready_node):
    ready_node()
    model = artifacts.store_artifact(content=b"model bytes", name="m.bin")
    assert artifacts.store_artifact(content=b"model bytes").pk == model.pk  # stored once
    task = dispatch.submit_task(
        kind="call",
        payload={"function": "artifact_digest", "args": {"artifact": model.sha256}},
        artifacts=[model.sha256],
    )
    assert task.artifacts == [model.sha256]
    with pytest.raises(ValidationError, match="can't be empty"):
        artifacts.store_artifact(content=b"")


def test_a_broker_that_cannot_be_reached_puts_the_task_back_to_pending(
    ready_node, settings, django_capture_on_commit_callbacks
):
    settings.ORCHCAP_NODE_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    ready_node()
    with django_capture_on_commit_callbacks(execute=True):
        task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    assert task.state == FabricTaskState.PENDING
    assert task.placement["reason"].startswith("waiting: the broker could not be reached")
    assert TaskAttempt.objects.get(task=task).state == AttemptState.LOST


def test_short_work_submitted_as_bundles_travels_in_one_message_per_node(ready_node):
    a, _ = ready_node("a", max_concurrent_tasks=4)
    b, _ = ready_node("b", max_concurrent_tasks=4)
    specs = [dispatch.TaskSpec(kind="probe", bundle=True) for _ in range(6)]
    specs.append(dispatch.TaskSpec(kind="probe"))  # not a bundle: a message of its own
    with transaction.atomic():
        new = [FabricTask(kind=s.kind, payload={}, bundle=s.bundle) for s in specs]
        messages = dispatch.place(new, now=timezone.now(), new=True)
    by_node = sorted((m.node_id, len(m.attempts), "bundle" in m.kwargs) for m in messages)
    assert by_node == [(a.pk, 1, False), (a.pk, 3, True), (b.pk, 3, True)]
    bundle = next(m for m in messages if m.node_id == b.pk)
    refs = protocol.attempts_in(bundle.kwargs)
    assert [(t, n) for t, n, _ in refs] == list(bundle.attempts)
    assert bundle.celery_id.startswith("fabric-bundle-")
