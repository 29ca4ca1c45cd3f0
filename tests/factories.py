"""Small builders for test data, one per model."""

import itertools

from django.contrib.auth import get_user_model

from apps.people import services
from apps.people.models import Team

User = get_user_model()
_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-9"


def make_user(username: str | None = None, **fields: object) -> object:
    username = username or f"user{next(_seq)}"
    return User.objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.test", **fields
    )


def make_team(slug: str | None = None, name: str | None = None) -> Team:
    number = next(_seq)
    return services.create_team(slug=slug or f"team-{number}", name=name or f"Team {number}")


def make_member(team: Team, role: str, username: str | None = None) -> object:
    user = make_user(username)
    services.add_member(team=team, user=user, role=role)
    return user


INVOICE_FIELDS = [
    {"name": "vendor", "type": "text", "required": True},
    {"name": "amount", "type": "money", "required": True, "currency": "EUR"},
    {"name": "po_status", "type": "category", "choices": ["matched", "missing", "mismatch"]},
    {"name": "due_date", "type": "date"},
    {"name": "note", "type": "text"},
]
INVOICE_DECISIONS = [
    {"label": "approve", "reason_codes": ["ok", "within_tolerance"]},
    {"label": "reject", "reason_codes": ["duplicate", "fraud"]},
    {"label": "request_info", "reason_codes": []},
]


def make_process(
    team: Team, *, slug: str = "invoices", overlap: int = 1, priority_field: str = "amount", **kw
):
    from apps.cases.services.processes import create_process

    return create_process(
        team=team,
        name=kw.pop("name", slug.replace("-", " ").title()),
        slug=slug,
        fields=kw.pop("fields", INVOICE_FIELDS),
        decisions=kw.pop("decisions", INVOICE_DECISIONS),
        overlap=overlap,
        priority_field=priority_field,
        **kw,
    )


def make_cases(process, count: int = 3, **fields_overrides):
    from apps.cases.services.intake import create_cases

    rows = [
        {
            "external_id": f"INV-{next(_seq)}",
            "fields": {
                "vendor": "Acme GmbH",
                "amount": 100 + i,
                "po_status": "missing",
                **fields_overrides,
            },
            "exception": {"reason": "PO missing", "fields": ["po_status"]},
        }
        for i in range(count)
    ]
    return create_cases(process=process, rows=rows, embed=False).cases


def invoice_policy(po_status: str, amount: float) -> str:
    """The policy make_decided_cases plants: what a careful expert decides for an invoice."""
    if po_status == "mismatch":
        return "reject"
    if po_status == "missing" or amount >= 5000:
        return "request_info"
    return "approve"


def make_invoice_rows(count: int, *, seed: int = 0) -> list[dict]:
    """Varied invoice cases (intake rows) for the INVOICE_FIELDS schema."""
    import random

    rng = random.Random(seed)
    vendors = ["Acme GmbH", "Bolt Ltd", "Cargo SA", "Delta BV", "Echo Oy"]
    rows = []
    for _ in range(count):
        po_status = rng.choice(["matched", "matched", "missing", "mismatch"])
        rows.append(
            {
                "external_id": f"INV-{next(_seq)}",
                "fields": {
                    "vendor": rng.choice(vendors),
                    "amount": round(rng.uniform(50, 9000), 2),
                    "po_status": po_status,
                    "due_date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                },
                "exception": {"reason": f"PO {po_status}", "fields": ["po_status"]},
            }
        )
    return rows


def make_decided_cases(process, expert, count: int = 120, *, seed: int = 0, noise: float = 0.0):
    """`count` invoice cases decided by `expert` following invoice_policy (a `noise` share of
    labels is random), imported in bulk; returns the cases."""
    import random
    from datetime import UTC, datetime

    from apps.cases.services.intake import create_cases, import_decisions

    rng = random.Random(seed + 1)
    rows = make_invoice_rows(count, seed=seed)
    cases = create_cases(process=process, rows=rows, embed=False).cases
    labels = ["approve", "reject", "request_info"]
    decisions = []
    for row in rows:
        label = invoice_policy(row["fields"]["po_status"], row["fields"]["amount"])
        if rng.random() < noise:
            label = rng.choice(labels)
        decisions.append(
            {"external_id": row["external_id"], "expert": expert.username, "label": label,
             "decided_at": datetime(2026, 1, 5, tzinfo=UTC).isoformat()}
        )  # fmt: skip
    import_decisions(process=process, rows=decisions)
    return cases


def schema_form_data(fields: list[dict], decisions: list[dict]) -> dict[str, object]:
    """A schema as the process form's editor posts it: one row of inputs per field and decision."""
    from apps.cases.schema_editor import bound_data, decision_row, field_row

    return {
        **bound_data("fields", [field_row(spec) for spec in fields]),
        **bound_data("decisions", [decision_row(option) for option in decisions]),
    }
