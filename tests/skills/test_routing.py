"""Routing by measured expertise on hand-built scenarios: who gets which case, exactly.

erin is right on 27 of 30 `po_status=missing` cases and 15 of 30 `matched` ones; eli the reverse
(15 of 30 missing, 28 of 30 matched); lena, a learner, decided 2 missing cases, both right.
With prior_weight 10 the process mean is 87/122 and, e.g., erin's expected accuracy on a new
missing case is (27 + 10·b) / (30 + 10) with b = (42 + 10·mean) / (60 + 10).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Decision
from apps.cases.services.decisions import record_decision
from apps.cases.services.intake import create_cases
from apps.cases.services.queue import claim_next_case
from apps.people.models import Role
from apps.skills.models import ExpertiseStat, RoutedCase, RoutingStrategy
from apps.skills.routing import choose, decide_for, route_case
from apps.skills.routing_profiles import (
    Counts,
    Profile,
    policy_for,
    refresh_case_people,
    refresh_process,
)
from tests.factories import make_member, make_process

FIELDS = [
    {"name": "po_status", "type": "category", "choices": ["matched", "missing", "mismatch"]},
    {"name": "note", "type": "text"},
]
MEAN = 87 / 122


def make_cases(process, count: int, *, po_status: str) -> list[Case]:
    rows = [
        {"fields": {"po_status": po_status, "note": "n"}, "exception": {"reason": "PO"}}
        for _ in range(count)
    ]
    return create_cases(process=process, rows=rows, embed=False).cases


def _label(process, expert, po_status: str, *, right: int, total: int) -> list[Case]:
    """`total` decided cases of `po_status` labelled by `expert`, `right` of them as finally."""
    cases = make_cases(process, total, po_status=po_status)
    Case.objects.filter(pk__in=[c.pk for c in cases]).update(
        status=CaseStatus.DECIDED, final_label="approve", label_count=1, decided_at=timezone.now()
    )
    Decision.objects.bulk_create(
        Decision(
            case=case,
            expert=expert,
            label="approve" if i < right else "reject",
            seconds_spent=60,
            decided_at=timezone.now(),
        )
        for i, case in enumerate(cases)
    )
    return cases


def _fresh(process, po_status: str, random_key: float = 0.99) -> Case:
    (case,) = make_cases(process, 1, po_status=po_status)
    Case.objects.filter(pk=case.pk).update(random_key=random_key)
    case.refresh_from_db()
    return case


@pytest.fixture
def scenario(team, expert, second_expert):
    process = make_process(team, slug="routed", fields=FIELDS, priority_field="")
    lena = make_member(team, Role.EXPERT, "lena")
    _label(process, expert, "missing", right=27, total=30)
    _label(process, expert, "matched", right=15, total=30)
    _label(process, second_expert, "missing", right=15, total=30)
    _label(process, second_expert, "matched", right=28, total=30)
    _label(process, lena, "missing", right=2, total=2)
    refresh_process(process=process)
    policy = policy_for(process=process)
    policy.learning_share = 0
    policy.save()
    return process, policy, lena


def _switch_on(policy) -> None:
    policy.strategy = RoutingStrategy.EXPERTISE
    policy.save()


def _load(process, person, n: int) -> None:
    cases = make_cases(process, n, po_status="mismatch")
    Case.objects.filter(pk__in=[c.pk for c in cases]).update(routed_to=person)


def _expected(agreed_all, n_all, agreed_seg, n_seg):
    base = (agreed_all + 10 * MEAN) / (n_all + 10)
    return (agreed_seg + 10 * base) / (n_seg + 10)


def test_profiles_hold_process_and_segment_counts(scenario, expert):
    process, _, _ = scenario
    rows = {
        (s.dimension, s.key): (s.agreed, s.decisions, s.median_seconds)
        for s in ExpertiseStat.objects.filter(process=process, person=expert)
    }
    assert rows == {
        ("process", ""): (42, 60, 60.0),
        ("segment", "po_status=missing"): (27, 30, None),
        ("segment", "po_status=matched"): (15, 30, None),
    }


def test_each_case_goes_to_the_expert_most_accurate_on_its_segment(scenario, expert, second_expert):
    process, policy, _ = scenario
    missing, matched = _fresh(process, "missing"), _fresh(process, "matched")
    _switch_on(policy)
    first = route_case(case_id=missing.pk)
    second = route_case(case_id=matched.pk)
    assert (first.assignee, second.assignee) == (expert, second_expert)
    assert first.expected_accuracy == pytest.approx(_expected(42, 60, 27, 30), abs=1e-4)
    assert second.expected_accuracy == pytest.approx(_expected(43, 60, 28, 30), abs=1e-4)
    assert Case.objects.get(pk=missing.pk).routed_to == expert
    assert Case.objects.get(pk=matched.pk).extra_labels == 0


def test_a_case_already_routed_or_under_the_order_strategy_is_left_alone(scenario, second_expert):
    process, policy, _ = scenario
    other = _fresh(process, "missing")
    assert route_case(case_id=other.pk) is None  # today's order: nothing routed
    assert Case.objects.get(pk=other.pk).routed_to is None
    routed = _fresh(process, "missing")
    Case.objects.filter(pk=routed.pk).update(routed_to=second_expert)
    _switch_on(policy)
    assert route_case(case_id=routed.pk) is None
    assert Case.objects.get(pk=routed.pk).routed_to == second_expert


def test_load_moves_a_case_to_the_next_best_once_it_outweighs_accuracy(
    scenario, expert, second_expert
):
    process, policy, _ = scenario
    case = _fresh(process, "missing")
    gap = _expected(42, 60, 27, 30) - _expected(43, 60, 15, 30)  # erin's edge: about 0.296
    assert 0.29 < gap < 0.30
    # 29 open cases cost erin 0.29: still hers; 30 cost 0.30: eli's.
    _load(process, expert, 29)
    assert decide_for(case=case, policy=policy).assignee_id == expert.pk
    _load(process, expert, 1)
    assert decide_for(case=case, policy=policy).assignee_id == second_expert.pk


def test_few_decisions_are_shrunk_toward_the_process_mean(scenario, expert, team):
    process, policy, lena = scenario
    policy.expert_min_decisions = 0  # lena competes as an expert: 2 of 2 right
    case = _fresh(process, "missing")
    choice = decide_for(case=case, policy=policy)
    by_id = {c.person_id: c for c in choice.candidates}
    assert by_id[lena.pk].expected_accuracy == pytest.approx(
        _expected(2, 2, 2, 2), abs=1e-9
    )  # about 0.75, far from her raw 1.0
    assert choice.assignee_id == expert.pk


def test_speed_decides_between_equally_accurate_experts():
    fast, slow = Profile(1, Counts(50, 40), 30.0), Profile(2, Counts(50, 40), 60.0)

    class Knobs:
        prior_weight, expert_min_decisions, speed_weight, load_penalty = 10, 20, 0.05, 0.01
        learning_share = 0.0

    choice = choose(
        pool=[2, 1],
        profiles={1: fast, 2: slow},
        loads={},
        policy=Knobs(),
        region="",
        segments=[],
        random_key=0.5,
    )
    assert choice.assignee_id == 1
    # median of medians 45 s: fast gets +0.05·log2(1.5), slow 0.05·log2(0.75)
    assert [round(c.speed, 4) for c in choice.candidates] == [0.0292, -0.0208]


def test_a_learning_case_goes_to_the_learner_and_waits_for_its_checker(
    scenario, expert, second_expert, django_capture_on_commit_callbacks
):
    process, policy, lena = scenario
    policy.learning_share = 0.3
    learning = _fresh(process, "missing", random_key=0.1)
    _switch_on(policy)
    routed = route_case(case_id=learning.pk)
    assert (routed.learning, routed.assignee, routed.checker) == (True, lena, expert)
    case = Case.objects.get(pk=learning.pk)
    assert (case.routed_to, case.extra_labels) == (lena, 1)
    assert claim_next_case(process=process, expert=lena).pk == learning.pk
    with django_capture_on_commit_callbacks(execute=True):
        record_decision(case=case, expert=lena, label="approve", reason_code="ok")
    # the receiver (on_decision_recorded) handed it to the checker
    case.refresh_from_db()
    assert (case.status, case.routed_to) == (CaseStatus.OPEN, expert)
    other = _fresh(process, "matched")
    Case.objects.filter(pk=other.pk).update(routed_to=second_expert)
    assert claim_next_case(process=process, expert=second_expert).pk == other.pk
    assert claim_next_case(process=process, expert=expert).pk == learning.pk
    assert RoutedCase.objects.filter(process=process, learning=True).count() == 1


def test_a_new_decision_refreshes_only_its_people(scenario, expert, second_expert):
    process, _, _ = scenario
    (case,) = make_cases(process, 1, po_status="mismatch")
    record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")
    refresh_case_people(case_id=case.pk)
    stats = ExpertiseStat.objects.filter(process=process, person=second_expert)
    assert stats.get(dimension="process").decisions == 61
    assert stats.get(key="po_status=mismatch").agreed == 1
    assert (
        ExpertiseStat.objects.get(process=process, person=expert, dimension="process").decisions
        == 60
    )


def test_new_cases_are_routed_when_they_arrive(
    scenario, expert, django_capture_on_commit_callbacks
):
    process, policy, _ = scenario
    _switch_on(policy)
    with django_capture_on_commit_callbacks(execute=True):
        (case,) = make_cases(process, 1, po_status="missing")
    case.refresh_from_db()
    assert case.routed_to == expert
    assert RoutedCase.objects.get(case=case).assignee == expert


def test_a_case_under_a_live_lease_is_left_alone(scenario, expert, second_expert):
    process, policy, _ = scenario
    case = _fresh(process, "matched")
    _switch_on(policy)
    case.claims.create(
        expert=second_expert,
        claimed_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert route_case(case_id=case.pk) is None


def _learner_labels_a_learning_case(process, policy, lena, expert):
    policy.learning_share = 0.3
    policy.save()
    learning = _fresh(process, "missing", random_key=0.1)
    _switch_on(policy)
    routed = route_case(case_id=learning.pk)
    assert (routed.learning, routed.assignee, routed.checker) == (True, lena, expert)
    assert claim_next_case(process=process, expert=lena).pk == learning.pk
    return Case.objects.get(pk=learning.pk)


def test_a_learning_case_reaches_another_expert_when_its_checker_doesnt_come(
    scenario, expert, second_expert, django_capture_on_commit_callbacks
):
    # The checker is a preference: eli, with nothing else to do, gets the case and his label
    # is its second look (the case isn't stuck waiting for erin).
    process, policy, lena = scenario
    case = _learner_labels_a_learning_case(process, policy, lena, expert)
    with django_capture_on_commit_callbacks(execute=True):
        record_decision(case=case, expert=lena, label="approve", reason_code="ok")
    assert Case.objects.get(pk=case.pk).routed_to == expert
    assert claim_next_case(process=process, expert=second_expert).pk == case.pk
    with django_capture_on_commit_callbacks(execute=True):
        record_decision(
            case=Case.objects.get(pk=case.pk), expert=second_expert, label="approve",
            reason_code="ok",
        )  # fmt: skip
    assert Case.objects.get(pk=case.pk).status == CaseStatus.DECIDED


def test_a_checker_who_is_no_longer_a_candidate_is_not_waited_for(
    scenario, expert, second_expert, django_capture_on_commit_callbacks
):
    process, policy, lena = scenario
    case = _learner_labels_a_learning_case(process, policy, lena, expert)
    expert.is_active = False
    expert.save()
    with django_capture_on_commit_callbacks(execute=True):
        record_decision(case=case, expert=lena, label="approve", reason_code="ok")
    case.refresh_from_db()
    assert (case.status, case.routed_to, case.extra_labels) == (CaseStatus.OPEN, None, 1)
    # eli has fresh work too, yet the half-done case comes first (partly labelled cases do).
    _fresh(process, "matched")
    assert claim_next_case(process=process, expert=second_expert).pk == case.pk


def test_without_an_expert_in_the_pool_no_case_is_a_learning_case(scenario, expert, team):
    process, policy, _ = scenario
    policy.learning_share = 1.0
    policy.expert_min_decisions = 1000  # nobody is an expert yet: everyone is a learner
    _switch_on(policy)
    routed = route_case(case_id=_fresh(process, "missing", random_key=0.0).pk)
    assert (routed.learning, routed.checker) == (False, None)
    assert Case.objects.get(pk=routed.case_id).extra_labels == 0  # no second look to wait for


def test_the_demo_routes_its_ap_process_by_expertise_once(team, expert, second_expert):
    from apps.skills.demo import seed_routing_demo

    process = make_process(team, slug="ap-invoice-exceptions", fields=FIELDS, priority_field="")
    _label(process, expert, "missing", right=27, total=30)
    _label(process, second_expert, "missing", right=15, total=30)
    fresh = make_cases(process, 3, po_status="missing")
    policy_for(process=process)  # made early in the demo (profiles measured on each decision)
    line = seed_routing_demo()
    assert "3 open cases routed" in line
    assert policy_for(process=process).strategy == RoutingStrategy.EXPERTISE
    assert {r.assignee for r in RoutedCase.objects.filter(process=process)} == {expert}
    assert set(Case.objects.filter(routed_to=expert).values_list("pk", flat=True)) == {
        c.pk for c in fresh
    }
    # A manager sets it back: seeding again leaves their choice alone.
    policy = policy_for(process=process)
    policy.strategy = RoutingStrategy.ORDER
    policy.save()
    assert seed_routing_demo() == "Routing: nothing to set up."
    assert policy_for(process=process).strategy == RoutingStrategy.ORDER
