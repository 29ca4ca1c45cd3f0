"""The gate: evidence from shadow predictions experts decided afterwards, and what is missing."""

import pytest
from django.core.exceptions import ValidationError

from apps.autonomy.models import AutonomyChange, ShadowPrediction
from apps.autonomy.services import gate, levels, shadow
from apps.cases.services.decisions import record_decision
from tests.autonomy.helpers import (
    CODES,
    arrive,
    import_labels,
    right_label,
    set_autonomy,
    wrong_label,
)
from tests.factories import make_decided_cases


def test_gate_refuses_without_shadow_evidence(trained_process):
    evidence = gate.evaluate(process=trained_process, target=2)
    assert evidence["passed"] is False
    assert evidence["decided"] == 0
    assert (
        "needs 200 more shadow predictions decided by experts (0 waiting for a decision)"
        in (evidence["missing"])
    )


def test_gate_without_a_promoted_model_says_so(process):
    evidence = gate.evaluate(process=process, target=1)
    assert evidence["passed"] is False
    assert "no promoted model" in evidence["missing"][0]


def test_shadow_mode_predicts_new_cases_and_counts_only_those_decided_afterwards(
    trained_process, manager, expert
):
    old = make_decided_cases(trained_process, expert, 12, seed=40)  # decided before any prediction
    levels.start_shadow(process=trained_process, target=2, actor=manager)
    cases, result = arrive(trained_process, 30, seed=41)
    assert result.predicted == 30
    assert result.decided == []
    assert result.audited == []
    assert not ShadowPrediction.objects.filter(case__in=old).exists()
    import_labels(trained_process, expert, cases[:20])
    evidence = gate.evaluate(process=trained_process, target=2)
    assert evidence["decided"] == 20
    assert evidence["pending"] == 10
    prediction = ShadowPrediction.objects.get(case=cases[0])
    assert prediction.outcome_label == right_label(cases[0])
    assert prediction.correct is (prediction.label == prediction.outcome_label)
    # The backfill predicts open cases only, never the ones decided before.
    assert shadow.backfill_open_cases(process=trained_process) == 0
    assert ShadowPrediction.objects.filter(case__in=old).count() == 0


def test_a_case_decided_while_the_model_was_predicting_gets_no_prediction(trained_process, expert):
    set_autonomy(trained_process, target=2)
    (case,) = make_decided_cases(trained_process, expert, 1, seed=42)
    result = shadow.process_new_cases(process=trained_process, case_ids=[case.pk])
    assert result.predicted == 0
    assert not ShadowPrediction.objects.exists()


def test_gate_passes_with_enough_evidence_and_the_promotion_logs_it(
    trained_process, manager, expert
):
    set_autonomy(trained_process, target=2, min_shadow=40, threshold=0.6, target_precision=0.9)
    cases, _ = arrive(trained_process, 45, seed=43)
    import_labels(trained_process, expert, cases)
    evidence = gate.evaluate(process=trained_process, target=2)
    assert evidence["passed"] is True, evidence["missing"]
    assert evidence["decided"] == 45
    assert evidence["precision_at_threshold"] >= 0.9
    autonomy = levels.promote_autonomy(process=trained_process, level=2, actor=manager)
    assert autonomy.level == 2
    assert autonomy.target is None  # reached
    assert autonomy.model_version.version == evidence["model_version"] == 1
    change = AutonomyChange.objects.get(kind="promote")
    assert (change.from_level, change.to_level, change.actor) == (0, 2, manager)
    assert change.evidence["decided"] == 45
    assert change.evidence["passed"] is True


def test_precision_below_target_is_named_with_the_threshold(trained_process, expert):
    set_autonomy(trained_process, target=2, min_shadow=10, threshold=0.6, target_precision=0.95)
    cases, _ = arrive(trained_process, 20, seed=44)
    # Experts disagree with the model on a quarter of the cases.
    import_labels(trained_process, expert, cases[:5], label_of=wrong_label)
    import_labels(trained_process, expert, cases[5:])
    evidence = gate.evaluate(process=trained_process, target=2)
    assert evidence["passed"] is False
    [problem] = evidence["missing"]
    assert problem.startswith("precision 0.")
    assert "< target 0.95 at threshold 0.6" in problem
    with pytest.raises(levels.GateFailed) as refused:
        levels.promote_autonomy(process=trained_process, level=2, actor=None)
    assert refused.value.evidence["missing"] == [problem]
    assert not AutonomyChange.objects.filter(kind="promote").exists()


def test_the_sweep_trades_coverage_for_precision(trained_process, expert):
    set_autonomy(trained_process, target=2, threshold=0.8)
    cases, _ = arrive(trained_process, 40, seed=45)
    import_labels(trained_process, expert, cases[:8], label_of=wrong_label)
    import_labels(trained_process, expert, cases[8:])
    evidence = gate.evaluate(process=trained_process, target=2)
    thresholds = [point["threshold"] for point in evidence["sweep"]]
    assert thresholds == sorted(thresholds)
    assert {0.5, 0.8, 0.9, 0.99} <= set(thresholds)
    covered = [point["covered"] for point in evidence["sweep"]]
    assert covered == sorted(covered, reverse=True)
    assert covered[0] == 40  # every confidence is above 0.5 here
    at = next(p for p in evidence["sweep"] if p["threshold"] == 0.8)
    assert (evidence["covered"], evidence["precision_at_threshold"]) == (
        at["covered"],
        at["precision"],
    )


def test_a_level_is_skipped_only_with_the_evidence_for_the_level_asked(
    trained_process, manager, expert
):
    set_autonomy(trained_process, target=3, min_shadow=20, threshold=0.6, target_precision=0.9)
    set_autonomy(trained_process, min_audits=80, audit_window=100)
    cases, _ = arrive(trained_process, 25, seed=46)
    import_labels(trained_process, expert, cases)
    with pytest.raises(levels.GateFailed) as refused:
        levels.promote_autonomy(process=trained_process, level=3, actor=manager)
    assert "more decided predictions at or above threshold 0.6" in str(refused.value)
    autonomy = levels.promote_autonomy(process=trained_process, level=2, actor=manager)
    assert autonomy.level == 2
    assert autonomy.target == 3  # still earning level 3
    with pytest.raises(ValidationError, match="a promotion goes up"):
        levels.promote_autonomy(process=trained_process, level=1, actor=manager)


def test_routing_accuracy_judges_routes_against_the_label_map(trained_process, expert):
    set_autonomy(
        trained_process,
        target=1,
        min_shadow=10,
        threshold=0.5,
        target_precision=0.9,
        routes={"reject": "team:fraud", "request_info": "expert:erin"},
    )
    cases, _ = arrive(trained_process, 30, seed=47)
    evidence = gate.evaluate(process=trained_process, target=1)
    assert evidence["routing"]["routed"] == 0  # nothing decided yet
    import_labels(trained_process, expert, cases)
    evidence = gate.evaluate(process=trained_process, target=1)
    routed = ShadowPrediction.objects.exclude(route="").count()
    assert routed > 0
    assert evidence["routing"]["routed"] == routed
    assert evidence["routing"]["accuracy"] == 1.0  # the model labels these invoices right
    assert evidence["passed"] is True, evidence["missing"]


def test_level_one_without_any_route_is_refused(trained_process, expert):
    set_autonomy(trained_process, target=1, min_shadow=5, threshold=0.5)
    cases, _ = arrive(trained_process, 6, seed=48)
    import_labels(trained_process, expert, cases)
    evidence = gate.evaluate(process=trained_process, target=1)
    assert evidence["passed"] is False
    assert "no route was chosen" in evidence["missing"][0]
    # Above level 1, a process without routes simply leaves its cases in the team's queue.
    checks = gate.evaluate(process=trained_process, target=2)["checks"]
    assert [check["name"] for check in checks] == ["evidence", "precision"]


def test_an_undo_takes_the_outcome_back(
    trained_process, expert, django_capture_on_commit_callbacks
):
    set_autonomy(trained_process, target=2)
    (case,), _ = arrive(trained_process, 1, seed=49)
    label = right_label(case)
    with django_capture_on_commit_callbacks(execute=True):
        record_decision(case=case, expert=expert, label=label, reason_code=CODES[label])
    prediction = ShadowPrediction.objects.get(case=case)
    assert prediction.outcome_label == label  # filled by the decision_recorded receiver
    assert prediction.outcome_at is not None
    from apps.cases.services.decisions import undo_last_decision

    undo_last_decision(expert=expert, process_id=trained_process.pk)
    assert gate.evaluate(process=trained_process, target=2)["decided"] == 0
    prediction.refresh_from_db()
    assert (prediction.outcome_label, prediction.correct) == ("", None)
