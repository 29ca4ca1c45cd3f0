"""Active learning in the review queue: most uncertain first, a share of random picks (recorded),
both served by indexes; the settings on the edit page and in the API."""

import random

import pytest
from django.db import connection, transaction
from django.urls import reverse

from apps.cases.models import Case, CaseEvent, QueueOrder
from apps.cases.services.queue import claim_next_case, release_claim
from apps.classifiers.active import random_pick_case_ids
from tests.conftest import client_for
from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS, make_cases, schema_form_data


def _uncertain(process, values):
    cases = make_cases(process, len(values))
    for case, value in zip(cases, values, strict=True):
        Case.objects.filter(pk=case.pk).update(uncertainty=value)
    return cases


def _order(process, share):
    process.queue_order = QueueOrder.UNCERTAINTY
    process.random_share = share
    process.save()


def test_priority_order_is_the_default_and_records_no_picks(process, expert):
    _unsure, high = _uncertain(process, [0.9, 0.1])  # amounts 100 and 101: high has priority
    assert process.queue_order == "priority"
    assert claim_next_case(process=process, expert=expert) == high
    assert not CaseEvent.objects.filter(kind="picked").exists()


def test_uncertainty_order_serves_the_most_uncertain_first_and_unscored_last(process, expert):
    _order(process, 0.0)
    unscored, sure, torn, unsure = _uncertain(process, [None, 0.05, 0.95, 0.5])
    served = []
    for _ in range(4):
        case = claim_next_case(process=process, expert=expert)
        served.append(case)
        Case.objects.filter(pk=case.pk).update(status="decided")  # out of the queue
    assert served == [torn, unsure, sure, unscored]
    event = CaseEvent.objects.get(case=torn, kind="picked")
    assert event.actor == expert
    assert event.data == {"pick": "uncertain", "uncertainty": 0.95}


def test_partly_labelled_cases_still_come_before_fresh_uncertain_ones(team, expert, second_expert):
    from apps.cases.services.decisions import record_decision
    from tests.factories import make_process

    double = make_process(team, slug="double", overlap=2)
    _order(double, 0.0)
    started, _torn = _uncertain(double, [0.0, 0.99])
    record_decision(case=started, expert=second_expert, label="approve", reason_code="ok")
    assert claim_next_case(process=double, expert=expert) == started


def test_random_share_picks_at_random_and_says_so(process, expert):
    _order(process, 1.0)
    cases = _uncertain(process, [i / 20 for i in range(20)])
    random.seed(7)
    seen = set()
    for _ in range(40):
        case = claim_next_case(process=process, expert=expert)
        seen.add(case.pk)
        release_claim(case=case, expert=expert)
    assert len(seen) >= 8  # not always the most uncertain one
    picks = CaseEvent.objects.filter(kind="picked")
    assert picks.count() == 40
    assert {e.data["pick"] for e in picks} == {"random"}
    assert set(random_pick_case_ids(process=process)) == seen
    assert seen <= {c.pk for c in cases}


def test_a_mixed_share_gives_both_kinds_of_pick(process, expert):
    _order(process, 0.5)
    _uncertain(process, [0.1, 0.9, 0.5])
    random.seed(1)
    for _ in range(30):
        release_claim(case=claim_next_case(process=process, expert=expert), expert=expert)
    kinds = [e.data["pick"] for e in CaseEvent.objects.filter(kind="picked")]
    assert 5 <= kinds.count("random") <= 25
    assert kinds.count("uncertain") == 30 - kinds.count("random")


def test_every_case_gets_a_stable_random_key_at_intake(process):
    cases = make_cases(process, 50)
    keys = list(
        Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("random_key", flat=True)
    )
    assert all(0 <= k < 1 for k in keys)
    assert len(set(keys)) == 50
    assert (
        list(Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("random_key", flat=True))
        == keys
    )


@pytest.mark.parametrize(
    ("order", "share", "index"),
    [
        ("priority", 0.2, "case_queue_idx"),
        ("uncertainty", 0.0, "case_uncertainty_idx"),
        ("uncertainty", 1.0, "case_random_idx"),
    ],
)
def test_the_fresh_case_queries_are_index_backed(process, expert, order, share, index):
    from apps.cases.services import queue

    _order(process, share)
    process.queue_order = order
    _uncertain(process, [0.3, 0.6])
    fresh, _ = queue._fresh_stages(process)
    params = {"process": process.pk, "expert": expert.pk, "now": "2026-01-01T00:00:00Z",
              "overlap": 1, "key": 0.5}  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        # A tiny table is cheapest to scan; forbid that to see whether an index can serve it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + fresh[0], params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan
    assert "Sort" not in plan.split("SubPlan")[0]  # the index gives the order, no sort


def _form(process, **overrides):
    data = {
        "name": process.name,
        "minutes_per_case": "5",
        "overlap": "1",
        "priority_field": "amount",
        "priority_descending": "on",
        **schema_form_data(INVOICE_FIELDS, INVOICE_DECISIONS),
    }
    return {**data, **overrides}


def test_manager_sets_queue_order_and_random_share_on_the_edit_page(manager, process):
    client = client_for(manager)
    page = client.get(reverse("process_edit", args=[process.slug]))
    assert 'name="queue_order"' in page.content.decode()
    response = client.post(
        reverse("process_edit", args=[process.slug]),
        _form(process, queue_order="uncertainty", random_share="0.35"),
    )
    assert response.status_code == 302
    process.refresh_from_db()
    assert (process.queue_order, process.random_share) == ("uncertainty", 0.35)
    # A form without them (older clients) changes neither.
    assert (
        client.post(reverse("process_edit", args=[process.slug]), _form(process)).status_code == 302
    )
    process.refresh_from_db()
    assert (process.queue_order, process.random_share) == ("uncertainty", 0.35)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("random_share", "1.5", "less than or equal to 1"),
        ("random_share", "-0.1", "greater than or equal to 0"),
        ("queue_order", "fastest", "Select a valid choice"),
    ],
)
def test_bad_queue_settings_are_refused_with_a_reason(manager, process, field, value, message):
    response = client_for(manager).post(
        reverse("process_edit", args=[process.slug]), _form(process, **{field: value})
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    process.refresh_from_db()
    assert (process.queue_order, process.random_share) == ("priority", 0.2)


def test_the_process_api_shows_and_takes_the_queue_settings(manager, process):
    client = client_for(manager)
    [out] = client.get("/api/v1/processes").json()
    assert (out["queue_order"], out["random_share"]) == ("priority", 0.2)
    body = {
        "team": "ap", "name": "Active", "fields": INVOICE_FIELDS, "decisions": INVOICE_DECISIONS,
        "queue_order": "uncertainty", "random_share": 0.1,
    }  # fmt: skip
    response = client.post("/api/v1/processes", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert (response.json()["queue_order"], response.json()["random_share"]) == ("uncertainty", 0.1)
    bad = client.post(
        "/api/v1/processes", {**body, "name": "Bad", "random_share": 2},
        content_type="application/json",
    )  # fmt: skip
    assert bad.status_code == 422
    assert "random_share" in bad.content.decode()
