"""predict_cases takes a shortcut past the pipeline (the rows are encoded straight into the
classifier's matrix, the calibrators score the classifier itself): its probabilities must be the
pipeline's own predict_proba, bit for bit, for every field type the schema has and for both
algorithms training can choose."""

import random
from datetime import date

import numpy as np
import pytest

from apps.cases.services.intake import create_cases, import_decisions
from apps.classifiers import learning, services
from apps.classifiers.features import CaseTable
from apps.classifiers.types import CaseInput
from tests.factories import make_process

FIELDS = [
    {"name": "vendor", "type": "category", "choices": ["Acme", "Bolt", "Cargo"]},
    {"name": "amount", "type": "money", "required": True, "currency": "EUR"},
    {"name": "items", "type": "number"},
    {"name": "urgent", "type": "boolean"},
    {"name": "due", "type": "date"},
    {"name": "received", "type": "datetime"},
    {"name": "note", "type": "text"},
    {"name": "reference", "type": "text"},  # distinct per case: an identifier, not text
]
NOTES = ["paid twice?", "bank details changed", "po attached", "call the requester", ""]


def _fields(rng: random.Random, index: int) -> dict:
    """A case with every field type, each missing now and then."""
    fields = {
        "vendor": rng.choice(["Acme", "Bolt", "Cargo", None]),
        "amount": round(rng.uniform(10, 9000), 2),
        "items": rng.choice([1, 2, 3, 7, None]),
        "urgent": rng.choice([True, False, None]),
        "due": rng.choice([f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", None]),
        "received": rng.choice(
            [f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:30:00+00:00", None]
        ),
        "note": rng.choice(NOTES),
        "reference": f"R-{index:05d}",
    }
    return {name: value for name, value in fields.items() if value is not None}


def _label(fields: dict, labels: list[str], rng: random.Random) -> str:
    """A policy over several fields, with some noise, so the model's probabilities vary."""
    if rng.random() < 0.1:
        return rng.choice(labels)
    if "bank details" in fields.get("note", ""):
        return labels[1]
    if len(labels) > 2 and fields["amount"] > 5000 and not fields.get("urgent"):
        return labels[2]
    score = fields["amount"] / 9000 + fields.get("items", 0) / 7 + (fields.get("vendor") == "Bolt")
    return labels[1] if score > 1.1 else labels[0]


@pytest.fixture
def choose(monkeypatch):
    """Training compares two candidates by cross-validation; keep one to get that algorithm."""
    every = learning._candidates

    def only(algorithm: str) -> None:
        monkeypatch.setattr(
            learning, "_candidates", lambda specs: {algorithm: every(specs)[algorithm]}
        )

    return only


@pytest.mark.parametrize(
    ("algorithm", "labels"),
    [
        ("hist_gradient_boosting", ["approve", "reject", "request_info"]),
        ("logistic_regression", ["approve", "reject", "request_info"]),
        ("hist_gradient_boosting", ["approve", "reject"]),
        ("logistic_regression", ["approve", "reject"]),
    ],
)
def test_predict_cases_gives_the_pipelines_own_probabilities(
    team, second_expert, choose, algorithm, labels
):
    process = make_process(
        team,
        slug="every-field",
        fields=FIELDS,
        decisions=[{"label": label, "reason_codes": []} for label in labels],
    )
    rng = random.Random(7)
    rows = [
        {
            "external_id": f"EF-{i}",
            "fields": _fields(rng, i),
            "exception": {
                "reason": rng.choice(["amount above limit", "no purchase order", ""]),
                "fields": rng.choice([["amount"], ["vendor", "due"], []]),
            },
        }
        for i in range(240)
    ]
    create_cases(process=process, rows=rows, embed=False)
    import_decisions(
        process=process,
        rows=[
            {"external_id": row["external_id"], "expert": second_expert.username,
             "label": _label(row["fields"], labels, rng), "decided_at": "2026-01-05T00:00:00+00:00"}
            for row in rows
        ],
    )  # fmt: skip
    choose(algorithm)
    job = services.run_training_job(
        services.start_training(process=process, requested_by=second_expert).pk
    )
    assert job.state == "succeeded", job.error
    version = job.model_version
    assert version.algorithm == algorithm

    # New cases, with what intake would refuse but a node or a connector may send: an unknown
    # category, a number as text, an unparseable date, an unknown field at fault, nothing at all.
    cases = [
        CaseInput(
            _fields(rng, 1000 + i), rng.choice(["no purchase order", "new reason"]), ["amount"]
        )
        for i in range(300)
    ]
    cases += [
        CaseInput({"vendor": "Zeta", "amount": "12", "due": "not a date", "urgent": 1}, "", ["x"]),
        CaseInput({"amount": float("inf"), "received": "2026-03-01"}, "", []),
        CaseInput({}, "", []),
    ]
    predictions = services.predict_cases(version=version, cases=cases)

    pipeline = services.load_pipeline(version)
    expected = pipeline.predict_proba(cases)  # the whole scikit-learn pipeline, step by step
    classes = list(pipeline.classes_)
    assert sorted(classes) == sorted(labels)
    got = np.array([[p.probabilities[label] for label in classes] for p in predictions])
    assert np.array_equal(got, expected)
    assert [p.label for p in predictions] == [classes[i] for i in expected.argmax(axis=1)]
    assert [p.confidence for p in predictions] == expected.max(axis=1).tolist()
    # The cases differ, so the shortcut is not returning one row for all of them.
    assert len({tuple(row) for row in got.round(6)}) > 10


def test_the_table_has_one_column_per_schema_part_with_missing_values_as_nan():
    table = CaseTable(FIELDS).transform(
        [
            CaseInput(
                {"amount": 5, "urgent": True, "due": "2026-02-03", "note": "x"}, "r", ["due"]
            ),
            CaseInput({"amount": float("inf"), "received": "2026-03-01T06:30:00"}, "", ["?"]),
        ]
    )
    # vendor, amount, items, urgent, due (5 parts), received (6), note, reference, reason, at fault
    assert table.shape == (2, 4 + 5 + 6 + 3 + len(FIELDS))
    first, second = table.tolist()
    assert first[:2] == ["", 5.0]
    assert np.isnan(first[2])
    assert first[3] == 1.0
    assert first[4:9] == [2026.0, 2.0, 1.0, 3.0, float(date(2026, 2, 3).toordinal())]
    assert all(np.isnan(first[9:15]))
    assert first[15:18] == ["x", "", "r"]
    assert first[18:] == [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert np.isnan(second[1])
    assert all(np.isnan(second[4:9]))
    assert second[9:15] == [2026.0, 3.0, 6.0, 1.0, float(date(2026, 3, 1).toordinal()), 6.5]
    assert second[18:] == [0.0] * len(FIELDS)
