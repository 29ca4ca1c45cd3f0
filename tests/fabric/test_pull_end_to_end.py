"""Pull tasks with real agents: a capability queue feeds the nodes of its kind, and only a node
that may run the task runs it."""

import pytest

from apps.fabric.models import AttemptState, TaskAttempt
from apps.fabric.services import dispatch
from tests.fabric.test_dispatch_end_to_end import control_plane, fabric, wait_done  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_pull_tasks_run_only_on_nodes_that_may_run_them(fabric):  # noqa: F811
    start, ready = fabric
    gpu, _ = start("gpu-box", "--declare", "gpus=1", "--max-tasks", "2")
    branch, _ = start("branch-3", "--class", "edge", "--label", "site=branch-3",
                      "--max-tasks", "2")  # fmt: skip
    desk, _ = start("desk", "--class", "edge", "--max-tasks", "2")
    ready(gpu, branch, desk)
    gpu_work = [dispatch.submit_task(kind="probe", requirements={"gpus": 1}, pull=True)
                for _ in range(3)]  # fmt: skip
    # Both edge boxes consume fabric.class.edge; only branch-3 may run these.
    site_work = [dispatch.submit_task(kind="probe", pull=True,
                                      requirements={"labels": {"site": "branch-3"}})
                 for _ in range(4)]  # fmt: skip
    for task in wait_done(gpu_work + site_work, timeout=90):
        assert task.state == "done", (task.pk, task.error, task.placement)
        ran = TaskAttempt.objects.get(task=task, state=AttemptState.DONE).node_id
        assert ran == (gpu.pk if task in gpu_work else branch.pk)
        assert task.result["node_id"] == ran
    # Whatever the desk took from the shared queue it gave back, never ran.
    refused = TaskAttempt.objects.filter(node=desk)
    assert not refused.exclude(state=AttemptState.LOST).exists()
    for attempt in refused:
        assert "desk took it from fabric.class.edge but may not run it" in attempt.note
