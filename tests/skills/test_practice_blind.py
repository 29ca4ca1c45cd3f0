"""Practice never leaks the answer: the practice pane carries no machine suggestion (the model's
label or a rule that fires), where the review pane of the same process shows one."""

import pytest
from django.urls import reverse

from apps.cases.models import Case
from apps.rules.services.authoring import create_rule, enable_rule
from apps.rules.services.backtest import backtest_rule
from apps.skills import gold as gold_services
from tests.conftest import client_for
from tests.factories import make_cases, make_process
from tests.skills.test_practice import decide

MISMATCH = {"field": "po_status", "op": "eq", "value": "mismatch"}


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def gold_with_a_firing_rule(process, second_expert, manager):
    case = make_cases(process, 1, po_status="mismatch")[0]
    decide(case, second_expert, "reject", rationale="PO does not match the invoice.")
    gold = gold_services.mark_gold(case=Case.objects.get(pk=case.pk), by=manager)
    rule = create_rule(
        process=process, owner=manager, name="Mismatched PO", condition=MISMATCH,
        action={"decide": "request_info"},
    )  # fmt: skip
    backtest_rule(rule=rule)
    rule.refresh_from_db()
    enable_rule(rule=rule)
    return gold


def test_the_practice_pane_shows_no_suggestion_where_the_review_pane_does(
    process, gold_with_a_firing_rule, expert, staff
):
    make_cases(process, 1, po_status="mismatch")  # an open case like the gold one
    review = client_for(expert).get(reverse("review", args=[process.slug])).content.decode()
    assert 'aria-label="Suggestions"' in review  # the rule fires on such a case
    assert "Mismatched PO" in review
    url = reverse("practice_queue", args=[process.slug])
    for headers in ({}, {"HX-Request": "true"}):
        body = client_for(staff).get(url, headers=headers).content.decode()
        assert 'id="decision-form"' in body  # the gold case is there to answer
        assert 'aria-label="Suggestions"' not in body
        assert "data-suggested" not in body
        assert "Mismatched PO" not in body
        assert "PO does not match" not in body  # nor the gold rationale before answering
