"""Gold cases and practice on known answers (services and the evidence kind): who marks gold, what
the answer is, which gold case comes next, what an answer writes (an attempt, never a decision),
and practice accuracy as evidence in the default framework."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.cases.models import Case, CaseClaim, CaseEvent, CaseSkip, CaseStatus, Decision
from apps.cases.services.decisions import record_decision
from apps.skills import gold as gold_services
from apps.skills import practice, services
from apps.skills.demo import PRACTICE, seed_skills
from apps.skills.models import (
    EvidenceRule,
    GoldCase,
    PersonSkill,
    PracticeAttempt,
    Skill,
    SkillLevel,
)
from apps.skills.practice import measure_practice_accuracy
from tests.factories import make_cases, make_process

CODES = {"approve": "ok", "reject": "duplicate", "request_info": ""}


def decide(case, expert, label, **kw):
    return record_decision(case=case, expert=expert, label=label, reason_code=CODES[label], **kw)


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def decided(process, second_expert):
    """Four cases decided by eli with rationales: approve, reject, request_info, approve."""
    cases = make_cases(process, 4)
    for case, label in zip(cases, ["approve", "reject", "request_info", "approve"], strict=True):
        decide(case, second_expert, label, rationale=f"why {label}")
    return [Case.objects.get(pk=c.pk) for c in cases]


def _snapshot(case: Case) -> dict[str, object]:
    """Everything of a case that practice must never change."""
    case = Case.objects.get(pk=case.pk)
    return {
        "row": (case.status, case.final_label, case.final_reason_code, case.label_count,
                case.decided_at, case.extra_labels, case.routed_to_id),
        "decisions": list(Decision.objects.filter(case=case).values_list("pk", "label", "retracted_at")),
        "events": CaseEvent.objects.filter(case=case).count(),
        "claims": CaseClaim.objects.filter(case=case).count(),
        "skips": CaseSkip.objects.filter(case=case).count(),
    }  # fmt: skip


def test_a_manager_marks_a_decided_case_gold_with_its_final_label_and_kept_rationale(
    decided, manager
):
    gold = gold_services.mark_gold(case=decided[1], by=manager)
    assert (gold.label, gold.rationale, gold.process_id) == (
        "reject",
        "why reject",
        decided[1].process_id,
    )
    assert gold.is_active
    assert gold.marked_by == manager
    own = gold_services.mark_gold(case=decided[0], by=manager, rationale="  PO matched.  ")
    assert own.rationale == "PO matched."


def test_only_the_teams_managers_and_admins_mark_gold_and_only_decided_cases(
    process, decided, expert, staff, team_admin, outsider, manager
):
    for user in (expert, staff, outsider):
        with pytest.raises(PermissionDenied):
            gold_services.mark_gold(case=decided[0], by=user)
    assert gold_services.mark_gold(case=decided[0], by=team_admin).label == "approve"
    open_case = make_cases(process, 1)[0]
    with pytest.raises(ValidationError, match="decided"):
        gold_services.mark_gold(case=open_case, by=manager)
    assert not GoldCase.objects.filter(case=open_case).exists()


def test_unmarking_stops_practice_but_keeps_the_attempts(decided, manager, staff):
    gold = gold_services.mark_gold(case=decided[0], by=manager)
    practice.record_attempt(gold=gold, person=staff, label="approve")
    with pytest.raises(PermissionDenied):
        gold_services.unmark_gold(gold=gold, by=staff)
    gold_services.unmark_gold(gold=gold, by=manager)
    assert practice.next_gold(person=staff, process=gold.process) is None
    assert PracticeAttempt.objects.filter(gold=gold).count() == 1
    # Marked again: gold once more, the same row.
    again = gold_services.mark_gold(case=decided[0], by=manager)
    assert again.pk == gold.pk
    assert again.is_active


def test_practice_serves_unpractised_gold_first_then_the_least_recently_practised(
    decided, manager, staff
):
    golds = [gold_services.mark_gold(case=c, by=manager) for c in decided[:3]]
    process = golds[0].process
    assert practice.next_gold(person=staff, process=process) == golds[0]
    now = timezone.now()
    practice.record_attempt(gold=golds[0], person=staff, label="approve", at=now)
    practice.record_attempt(gold=golds[1], person=staff, label="approve", at=now + timedelta(1))
    assert practice.next_gold(person=staff, process=process) == golds[2]
    practice.record_attempt(gold=golds[2], person=staff, label="reject", at=now + timedelta(2))
    assert practice.next_gold(person=staff, process=process) == golds[0]
    # A skip asks for another one: the next after golds[0].
    assert practice.next_gold(person=staff, process=process, after=golds[0].pk) == golds[1]


def test_practice_leaves_out_cases_the_person_labelled(decided, manager, second_expert, staff):
    gold = gold_services.mark_gold(case=decided[0], by=manager)
    assert practice.next_gold(person=second_expert, process=gold.process) is None
    assert practice.next_gold(person=staff, process=gold.process) == gold


def test_an_attempt_is_right_when_it_equals_the_gold_label_and_touches_nothing_else(
    decided, manager, staff
):
    gold = gold_services.mark_gold(case=decided[1], by=manager)
    before = _snapshot(decided[1])
    wrong = practice.record_attempt(gold=gold, person=staff, label="approve", rationale="looks ok")
    right = practice.record_attempt(gold=gold, person=staff, label="reject")
    assert (wrong.correct, right.correct) == (False, True)
    assert _snapshot(decided[1]) == before
    with pytest.raises(ValidationError, match="not a decision"):
        practice.record_attempt(gold=gold, person=staff, label="pay")


def test_feedback_brings_the_gold_answer_and_similar_decided_cases(decided, manager, staff):
    from apps.cases.services.similarity import embed_cases

    embed_cases(case_ids=[c.pk for c in decided])
    gold = gold_services.mark_gold(case=decided[1], by=manager)
    attempt = practice.record_attempt(gold=gold, person=staff, label="approve")
    shown = practice.feedback(attempt=attempt)
    assert shown.gold.label == "reject"
    assert not shown.attempt.correct
    neighbours = {n.case.pk for n in shown.neighbours}
    assert neighbours == {decided[0].pk, decided[2].pk, decided[3].pk}
    assert all(0 <= n.percent <= 100 for n in shown.neighbours)


def test_practice_accuracy_measures_count_and_share_by_process_and_period(
    decided, manager, staff, team
):
    other = make_process(team, slug="claims-x")
    other_case = make_cases(other, 1)[0]
    decide(other_case, manager, "approve")
    golds = [gold_services.mark_gold(case=c, by=manager) for c in decided[:3]]
    other_gold = gold_services.mark_gold(case=Case.objects.get(pk=other_case.pk), by=manager)
    now = timezone.now()
    practice.record_attempt(
        gold=golds[0], person=staff, label="approve", at=now - timedelta(days=100)
    )
    practice.record_attempt(gold=golds[1], person=staff, label="reject", at=now)
    practice.record_attempt(gold=golds[2], person=staff, label="approve", at=now)
    practice.record_attempt(gold=other_gold, person=staff, label="approve", at=now)
    until = now + timedelta(seconds=1)
    everything = measure_practice_accuracy(person=staff, params={}, since=None, until=until)
    assert (everything.count, everything.value) == (4, 0.75)
    here = measure_practice_accuracy(
        person=staff,
        params={"process": golds[0].process.slug},
        since=now - timedelta(days=90),
        until=until,
    )
    assert (here.count, here.value) == (2, 0.5)
    assert len(here.refs) == 2
    assert "Right" in here.refs[0].label + here.refs[1].label
    nobody = measure_practice_accuracy(person=manager, params={}, since=None, until=until)
    assert (nobody.count, nobody.value) == (0, None)


def test_the_default_framework_grants_aware_on_practice_accuracy(decided, manager, staff, team):
    seed_skills()
    level = SkillLevel.objects.get(skill__slug="deciding-cases", rank=1)
    rule = level.rules.get(kind="skills.practice_accuracy")
    assert (rule.min_count, rule.min_value, rule.period_days) == (10, 0.8, 90)
    golds = [gold_services.mark_gold(case=c, by=manager) for c in decided]
    for index in range(10):  # 9 of 10 right
        gold = golds[index % 4]
        practice.record_attempt(gold=gold, person=staff, label=gold.label if index else "reject")
    services.refresh_person(person=staff)
    held = PersonSkill.objects.get(person=staff, skill__slug="deciding-cases")
    assert held.level == level


def test_seeding_adds_the_practice_rule_to_an_untouched_level_and_leaves_an_edited_one(db):
    seed_skills()
    skill = Skill.objects.get(slug="deciding-cases")
    aware = skill.levels.get(rank=1)
    # An installation seeded before practice existed: the level as first seeded.
    aware.rules.filter(kind=PRACTICE["kind"]).delete()
    seed_skills()
    assert aware.rules.filter(kind=PRACTICE["kind"]).count() == 1
    # An admin's edit (a higher bar) is theirs: no practice rule added.
    aware.rules.filter(kind=PRACTICE["kind"]).delete()
    EvidenceRule.objects.filter(level=aware, kind="cases.decisions_agree").update(min_count=7)
    seed_skills()
    assert not aware.rules.filter(kind=PRACTICE["kind"]).exists()
    assert aware.rules.get(kind="cases.decisions_agree").min_count == 7


def test_the_demo_marks_gold_and_records_sams_practice_once(db):
    """On a hand-made stand-in for the demo's process (the full demo seed runs in tests/cases)."""
    from apps.cases.demo import AP_SLUG
    from apps.people.models import Role
    from apps.skills.practice_demo import seed_practice_demo
    from tests.factories import make_member, make_team

    ap = make_team("ap-demo", "AP demo")
    maya = make_member(ap, Role.MANAGER, "maya")
    sam = make_member(ap, Role.STAFF, "sam")
    erin = make_member(ap, Role.EXPERT, "erin")
    process = make_process(ap, slug=AP_SLUG)
    for case, label in zip(
        make_cases(process, 6), ["approve", "reject", "request_info"] * 2, strict=True
    ):
        decide(case, erin, label, rationale=f"because {label}")
    first = seed_practice_demo()
    assert "5 gold cases marked, 3 practice answers" in first
    golds = GoldCase.objects.filter(process=process)
    assert golds.count() == 5
    assert {g.label for g in golds} == {"approve", "reject", "request_info"}
    assert all(g.marked_by == maya and g.rationale for g in golds)
    attempts = PracticeAttempt.objects.filter(person=sam)
    assert sorted(a.correct for a in attempts) == [False, True, True]
    assert "0 gold cases marked, 0 practice answers" in seed_practice_demo()
    assert Case.objects.filter(process=process, status=CaseStatus.DECIDED).count() == 6
