"""The rule-list learner (greedy sequential covering), directly and through induction."""

import random
import re

import numpy as np
from django.urls import reverse

from apps.cases.services.decisions import record_decision
from apps.cases.services.intake import create_cases
from apps.rules.language import compile_predicate
from apps.rules.services.rule_list import learn_rule_list
from tests.conftest import client_for


def _words(html: str) -> str:
    """The page's text without tags: rule sentences carry field names and codes as tooltips."""
    return re.sub(r"<[^>]+>", "", html)


def test_the_learner_finds_a_planted_two_test_rule_on_a_matrix():
    rng = random.Random(1)
    rows, labels = [], []
    for _ in range(400):
        big = rng.random() < 0.5
        amount = rng.uniform(7000, 20000) if big else rng.uniform(100, 3000)
        flagged = rng.random() < 0.4
        rows.append([amount, 1.0 if flagged else 0.0, rng.random()])  # last column: noise
        labels.append("reject" if big and flagged else "approve")
    rules = learn_rule_list(
        np.asarray(rows), labels, numeric=[True, False, True], min_support=5, min_precision=0.9
    )
    reject = [rule for rule in rules if rule.label == "reject"]
    assert reject
    tests = {(feature, right) for feature, _, right in reject[0].tests}
    assert tests == {(0, True), (1, True)}
    threshold = next(t for feature, t, _ in reject[0].tests if feature == 0)
    assert 3000 < threshold < 7000
    assert reject[0].correct == reject[0].covered == labels.count("reject")


def test_induction_with_the_rule_list_finds_the_planted_rule(process, expert, second_expert):
    """Planted: amount > 5,000 and PO mismatch → reject (fraud); everything else is approved."""
    rng = random.Random(7)
    rows = []
    for index in range(120):
        amount = rng.choice([rng.randint(100, 3000), rng.randint(7000, 20000)])
        po_status = rng.choice(["matched", "missing", "mismatch"])
        rows.append({"external_id": f"R-{index}",
                     "fields": {"vendor": "Acme", "amount": amount, "po_status": po_status},
                     "exception": {"reason": "check", "fields": ["amount"]}})  # fmt: skip
    cases = create_cases(process=process, rows=rows, embed=False).cases
    planted = set()
    for case in cases:
        if case.fields["amount"] > 5000 and case.fields["po_status"] == "mismatch":
            planted.add(case.pk)
            record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")
        else:
            record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    assert 10 < len(planted) < 40
    response = client_for(expert).post(
        f"/api/v1/processes/{process.slug}/rules/induce",
        {"method": "rule_list"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["method"] == "rule_list"
    rejects = [c for c in body["candidates"] if c["action"]["decide"] == "reject"]
    assert rejects
    best = rejects[0]
    assert best["action"] == {"decide": "reject", "reason_code": "fraud"}
    assert (best["support"], best["precision"]) == (len(planted), 1.0)
    predicate = compile_predicate(best["condition"], fields=process.schema.fields)
    matched = {c.pk for c in cases if predicate(c.fields, c.exception_reason, c.exception_fields)}
    assert matched == planted
    assert all(c["method"] == "rule_list" for c in body["candidates"])


def test_an_unknown_method_is_a_clear_422(process, expert):
    response = client_for(expert).post(
        f"/api/v1/processes/{process.slug}/rules/induce",
        {"method": "forest"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "rule_list" in str(response.json())


def test_the_candidates_page_offers_both_learners(process, expert, second_expert):
    rows = [{"external_id": f"P-{i}", "fields": {"vendor": "Acme", "amount": 100 + i,
             "po_status": "missing" if i % 2 else "matched"}} for i in range(30)]  # fmt: skip
    for case in create_cases(process=process, rows=rows, embed=False).cases:
        missing = case.fields["po_status"] == "missing"
        record_decision(
            case=case,
            expert=second_expert,
            label="request_info" if missing else "approve",
            reason_code="" if missing else "ok",
        )
    client = client_for(expert)
    page = client.get(reverse("rule_induce", args=[process.slug]), {"method": "rule_list"})
    html = page.content.decode()
    assert page.status_code == 200
    assert '<strong aria-current="page">rule list</strong>' in html
    assert "?method=tree" in html
    assert "Po status is matched → decide Approve (reason code: Ok)" in _words(html)
    assert "→ decide Request info" in _words(html)
    rules_page = client.get(reverse("rule_list", args=[process.slug])).content.decode()
    assert 'name="method" value="rule_list"' in rules_page
