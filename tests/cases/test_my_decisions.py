"""The "My decisions" page: an expert's own labels, what became of them, filters, pages, the
blind rule and bad input."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.cases.models import CaseStatus
from apps.cases.selectors_my_decisions import my_decisions
from apps.cases.services.decisions import adjudicate_case, record_decision
from tests.conftest import client_for
from tests.factories import make_cases, make_process

URL = reverse("my_decisions")


@pytest.fixture
def outcomes(double_process, expert, second_expert, manager):
    """Three cases of a two-expert process that `expert` labelled "approve": one both agreed on,
    one an adjudicator overturned, one still waiting for the second expert."""
    agreed, overturned, waiting = make_cases(double_process, 3)
    for case in (agreed, overturned, waiting):
        record_decision(
            case=case, expert=expert, label="approve", reason_code="ok", rationale="PO matches."
        )
    record_decision(case=agreed, expert=second_expert, label="approve", reason_code="ok")
    record_decision(
        case=overturned,
        expert=second_expert,
        label="reject",
        reason_code="fraud",
        rationale="Paid twice: SECRET-2",
    )
    adjudicate_case(
        case=overturned,
        adjudicator=manager,
        label="reject",
        reason_code="duplicate",
        rationale="Same invoice paid on 3 March.",
    )
    return {"agreed": agreed, "overturned": overturned, "waiting": waiting}


def rows(response) -> str:
    return response.content.decode().split('id="decision-rows"', 1)[1]


def test_expert_sees_each_decision_with_its_outcome_and_who_overturned_it(outcomes, expert):
    response = client_for(expert).get(URL)
    assert response.status_code == 200
    page = rows(response)
    assert page.count("<tr>") == 1 + 3  # the head and one row per decision
    assert "1 agreed" in page
    assert "1 overturned" in page
    assert "1 pending" in page
    assert "Overturned" in page
    assert "by maya (Duplicate): Same invoice paid on 3 March." in page
    assert "waiting for more labels" in page
    assert "PO matches." in page
    for case in outcomes.values():
        assert reverse("case_detail", args=[case.pk]) in page
    # Only the adjudicator's reason is shown, never the other expert's own label or rationale.
    assert "SECRET-2" not in page


def test_a_decision_awaiting_adjudication_is_pending_without_a_final_label(
    double_process, expert, second_expert
):
    (case,) = make_cases(double_process, 1)
    record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    record_decision(
        case=case,
        expert=second_expert,
        label="reject",
        reason_code="fraud",
        rationale="Looks forged",
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION
    page = rows(client_for(expert).get(URL))
    assert "awaiting adjudication" in page
    assert "Looks forged" not in page
    assert "Final:" not in page


def test_own_decisions_are_always_visible_and_others_never(outcomes, expert, second_expert):
    mine = my_decisions(expert=expert)
    assert {d.expert_id for d in mine} == {expert.pk}
    assert all(d.final_shown for d in mine)
    assert {d.outcome for d in mine} == {"agreed", "overturned", "pending"}
    theirs = my_decisions(expert=second_expert)
    assert {d.case_id for d in theirs} == {outcomes["agreed"].pk, outcomes["overturned"].pk}
    # The second expert agreed with the adjudicator: for them the case is agreed.
    assert {d.outcome for d in theirs} == {"agreed"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"outcome": "overturned"}, ["overturned"]),
        ({"outcome": "agreed"}, ["agreed"]),
        ({"outcome": "pending"}, ["waiting"]),
        ({"label": "approve"}, ["agreed", "overturned", "waiting"]),
        ({"process": "claims-check"}, ["agreed", "overturned", "waiting"]),
        ({"process": "invoices"}, []),
    ],
)
def test_filters_narrow_the_list(outcomes, expert, team, query, expected):
    make_process(team)  # a second process ("invoices") with none of the expert's decisions
    page = rows(client_for(expert).get(URL, query))
    shown = [
        name
        for name, case in outcomes.items()
        if reverse("case_detail", args=[case.pk]) + '"' in page
    ]
    assert shown == expected
    if not expected:
        assert "None of your decisions match these filters." in page


def test_date_range_filters_on_when_i_decided(outcomes, expert):
    today = timezone.localdate()
    client = client_for(expert)
    within = rows(client.get(URL, {"decided_from": today - timedelta(days=1), "decided_to": today}))
    assert within.count("<tr>") == 4
    later = rows(client.get(URL, {"decided_from": today + timedelta(days=1)}))
    assert later.count("<tr>") == 2  # the head and the "none match" row
    assert "None of your decisions match these filters." in later


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"decided_from": "yesterday"}, "Enter a valid date."),
        ({"decided_from": "2026-05-02", "decided_to": "2026-05-01"}, "must be on or before"),
        ({"outcome": "lost"}, "Select a valid choice."),
        ({"process": "not-mine"}, "Select a valid choice."),
    ],
)
def test_bad_filters_are_refused_with_their_errors(outcomes, expert, query, message):
    response = client_for(expert).get(URL, query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "These filters can't be applied" in response.content.decode()


def test_pages_of_decisions_newest_first(process, expert):
    cases = make_cases(process, 27)
    for case in cases:
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    client = client_for(expert)
    first = rows(client.get(URL, {"label": "approve"}))
    assert first.count("<tr>") == 1 + 25
    assert "page 1 of 2" in first
    assert "?label=approve&amp;page=2" in first
    second = rows(client.get(URL, {"label": "approve", "page": 2}))
    assert second.count("<tr>") == 1 + 2
    # The first two cases decided are the oldest: they are on the last page.
    assert reverse("case_detail", args=[cases[0].pk]) in second
    assert reverse("case_detail", args=[cases[0].pk]) not in first
    assert client.get(URL, {"page": "x"}).status_code == 200


def test_queries_do_not_grow_with_the_number_of_decisions(
    double_process, expert, second_expert, manager, django_assert_max_num_queries
):
    cases = make_cases(double_process, 30)
    for index, case in enumerate(cases):
        record_decision(
            case=case, expert=expert, label="approve", reason_code="ok", rationale=f"reason {index}"
        )
        label, code = ("reject", "fraud") if index % 2 else ("approve", "ok")
        record_decision(case=case, expert=second_expert, label=label, reason_code=code)
        if index % 2:
            adjudicate_case(
                case=case,
                adjudicator=manager,
                label="reject",
                reason_code="fraud",
                rationale="policy",
            )
    client = client_for(expert)
    with django_assert_max_num_queries(14):
        response = client.get(URL)
    # 15 of 30 overturned (the odd ones); the first page holds the newest 25: 13 of them.
    assert rows(response).count("Overturned") == 13


def test_htmx_gets_only_the_rows(outcomes, expert):
    response = client_for(expert).get(URL, {"outcome": "agreed"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="decision-rows"')
    assert "<form" not in body


def test_navigation_offers_my_decisions_to_experts_only(expert, manager, staff):
    assert URL in client_for(expert).get(reverse("home")).content.decode()
    for user in (manager, staff):
        assert URL not in client_for(user).get(reverse("home")).content.decode()


def test_someone_without_decisions_sees_an_empty_list(manager):
    response = client_for(manager).get(URL)
    assert response.status_code == 200
    assert "You haven't decided any case yet" in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_decisions_of_another_teams_processes_are_not_listed(outcomes, expert):
    from apps.people.models import Membership

    Membership.objects.filter(user=expert).delete()
    page = rows(client_for(expert).get(URL))
    assert reverse("case_detail", args=[outcomes["agreed"].pk]) not in page
