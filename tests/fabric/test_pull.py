"""Pull tasks: sent to a capability queue, claimed by the node that takes them, placed directly
when the taker may not run them or nobody takes them in time."""

from datetime import timedelta

from django.utils import timezone

from apps.fabric.models import AttemptState, ComputeNode, FabricTask, TaskAttempt
from apps.fabric.services import dispatch, nodes, pull, results, sweeper
from tests.conftest import client_for
from tests.fabric.conftest import DETECTED, node_client

GPU = {**DETECTED, "gpus": [{"model": "L4", "memory_mb": 24576}]}


def attempt_of(task: FabricTask, number: int = 1) -> TaskAttempt:
    return TaskAttempt.objects.get(task=task, number=number)


def test_a_pull_task_goes_to_the_capability_queue_without_a_node(ready_node):
    ready_node("cpu-1")
    gpu, _ = ready_node("gpu-1", detected=GPU)
    task = dispatch.submit_task(kind="probe", requirements={"gpus": 1}, pull=True)
    task.refresh_from_db()
    assert (task.state, task.node_id, task.pull) == ("placed", None, True)
    assert task.placement["queue"] == "fabric.gpu"
    assert task.placement["reason"].startswith("sent to fabric.gpu: the first free node")
    assert "gpu-1" in task.placement["reason"]
    assert attempt_of(task).node_id is None
    other = dispatch.submit_task(kind="probe", pull=True)
    other.refresh_from_db()
    assert other.placement["queue"] == "fabric.class.server"  # the class ranked best for it
    assert gpu.pk not in [c["node_id"] for c in other.placement["candidates"][:1]]


def test_the_taker_claims_it_then_it_is_its_task(ready_node):
    gpu, _ = ready_node("gpu-1", detected=GPU)
    gpu2, credential2 = ready_node("gpu-2", detected=GPU)
    task = dispatch.submit_task(kind="probe", requirements={"gpus": 1}, pull=True)
    token = attempt_of(task).token
    reply = node_client(gpu2, credential2).post(
        f"/api/v1/fabric/tasks/{task.pk}/claim", {"attempt": 1, "token": token},
        content_type="application/json",
    )  # fmt: skip
    assert reply.status_code == 200
    assert reply.json() == {"task": task.pk, "claimed": True, "reason": "claimed by gpu-2"}
    task.refresh_from_db()
    assert task.node_id == gpu2.pk
    assert attempt_of(task).node_id == gpu2.pk
    assert task.placement["reason"].endswith("; claimed by gpu-2")
    # A redelivered message: the same node may claim again; another node may not.
    assert pull.claim_task(node=gpu2, task_id=task.pk, attempt=1, token=token).claimed
    late = pull.claim_task(node=gpu, task_id=task.pk, attempt=1, token=token)
    assert (late.claimed, late.reason) == (False, "taken by another node, or no longer waiting")
    forged = pull.claim_task(node=gpu, task_id=task.pk, attempt=1, token="0" * 16)
    assert not forged.claimed
    # From now on it is like a pushed task: its node reports the result.
    [outcome] = results.record_results(node=gpu2, results=[results.ResultIn(
        task_id=task.pk, attempt=1, token=token, ok=True, result={"ok": 1})])  # fmt: skip
    assert outcome.recorded


def test_a_taker_that_may_not_run_it_is_refused_and_the_task_is_placed_directly(ready_node, admin):
    desk, _ = ready_node("desk", node_class="edge")
    branch, _ = ready_node("branch", node_class="edge", labels={"site": "b3"})
    task = dispatch.submit_task(kind="probe", requirements={"labels": {"site": "b3"}}, pull=True)
    task.refresh_from_db()
    assert task.placement["queue"] == "fabric.class.edge"  # both edge boxes consume it
    refused = pull.claim_task(node=desk, task_id=task.pk, attempt=1, token=attempt_of(task).token)
    assert not refused.claimed
    assert "needs label site=b3" in refused.reason
    first = attempt_of(task)
    assert (first.state, first.node_id) == (AttemptState.LOST, desk.pk)
    task.refresh_from_db()
    assert (task.pull, task.state, task.node_id, task.attempts) == (False, "placed", branch.pk, 2)
    # Reclaimed by its owner: same story for a node that otherwise fits.
    nodes.reclaim_node(node=branch, actor=admin)
    again = dispatch.submit_task(kind="probe", pull=True, requirements={"labels": {"site": "b3"}})
    again.refresh_from_db()
    assert again.state == "pending"  # no edge box may run it now: not sent anywhere


def test_a_pull_task_nobody_takes_is_placed_directly_when_its_lease_runs_out(ready_node):
    gpu, _ = ready_node("gpu-1", detected=GPU)
    task = dispatch.submit_task(kind="probe", requirements={"gpus": 1}, pull=True)
    later = timezone.now() + timedelta(seconds=dispatch.lease_seconds() + 1)
    ComputeNode.objects.filter(pk=gpu.pk).update(last_heartbeat_at=later)
    assert sweeper.move_stranded_tasks(now=later) == 1
    task.refresh_from_db()
    assert "no node took it from fabric.gpu" in attempt_of(task).note
    assert task.pull is False
    gpu.refresh_from_db()
    assert gpu.not_consuming_since is None  # nobody in particular was sent it
    dispatch.place_pending(now=later)
    task.refresh_from_db()
    assert (task.state, task.node_id, task.attempts) == ("placed", gpu.pk, 2)


def test_an_unclaimed_pull_task_is_not_stranded_before_its_lease_ends(ready_node):
    ready_node("gpu-1", detected=GPU)
    dispatch.submit_task(kind="probe", requirements={"gpus": 1}, pull=True)
    assert sweeper.move_stranded_tasks() == 0


def test_admins_send_pull_tasks_through_the_api(ready_node, admin):
    ready_node("gpu-1", detected=GPU)
    response = client_for(admin).post(
        "/api/v1/fabric/tasks", {"kind": "probe", "requirements": {"gpus": 1}, "pull": True},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["pull"], body["node"], body["placement"]["queue"]) == (True, None, "fabric.gpu")
