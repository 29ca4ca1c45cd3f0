"""Builders for autonomy tests: new cases handled by the autonomy, experts deciding them."""

import random
from datetime import UTC, datetime

from django.utils import timezone

from apps.autonomy.models import ProcessAutonomy
from apps.autonomy.services import shadow
from apps.cases.services.intake import create_cases, import_decisions
from tests.factories import invoice_policy, make_invoice_rows

LABELS = ["approve", "reject", "request_info"]
CODES = {"approve": "ok", "reject": "fraud", "request_info": ""}


def set_autonomy(process, **values) -> ProcessAutonomy:
    """Test setup: write the autonomy row directly (the services' gate is tested on its own)."""
    autonomy, _ = ProcessAutonomy.objects.get_or_create(process=process)
    for name, value in values.items():
        setattr(autonomy, name, value)
    if "level" in values:
        autonomy.level_since = timezone.now()
    autonomy.save()
    return autonomy


def arrive(process, count: int, *, seed: int, rng: random.Random | None = None):
    """`count` new invoice cases, handled as the cases_created task would; returns (cases, result)."""
    rows = make_invoice_rows(count, seed=seed)
    cases = create_cases(process=process, rows=rows, embed=False).cases
    result = shadow.process_new_cases(
        process=process, case_ids=[c.pk for c in cases], rng=rng or random.Random(seed)
    )
    return cases, result


def right_label(case) -> str:
    return invoice_policy(case.fields["po_status"], float(case.fields["amount"]))


def wrong_label(case) -> str:
    return next(label for label in LABELS if label != right_label(case))


def import_labels(process, expert, cases, label_of=right_label) -> None:
    """Experts decide `cases` now (historical import, all at once)."""
    now = datetime.now(UTC).isoformat()
    import_decisions(
        process=process,
        rows=[
            {"external_id": case.external_id, "expert": expert.username,
             "label": label_of(case), "reason_code": CODES[label_of(case)], "decided_at": now}
            for case in cases
        ],
    )  # fmt: skip
