"""The review queue's order, leases and settling, on the real database."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from apps.cases.errors import CaseConflict
from apps.cases.models import CaseClaim, CaseStatus
from apps.cases.services.decisions import record_decision, undo_last_decision
from apps.cases.services.queue import claim_next_case, skip_case
from tests.factories import make_cases


def test_highest_priority_case_comes_first_and_stays_held(process, expert):
    _low, high, mid = (
        make_cases(process, 1, amount=10)[0],
        make_cases(process, 1, amount=900)[0],
        make_cases(process, 1, amount=50)[0],
    )
    first = claim_next_case(process=process, expert=expert)
    assert first == high
    assert claim_next_case(process=process, expert=expert) == high  # held until decided or skipped
    record_decision(case=high, expert=expert, label="approve", reason_code="ok")
    assert claim_next_case(process=process, expert=expert) == mid


def test_skipped_case_comes_back_last(process, expert):
    _a, _b = make_cases(process, 2)
    first = claim_next_case(process=process, expert=expert)
    skip_case(case=first, expert=expert)
    second = claim_next_case(process=process, expert=expert)
    assert second != first
    record_decision(case=second, expert=expert, label="approve", reason_code="ok")
    assert claim_next_case(process=process, expert=expert) == first


def test_overlap_one_case_goes_to_one_expert_only(process, expert, second_expert):
    (case,) = make_cases(process, 1)
    assert claim_next_case(process=process, expert=expert) == case
    assert claim_next_case(process=process, expert=second_expert) is None


def test_overlap_two_gives_the_case_to_two_experts_then_settles(
    double_process, expert, second_expert, manager
):
    (case,) = make_cases(double_process, 1)
    assert claim_next_case(process=double_process, expert=expert) == case
    assert claim_next_case(process=double_process, expert=second_expert) == case
    assert claim_next_case(process=double_process, expert=manager) is None
    record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN
    record_decision(
        case=case, expert=second_expert, label="approve", reason_code="within_tolerance"
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED
    assert case.final_label == "approve"


def test_disagreement_goes_to_adjudication(double_process, expert, second_expert):
    (case,) = make_cases(double_process, 1)
    record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION
    assert case.final_label == ""


def test_partly_labelled_cases_come_before_fresh_ones(double_process, expert, second_expert):
    fresh_high = make_cases(double_process, 1, amount=5000)[0]
    partial = make_cases(double_process, 1, amount=1)[0]
    record_decision(case=partial, expert=expert, label="approve", reason_code="ok")
    assert claim_next_case(process=double_process, expert=second_expert) == partial
    assert fresh_high.status == CaseStatus.OPEN


def test_expired_lease_taken_by_another_is_a_clear_conflict(process, expert, second_expert):
    (case,) = make_cases(process, 1)
    claim_next_case(process=process, expert=expert)
    CaseClaim.objects.filter(expert=expert).update(expires_at=timezone.now())
    assert claim_next_case(process=process, expert=second_expert) == case
    with pytest.raises(CaseConflict, match="expired and another expert"):
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")


def test_expired_lease_nobody_took_still_records(process, expert):
    (case,) = make_cases(process, 1)
    claim_next_case(process=process, expert=expert)
    CaseClaim.objects.filter(expert=expert).update(expires_at=timezone.now())
    record_decision(case=case, expert=expert, label="reject", reason_code="duplicate")
    case.refresh_from_db()
    assert case.final_label == "reject"


def test_undo_reopens_the_case_and_hands_it_back(process, expert):
    _a, _b = make_cases(process, 2)
    case = claim_next_case(process=process, expert=expert)
    decision = record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    undone = undo_last_decision(expert=expert, process_id=process.pk)
    assert undone == decision
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN
    assert case.decisions.get().retracted_at is not None  # kept, never deleted
    assert claim_next_case(process=process, expert=expert) == case
    assert list(case.events.values_list("kind", flat=True)) == ["decided", "status", "retracted"]


@pytest.mark.django_db(transaction=True)
def test_two_experts_asking_at_the_same_moment_get_different_cases(team, expert, second_expert):
    from tests.factories import make_process

    process = make_process(team)
    make_cases(process, 2)
    barrier = threading.Barrier(2)
    results = {}

    def ask(user):
        try:
            barrier.wait()
            results[user.username] = claim_next_case(process=process, expert=user)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(u,)) for u in (expert, second_expert)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["erin"] is not None
    assert results["eli"] is not None
    assert results["erin"] != results["eli"]


def test_money_with_a_decimal_comma_is_refused_not_multiplied(process):
    from apps.cases.services.intake import validate_case_rows

    cases, errors = validate_case_rows(
        process=process,
        rows=[
            {"fields": {"vendor": "Acme", "amount": "1200,50"}},
            {"fields": {"vendor": "Acme", "amount": "1,200.50"}},
        ],
    )
    assert errors == [
        {
            "row": 0,
            "errors": {
                "fields.amount": "'1200,50' looks like a decimal comma; write it as 1200.50"
            },
        }
    ]
    assert cases[0].fields["amount"] == 1200.5


def test_periodic_catch_up_embeds_cases_the_broker_never_got(process):
    from apps.cases.tasks import embed_cases, embed_missing_cases

    cases = make_cases(process, 2)
    assert all(case.embedding is None for case in cases)
    # Celery's local .apply runs the task in this process, no broker involved.
    embed_cases.apply(args=[[c.pk for c in cases]])
    cases[0].refresh_from_db()
    assert cases[0].embedding is not None
    assert embed_missing_cases.apply().get() == 0


def test_undo_clears_the_final_decision_of_a_reopened_case(process, expert):
    (case,) = make_cases(process, 1)
    claim_next_case(process=process, expert=expert)
    record_decision(case=case, expert=expert, label="reject", reason_code="fraud")
    undo_last_decision(expert=expert, process_id=process.pk)
    case.refresh_from_db()
    assert (case.status, case.final_label, case.final_reason_code, case.decided_at) == (
        "open",
        "",
        "",
        None,
    )


def test_renewing_a_lapsed_lease_someone_else_took_fails_and_drops_it(
    process, expert, second_expert
):
    from apps.cases.services.queue import renew_claim

    (case,) = make_cases(process, 1)
    claim_next_case(process=process, expert=expert)
    CaseClaim.objects.filter(expert=expert).update(expires_at=timezone.now())
    assert claim_next_case(process=process, expert=second_expert) == case
    assert renew_claim(case=case, expert=expert) is False
    assert not CaseClaim.objects.filter(expert=expert).exists()
    assert renew_claim(case=case, expert=second_expert) is True


def test_renewing_a_lapsed_lease_nobody_took_keeps_it(process, expert):
    from apps.cases.services.queue import renew_claim

    (case,) = make_cases(process, 1)
    claim_next_case(process=process, expert=expert)
    CaseClaim.objects.filter(expert=expert).update(expires_at=timezone.now())
    assert renew_claim(case=case, expert=expert) is True
    assert CaseClaim.objects.get(expert=expert).expires_at > timezone.now()


def test_cases_without_the_priority_value_come_last_in_either_direction(team, expert):
    from tests.factories import make_process

    process = make_process(
        team, slug="ascending", priority_field="amount", priority_descending=False
    )
    from apps.cases.services.intake import create_cases

    rows = [
        {"fields": {"vendor": "No amount", "amount": 1}},
        {"fields": {"vendor": "Big", "amount": 500}},
    ]
    small, big = create_cases(process=process, rows=rows, embed=False).cases
    assert claim_next_case(process=process, expert=expert) == small
    fields = [
        dict(f, required=False) if f["name"] == "amount" else f for f in process.schema.fields
    ]
    from apps.cases.services.processes import update_process_schema

    update_process_schema(
        process=process, fields=fields, decisions=process.schema.decisions, changed_by=None
    )
    process.refresh_from_db()
    (missing,) = create_cases(
        process=process, rows=[{"fields": {"vendor": "Unknown"}}], embed=False
    ).cases
    record_decision(case=small, expert=expert, label="approve", reason_code="ok")
    assert claim_next_case(process=process, expert=expert) == big
    record_decision(case=big, expert=expert, label="approve", reason_code="ok")
    assert claim_next_case(process=process, expert=expert) == missing


def test_lowering_the_overlap_settles_cases_that_have_enough_labels(double_process, expert):
    from apps.cases.services.processes import update_process_settings

    (case,) = make_cases(double_process, 1)
    record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    update_process_settings(
        process=double_process, name=double_process.name, description="", minutes_per_case=5,
        overlap=1, priority_field="amount", priority_descending=True,
    )  # fmt: skip
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED
    assert case.final_label == "approve"
