"""A classifier trains on an enrolled machine: the agent fetches the decisions, fits, uploads the
model for its attempt, and the control plane verifies and files it in the registry."""

import pytest

from apps.classifiers import fabric as classifier_fabric
from apps.classifiers import services
from apps.fabric.models import FabricArtifact, TaskAttempt
from apps.fabric.services import completion
from tests.fabric.test_dispatch_end_to_end import control_plane, fabric, wait_done  # noqa: F401
from tests.factories import make_decided_cases, make_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_enrolled_agent_trains_a_classifier_and_the_control_plane_files_it(
    fabric,  # noqa: F811
    team,
    second_expert,
):
    start, ready = fabric
    process = make_process(team)
    make_decided_cases(process, second_expert, 120, seed=12)
    node, _ = start("trainer", "--max-tasks", "1")
    ready(node)
    job = services.start_training(process=process, requested_by=second_expert)
    job = classifier_fabric.send_training_job(job.pk)
    assert job.fabric_task.node_id == node.pk
    [task] = wait_done([job.fabric_task], timeout=180)
    assert task.state == "done", task.error
    assert TaskAttempt.objects.get(task=task).node_id == node.pk
    assert completion.handle_finished([task.pk]) == 1
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    assert job.model_version.snapshot_size == 120
    model = FabricArtifact.objects.get(sha256=job.model_version.artifact_sha256)
    assert model.produced_by_id == task.pk  # uploaded over HTTP by the node's attempt
    services.load_pipeline(job.model_version)
