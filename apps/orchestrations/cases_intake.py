"""Cases sent to the cases intake API with `?orchestration=<slug>` go through that orchestration:
each row becomes an item (external_id and fields; the orchestration's exception filter decides
what is an exception, so a row's `exception` is refused), with the items API's row-level errors
and its all-or-nothing rule."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.cases.models import Process
from apps.orchestrations import inbound, selectors


def intake_cases(
    *, user: AbstractBaseUser, process: Process, slug: str, rows: list[object]
) -> tuple[int, dict[str, Any]]:
    """(201 when a run was created, else 200; the cases intake answer with `runs`). Raises
    ValidationError for an orchestration of another process (or one `user` can't see) and
    BatchInvalid for bad rows: nothing is recorded then."""
    from apps.orchestrations.api import run_out

    try:
        orchestration = selectors.orchestration_for(user=user, slug=slug)
    except Http404:
        orchestration = None
    if orchestration is None or orchestration.process_id != process.pk:
        raise ValidationError(
            f"orchestration: {process.name!r} has no orchestration {slug!r} that you can use"
        )
    received, _ = inbound.receive_items(orchestration=orchestration, items=rows)
    created = sum(received.created)
    pairs = list(zip(received.runs, received.created, strict=True))
    return 201 if created else 200, {
        "created": created,
        "existing": len(received.runs) - created,
        "cases": [
            {"id": run.case_id, "external_id": run.external_id, "created": new}
            for run, new in pairs
        ],
        "runs": [run_out(run, new).dict() for run, new in pairs],
    }
