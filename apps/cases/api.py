"""The cases API: processes and their schemas, intake, historical decisions, cases, decisions,
export. Domain errors become HTTP answers here: ValidationError → 422, CaseConflict → 409, a wrong
role → 403; another team's process or case → 404, so outsiders learn nothing."""

import base64
import binascii
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import Query, Router, Status
from ninja.errors import HttpError

from apps.cases import selectors
from apps.cases.errors import CaseConflict
from apps.cases.intake_routes import intake_through_orchestration
from apps.cases.models import Case, Decision, DecisionSource, Process
from apps.cases.schema import SchemaInvalid
from apps.cases.schemas import (
    CASES_BODY,
    DECISIONS_BODY,
    BatchErrorOut,
    CaseDetailOut,
    CaseFilters,
    CasePage,
    DecisionCreatedOut,
    DecisionIn,
    ErrorOut,
    ExportQuery,
    ImportOut,
    IntakeOut,
    ProcessIn,
    ProcessOut,
    SchemaErrorOut,
    SchemaIn,
)
from apps.cases.services import decisions as decision_services
from apps.cases.services import intake as intake_services
from apps.cases.services import processes as process_services
from apps.cases.services import queue as queue_services
from apps.cases.services.export import FORMATS
from apps.cases.views_export import export_response
from apps.core.api import load_json, reason_of
from apps.people.selectors import team_for_member

router = Router(tags=["cases"])

_ERRORS = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
_SCHEMA_ERRORS = {**_ERRORS, 422: SchemaErrorOut}
_BATCH_ERRORS = {403: ErrorOut, 404: ErrorOut, 422: BatchErrorOut}
# Keys of timeline event data that carry a label; hidden while review is blind for the caller.
_LABEL_KEYS = frozenset({"label", "reason_code", "rationale", "settled_by"})


def _domain_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer service errors with their reason. (Routers can't register exception handlers, and
    the project-wide API in orchcap/api.py stays wiring only.)"""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except intake_services.BatchInvalid as exc:
            return JsonResponse({"detail": exc.message, "rows": exc.rows}, status=422)
        except SchemaInvalid as exc:
            # Every problem at once, each with the path of the part it is about.
            errors = [{"path": p.path, "message": p.message} for p in exc.problems]
            return JsonResponse({"detail": reason_of(exc), "errors": errors}, status=422)
        except ValidationError as exc:
            return JsonResponse({"detail": reason_of(exc)}, status=422)
        except CaseConflict as exc:
            return JsonResponse({"detail": str(exc)}, status=409)

    return wrapper


def _require_manager(request: HttpRequest, process: Process) -> None:
    if not selectors.can_manage_process(user=request.user, process=process):
        raise HttpError(403, "Only the team's managers and admins can do this.")


def _json_body(request: HttpRequest) -> object:
    # The same checks as typed bodies: 400 when not JSON or nested too deeply, 422 for a NUL.
    return load_json(request.body)


# --- processes ----------------------------------------------------------------------------------


def _process_out(process: Process) -> dict[str, Any]:
    schema = process.schema
    return {
        "slug": process.slug,
        "name": process.name,
        "team": process.team.slug,
        "description": process.description,
        "minutes_per_case": float(process.minutes_per_case),
        "overlap": process.overlap,
        "priority_field": process.priority_field,
        "priority_descending": process.priority_descending,
        "queue_order": process.queue_order,
        "random_share": process.random_share,
        "is_synthetic": process.is_synthetic,
        "schema_version": schema.version,
        "fields": schema.fields,
        "decisions": schema.decisions,
        "created_at": process.created_at,
        "updated_at": process.updated_at,
    }


@router.post(
    "/processes",
    response={201: ProcessOut, **_SCHEMA_ERRORS},
    summary="Create a process with its case schema and decision options (managers, admins)",
)
@_domain_errors
def create_process(request: HttpRequest, payload: ProcessIn) -> Status:
    team = team_for_member(user=request.user, slug=payload.team)
    if not selectors.can_manage_process(user=request.user, team_id=team.pk):
        raise HttpError(403, f"Only managers and admins of {team.name} can create its processes.")
    with transaction.atomic():
        process = process_services.create_process(
            team=team,
            name=payload.name,
            slug=payload.slug,
            description=payload.description,
            fields=[spec.model_dump(exclude_none=True) for spec in payload.fields],
            decisions=[option.model_dump(exclude_none=True) for option in payload.decisions],
            minutes_per_case=payload.minutes_per_case,
            overlap=payload.overlap,
            priority_field=payload.priority_field,
            priority_descending=payload.priority_descending,
            created_by=request.user,
        )
        queue_services.update_queue_settings(
            process=process, queue_order=payload.queue_order, random_share=payload.random_share
        )
    return Status(201, _process_out(process))


@router.get(
    "/processes",
    response=list[ProcessOut],
    summary="The processes of the caller's teams, with their current schemas",
)
def list_processes(request: HttpRequest) -> list[dict[str, Any]]:
    return [_process_out(p) for p in selectors.processes_for(user=request.user)]


@router.get(
    "/processes/{slug}",
    response={200: ProcessOut, 404: ErrorOut},
    summary="One process: settings, current schema version, fields and decision options",
)
def get_process(request: HttpRequest, slug: str) -> dict[str, Any]:
    return _process_out(selectors.process_for_member(user=request.user, slug=slug))


@router.put(
    "/processes/{slug}/schema",
    response={200: ProcessOut, **_SCHEMA_ERRORS},
    summary="Replace the case schema and decision options (a new version; stored cases keep "
    "theirs)",
)
@_domain_errors
def update_schema(request: HttpRequest, slug: str, payload: SchemaIn) -> dict[str, Any]:
    process = selectors.process_for_member(user=request.user, slug=slug)
    _require_manager(request, process)
    process_services.update_process_schema(
        process=process,
        fields=[spec.model_dump(exclude_none=True) for spec in payload.fields],
        decisions=[option.model_dump(exclude_none=True) for option in payload.decisions],
        changed_by=request.user,
    )
    return _process_out(selectors.process_for_member(user=request.user, slug=slug))


# --- intake -------------------------------------------------------------------------------------


@router.post(
    "/processes/{slug}/cases",
    response={200: IntakeOut, 201: IntakeOut, **_BATCH_ERRORS},
    summary="Send one case or a batch of up to 10,000 (all or nothing; known external_ids return "
    "the existing case)",
    description="201 when at least one case was created, 200 when every row already existed. "
    "A batch with any invalid row is rejected whole with `rows` listing every invalid row. "
    "With `orchestration=<slug>` (an orchestration of this process with a live version) the "
    "rows (up to 500, `external_id` and `fields` only) go through it instead, as items: "
    "`runs` carries each run, `cases` the case made for each routed item (null otherwise).",
    openapi_extra={"requestBody": CASES_BODY},
)
@_domain_errors
def create_cases(
    request: HttpRequest, slug: str, orchestration: str | None = None
) -> Status | JsonResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    body = _json_body(request)
    rows = body if isinstance(body, list) else [body]
    if orchestration is not None:
        status, answer = intake_through_orchestration(
            user=request.user, process=process, orchestration=orchestration, rows=rows
        )
        # IntakeOut plus `runs` (as is: the plain intake's answer has no `runs` key).
        return JsonResponse(answer, status=status)
    result = intake_services.create_cases(process=process, rows=rows)
    created = result.created_count
    return Status(
        201 if created else 200,
        {
            "created": created,
            "existing": len(result.cases) - created,
            "cases": [
                {"id": case.pk, "external_id": case.external_id, "created": was_created}
                for case, was_created in zip(result.cases, result.created, strict=True)
            ],
        },
    )


@router.post(
    "/processes/{slug}/decisions",
    response={201: ImportOut, **_BATCH_ERRORS},
    summary="Import historical decisions on existing cases (managers, admins; all or nothing)",
    openapi_extra={"requestBody": DECISIONS_BODY},
)
@_domain_errors
def import_decisions(request: HttpRequest, slug: str) -> Status:
    process = selectors.process_for_member(user=request.user, slug=slug)
    _require_manager(request, process)
    body = _json_body(request)
    if not isinstance(body, list):
        raise ValidationError("send a list of decisions")
    imported = intake_services.import_decisions(process=process, rows=body)
    return Status(201, {"imported": imported})


# --- cases --------------------------------------------------------------------------------------

_CASE_COLUMNS = (
    "id", "external_id", "status", "schema_version__version", "fields", "exception_reason",
    "exception_fields", "final_label", "final_reason_code", "decided_at", "created_at",
    "is_synthetic",
)  # fmt: skip


def _case_out(row: dict[str, Any]) -> dict[str, Any]:
    reason, at_fault = row["exception_reason"], row["exception_fields"]
    return {
        "id": row["id"],
        "external_id": row["external_id"],
        "status": row["status"],
        "schema_version": row["schema_version__version"],
        "fields": row["fields"],
        "exception": {"reason": reason, "fields": at_fault} if reason or at_fault else None,
        "final_label": row["final_label"],
        "final_reason_code": row["final_reason_code"],
        "decided_at": row["decided_at"],
        "created_at": row["created_at"],
        "is_synthetic": row["is_synthetic"],
    }


def _encode_cursor(created_at: datetime, pk: int) -> str:
    # URL-safe alphabet without padding: the cursor goes into a query string as it is.
    raw = f"{created_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        when = datetime.fromisoformat(created)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)), int(pk)
    except (ValueError, binascii.Error, UnicodeError):
        raise ValidationError(
            "cursor is not valid: pass next_cursor from the previous page unchanged"
        ) from None


def _aware(value: datetime | None) -> datetime | None:
    # A time without a zone is read as UTC, so the same query means the same thing everywhere.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get(
    "/processes/{slug}/cases",
    response={200: CasePage, **_ERRORS},
    summary="List a process's cases, newest first, with filters and cursor pagination",
    description="Times without a zone are read as UTC. Follow `next_cursor` until it is null.",
)
@_domain_errors
def list_cases(request: HttpRequest, slug: str, query: Query[CaseFilters]) -> dict[str, Any]:
    process = selectors.process_for_member(user=request.user, slug=slug)
    cases: QuerySet[Case] = Case.objects.filter(process=process)
    if query.status is not None:
        cases = cases.filter(status=query.status)
    if query.final_label is not None:
        cases = cases.filter(final_label=query.final_label)
    if query.external_id is not None:
        cases = cases.filter(external_id=query.external_id)
    if query.created_after is not None:
        cases = cases.filter(created_at__gt=_aware(query.created_after))
    if query.created_before is not None:
        cases = cases.filter(created_at__lt=_aware(query.created_before))
    if query.decided_after is not None:
        cases = cases.filter(decided_at__gt=_aware(query.decided_after))
    if query.cursor:
        after_created, after_pk = _decode_cursor(query.cursor)
        cases = cases.filter(
            Q(created_at__lt=after_created) | Q(created_at=after_created, pk__lt=after_pk)
        )
    # One extra row tells whether another page follows.
    rows = list(cases.order_by("-created_at", "-pk").values(*_CASE_COLUMNS)[: query.limit + 1])
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return {
        "items": [_case_out(row) for row in rows],
        "next_cursor": _encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None,
    }


def _decision_out(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "case_id": decision.case_id,
        "expert": decision.expert.username,
        "label": decision.label,
        "reason_code": decision.reason_code,
        "rationale": decision.rationale,
        "key_factors": decision.key_factors,
        "source": decision.source,
        "decided_at": decision.decided_at,
        "retracted_at": decision.retracted_at,
    }


@router.get(
    "/cases/{case_id}",
    response={200: CaseDetailOut, 404: ErrorOut},
    exclude_unset=True,
    summary="One case with its decisions and timeline (decisions hidden while review is blind)",
)
def get_case(request: HttpRequest, case_id: int) -> dict[str, Any]:
    case = selectors.case_for_member(user=request.user, case_id=case_id)
    visible = selectors.may_see_labels(user=request.user, case=case)
    row = {column: getattr(case, column) for column in _CASE_COLUMNS if "__" not in column}
    out = _case_out({**row, "schema_version__version": case.schema_version.version})
    out["process"] = case.process.slug
    out["labels_hidden"] = not visible
    if visible:
        decisions = case.decisions.select_related("expert").order_by("decided_at", "pk")
        out["decisions"] = [_decision_out(d) for d in decisions]
    out["timeline"] = [
        {
            "kind": event.kind,
            "actor": event.actor.username if event.actor else None,
            "at": event.at,
            "data": event.data
            if visible
            else {k: v for k, v in event.data.items() if k not in _LABEL_KEYS},
        }
        for event in selectors.case_timeline(case=case)
    ]
    return out


@router.post(
    "/cases/{case_id}/decisions",
    response={201: DecisionCreatedOut, **_ERRORS},
    summary="Decide a case (reviewers of its process); 409 when the case can't take it now",
)
@_domain_errors
def decide_case(request: HttpRequest, case_id: int, payload: DecisionIn) -> Status:
    case = selectors.case_for_member(user=request.user, case_id=case_id)
    if not selectors.can_review(user=request.user, process=case.process):
        raise HttpError(403, "Only the experts who review this process can decide its cases.")
    decision = decision_services.record_decision(
        case=case,
        expert=request.user,
        label=payload.label,
        reason_code=payload.reason_code,
        rationale=payload.rationale,
        key_factors=payload.key_factors,
        source=DecisionSource.API,
    )
    status = Case.objects.filter(pk=case.pk).values_list("status", flat=True).get()
    return Status(201, {**_decision_out(decision), "case_status": status})


# --- export -------------------------------------------------------------------------------------


@router.get(
    "/processes/{slug}/export",
    response={200: None, 404: ErrorOut, 422: ErrorOut},
    summary="Export every case with its final decision as CSV or JSONL (streamed)",
    description="CSV: one column per schema field (all versions). JSONL: one case per line with "
    "the field values under `fields`.",
    openapi_extra={
        "responses": {
            200: {
                "description": "The export, as an attachment",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export_cases(
    request: HttpRequest, slug: str, query: Query[ExportQuery]
) -> HttpResponse | StreamingHttpResponse:
    process = selectors.process_for_member(user=request.user, slug=slug)
    if query.format not in FORMATS:
        return JsonResponse(
            {"detail": f"format must be {' or '.join(FORMATS)}, got {query.format!r}"}, status=422
        )
    return export_response(process=process, fmt=query.format)
