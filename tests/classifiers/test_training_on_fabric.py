"""Classifier training and batch prediction as compute-fabric work: the data goes out as an
artefact, a node fits or predicts, the control plane files what comes back."""

import hashlib

from apps.cases.models import Case, CaseStatus
from apps.classifiers import fabric, services
from apps.classifiers.models import ModelVersion, TrainingJob
from apps.fabric.models import ComputeNode, FabricArtifact, FabricTask, TaskAttempt
from apps.fabric.services import completion, local, results
from tests.fabric.local_node import message_of, ready_local_node
from tests.factories import make_cases, make_decided_cases


def sent_job(process, user) -> TrainingJob:
    job = services.start_training(process=process, requested_by=user)
    return fabric.send_training_job(job.pk)


def test_a_training_job_runs_as_a_fabric_task_and_its_model_is_filed(process, second_expert):
    make_decided_cases(process, second_expert, 120, seed=12)
    node = ready_local_node()
    job = sent_job(process, second_expert)
    task = job.fabric_task
    assert (job.state, task.node_id, task.on_done) == ("running", node.pk, fabric.TRAINING)
    assert job.current_stage() == "sent to node local"
    [dataset] = task.artifacts
    assert FabricArtifact.objects.filter(sha256=dataset).exists()

    sent_ids = services.training_data(job).ids
    make_decided_cases(process, second_expert, 20, seed=13)  # decided while the node trains
    local.run_message(message_of(task))
    task.refresh_from_db()
    assert task.state == "done", task.error
    assert job.current_stage() == "storing the model"  # done on the node, not filed yet
    assert completion.handle_finished() == 1

    job.refresh_from_db()
    assert (job.state, job.progress) == ("succeeded", 100)
    version = job.model_version
    assert version.snapshot_size == 120  # what was sent, not what is decided now
    assert services.snapshot_ids(version) == sent_ids
    assert version.metrics["macro_f1"] > 0.5
    model = FabricArtifact.objects.get(sha256=version.artifact_sha256)
    assert model.produced_by_id == task.pk  # uploaded by the node's attempt
    assert hashlib.sha256(bytes(model.content)).hexdigest() == version.artifact_sha256
    services.load_pipeline(version)  # verified and loadable from the registry
    # The decisions don't linger on the fabric once the model is filed.
    assert not FabricArtifact.objects.filter(sha256=dataset).exists()


def test_a_job_waits_with_the_reason_while_no_node_can_train(process, second_expert, settings):
    settings.ORCHCAP_LEARNING_REQUIREMENTS = '{"labels": {"site": "hq"}}'
    make_decided_cases(process, second_expert, 120, seed=12)
    ready_local_node()
    job = sent_job(process, second_expert)
    assert job.fabric_task.state == "pending"
    stage = job.current_stage()
    assert stage.startswith("waiting for a node:")
    assert "site" in stage


def test_a_training_that_fails_on_the_node_fails_the_job_with_its_reason(process, second_expert):
    make_decided_cases(process, second_expert, 120, seed=12)
    node = ready_local_node()
    job = sent_job(process, second_expert)
    attempt = TaskAttempt.objects.get(task=job.fabric_task)
    results.record_results(node=node, results=[results.ResultIn(
        task_id=job.fabric_task_id, attempt=1, token=attempt.token, ok=False,
        error="MemoryError: the node ran out of memory")])  # fmt: skip
    completion.handle_finished()
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error == "training failed on the fabric: MemoryError: the node ran out of memory"
    assert not ModelVersion.objects.exists()


def test_a_model_that_does_not_match_its_hash_is_refused(process, second_expert):
    make_decided_cases(process, second_expert, 120, seed=12)
    node = ready_local_node()
    job = sent_job(process, second_expert)
    attempt = TaskAttempt.objects.get(task=job.fabric_task)
    bogus = FabricArtifact.objects.create(sha256="cd" * 32, size=3, content=b"not a model")
    results.record_results(node=node, results=[results.ResultIn(
        task_id=job.fabric_task_id, attempt=1, token=attempt.token, ok=True,
        result={"model": bogus.sha256, "labels": ["approve"], "rows": 120})])  # fmt: skip
    completion.handle_finished()
    job.refresh_from_db()
    assert job.state == "failed"
    assert "does not match its SHA-256" in job.error
    assert not ModelVersion.objects.exists()


def test_open_cases_are_scored_on_the_fabric(trained_process):
    make_cases(trained_process, 30)
    Case.objects.filter(process=trained_process).update(uncertainty=None)
    ready_local_node()
    tasks = fabric.send_scoring(process=trained_process)
    assert [t.on_done for t in tasks] == [fabric.UNCERTAINTY]
    assert not Case.objects.filter(process=trained_process, uncertainty__isnull=False).exists()
    for task in tasks:
        local.run_message(message_of(task))
    assert completion.handle_finished() == len(tasks)
    scored = Case.objects.filter(process=trained_process, status=CaseStatus.OPEN)
    assert scored.exists()
    assert not scored.filter(uncertainty__isnull=True).exists()
    # Same numbers as scoring in-process.
    from apps.classifiers import active

    before = dict(scored.values_list("pk", "uncertainty"))
    Case.objects.filter(process=trained_process).update(uncertainty=None)
    active.score_open_cases(process=trained_process)
    assert dict(scored.values_list("pk", "uncertainty")) == before


def test_a_scoring_refresh_is_not_sent_twice_while_one_is_out(trained_process):
    make_cases(trained_process, 5)
    ComputeNode.objects.all().delete()
    ready_local_node()
    first = fabric.refresh_uncertainty()
    assert first[trained_process.slug] >= 1
    assert fabric.refresh_uncertainty() == {}
    assert (
        FabricTask.objects.filter(on_done=fabric.UNCERTAINTY).count() == first[trained_process.slug]
    )


def test_a_training_message_for_a_job_that_no_longer_exists_does_nothing(db):
    # A message can outlive its job: the request that made it rolled back, or the process went.
    from apps.classifiers.tasks import train_model

    assert train_model.apply(args=[987654321]).successful()
    assert fabric.send_training_job(987654321) is None
    assert not FabricTask.objects.exists()
