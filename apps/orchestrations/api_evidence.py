"""Champion/challenger and publishing evidence in the API: the team's experts read, its managers
and admins set the challenger and promote it; everyone else gets 404."""

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.errors import HttpError

from apps.core.api import validation_errors
from apps.orchestrations import challenger, evidence, selectors
from apps.orchestrations.api import version_out
from apps.orchestrations.errors import StageConflict
from apps.orchestrations.models import ChallengerEvent, Orchestration
from apps.orchestrations.schemas import ErrorOut, VersionOut
from apps.orchestrations.schemas_evidence import (
    ChallengerEventOut,
    ChallengerFilters,
    ChallengerIn,
    ChallengerOut,
    EvidenceOut,
    PromoteIn,
)

router = Router(tags=["orchestrations"])
_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _managed(request: HttpRequest, slug: str) -> Orchestration:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    if not selectors.can_manage(user=request.user, orchestration=orchestration):
        raise HttpError(403, "Only the team's managers and admins change orchestrations.")
    return orchestration


def _event_out(event: ChallengerEvent) -> ChallengerEventOut:
    return ChallengerEventOut(
        action=event.action,
        model_version=event.model_version.version if event.model_version else None,
        draft=event.draft.number if event.draft else None,
        actor=event.actor.get_username() if event.actor else None,
        reason=event.reason,
        at=event.created_at,
    )


def challenger_out(
    orchestration: Orchestration, filters: ChallengerFilters | None = None
) -> ChallengerOut:
    since, until = evidence.clean_period(
        filters.since if filters else None, filters.until if filters else None
    )
    comparison = evidence.challenger_comparison(
        orchestration=orchestration, since=since, until=until,
        model_version=filters.model_version if filters else None,
    )  # fmt: skip
    live = selectors.live_version(orchestration=orchestration)
    current = orchestration.challenger
    return ChallengerOut(
        challenger=current.version if current else None,
        challenger_since=orchestration.challenger_since,
        live_model_version=live.model_version.version if live and live.model_version else None,
        comparison=evidence.as_data(comparison),
        log=[_event_out(e) for e in challenger.challenger_log(orchestration=orchestration)],
    )


@router.get(
    "/orchestrations/{slug}/challenger",
    response={200: ChallengerOut, **_ERRORS},
    summary="The challenger model against the live version's model on the same items: "
    "agreement, precision against experts' outcomes, coverage at the threshold, per label",
    description="Over [since, until) (default: the last 30 days). Every figure is a share with "
    "its count, total and 95 % interval; `small_sample` below 30. `model_version` compares an "
    "earlier challenger.",
)
@validation_errors
def get_challenger(
    request: HttpRequest, slug: str, filters: Query[ChallengerFilters]
) -> ChallengerOut:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    return challenger_out(orchestration, filters)


@router.post(
    "/orchestrations/{slug}/challenger",
    response={200: ChallengerOut, **_ERRORS},
    summary="Set the challenger model version (null clears it); logged with the reason",
)
@validation_errors
def set_challenger(request: HttpRequest, slug: str, payload: ChallengerIn) -> ChallengerOut:
    orchestration = _managed(request, slug)
    orchestration = challenger.set_challenger(
        orchestration=orchestration, model_version=payload.model_version, actor=request.user,
        reason=payload.reason,
    )  # fmt: skip
    return challenger_out(orchestration)


@router.post(
    "/orchestrations/{slug}/challenger/promote",
    response={201: VersionOut, 409: ErrorOut, **_ERRORS},
    summary="A new draft version: the live version's components with the challenger as model",
    description="At the highest autonomy level the process has earned with that model (a level "
    "earned with another model starts lower; the log says so). The draft then goes the normal "
    "way: shadow, canary, live. 409 without a challenger or a live version.",
)
@validation_errors
def promote_challenger(request: HttpRequest, slug: str, payload: PromoteIn) -> Status:
    orchestration = _managed(request, slug)
    since, until = evidence.clean_period(None, None)
    seen = evidence.challenger_comparison(orchestration=orchestration, since=since, until=until)
    try:
        draft = challenger.promote_challenger(
            orchestration=orchestration, actor=request.user, reason=payload.reason,
            evidence=evidence.as_data(seen),
        )  # fmt: skip
    except StageConflict as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, version_out(draft))


@router.get(
    "/orchestrations/{slug}/versions/{number}/evidence",
    response={200: EvidenceOut, **_ERRORS},
    summary="Publishing evidence for a version: in shadow (its would-be answers on live items) "
    "and as a canary (its own runs beside the live version's), against experts' outcomes",
)
def get_evidence(request: HttpRequest, slug: str, number: int) -> EvidenceOut:
    orchestration = selectors.orchestration_for(user=request.user, slug=slug)
    version = selectors.version_of(orchestration=orchestration, number=number)
    return evidence.as_data(evidence.version_evidence(version=version))
