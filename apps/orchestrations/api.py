"""Orchestrations API: a team's managers and admins create orchestrations and versions, move
versions between stages and roll back; its experts read; everyone else gets 404."""

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, JsonResponse
from ninja import Query, Router, Status
from ninja.errors import HttpError

from apps.cases.services.intake import BatchInvalid
from apps.connectors.models import Delivery
from apps.connectors.selectors import deliveries_of_run
from apps.core.api import load_json, reason_of, validation_errors
from apps.orchestrations import inbound, selectors, services, site
from apps.orchestrations.errors import StageConflict
from apps.orchestrations.models import (
    Orchestration,
    OrchestrationVersion,
    Run,
    RunState,
    SiteChange,
    StageChange,
)
from apps.orchestrations.schemas import (
    ITEMS_BODY,
    AcceptedOut,
    BatchErrorOut,
    DeliveryAttemptOut,
    DiffOut,
    ErrorOut,
    ItemsOut,
    OrchestrationDetailOut,
    OrchestrationFiguresOut,
    OrchestrationIn,
    OrchestrationPatchIn,
    OrchestrationSummaryOut,
    RollbackIn,
    RunDeliveryOut,
    RunDetailOut,
    RunFilters,
    RunOut,
    RunPage,
    RunStepOut,
    SiteChangeOut,
    StageChangeOut,
    StageIn,
    VersionIn,
    VersionOut,
)
from apps.orchestrations.selectors_overview import with_figures

router = Router(tags=["orchestrations"])
_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _username(user: object) -> str | None:
    return user.get_username() if user is not None else None


def version_out(version: OrchestrationVersion) -> VersionOut:
    return VersionOut(
        number=version.number,
        stage=version.stage,
        canary_share=version.canary_share,
        exception_filter=version.exception_filter,
        rules=version.rules,
        model_version=version.model_version.version if version.model_version else None,
        autonomy_level=version.autonomy_level,
        threshold=version.threshold,
        audit_rate=version.audit_rate,
        routes=version.routes,
        connectors=version.connector_ids,
        sla_minutes=version.sla_minutes,
        created_by=_username(version.created_by),
        created_at=version.created_at,
        stage_changed_at=version.stage_changed_at,
    )


def change_out(change: StageChange) -> StageChangeOut:
    return StageChangeOut(
        version=change.version.number,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        canary_share=change.canary_share,
        reason=change.reason,
        rollback=change.rollback,
        actor=_username(change.actor),
        at=change.created_at,
    )


def site_change_out(change: SiteChange) -> SiteChangeOut:
    return SiteChangeOut(
        from_site=change.from_site,
        to_site=change.to_site,
        reason=change.reason,
        actor=_username(change.actor),
        at=change.created_at,
    )


def orchestration_out(orchestration: Orchestration) -> dict:
    live = orchestration.live_versions[0] if orchestration.live_versions else None
    return {
        "slug": orchestration.slug,
        "name": orchestration.name,
        "team": orchestration.team.slug,
        "process": orchestration.process.slug,
        "owner": _username(orchestration.owner),
        "site": orchestration.site,
        "live_version": live.number if live else None,
        "versions": orchestration.version_count,
        "created_at": orchestration.created_at,
    }


def _detail(request: HttpRequest, slug: str) -> OrchestrationDetailOut:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    return OrchestrationDetailOut(
        **orchestration_out(orchestration),
        site_nodes=site.nodes_at_site(site=orchestration.site) if orchestration.site else None,
        version_list=[version_out(v) for v in selectors.versions_of(orchestration=orchestration)],
        stage_log=[change_out(c) for c in selectors.stage_log(orchestration=orchestration)],
        site_log=[site_change_out(c) for c in site.site_log(orchestration=orchestration)],
    )


def _managed(request: HttpRequest, slug: str) -> Orchestration:
    """The orchestration for a write: 404 when the caller can't see it, 403 when they only read."""
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    if not selectors.can_manage(user=request.user, orchestration=orchestration):
        raise HttpError(403, "Only the team's managers and admins change orchestrations.")
    return orchestration


@router.get(
    "/orchestrations",
    response={200: list[OrchestrationSummaryOut], **_ERRORS},
    summary="The orchestrations of your teams: stage, live version and today's figures (the "
    "list page's)",
)
def list_orchestrations(request: HttpRequest) -> list[dict]:
    orchestrations = list(selectors.orchestrations_for(user=request.user))
    return [
        {
            **orchestration_out(o),
            "stages": [
                f"v{v.number} {v.stage}" + (f" {v.canary_share:.2f}" if v.canary_share else "")
                for v in o.deployed_versions
            ],
            "figures": OrchestrationFiguresOut(
                items_today=o.figures.items_today,
                finished_today=o.figures.finished_today,
                straight_through_share=o.figures.straight_through_share,
                waiting_for_people=o.figures.waiting_for_people,
                sla_breaches=o.figures.sla_breaches,
                failing_deliveries=o.figures.failing_deliveries,
                dead_deliveries=o.figures.dead_deliveries,
            ),
        }
        for o in with_figures(orchestrations)
    ]


@router.post(
    "/orchestrations",
    response={201: OrchestrationDetailOut, **_ERRORS},
    summary="Create an orchestration of a process your team manages (no versions yet)",
)
@validation_errors
def create_orchestration(request: HttpRequest, payload: OrchestrationIn) -> Status:
    process = selectors.managed_process(user=request.user, slug=payload.process)
    orchestration = services.create_orchestration(
        process=process, slug=payload.slug, name=payload.name, owner=request.user
    )
    return Status(201, _detail(request, orchestration.slug))


@router.get(
    "/orchestrations/{slug}",
    response={200: OrchestrationDetailOut, **_ERRORS},
    summary="One orchestration with its versions (newest first) and stage log",
)
def get_orchestration(request: HttpRequest, slug: str) -> OrchestrationDetailOut:
    return _detail(request, slug)


@router.patch(
    "/orchestrations/{slug}",
    response={200: OrchestrationDetailOut, **_ERRORS},
    summary="Pin the orchestration to a site, saying why (organisation admins; 403 for anyone "
    "else, 422 for a malformed site or a change without a reason); logged in `site_log`",
)
@validation_errors
def update_orchestration(
    request: HttpRequest, slug: str, payload: OrchestrationPatchIn
) -> OrchestrationDetailOut:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    try:
        site.set_site(
            orchestration=orchestration,
            site=payload.site,
            actor=request.user,
            reason=payload.reason,
        )
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    return _detail(request, slug)


@router.post(
    "/orchestrations/{slug}/versions",
    response={201: VersionOut, **_ERRORS},
    summary="A new draft version: its components, or `from_version`'s with the fields given "
    "changed; refused (422) above the autonomy the process has earned",
)
@validation_errors
def create_version(request: HttpRequest, slug: str, payload: VersionIn) -> Status:
    orchestration = _managed(request, slug)
    values = payload.dict(exclude_unset=True)
    base_number = values.pop("from_version", None)
    base = (
        selectors.version_of(orchestration=orchestration, number=base_number)
        if base_number is not None
        else None
    )
    version = services.create_version(
        orchestration=orchestration, actor=request.user, values=values, base=base
    )
    return Status(201, version_out(version))


@router.get(
    "/orchestrations/{slug}/versions/{number}",
    response={200: VersionOut, **_ERRORS},
    summary="One version with its pinned components",
)
def get_version(request: HttpRequest, slug: str, number: int) -> VersionOut:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    return version_out(selectors.version_of(orchestration=orchestration, number=number))


@router.post(
    "/orchestrations/{slug}/versions/{number}/stage",
    response={200: VersionOut, 409: ErrorOut, **_ERRORS},
    summary="Move a version to shadow, canary (with `canary_share`), live or retired; live "
    "retires the previous live version; 409 for a move its stage doesn't allow",
)
@validation_errors
def change_stage(request: HttpRequest, slug: str, number: int, payload: StageIn) -> VersionOut:
    orchestration = _managed(request, slug)
    version = selectors.version_of(orchestration=orchestration, number=number)
    try:
        version = services.change_stage(
            version=version,
            stage=payload.stage,
            actor=request.user,
            reason=payload.reason,
            canary_share=payload.canary_share,
        )
    except StageConflict as exc:
        raise HttpError(409, str(exc)) from None
    return version_out(version)


@router.post(
    "/orchestrations/{slug}/rollback",
    response={200: VersionOut, 409: ErrorOut, **_ERRORS},
    summary="Make an earlier version live again (the live one is retired), with a reason",
)
@validation_errors
def rollback(request: HttpRequest, slug: str, payload: RollbackIn) -> VersionOut:
    orchestration = _managed(request, slug)
    try:
        version = services.rollback(
            orchestration=orchestration, to_number=payload.to, actor=request.user,
            reason=payload.reason,
        )  # fmt: skip
    except StageConflict as exc:
        raise HttpError(409, str(exc)) from None
    return version_out(version)


@router.get(
    "/orchestrations/{slug}/diff",
    response={200: DiffOut, **_ERRORS},
    summary="What changes between two versions (components and settings)",
)
def diff(
    request: HttpRequest,
    slug: str,
    from_: int = Query(..., alias="from"),
    to: int = Query(...),
) -> DiffOut:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    old = selectors.version_of(orchestration=orchestration, number=from_)
    new = selectors.version_of(orchestration=orchestration, number=to)
    data = services.diff_versions(old=old, new=new)
    return DiffOut(
        from_version=data["from"],
        to_version=data["to"],
        components=data["components"],
        settings=data["settings"],
        routes=data["routes"],
        same=data["same"],
    )


# --- inbound items and runs ---------------------------------------------------------------------

MAX_WAIT_MS = 5000
_ITEM_PARAMETERS = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": 200},
        "description": "A re-send with the same key and body gets the first answer and starts "
        "no second run; the same key with another body is 422, while the first is in flight 409.",
    }
]


def run_out(run: Run, created: bool | None = None) -> RunOut:
    return RunOut(
        id=run.pk,
        external_id=run.external_id,
        version=run.version.number,
        state=run.state,
        outcome=run.outcome,
        label=run.label,
        reason_code=run.reason_code,
        decided_by=run.decided_by,
        confidence=run.confidence,
        routed_to=run.routed_to,
        due_by=run.due_by,
        case_id=run.case_id,
        callback=run.callback_id,
        received_at=run.received_at,
        finished_at=run.finished_at,
        created=created,
    )


def _inbound_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except BatchInvalid as exc:
            return JsonResponse({"detail": exc.message, "rows": exc.rows}, status=422)
        except ValidationError as exc:
            return JsonResponse({"detail": reason_of(exc)}, status=422)
        except inbound.KeyInFlight as exc:
            return JsonResponse({"detail": str(exc)}, status=409)

    return wrapper


@router.post(
    "/orchestrations/{slug}/items",
    response={
        200: ItemsOut, 201: ItemsOut, 202: AcceptedOut, 400: ErrorOut, 401: ErrorOut,
        403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: BatchErrorOut,
    },
    summary="Send one item or a list (up to 500) through the orchestration; known external_ids "
    "return their run",
    description="Each new item becomes a run of the live version (or the canary, by a stable "
    "hash of its external_id). With `wait_ms` the answer carries each run's outcome if every "
    "run reached one within `wait_ms` (201 when one was created, 200 when all were known); "
    "otherwise, and without it, 202 with the run ids. Any bad item "
    "rejects the whole request (422 with `rows`); nothing is recorded then.",
    openapi_extra={"requestBody": ITEMS_BODY, "parameters": _ITEM_PARAMETERS},
)  # fmt: skip
@_inbound_errors
def send_items(request: HttpRequest, slug: str, wait_ms: int | None = None) -> Any:
    orchestration = inbound.receiving_orchestration(user=request.user, slug=slug)
    if wait_ms is not None and not 0 <= wait_ms <= MAX_WAIT_MS:
        raise ValidationError(f"wait_ms: from 0 to {MAX_WAIT_MS}")
    body = load_json(request.body)
    items = body if isinstance(body, list) else [body]
    key = request.headers.get("Idempotency-Key", "").strip()
    received, stored = inbound.receive_items(
        orchestration=orchestration, items=items, idempotency_key=key,
        body_hash=inbound.body_hash(request.body), wait_ms=wait_ms,
    )  # fmt: skip
    if stored is not None:
        return JsonResponse(stored["body"], status=stored["status"])
    created = sum(received.created)
    answer: dict[str, Any] = {"created": created, "existing": len(received.runs) - created}
    # The outcomes when every run reached one within wait_ms, else 202 with the run ids.
    if wait_ms is None or any(run.state != RunState.FINISHED for run in received.runs):
        status = 202
        answer["run_ids"] = [run.pk for run in received.runs]
    else:
        status = 201 if created else 200
        answer["runs"] = [
            run_out(run, was_created).dict()
            for run, was_created in zip(received.runs, received.created, strict=True)
        ]
    response = JsonResponse(answer, status=status)
    if key:
        inbound.store_answer(
            orchestration=orchestration, key=key, status=status,
            body=json.loads(response.content),
        )  # fmt: skip
    return response


@router.get(
    "/orchestrations/{slug}/runs",
    response={200: RunPage, **_ERRORS},
    summary="The runs of an orchestration, newest first, by external_id, outcome, version, since",
    description="Follow `next_cursor` until it is null.",
)
@validation_errors
def list_runs(request: HttpRequest, slug: str, query: Query[RunFilters]) -> dict[str, Any]:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    before_id = None
    if query.cursor is not None:
        if not query.cursor.isdigit():
            raise ValidationError("cursor: pass next_cursor from the previous page unchanged")
        before_id = int(query.cursor)
    runs = list(
        selectors.runs_of(
            orchestration=orchestration, external_id=query.external_id, outcome=query.outcome,
            version=query.version, since=query.since, before_id=before_id,
        )[: query.limit + 1]
    )  # fmt: skip
    more = len(runs) > query.limit
    runs = runs[: query.limit]
    return {
        "runs": [run_out(run) for run in runs],
        "next_cursor": str(runs[-1].pk) if more else None,
    }


@router.get(
    "/orchestrations/{slug}/runs/{run_id}",
    response={200: RunDetailOut, **_ERRORS},
    summary="One run with its trace: the ordered steps and the component versions each used",
)
def get_run(request: HttpRequest, slug: str, run_id: int) -> RunDetailOut:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    run = selectors.run_of(orchestration=orchestration, run_id=run_id)
    return RunDetailOut(
        **run_out(run).dict(),
        fields=run.fields,
        steps=[
            RunStepOut(number=s.number, kind=s.kind, data=s.data, at=s.at) for s in run.steps.all()
        ],
        deliveries=[delivery_out(d) for d in deliveries_of_run(run_id=run.pk)],
    )


def delivery_out(delivery: Delivery) -> RunDeliveryOut:
    attempts = delivery.recent_attempts
    return RunDeliveryOut(
        id=delivery.pk,
        connector=delivery.connector_id,
        connector_name=delivery.connector.name,
        event_type=delivery.event_type,
        webhook_id=delivery.webhook_id,
        state=delivery.state,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        last_status=delivery.last_status,
        latency_ms=attempts[-1].latency_ms if attempts else None,
        recent_attempts=[
            DeliveryAttemptOut(
                started_at=a.started_at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error[:200],
            )
            for a in attempts
        ],
    )
