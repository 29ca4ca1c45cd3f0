"""Uncertainty scoring of open cases with the promoted model, and its triggers."""

import pytest

from apps.cases.models import Case, Process
from apps.classifiers import active, services, tasks
from apps.classifiers.models import ModelArtifact
from tests.fabric.local_node import ready_local_node, run_on_local
from tests.factories import make_cases, make_invoice_rows


def _open_cases(process, count, seed=11):
    from apps.cases.services.intake import create_cases

    return create_cases(
        process=process, rows=make_invoice_rows(count, seed=seed), embed=False
    ).cases


def test_open_cases_get_one_minus_the_margin_of_the_promoted_model(trained_process):
    cases = _open_cases(trained_process, 30)
    changed = active.score_open_cases(process=trained_process)
    assert changed == 30
    version = services.promoted_version(process=trained_process)
    predictions = services.predict_cases(version=version, cases=cases)
    stored = dict(
        Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("pk", "uncertainty")
    )
    for case, prediction in zip(cases, predictions, strict=True):
        assert stored[case.pk] == pytest.approx(1 - prediction.margin, abs=1e-4)
        assert 0 <= stored[case.pk] <= 1
    # Decided cases are not the queue's business.
    assert not trained_process.cases.filter(status="decided", uncertainty__isnull=False).exists()
    trained_process.refresh_from_db()
    assert trained_process.uncertainty_model_id == version.pk
    # Same model, same cases: nothing to rewrite.
    assert active.score_open_cases(process=trained_process) == 0


def test_scoring_can_be_limited_to_some_cases(trained_process):
    ready_local_node()
    first, second = _open_cases(trained_process, 2)
    assert tasks.score_cases(trained_process.pk, [second.pk]) == 1  # one fabric task
    assert run_on_local() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.uncertainty is None
    assert second.uncertainty is not None
    trained_process.refresh_from_db()
    assert trained_process.uncertainty_model_id is None  # not a full scoring


def test_without_a_promoted_model_nothing_is_scored(process):
    make_cases(process, 3)
    assert active.score_open_cases(process=process) == 0
    assert not process.cases.filter(uncertainty__isnull=False).exists()


def test_a_tampered_model_scores_nothing(trained_process):
    _open_cases(trained_process, 3)
    version = services.promoted_version(process=trained_process)
    ModelArtifact.objects.filter(sha256=version.artifact_sha256).update(content=b"tampered")
    services.forget_loaded_models()
    assert active.score_open_cases(process=trained_process) == 0
    assert not trained_process.cases.filter(uncertainty__isnull=False).exists()


def test_the_periodic_refresh_catches_up_unscored_cases_and_rescores_after_a_promotion(
    trained_process, process
):
    ready_local_node()
    scored = _open_cases(trained_process, 5)
    assert tasks.refresh_uncertainty() == {trained_process.slug: 1}  # never fully scored yet
    assert run_on_local() == 1
    assert not trained_process.cases.filter(status="open", uncertainty__isnull=True).exists()
    late = _open_cases(trained_process, 2, seed=12)  # e.g. the broker was down at intake
    Case.objects.filter(pk=scored[0].pk).update(uncertainty=0.123)
    assert active.refresh_uncertainty() == {trained_process.slug: 2}  # only the unscored
    assert not trained_process.cases.filter(status="open", uncertainty__isnull=True).exists()
    assert Case.objects.get(pk=scored[0].pk).uncertainty == 0.123
    # Another version promoted since the last full scoring: every open case is scored again.
    Process.objects.filter(pk=trained_process.pk).update(uncertainty_model_id=None)
    assert active.refresh_uncertainty() == {trained_process.slug: 1}
    assert Case.objects.get(pk=scored[0].pk).uncertainty != 0.123
    assert late[0].pk


def test_new_cases_are_scored_after_intake_commits(
    trained_process, django_capture_on_commit_callbacks
):
    # The receiver enqueues the scoring task on the broker; run its body as the worker would.
    from apps.cases.signals import cases_created

    received = []

    def spy(sender, **kwargs):
        received.append(kwargs)

    cases_created.connect(spy)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            cases = _open_cases(trained_process, 4)
    finally:
        cases_created.disconnect(spy)
    [call] = received
    assert call["case_ids"] == [c.pk for c in cases]
    ready_local_node()
    assert tasks.score_cases(call["process_id"], call["case_ids"]) == 1  # one fabric task
    assert run_on_local() == 1
    assert not Case.objects.filter(pk__in=call["case_ids"], uncertainty__isnull=True).exists()
