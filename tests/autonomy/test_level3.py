"""Level 3 at work: automatic decisions above the threshold, audits, automatic demotion."""

import random

import pytest
from django.utils import timezone

from apps.autonomy.models import (
    AuditSample,
    AutonomyChange,
    CaseRoute,
    ProcessAutonomy,
    ShadowPrediction,
)
from apps.autonomy.services import shadow
from apps.cases.errors import CaseConflict
from apps.cases.models import CaseClaim, CaseEvent, CaseStatus, Decision, DecisionSource
from apps.cases.services.automation import AUTOPILOT_USERNAME, decide_automatically
from apps.cases.services.decisions import record_decision
from tests.autonomy.helpers import CODES, arrive, right_label, set_autonomy, wrong_label
from tests.factories import make_cases


def test_level_three_decides_confident_cases_only(trained_process):
    set_autonomy(trained_process, level=3, threshold=0.85, audit_rate=0.0)
    cases, result = arrive(trained_process, 40, seed=60)
    confidence = dict(ShadowPrediction.objects.values_list("case_id", "confidence"))
    confident = {pk for pk, c in confidence.items() if c >= 0.85}
    assert 0 < len(confident) < 40  # the threshold splits this batch
    assert set(result.decided) == confident
    for case in cases:
        case.refresh_from_db()
        if case.pk in confident:
            assert case.status == CaseStatus.DECIDED
            decision = Decision.objects.get(case=case)
            assert decision.source == DecisionSource.MODEL
            assert decision.expert.username == AUTOPILOT_USERNAME
            assert decision.label == case.final_label == right_label(case)
        else:
            assert case.status == CaseStatus.OPEN
            assert not Decision.objects.filter(case=case).exists()


def test_an_automatic_decision_is_recorded_with_its_evidence_by_a_user_who_cannot_log_in(
    trained_process,
):
    set_autonomy(trained_process, level=3, threshold=0.5, audit_rate=0.0)
    (case,), result = arrive(trained_process, 1, seed=61)
    assert result.decided == [case.pk]
    decision = Decision.objects.get(case=case)
    assert decision.expert.is_active is False
    assert decision.expert.has_usable_password() is False
    assert decision.reason_code in ("", *trained_process.schema.reason_codes(decision.label))
    if trained_process.schema.reason_codes(decision.label):
        assert decision.reason_code  # the schema requires one
    decided = CaseEvent.objects.get(case=case, kind="decided")
    assert decided.data["source"] == "model"
    assert decided.data["evidence"]["threshold"] == 0.5
    assert decided.data["evidence"]["confidence"] >= 0.5
    assert CaseEvent.objects.get(case=case, kind="status").data == {
        "before": "open",
        "after": "decided",
    }


def test_audit_share_follows_the_audit_rate_with_a_seeded_draw(trained_process):
    set_autonomy(trained_process, level=3, threshold=0.5, audit_rate=0.3)
    _cases, result = arrive(trained_process, 200, seed=62, rng=random.Random(5))
    confident = ShadowPrediction.objects.filter(confidence__gte=0.5).count()
    assert confident > 150
    replay = random.Random(5)  # one draw per confident case, in case order
    expected = sum(replay.random() < 0.3 for _ in range(confident))
    assert len(result.audited) == expected == AuditSample.objects.count()
    assert 0.2 < len(result.audited) / confident < 0.4
    assert len(result.decided) == confident - expected
    # Audited cases stay open for experts, with the model's prediction recorded.
    audit = AuditSample.objects.first()
    audit.case.refresh_from_db()
    assert audit.case.status == CaseStatus.OPEN
    assert audit.label == ShadowPrediction.objects.get(case=audit.case).label
    assert audit.draw < 0.3


def test_audited_precision_below_target_demotes_to_level_two(
    trained_process, expert, django_capture_on_commit_callbacks
):
    set_autonomy(
        trained_process, level=3, threshold=0.5, audit_rate=1.0, target_precision=0.9,
        audit_window=10, min_audits=5,
    )  # fmt: skip
    cases, result = arrive(trained_process, 8, seed=63)
    assert len(result.audited) == 8
    assert not result.decided
    with django_capture_on_commit_callbacks(execute=True):
        for case in cases[:4]:  # 4 audits: below min_audits, even though all are wrong
            label = wrong_label(case)
            record_decision(case=case, expert=expert, label=label, reason_code=CODES[label])
    assert ProcessAutonomy.objects.get(process=trained_process).level == 3
    with django_capture_on_commit_callbacks(execute=True):
        label = right_label(cases[4])
        record_decision(case=cases[4], expert=expert, label=label, reason_code=CODES[label])
    change = AutonomyChange.objects.get(kind="demote")
    assert (change.from_level, change.to_level) == (3, 2)
    assert change.automatic is True
    assert change.actor is None
    assert change.evidence["audits"]["audited"] == 5
    assert change.evidence["audits"]["precision"] == 0.2
    assert "audited precision 0.20 < target 0.90" in change.reason
    # At level 2 new confident cases are no longer decided.
    _, later = arrive(trained_process, 5, seed=64)
    assert later.decided == []
    assert later.audited == []


def test_good_audits_keep_the_level(trained_process, expert, django_capture_on_commit_callbacks):
    set_autonomy(
        trained_process, level=3, threshold=0.5, audit_rate=1.0, target_precision=0.9,
        audit_window=10, min_audits=5,
    )  # fmt: skip
    cases, _ = arrive(trained_process, 6, seed=65)
    with django_capture_on_commit_callbacks(execute=True):
        for case in cases:
            label = right_label(case)
            record_decision(case=case, expert=expert, label=label, reason_code=CODES[label])
    assert shadow.audit_status(autonomy=trained_process.autonomy)["precision"] == 1.0
    assert not AutonomyChange.objects.filter(kind="demote").exists()
    assert AuditSample.objects.filter(correct=True).count() == 6


def test_level_one_routes_new_cases_by_rule_first_then_by_the_label_map(trained_process, expert):
    from apps.rules.services.authoring import create_rule, enable_rule
    from apps.rules.services.backtest import backtest_rule

    rule = create_rule(
        process=trained_process,
        owner=expert,
        name="Mismatch to procurement",
        priority=1,
        condition={"field": "po_status", "op": "eq", "value": "mismatch"},
        action={"route": "team:procurement"},
    )
    backtest_rule(rule=rule)
    enable_rule(rule=rule)
    set_autonomy(trained_process, level=1, threshold=0.5, routes={"approve": "expert:erin"})
    cases, result = arrive(trained_process, 30, seed=66)
    assert result.decided == []
    routes = {route.case_id: route for route in CaseRoute.objects.all()}
    for case in cases:
        if case.fields["po_status"] == "mismatch":
            assert routes[case.pk].route == "team:procurement"
            assert routes[case.pk].source == "rule"
            assert routes[case.pk].rule == rule
        elif right_label(case) == "approve":
            assert routes[case.pk].route == "expert:erin"
            assert routes[case.pk].source == "model"
        else:
            assert case.pk not in routes  # the team's queue
    assert result.routed == len(routes) > 0


def test_a_redelivered_task_does_nothing_twice(trained_process):
    set_autonomy(trained_process, level=3, threshold=0.5, audit_rate=0.5)
    cases, first = arrive(trained_process, 10, seed=67)
    again = shadow.process_new_cases(process=trained_process, case_ids=[c.pk for c in cases])
    assert again.predicted == 0
    assert again.decided == []
    assert again.audited == []
    assert Decision.objects.count() == len(first.decided)


def test_level_zero_without_a_target_leaves_new_cases_alone(trained_process):
    _, result = arrive(trained_process, 5, seed=68)
    assert result.predicted == 0
    assert not ShadowPrediction.objects.exists()


def test_decide_automatically_leaves_cases_experts_started_on(trained_process, expert):
    held, labelled = make_cases(trained_process, 2)
    now = timezone.now()
    CaseClaim.objects.create(
        case=held, expert=expert, claimed_at=now, expires_at=now + timezone.timedelta(minutes=5)
    )
    with pytest.raises(CaseConflict, match="reviewing this case"):
        decide_automatically(case=held, label="request_info", evidence={})
    trained_process.overlap = 2
    trained_process.save()
    record_decision(case=labelled, expert=expert, label="request_info")
    with pytest.raises(CaseConflict, match="started labelling"):
        decide_automatically(case=labelled, label="request_info", evidence={})
    assert not Decision.objects.filter(source=DecisionSource.MODEL).exists()


def test_decide_automatically_settles_a_case_whatever_its_overlap(trained_process):
    trained_process.overlap = 3
    trained_process.save()
    (case,) = make_cases(trained_process, 1)
    decide_automatically(case=case, label="approve", reason_code="ok", evidence={"why": "test"})
    case.refresh_from_db()
    assert (case.status, case.final_label, case.final_reason_code) == ("decided", "approve", "ok")
    assert case.label_count == 1
    with pytest.raises(CaseConflict):
        decide_automatically(case=case, label="approve", reason_code="ok")


def test_decide_automatically_refuses_a_label_outside_the_schema(trained_process):
    from django.core.exceptions import ValidationError

    (case,) = make_cases(trained_process, 1)
    with pytest.raises(ValidationError, match="unknown decision"):
        decide_automatically(case=case, label="maybe")
    with pytest.raises(ValidationError, match="reason code"):
        decide_automatically(case=case, label="approve", reason_code="nope")


def test_a_newly_promoted_model_does_not_inherit_level_three(trained_process, fitted_model):
    from apps.classifiers.services import promoted_version
    from tests.autonomy.conftest import store_promoted_model

    earned_with = promoted_version(process=trained_process)
    set_autonomy(trained_process, level=3, threshold=0.5, audit_rate=0.0, model_version=earned_with)
    store_promoted_model(trained_process, fitted_model)  # version 2 replaces version 1
    _, result = arrive(trained_process, 5, seed=69)
    assert result.decided == []
    assert result.predicted == 5  # still predicting, to earn level 3 again
    change = AutonomyChange.objects.get(kind="demote")
    assert (change.from_level, change.to_level, change.automatic) == (3, 2, True)
    assert change.evidence == {"earned_with": 1, "promoted_now": 2}
    assert ProcessAutonomy.objects.get(process=trained_process).level == 2
