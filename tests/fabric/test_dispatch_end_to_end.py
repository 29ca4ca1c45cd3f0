"""Real agents with real Celery workers on a real broker: work goes where it may, and survives a
node's death.

The test process plays the control plane's worker: it submits tasks and runs the sweeper (beat
would, every few seconds); a runserver on the test database answers the agents' heartbeats and
results. Heartbeats come every second, so a node is lost after 3 s.
"""

import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from apps.fabric.models import (
    AttemptState,
    ComputeNode,
    FabricTask,
    FabricTaskState,
    NodeState,
    TaskAttempt,
)
from apps.fabric.services import artifacts, dispatch, enrollment, sweeper
from apps.fabric.services import nodes as node_services
from tests.fabric.live import (
    RunningAgent,
    agent_command,
    delete_node_queues,
    start_server,
    wait_for,
)
from tests.processes import stop_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
AMQP_URL = os.environ.get("ORCHCAP_TEST_AMQP_URL")
BROKERS = ["embedded", *(["amqp"] if AMQP_URL else [])]
HEARTBEAT = "1"


@pytest.fixture(scope="module", params=BROKERS)
def control_plane(request, django_db_setup, django_db_blocker):
    """(server URL, node broker URL or None for the default) for each broker under test."""
    env = {"ORCHCAP_HEARTBEAT_SECONDS": HEARTBEAT}
    broker = AMQP_URL if request.param == "amqp" else None
    if broker:
        env["ORCHCAP_NODE_BROKER_URL"] = broker
        delete_node_queues(broker)
    with django_db_blocker.unblock():
        process, url = start_server(**env)
    try:
        yield url, broker
    finally:
        stop_process(process)


@pytest.fixture
def fabric(control_plane, settings, admin, tmp_path):
    url, broker = control_plane
    settings.ORCHCAP_HEARTBEAT_SECONDS = int(HEARTBEAT)
    if broker:
        settings.ORCHCAP_NODE_BROKER_URL = broker
    running: list[RunningAgent] = []

    def start(
        name: str, *enroll_args: str, pool: str = "threads"
    ) -> tuple[ComputeNode, RunningAgent]:
        _, token = enrollment.create_enrollment_token(created_by=admin, auto_approve=True)
        home = tmp_path / name
        enrolled = agent_command("enroll", "--server", url, "--token", token, "--name", name,
                                 "--config", str(home), *enroll_args)  # fmt: skip
        assert enrolled.returncode == 0, enrolled.stderr
        agent = RunningAgent(home, "--pool", pool)
        running.append(agent)
        return ComputeNode.objects.get(name=name), agent

    def ready(*nodes: ComputeNode) -> None:
        ids = [n.pk for n in nodes]
        wait_for(
            lambda: ComputeNode.objects.filter(pk__in=ids, worker_ready=True).count() == len(ids),
            timeout=60,  # usually 3-5 s; slack for a busy 2-core machine
            what="the agents' workers",
        )

    yield start, ready
    for agent in running:  # all at once: each drains in parallel
        if agent.process.poll() is None:
            agent.process.send_signal(signal.SIGTERM)
    for agent in running:
        print(f"--- agent {agent.config.name}:\n{agent.close()}")  # shown when a test fails


def wait_done(tasks: list[FabricTask], timeout: float = 60) -> list[FabricTask]:
    ids = [t.pk for t in tasks]
    finished = FabricTask.objects.filter(pk__in=ids, state__in=[FabricTaskState.DONE,
                                                                 FabricTaskState.FAILED])  # fmt: skip
    wait_for(lambda: finished.count() == len(ids), timeout=timeout, what="the tasks to finish")
    return list(FabricTask.objects.filter(pk__in=ids).order_by("pk"))


def nodes_that_ran(task: FabricTask) -> set[int]:
    return set(TaskAttempt.objects.filter(task=task).values_list("node_id", flat=True))


def test_work_goes_only_where_it_may(fabric, admin):
    start, ready = fabric
    cpu, _ = start("cpu-box", "--class", "server", "--max-tasks", "4")
    gpu, gpu_agent = start("gpu-box", "--declare", "gpus=1", "--max-tasks", "2")
    site, _ = start("branch-3", "--class", "edge", "--data-source", "erp-branch-3",
                    "--label", "site=branch-3", "--max-tasks", "2", pool="prefork")  # fmt: skip
    desk, _ = start("desk", "--class", "edge", "--max-tasks", "2")
    # The desk may work Sundays only, and today is not a Sunday (or Monday only on a Sunday).
    today = datetime.now(UTC).weekday()
    node_services.update_availability(
        node=desk, actor=admin, windows=[{"days": [(today + 1) % 7], "start": "00:00",
                                          "end": "24:00"}], idle_minutes=0, node_timezone="UTC",
    )  # fmt: skip
    ready(cpu, gpu, site, desk)
    model = artifacts.store_artifact(content=b"weights " * 1000, name="model.bin")

    gpu_work = [dispatch.submit_task(kind="probe", payload={"seconds": 0.2},
                                     requirements={"gpus": 1}) for _ in range(3)]  # fmt: skip
    resident = [
        dispatch.submit_task(
            kind="call",
            payload={"function": "artifact_digest", "args": {"artifact": model.sha256}},
            artifacts=[model.sha256],
            requirements={"data_source": "erp-branch-3", "resident": True},
        )
        for _ in range(2)
    ]
    plain = [dispatch.submit_task(kind="probe", payload={"seconds": 0}) for _ in range(4)]

    for task in wait_done(gpu_work):
        assert task.state == FabricTaskState.DONE, task.error
        assert nodes_that_ran(task) == {gpu.pk}
        assert task.result["node_id"] == gpu.pk
    for task in wait_done(resident):
        assert task.state == FabricTaskState.DONE, task.error
        assert nodes_that_ran(task) == {site.pk}
        # The agent downloaded the artefact with its credential and checked its hash.
        assert task.result == {"sha256": model.sha256, "bytes": 8000}
    for task in wait_done(plain):
        assert task.state == FabricTaskState.DONE, task.error
        # The GPU is kept free while the CPU node has room; the desk is off today.
        assert nodes_that_ran(task) <= {cpu.pk, site.pk}
        [seen] = [r for r in task.placement["rejected"] if r["name"] == "desk"]
        assert seen["reasons"][0].startswith("outside its hours (all day")
    assert not TaskAttempt.objects.filter(node=desk).exists()
    assert TaskAttempt.objects.filter(node=cpu).exists()

    # A node can't fetch another node's artefacts, even with its own valid credential.
    other = Client().get(
        f"/api/v1/fabric/artifacts/{model.sha256}", HTTP_AUTHORIZATION=gpu_agent.authorization
    )
    assert other.status_code == 404
    assert other.content != b"weights " * 1000


def test_a_node_killed_mid_task_completes_the_task_once_elsewhere(fabric):
    start, ready = fabric
    first, first_agent = start("edge-1", "--class", "edge", "--max-tasks", "1")
    second, second_agent = start("server-2", "--class", "server", "--max-tasks", "1")
    ready(first, second)

    task = dispatch.submit_task(kind="probe", payload={"seconds": 3})
    assert task.node_id == first.pk  # edge before server
    running = TaskAttempt.objects.filter(task=task, number=1, state=AttemptState.RUNNING)
    wait_for(running.exists, timeout=15, what="the first node to start the task")
    first_agent.kill()

    def moved_and_done() -> bool:
        sweeper.sweep()  # what beat runs every few seconds
        return FabricTask.objects.filter(pk=task.pk, state=FabricTaskState.DONE).exists()

    wait_for(moved_and_done, timeout=30, what="the task to run elsewhere")
    task.refresh_from_db()
    assert task.node_id == second.pk
    assert task.result["node_id"] == second.pk
    attempts = list(TaskAttempt.objects.filter(task=task).order_by("number"))
    assert [(a.number, a.node_id, a.state) for a in attempts] == [
        (1, first.pk, AttemptState.LOST), (2, second.pk, AttemptState.DONE),
    ]  # fmt: skip
    assert "edge-1 is offline" in attempts[0].note
    assert ComputeNode.objects.get(pk=first.pk).state == NodeState.OFFLINE

    # A node that drains on SIGTERM finishes what it runs, then goes planned-offline.
    drained = dispatch.submit_task(kind="probe", payload={"seconds": 2})
    assert drained.node_id == second.pk
    wait_for(
        TaskAttempt.objects.filter(task=drained, state=AttemptState.RUNNING).exists,
        timeout=15,
        what="the second node to start",
    )
    output = second_agent.stop(signal.SIGTERM)
    assert second_agent.process.returncode == 0, output
    drained.refresh_from_db()
    assert (drained.state, drained.node_id, drained.attempts) == ("done", second.pk, 1)
    assert ComputeNode.objects.get(pk=second.pk).state == NodeState.PLANNED_OFFLINE
    assert datetime.now(UTC) - drained.finished_at < timedelta(minutes=1)
