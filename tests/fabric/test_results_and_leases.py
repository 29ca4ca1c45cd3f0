"""Results are recorded once; leases are renewed by heartbeats; the sweeper moves stranded work
and finds nodes that heartbeat but don't consume."""

from datetime import timedelta

import pytest
import redis
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.fabric import protocol, scheduler, selectors
from apps.fabric.models import (
    AttemptState,
    ComputeNode,
    FabricTask,
    FabricTaskState,
    NodeEvent,
    NodeEventKind,
    NodeState,
    TaskAttempt,
)
from apps.fabric.services import consumption, dispatch, results, sweeper
from tests.fabric.conftest import node_client


def result_for(task: FabricTask, *, number: int | None = None, token: str | None = None,
               ok: bool = True, value: object = None) -> results.ResultIn:  # fmt: skip
    attempt = TaskAttempt.objects.get(task=task, number=number or task.attempts)
    return results.ResultIn(
        task_id=task.pk, attempt=attempt.number, token=token or attempt.token, ok=ok,
        result=value if value is not None else {"answer": 42}, error="" if ok else "boom",
        duration_seconds=0.5,
    )  # fmt: skip


def test_a_result_is_recorded_once_however_often_it_arrives(ready_node):
    node, _ = ready_node()
    task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    item = result_for(task)
    [first] = results.record_results(node=node, results=[item])
    [again] = results.record_results(node=node, results=[item])
    assert first.recorded
    assert (again.recorded, again.reason) == (False, "already done; recorded once only")
    task.refresh_from_db()
    assert (task.state, task.result) == ("done", {"answer": 42})
    assert task.finished_at - task.started_at == timedelta(seconds=0.5)
    assert TaskAttempt.objects.get(task=task).state == AttemptState.DONE
    node.refresh_from_db()
    assert node.last_task_at is not None


def test_the_database_refuses_a_second_done_attempt(ready_node):
    node, _ = ready_node()
    task = dispatch.submit_task(kind="probe")
    TaskAttempt.objects.filter(task=task).update(state=AttemptState.DONE)
    with pytest.raises(IntegrityError), transaction.atomic():
        TaskAttempt.objects.create(
            task=task, number=2, token="ff", node=node, dispatched_at=timezone.now(),
            state=AttemptState.DONE,
        )  # fmt: skip


def test_results_with_a_wrong_token_or_from_another_node_are_ignored(ready_node):
    node, _ = ready_node("a")
    other, _ = ready_node("b")
    task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    [forged] = results.record_results(node=node, results=[result_for(task, token="00" * 8)])
    assert (forged.recorded, forged.reason) == (
        False, "unknown attempt: this node was not sent that work",
    )  # fmt: skip
    stranger = task.node_id and (other if task.node_id == node.pk else node)
    [foreign] = results.record_results(node=stranger, results=[result_for(task)])
    assert not foreign.recorded
    task.refresh_from_db()
    assert task.state == FabricTaskState.PLACED


def test_a_failed_payload_fails_the_task_with_its_error(ready_node):
    node, _ = ready_node()
    task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    results.record_results(node=node, results=[result_for(task, ok=False)])
    task.refresh_from_db()
    assert (task.state, task.error, task.result) == ("failed", "boom", None)


def test_an_oversized_result_is_refused_and_the_task_fails(ready_node, settings):
    settings.ORCHCAP_FABRIC_RESULT_MAX_BYTES = 1024
    node, _ = ready_node()
    task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    results.record_results(node=node, results=[result_for(task, value={"x": "y" * 5000})])
    task.refresh_from_db()
    assert task.state == FabricTaskState.FAILED
    assert "larger than 1024 bytes" in task.error


def heartbeat(node: ComputeNode, credential: str, **fields: object) -> dict:
    response = node_client(node, credential).post(
        "/api/v1/fabric/heartbeat", {"worker": "ready", **fields}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_heartbeats_renew_the_leases_of_the_attempts_the_node_holds(ready_node):
    node, credential = ready_node()
    task = dispatch.submit_task(kind="probe", payload={"seconds": 60})
    task.refresh_from_db()
    attempt = TaskAttempt.objects.get(task=task)
    first_lease = task.lease_expires_at
    # A stale attempt (wrong token) renews nothing; the real one starts the task.
    heartbeat(node, credential, tasks=[{"task": task.pk, "attempt": 1, "token": "0" * 16}])
    task.refresh_from_db()
    assert (task.state, task.lease_expires_at) == ("placed", first_lease)
    reply = heartbeat(node, credential, tasks=[{"task": task.pk, "attempt": 1,
                                                "token": attempt.token}])  # fmt: skip
    task.refresh_from_db()
    assert task.state == FabricTaskState.RUNNING
    assert task.lease_expires_at > first_lease
    assert task.started_at is not None
    assert TaskAttempt.objects.get(task=task).state == AttemptState.RUNNING
    assert reply["consuming"] is True
    node.refresh_from_db()
    assert node.running_tasks == 1


def test_a_heartbeat_still_holding_a_finished_task_does_not_reopen_it(ready_node):
    # The worker holds a message until its result was delivered, so the heartbeat that follows
    # the result can still list it: the task stays done, with no lease.
    node, credential = ready_node()
    task = dispatch.submit_task(kind="probe")
    task.refresh_from_db()
    item = result_for(task)
    [outcome] = results.record_results(node=node, results=[item])
    assert outcome.recorded
    heartbeat(node, credential, tasks=[{"task": task.pk, "attempt": 1, "token": item.token}])
    task.refresh_from_db()
    assert (task.state, task.lease_expires_at) == ("done", None)
    assert TaskAttempt.objects.get(task=task).state == AttemptState.DONE


def test_the_sweeper_moves_the_work_of_a_lost_node_to_another_one(ready_node):
    lost, _ = ready_node("edge-1", node_class="edge", max_concurrent_tasks=1)
    spare, _ = ready_node("server-2", max_concurrent_tasks=1)
    task = dispatch.submit_task(kind="probe", payload={"seconds": 5})
    task.refresh_from_db()
    assert task.node_id == lost.pk
    old = TaskAttempt.objects.get(task=task)
    ComputeNode.objects.filter(pk=spare.pk).update(
        last_heartbeat_at=timezone.now() + timedelta(minutes=5)
    )

    report = sweeper.sweep(now=timezone.now() + timedelta(seconds=91))
    assert (report.lost_nodes, report.moved_tasks, report.placed) == (1, 1, 1)
    task.refresh_from_db()
    assert (task.state, task.node_id, task.attempts) == ("placed", spare.pk, 2)
    old.refresh_from_db()
    assert old.state == AttemptState.LOST
    assert old.note == "edge-1 is offline (heartbeats lost)"
    assert NodeEvent.objects.filter(node=lost, kind=NodeEventKind.TASKS_MOVED).exists()

    # The lost node comes back with its old result: ignored, and noted on its attempt.
    [late] = results.record_results(node=lost, results=[result_for(task, number=1)])
    assert not late.recorded
    assert "not the current one" in late.reason
    old.refresh_from_db()
    assert old.note.endswith("late result ignored")
    [current] = results.record_results(node=spare, results=[result_for(task)])
    assert current.recorded


def waiting_in(settings, name: str) -> int:
    """Messages waiting in a node queue of the node broker (whatever its transport)."""
    from orchcap.celery import app

    with app.connection_for_write(settings.ORCHCAP_NODE_BROKER_URL) as connection:
        queue = protocol.queue(name)(connection.default_channel)
        return queue.queue_declare().message_count  # the durable queue as agents declare it


def test_the_queue_of_a_lost_node_is_emptied_of_the_work_moved_elsewhere(
    ready_node, settings, django_capture_on_commit_callbacks
):
    lost, _ = ready_node("edge-1", node_class="edge", max_concurrent_tasks=1)
    spare, _ = ready_node("server-2", max_concurrent_tasks=1)
    with django_capture_on_commit_callbacks(execute=True):
        task = dispatch.submit_task(kind="probe", payload={"seconds": 5})
    task.refresh_from_db()
    assert task.node_id == lost.pk
    assert waiting_in(settings, f"node.{lost.pk}") == 1  # sent, never taken: the node died
    ComputeNode.objects.filter(pk=spare.pk).update(
        last_heartbeat_at=timezone.now() + timedelta(minutes=5)
    )

    with django_capture_on_commit_callbacks(execute=True):
        report = sweeper.sweep(now=timezone.now() + timedelta(seconds=91))
    assert (report.lost_nodes, report.moved_tasks, report.placed) == (1, 1, 1)
    # The old message is gone: the node, when it comes back, has nothing stale to run.
    assert waiting_in(settings, f"node.{lost.pk}") == 0
    assert waiting_in(settings, f"node.{spare.pk}") == 1  # the new attempt


def test_a_broker_that_cannot_be_reached_does_not_stop_the_sweep(
    ready_node, settings, django_capture_on_commit_callbacks, caplog
):
    lost, _ = ready_node("edge-1", node_class="edge", max_concurrent_tasks=1)
    task = dispatch.submit_task(kind="probe")
    settings.ORCHCAP_NODE_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    ComputeNode.objects.filter(pk=lost.pk).update(state=NodeState.OFFLINE)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeper.move_stranded_tasks() == 1
    task.refresh_from_db()
    assert task.state == FabricTaskState.PENDING
    assert f"could not purge the queues of lost node(s) [{lost.pk}]" in caplog.text


def test_a_task_gives_up_after_the_maximum_number_of_attempts(ready_node, settings):
    settings.ORCHCAP_FABRIC_MAX_ATTEMPTS = 1
    node, _ = ready_node()
    task = dispatch.submit_task(kind="probe")
    ComputeNode.objects.filter(pk=node.pk).update(state=NodeState.PLANNED_OFFLINE)
    assert sweeper.move_stranded_tasks() == 1
    task.refresh_from_db()
    assert task.state == FabricTaskState.FAILED
    assert task.error == "gave up after 1 attempts; the last one: build-1 is planned offline"


def queue_length(settings, name: str) -> int:
    socket_path = settings.CELERY_BROKER_URL.removeprefix("redis+socket://")
    return redis.Redis(unix_socket_path=socket_path).llen(name)


def test_a_node_that_heartbeats_but_does_not_consume_is_found_by_a_probe(
    ready_node, settings, django_capture_on_commit_callbacks
):
    settings.ORCHCAP_FABRIC_PROBE_SECONDS = 60
    settings.ORCHCAP_HEARTBEAT_SECONDS = 30  # a deployment that chose 30 s heartbeats
    stuck, credential = ready_node("stuck")
    ComputeNode.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=1))
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeper.send_probes(now=now) == 1
    probe = FabricTask.objects.get(system=True)
    assert (probe.kind, probe.node_id, probe.payload) == ("probe", stuck.pk, {"seconds": 0})
    assert probe.placement["reason"] == "consumption check: stuck never ran a task for 60 s"
    # The message waits in the node's durable queue: nobody consumes it.
    assert queue_length(settings, f"node.{stuck.pk}") == 1
    assert sweeper.send_probes(now=now + timedelta(seconds=30)) == 0  # one probe at a time

    # Its agent keeps heartbeating, but never reports the probe: once the lease is over, the node
    # is flagged and the scheduler passes it over.
    later = now + timedelta(seconds=91)
    ComputeNode.objects.filter(pk=stuck.pk).update(last_heartbeat_at=later)
    sweeper.sweep(now=later)
    stuck.refresh_from_db()
    assert stuck.not_consuming_since == later
    event = NodeEvent.objects.filter(node=stuck, kind=NodeEventKind.NOT_CONSUMING).get()
    assert event.message == "stuck did not take it from its queue within 90 s"
    placement = scheduler.filter_and_score(
        selectors.node_candidates(), scheduler.Requirements(), later
    )
    assert placement.rejected[0]["reasons"] == [
        "not consuming: work sent to its queue was not taken"
    ]
    assert heartbeat(stuck, credential)["consuming"] is False

    # The lost probe asked that node: it is not placed elsewhere. The flagged node (it gets no
    # work) is probed again in the same sweep, not ORCHCAP_FABRIC_PROBE_SECONDS later.
    probe.refresh_from_db()
    assert (probe.state, probe.node_id) == (FabricTaskState.FAILED, None)
    assert probe.error == "not taken: stuck did not take it from its queue within 90 s"
    again = FabricTask.objects.get(system=True, state=FabricTaskState.PLACED)
    assert again.node_id == stuck.pk
    assert again.placement["reason"] == "consumption check: stuck is flagged not consuming"

    # It takes work again (that probe, reported by a heartbeat): the flag goes.
    attempt = TaskAttempt.objects.get(task=again)
    reply = heartbeat(stuck, credential, tasks=[{"task": again.pk, "attempt": 1,
                                                 "token": attempt.token}])  # fmt: skip
    assert reply["consuming"] is True
    stuck.refresh_from_db()
    assert stuck.not_consuming_since is None


def test_a_flagged_node_is_probed_after_a_lease_then_less_and_less_often(ready_node, settings):
    settings.ORCHCAP_FABRIC_PROBE_SECONDS = 600
    settings.ORCHCAP_HEARTBEAT_SECONDS = 30  # leases of 90 s
    stuck, _ = ready_node("stuck")
    t0 = timezone.now()
    consumption.flag_not_consuming(node=stuck, now=t0, why="a task was not taken")
    # Probes at once, then 90 s, 180 s, 360 s after the flag (each wait as long as the node had
    # been flagged at the last probe), then every ORCHCAP_FABRIC_PROBE_SECONDS at most.
    moments = [0, 1, 89, 90, 91, 179, 180, 359, 360, 719, 720, 1000, 1319, 1320]
    sent_at = [s for s in moments if sweeper.send_probes(now=t0 + timedelta(seconds=s))]
    assert sent_at == [0, 90, 180, 360, 720, 1320]
    probes = FabricTask.objects.filter(system=True, node=stuck)
    assert probes.count() == 6
    assert {p.placement["reason"] for p in probes} == {
        "consumption check: stuck is flagged not consuming"
    }


def test_a_restarted_agent_worker_clears_the_flag_when_it_is_ready(ready_node):
    node, credential = ready_node("restarted")
    consumption.flag_not_consuming(node=node, now=timezone.now(), why="a task was not taken")
    # The same worker still reporting ready: the flag stays (only work it takes clears it).
    assert heartbeat(node, credential)["consuming"] is False
    # The agent restarted: no worker, then one starting, then ready.
    assert heartbeat(node, credential, worker="none")["consuming"] is False
    assert heartbeat(node, credential, worker="starting")["consuming"] is False
    assert heartbeat(node, credential, worker="ready")["consuming"] is True
    node.refresh_from_db()
    assert node.not_consuming_since is None
    event = NodeEvent.objects.filter(node=node, kind=NodeEventKind.CONSUMING).get()
    assert event.message == "its worker (re)started"
