"""Precedents: closeness weighted by what decides cases (apps/cases/precedents.py), the review
pane's search over a process's decided cases (selectors_precedents) and "no close precedent"."""

import itertools
import random

import pytest
from django.urls import reverse

from apps.cases import selectors_precedents
from apps.cases.precedents import Comparison, Example, Metric
from apps.cases.selectors_precedents import precedents
from apps.cases.services.decisions import record_decision
from apps.cases.services.intake import create_cases
from tests.cases.test_review_page import client_for
from tests.factories import make_decided_cases, make_process

CLAIM_FIELDS = [
    {"name": "claimed_amount", "label": "Claimed amount", "type": "money"},
    {"name": "claim_type", "label": "Claim type", "type": "category",
     "choices": ["auto", "property", "travel", "health"]},
    {"name": "region", "label": "Region", "type": "category", "choices": ["n", "e", "s", "w"]},
    {"name": "days_open", "label": "Days open", "type": "number"},
    {"name": "description", "label": "Description", "type": "text"},
]  # fmt: skip
WORDS = ["pipe", "storm", "glass", "flight", "luggage", "door", "roof", "fall", "car", "dental"]


def _claim(rng: random.Random, amount: float | None = None) -> Example:
    """A claim whose amount alone decides it (above 25,000 EUR: investigate); the rest is noise."""
    amount = amount if amount is not None else round(rng.lognormvariate(8.5, 1.3), 2)
    fields = {
        "claimed_amount": amount,
        "claim_type": rng.choice(["auto", "property", "travel", "health"]),
        "region": rng.choice("nesw"),
        "days_open": rng.randint(0, 90),
        "description": " ".join(rng.sample(WORDS, 3)),
    }
    return Example(fields, "Manual check", "investigate" if amount > 25_000 else "pay")


def _same_label_share(comparison: Comparison, queries: list[Example]) -> float:
    hits = [
        comparison.pool[match.index].label == query.label
        for query in queries
        for match in comparison.nearest(query.fields, query.exception_reason, k=5)
    ]
    return sum(hits) / len(hits)


def test_weighted_precedents_share_the_decision_more_often_than_plain_nearest_neighbours():
    rng = random.Random(11)
    pool = [_claim(rng) for _ in range(300)]
    queries = [_claim(rng) for _ in range(60)]
    high_value = [_claim(rng, amount=rng.uniform(30_000, 90_000)) for _ in range(15)]
    names = [spec["name"] for spec in CLAIM_FIELDS] + ["exception_reason"]
    weighted = Comparison(CLAIM_FIELDS, pool)
    plain = Comparison(
        CLAIM_FIELDS, pool, dict.fromkeys(names, 1.0), source="equal", by_decisions=False
    )

    assert weighted.weights_source == "decided"
    assert max(weighted.weights, key=weighted.weights.get) == "claimed_amount"
    assert _same_label_share(weighted, queries) >= _same_label_share(plain, queries) + 0.05
    # The claims the policy sends to investigation find investigated precedents.
    assert _same_label_share(weighted, high_value) >= 0.8
    assert _same_label_share(weighted, high_value) > _same_label_share(plain, high_value)


def test_a_precedent_names_the_weightiest_field_that_differs():
    rng = random.Random(3)
    pool = [_claim(rng) for _ in range(200)]
    comparison = Comparison(CLAIM_FIELDS, pool)
    twin = pool[0]
    [match] = comparison.nearest({**twin.fields}, twin.exception_reason, k=1)
    assert match.closeness == pytest.approx(1.0)
    assert match.differences == []

    far_amount = {**twin.fields, "claimed_amount": 80_000 if twin.label == "pay" else 500}
    matches = comparison.nearest(far_amount, twin.exception_reason, k=200)
    same_but_amount = next(m for m in matches if m.index == 0)
    assert same_but_amount.closeness < 0.9
    assert [part.name for part in same_but_amount.differences][:1] == ["claimed_amount"]


def test_few_decided_cases_weigh_every_field_alike():
    rng = random.Random(5)
    metric = Metric(CLAIM_FIELDS, [_claim(rng) for _ in range(10)])
    assert metric.weights_source == "equal"
    assert len(set(metric.weights.values())) == 1


# --- the review pane's search -----------------------------------------------------------------


@pytest.fixture
def process(team):
    return make_process(team)


_numbers = itertools.count(1)


def _decided(process, expert, rows: list[tuple[dict, str, str]]) -> list:
    cases = create_cases(
        process=process,
        rows=[
            {
                "external_id": f"P-{next(_numbers)}",
                "fields": fields,
                "exception": {"reason": reason},
            }
            for fields, reason, _ in rows
        ],
        embed=False,
    ).cases
    for case, (_, _, label) in zip(cases, rows, strict=True):
        reason_code = {"approve": "ok", "reject": "duplicate"}.get(label, "")
        record_decision(
            case=case, expert=expert, label=label, reason_code=reason_code, rationale="as usual"
        )
    return cases


ROUTINE = {"vendor": "Acme GmbH", "amount": 120.0, "po_status": "missing", "note": "monthly"}


def test_a_case_unlike_every_decided_one_has_no_close_precedent(process, expert, second_expert):
    _decided(process, second_expert, [(ROUTINE, "PO missing", "request_info")] * 4)
    (odd,) = create_cases(
        process=process,
        rows=[
            {
                "external_id": "ODD-1",
                "fields": {
                    "vendor": "Zeta Holdings",
                    "amount": 95_000.0,
                    "po_status": "mismatch",
                    "due_date": "2027-11-30",
                    "note": "bank details changed",
                },
                "exception": {"reason": "Amount differs from the PO"},
            }
        ],
        embed=False,
    ).cases

    search = precedents(case=odd)

    assert len(search.rows) == 4
    assert search.no_close_precedent
    assert all(row.band == "far" and row.closeness < search.minimum for row in search.rows)
    page = client_for(expert).get(reverse("review", args=[process.slug]))
    assert page.context["case"] == odd
    assert b"No close precedent" in page.content
    assert b"a precedent needs 70 %" in page.content


def test_the_minimum_closeness_is_a_setting(process, expert, second_expert, settings):
    _decided(process, second_expert, [(ROUTINE, "PO missing", "request_info")] * 2)
    (similar,) = create_cases(
        process=process,
        rows=[{"fields": {**ROUTINE, "amount": 150.0}, "exception": {"reason": "PO missing"}}],
        embed=False,
    ).cases
    assert precedents(case=similar).rows[0].band == "close"
    settings.ORCHCAP_PRECEDENT_MIN_SIMILARITY = 100
    assert precedents(case=similar).no_close_precedent


def test_the_review_pane_shows_a_close_precedent_with_what_differs(process, expert, second_expert):
    _decided(
        process,
        second_expert,
        [
            ({**ROUTINE, "amount": 130.0}, "PO missing", "request_info"),
            ({**ROUTINE, "po_status": "matched", "vendor": "Bolt Ltd"}, "Overdue", "approve"),
        ],
    )
    (case,) = create_cases(
        process=process,
        rows=[{"fields": {**ROUTINE, "amount": 9000.0}, "exception": {"reason": "PO missing"}}],
        embed=False,
    ).cases

    page = client_for(expert).get(reverse("review", args=[process.slug]))

    assert page.context["case"] == case
    [nearest, other] = page.context["precedent_search"].rows
    assert nearest.case.final_label == "request_info"
    assert nearest.closeness > other.closeness
    assert [d.label for d in nearest.differences] == ["Amount"]
    assert (nearest.differences[0].theirs, nearest.differences[0].ours) == ("130.00", "9,000.00")
    body = page.content.decode()
    assert "Differs in <strong>Amount</strong>: 130.00" in body
    assert f"{nearest.band} · {nearest.percent} %" in body


def _learnt(case) -> list:
    """The metrics cached for the case's process and schema version."""
    return [
        learnt.metric
        for key, learnt in selectors_precedents._metrics.items()
        if key[:2] == (case.process_id, case.schema_version_id)
    ]


def test_what_is_learnt_from_the_decided_cases_is_kept_until_they_change(
    process, expert, second_expert
):
    _decided(process, second_expert, [(ROUTINE, "PO missing", "request_info")] * 3)
    (case,) = create_cases(
        process=process,
        rows=[{"fields": ROUTINE, "exception": {"reason": "PO missing"}}],
        embed=False,
    ).cases
    first = precedents(case=case)
    [learnt] = _learnt(case)
    precedents(case=case)
    assert _learnt(case) == [learnt]  # the same decided cases: learnt once

    _decided(process, second_expert, [({**ROUTINE, "amount": 7000.0}, "PO missing", "reject")])
    again = precedents(case=case)

    [relearnt] = _learnt(case)  # one more decided case in a small process: learnt again
    assert relearnt is not learnt
    assert relearnt.size == learnt.size + 1
    assert len(again.rows) == len(first.rows) + 1


def test_a_case_decided_after_learning_joins_the_pool_without_learning_again(
    process, expert, second_expert
):
    make_decided_cases(process, second_expert, 220, seed=3)
    (case,) = create_cases(
        process=process,
        rows=[{"fields": {**ROUTINE, "amount": 4321.0}, "exception": {"reason": "PO missing"}}],
        embed=False,
    ).cases
    before = precedents(case=case)
    [learnt] = _learnt(case)
    assert before.rows[0].closeness < 1.0

    [twin] = _decided(
        process, second_expert, [({**ROUTINE, "amount": 4321.0}, "PO missing", "request_info")]
    )
    after = precedents(case=case)

    assert _learnt(case) == [learnt]  # one more in 221 decided cases: the metric is kept
    assert after.rows[0].case == twin  # read once, then compared with the rest
    assert after.rows[0].closeness == pytest.approx(1.0)
