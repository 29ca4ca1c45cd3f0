"""Autonomy API: read a process's level and the gate's evidence, start shadow mode, promote through
the gate (422 with what is missing), demote, change the settings."""

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from ninja import Router
from ninja.errors import HttpError

from apps.autonomy import selectors
from apps.autonomy.models import Level, ProcessAutonomy
from apps.autonomy.schemas import (
    AutonomyOut,
    ChangeOut,
    DemoteIn,
    ErrorOut,
    GateErrorOut,
    PromoteIn,
    SettingsIn,
    SettingsOut,
    ShadowIn,
)
from apps.autonomy.services import gate, levels, shadow
from apps.cases import selectors as case_selectors
from apps.cases.models import Process
from apps.core.api import reason_of, validation_errors

router = Router(tags=["autonomy"])
_ERRORS = {403: ErrorOut, 404: ErrorOut, 422: GateErrorOut}


def _process(request: HttpRequest, slug: str, *, manage: bool = False) -> Process:
    process = case_selectors.process_for_member(user=request.user, slug=slug)
    if not selectors.can_view_autonomy(user=request.user, process=process):
        raise HttpError(403, "Only the team's experts, managers and admins see autonomy levels.")
    if manage and not selectors.can_manage_autonomy(user=request.user, process=process):
        raise HttpError(403, "Only the team's managers and admins change autonomy levels.")
    return process


def autonomy_out(process: Process) -> AutonomyOut:
    autonomy: ProcessAutonomy = selectors.autonomy_of(process=process)
    upcoming = selectors.next_level(autonomy=autonomy)
    evidence = gate.evaluate(process=process, target=upcoming) if upcoming else None
    return AutonomyOut(
        process=process.slug,
        level=autonomy.level,
        level_name=autonomy.level_name,
        level_since=autonomy.level_since,
        target=autonomy.target,
        target_name=autonomy.target_name,
        shadow_started_at=autonomy.shadow_started_at,
        settings=SettingsOut(
            threshold=autonomy.threshold,
            target_precision=autonomy.target_precision,
            min_shadow=autonomy.min_shadow,
            audit_rate=autonomy.audit_rate,
            audit_window=autonomy.audit_window,
            min_audits=autonomy.min_audits,
            routes=autonomy.routes or {},
        ),
        next_level=upcoming,
        evidence=evidence,
        missing=evidence["missing"] if evidence else [],
        passed=evidence["passed"] if evidence else None,
        audits=shadow.audit_status(autonomy=autonomy) if autonomy.level == Level.DECIDE else None,
        history=[
            ChangeOut(
                kind=change.kind,
                from_level=change.from_level,
                to_level=change.to_level,
                target=change.target,
                actor=change.actor_name,
                reason=change.reason,
                evidence=change.evidence,
                at=change.at,
            )
            for change in selectors.autonomy_history(process=process, limit=20)
        ],
    )


@router.get(
    "/processes/{slug}/autonomy",
    response={200: AutonomyOut, **_ERRORS},
    summary="The process's autonomy level, target, and the gate's evidence for the next level",
)
def get_autonomy(request: HttpRequest, slug: str) -> AutonomyOut:
    return autonomy_out(_process(request, slug))


@router.post(
    "/processes/{slug}/autonomy/promote",
    response={200: AutonomyOut, **_ERRORS},
    summary="Promote to a level: 422 with what is missing when the gate does not pass",
)
def promote(request: HttpRequest, slug: str, payload: PromoteIn) -> AutonomyOut | JsonResponse:
    process = _process(request, slug, manage=True)
    try:
        levels.promote_autonomy(
            process=process, level=payload.level, actor=request.user, reason=payload.reason
        )
    except levels.GateFailed as exc:
        return JsonResponse(
            {
                "detail": reason_of(exc),
                "missing": exc.evidence["missing"],
                "evidence": exc.evidence,
            },
            status=422,
        )
    except ValidationError as exc:
        return JsonResponse({"detail": reason_of(exc), "missing": []}, status=422)
    return autonomy_out(process)


@router.post(
    "/processes/{slug}/autonomy/demote",
    response={200: AutonomyOut, **_ERRORS},
    summary="Demote to a lower level (always allowed, with a reason)",
)
@validation_errors
def demote(request: HttpRequest, slug: str, payload: DemoteIn) -> AutonomyOut:
    process = _process(request, slug, manage=True)
    levels.demote_autonomy(
        process=process, level=payload.level, actor=request.user, reason=payload.reason
    )
    return autonomy_out(process)


@router.post(
    "/processes/{slug}/autonomy/shadow",
    response={200: AutonomyOut, **_ERRORS},
    summary="Start shadow mode towards a level (backfills the open cases)",
)
@validation_errors
def start_shadow(request: HttpRequest, slug: str, payload: ShadowIn) -> AutonomyOut:
    process = _process(request, slug, manage=True)
    levels.start_shadow(
        process=process, target=payload.target, actor=request.user, reason=payload.reason
    )
    return autonomy_out(process)


@router.put(
    "/processes/{slug}/autonomy/settings",
    response={200: AutonomyOut, **_ERRORS},
    summary="Change the threshold, target precision, shadow minimum, audit settings or routes",
)
@validation_errors
def update_settings(request: HttpRequest, slug: str, payload: SettingsIn) -> AutonomyOut:
    process = _process(request, slug, manage=True)
    levels.update_autonomy_settings(
        process=process, actor=request.user, values=payload.dict(exclude_unset=True)
    )
    return autonomy_out(process)
