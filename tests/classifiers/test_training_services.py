"""Training, the registry and loading, through the services and the real database."""

import hashlib

import pytest

from apps.classifiers import services
from apps.classifiers.learning import TrainingRefused
from apps.classifiers.models import ModelArtifact, ModelVersion, TrainingJob
from tests.factories import make_decided_cases, make_invoice_rows


def test_a_trained_version_records_its_snapshot_metrics_and_checksummed_artifact(
    process, second_expert
):
    cases = make_decided_cases(process, second_expert, 150, seed=1)
    job = services.start_training(process=process, requested_by=second_expert)
    assert job.state == "queued"
    job = services.run_training_job(job.pk)
    assert job.state == "succeeded", job.error
    assert job.progress == 100
    version = job.model_version
    assert version.version == 1
    assert version.snapshot_size == 150
    assert sorted(services.snapshot_ids(version)) == sorted(c.pk for c in cases)
    assert len(version.snapshot_hash) == 64
    assert version.metrics["accuracy"] > 0.8
    assert set(version.metrics["per_label"]) == {"approve", "reject", "request_info"}
    matrix = version.metrics["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == version.metrics["held_out"] == 30
    assert 0 <= version.metrics["calibration_error"] <= 1
    assert {c["algorithm"] for c in version.cross_validation} == {
        "logistic_regression",
        "hist_gradient_boosting",
    }
    artifact = ModelArtifact.objects.get(sha256=version.artifact_sha256)
    assert hashlib.sha256(bytes(artifact.content)).hexdigest() == version.artifact_sha256


def test_predictions_follow_the_policy_the_experts_applied(trained_process):
    version = services.promoted_version(process=trained_process)
    rows = services.clean_prediction_rows(
        process=trained_process, rows=make_invoice_rows(40, seed=9)
    )
    predictions = services.predict_cases(version=version, cases=rows)
    from tests.factories import invoice_policy

    expected = [invoice_policy(r.fields["po_status"], r.fields["amount"]) for r in rows]
    agreed = sum(p.label == e for p, e in zip(predictions, expected, strict=True))
    assert agreed >= 34
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-6 for p in predictions)


def test_too_few_decisions_or_a_single_label_is_refused_with_the_reason(process, second_expert):
    make_decided_cases(process, second_expert, 20, seed=2)
    with pytest.raises(TrainingRefused, match="at least 50 decided cases"):
        services.start_training(process=process, requested_by=second_expert)
    services.update_learning_settings(process=process, min_decisions=10)
    TrainingJob.objects.all().delete()
    from apps.cases.models import Case

    Case.objects.filter(process=process).update(final_label="approve")
    with pytest.raises(TrainingRefused, match="two different labels"):
        services.start_training(process=process, requested_by=second_expert)
    assert not TrainingJob.objects.exists()


def test_a_tampered_artifact_is_refused(trained_process):
    version = services.promoted_version(process=trained_process)
    services.forget_loaded_models()
    artifact = ModelArtifact.objects.get(sha256=version.artifact_sha256)
    content = bytearray(artifact.content)
    content[-5] ^= 0xFF
    ModelArtifact.objects.filter(pk=artifact.pk).update(content=bytes(content))
    with pytest.raises(services.ArtifactTampered, match="does not match its recorded SHA-256"):
        services.load_pipeline(version)


def test_promote_and_roll_back_keep_one_promoted_version(trained_process, manager):
    first = services.promoted_version(process=trained_process)
    job = services.run_training_job(
        services.start_training(process=trained_process, requested_by=manager).pk
    )
    second = services.promote(version=job.model_version, actor=manager)
    assert second.version == 2
    assert ModelVersion.objects.filter(process=trained_process, is_promoted=True).count() == 1
    back = services.rollback(process=trained_process, actor=manager)
    assert back.pk == first.pk
    assert services.promoted_version(process=trained_process).pk == first.pk


def test_the_suggestion_names_the_fields_that_drove_it(trained_process):
    from apps.cases.models import Case

    case = make_invoice_rows(1, seed=4)[0]
    from apps.cases.services.intake import create_cases

    case["fields"]["po_status"] = "mismatch"
    [created] = create_cases(process=trained_process, rows=[case], embed=False).cases
    suggestion = services.suggest(case=Case.objects.get(pk=created.pk))
    assert suggestion.prediction.label == "reject"
    assert "po_status" in [c.source for c in suggestion.contributions]


def test_a_label_too_rare_to_learn_is_left_out_and_reported(process, second_expert):
    from apps.cases.models import Case

    make_decided_cases(process, second_expert, 120, seed=8)
    rare = list(
        Case.objects.filter(process=process, final_label="reject").values_list("pk", flat=True)
    )
    Case.objects.filter(pk__in=rare[4:]).update(final_label="approve")
    job = services.run_training_job(
        services.start_training(process=process, requested_by=second_expert).pk
    )
    assert job.state == "succeeded", job.error
    version = job.model_version
    assert version.labels == ["approve", "request_info"]
    assert version.metrics["dropped_labels"] == {"reject": 4}


def test_retraining_starts_once_enough_new_decisions_arrived(trained_process, second_expert):
    services.update_learning_settings(process=trained_process, retrain_after=30)
    make_decided_cases(trained_process, second_expert, 20, seed=21)
    assert services.decisions_since_training(process=trained_process) == 20
    assert services.retrain_if_due(process=trained_process) is None
    make_decided_cases(trained_process, second_expert, 10, seed=22)
    job = services.retrain_if_due(process=trained_process)
    assert job is not None
    assert job.trigger == "retrain"
    assert job.requested_by is None
    job = services.run_training_job(job.pk)
    assert job.model_version.snapshot_size == 180
    assert services.decisions_since_training(process=trained_process) == 0
