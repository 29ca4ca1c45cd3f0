"""The vectorised precedent ranking (Comparison over Metric.encode's arrays) returns what the
first, field-by-field implementation returned: the same cases in the same order, the same
closeness and the same differing fields, for every kind of part, missing and unseen values, and
a metric reused for later pools (as the selector's cache reuses it)."""

import math
import random

import numpy as np
import pytest

from apps.cases.precedents import (
    DIFFERS_BELOW,
    UNEQUAL_BUT_ALIKE,
    Comparison,
    Example,
    Metric,
    _column,
    _comparable,
    _jaccard,
)

SPECS = [
    {"name": "amount", "label": "Amount", "type": "money"},
    {"name": "days", "label": "Days", "type": "number"},
    {"name": "received", "label": "Received", "type": "date"},
    {"name": "vendor", "label": "Vendor", "type": "category"},
    {"name": "urgent", "label": "Urgent", "type": "boolean"},
    {"name": "note", "label": "Note", "type": "text"},  # templated: compared as categories
    {"name": "story", "label": "Story", "type": "text"},  # free: compared by words
    {"name": "reference", "label": "Reference", "type": "text"},  # an identifier: left out
]
VENDORS = [f"vendor {i}" for i in range(40)]
NOTES = ["Please check the PO.", "Duplicate?", "Price differs from the contract.", ""]
WORDS = [f"word{i}" for i in range(30)]


def _case(rng: random.Random, index: int) -> Example:
    amount = round(rng.lognormvariate(8, 1.5), 2)
    fields = {
        "amount": amount if rng.random() > 0.05 else None,
        "days": rng.randint(0, 120) if rng.random() > 0.1 else "",
        "received": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "vendor": rng.choice([*VENDORS, f"rare {index}"]),  # some values once only
        "urgent": rng.random() < 0.3,
        "note": rng.choice(NOTES),
        "story": " ".join(rng.sample(WORDS, rng.randint(0, 5))),
        "reference": f"INV-{index:05d}",
    }
    if rng.random() < 0.05:
        fields["received"] = "not a date"
    vendor_rejects = fields["vendor"] in VENDORS[:5]
    if fields["amount"] is not None and amount > 10_000:
        label = "escalate"
    elif vendor_rejects or (fields["urgent"] and rng.random() < 0.5):
        label = "reject"
    else:
        label = rng.choice(["pay", "pay", "pay", "hold"])
    return Example(fields, rng.choice(["Price mismatch", "No PO", ""]), label)


def _reference_nearest(metric: Metric, pool: list[Example], fields: dict, reason: str, k: int):
    """The first implementation: each part compared case by case (as of 56e9190)."""
    rows = []
    for part in metric.parts:
        theirs = _column(part, pool)
        mine = _comparable(part, fields, reason)
        if part.kind in ("number", "money", "date"):
            missing = np.isnan(theirs)
            if mine is None:
                row = missing.astype(float)
            else:
                with np.errstate(invalid="ignore"):
                    distance = np.abs(theirs - float(mine)) / metric.spreads[part.name]
                row = np.where(missing, 0.0, np.exp(-distance))
        elif part.kind == "text" and part.name not in metric.profiles:
            row = np.array([_jaccard(mine, other) for other in theirs], dtype=float)
        else:
            row = np.array([1.0 if mine == other else 0.0 for other in theirs])
        profiles = metric.profiles.get(part.name)
        if profiles is not None:
            keys = metric.keys(part, theirs)
            if part.name in metric.cuts:
                key = metric.keys(part, [math.nan if mine is None else mine])[0]
            else:
                key = mine
            own = profiles.get(key, metric.prior)
            table = {o: 1 - 0.5 * float(np.abs(own - p).sum()) for o, p in profiles.items()}
            default = 1 - 0.5 * float(np.abs(own - metric.prior).sum())
            likeness = np.array([table.get(o, default) for o in keys], dtype=float)
            if part.kind in ("number", "money", "date"):
                row = row * likeness
            else:
                row = np.where(row == 1.0, 1.0, UNEQUAL_BUT_ALIKE * likeness)
        rows.append(row)
    similarities = np.vstack(rows)
    scores = np.array([metric.weights[p.name] for p in metric.parts]) @ similarities
    result = []
    for i in np.argsort(-scores, kind="stable")[:k]:
        differing = [
            (metric.weights[p.name] * (1 - s), p)
            for p, s in zip(metric.parts, similarities[:, i], strict=True)
            if s < DIFFERS_BELOW
        ]
        parts = [p.name for _, p in sorted(differing, key=lambda pair: -pair[0])]
        result.append((int(i), float(scores[i]), parts))
    return result


@pytest.mark.parametrize(
    "options",
    [{}, {"by_decisions": False}, {"weights": {"amount": 3.0, "vendor": 1.0, "story": 0.5}}],
    ids=["learnt", "raw-fields", "given-weights"],
)
def test_vectorised_ranking_equals_the_field_by_field_reference(options):
    rng = random.Random(7)
    cases = [_case(rng, i) for i in range(700)]
    pool, later = cases[:500], cases[500:]
    metric = Metric(
        SPECS, pool, options.get("weights"), by_decisions=options.get("by_decisions", True)
    )
    assert "reference" not in [part.name for part in metric.parts]  # the identifier is left out
    kinds = {part.kind for part in metric.parts}
    assert kinds == {"money", "number", "date", "category", "text"}
    if metric.profiles:  # the note is templated (by its decisions), the story free (by words)
        assert "note" in metric.profiles
        assert "story" not in metric.profiles
        assert "amount" in metric.cuts
        assert len(metric.cuts["amount"])
    # The metric is reused for later pools with cases it never saw (as the selector's cache).
    second_pool = later[:150] + pool[100:]
    queries = [*later[150:], Example({}, "", "pay"), Example({"vendor": "unseen"}, "New", "")]
    compared = 0
    for searched in (pool, second_pool, pool):
        comparison = Comparison(SPECS, searched, metric=metric)
        for query in queries[:: 5 if searched is pool else 3]:
            matches = comparison.nearest(query.fields, query.exception_reason, k=8)
            found = [(m.index, m.closeness, [p.name for p in m.differences]) for m in matches]
            expected = _reference_nearest(
                metric, searched, query.fields, query.exception_reason, k=8
            )
            assert found == expected
            compared += 1
    assert compared == 40
