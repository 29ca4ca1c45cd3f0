"""Connectors API: a team's managers and admins configure webhook endpoints, read their delivery
logs, redeliver and replay. Everyone else gets 404 (they learn nothing about a team's
connectors)."""

from datetime import UTC
from typing import Literal

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError

from apps.connectors import selectors
from apps.connectors.errors import DeliveryConflict
from apps.connectors.models import Connector, Delivery
from apps.connectors.schemas import (
    AttemptOut,
    ConnectorIn,
    ConnectorOut,
    ConnectorPatch,
    ConnectorSecretOut,
    DeliveriesOut,
    DeliveryOut,
    ErrorOut,
    ReplayIn,
    ReplayOut,
)
from apps.connectors.services import connectors, deliveries
from apps.core.api import validation_errors

router = Router(tags=["connectors"])
_ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def connector_out(connector: Connector, *, secret: bool = False) -> ConnectorOut:
    """`connector` as read by the selectors (with its backlog and dead counts)."""
    values = {
        "id": connector.pk,
        "team": connector.team.slug,
        "name": connector.name,
        "description": connector.description,
        "url": connector.url,
        "event_types": connector.event_types,
        "owner": connector.owner.get_username() if connector.owner else None,
        "enabled": connector.enabled,
        "disabled_reason": connector.disabled_reason,
        "disabled_at": connector.disabled_at,
        "failing_since": connector.failing_since,
        "last_success_at": connector.last_success_at,
        "secret_rotated_at": connector.secret_rotated_at,
        "previous_secret_expires_at": connector.previous_secret_expires_at,
        "backlog": getattr(connector, "backlog", 0),
        "dead": getattr(connector, "dead", 0),
        "created_at": connector.created_at,
    }
    if secret:
        return ConnectorSecretOut(**values, secret=connector.secret)
    return ConnectorOut(**values)


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.pk,
        connector=delivery.connector_id,
        webhook_id=delivery.webhook_id,
        event_type=delivery.event_type,
        payload=delivery.payload,
        state=delivery.state,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at
        if delivery.state in ("queued", "failed")
        else None,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        recent_attempts=[
            AttemptOut(
                started_at=a.started_at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                response_snippet=a.response_snippet,
                error=a.error,
            )
            for a in getattr(delivery, "recent_attempts", [])
        ],
    )


def _reloaded(request: HttpRequest, connector_id: int) -> Connector:
    return selectors.connector_for(user=request.user, connector_id=connector_id)


@router.get(
    "/connectors",
    response={200: list[ConnectorOut], **_ERRORS},
    summary="The connectors of the teams you manage (backlog and dead-letter counts)",
)
def list_connectors(request: HttpRequest, team: str | None = None) -> list[ConnectorOut]:
    scope = selectors.managed_team(user=request.user, slug=team) if team else None
    return [connector_out(c) for c in selectors.connectors_for(user=request.user, team=scope)]


@router.post(
    "/connectors",
    response={201: ConnectorSecretOut, **_ERRORS},
    summary="Add a webhook endpoint to a team you manage (the answer shows its secret once)",
)
@validation_errors
def create_connector(request: HttpRequest, payload: ConnectorIn) -> Status:
    team = selectors.managed_team(user=request.user, slug=payload.team)
    connector = connectors.create_connector(
        team=team,
        name=payload.name,
        url=payload.url,
        event_types=payload.event_types,
        description=payload.description,
        owner=request.user,
    )
    return Status(201, connector_out(_reloaded(request, connector.pk), secret=True))


@router.get(
    "/connectors/{connector_id}",
    response={200: ConnectorOut, **_ERRORS},
    summary="One connector",
)
def get_connector(request: HttpRequest, connector_id: int) -> ConnectorOut:
    return connector_out(_reloaded(request, connector_id))


@router.patch(
    "/connectors/{connector_id}",
    response={200: ConnectorOut, **_ERRORS},
    summary="Change a connector's name, URL, event types, description, or enable/disable it",
)
@validation_errors
def patch_connector(
    request: HttpRequest, connector_id: int, payload: ConnectorPatch
) -> ConnectorOut:
    connector = _reloaded(request, connector_id)
    values = payload.dict(exclude_unset=True)
    if any(value is None for value in values.values()):
        raise HttpError(422, "Fields given must have a value (leave out what doesn't change).")
    connectors.update_connector(connector=connector, values=values)
    return connector_out(_reloaded(request, connector_id))


@router.post(
    "/connectors/{connector_id}/rotate-secret",
    response={200: ConnectorSecretOut, **_ERRORS},
    summary="A new signing secret; the old one keeps signing during the overlap "
    "(ORCHCAP_WEBHOOK_SECRET_OVERLAP_HOURS), both signatures sent",
)
def rotate_secret(request: HttpRequest, connector_id: int) -> ConnectorSecretOut:
    connector = connectors.rotate_secret(connector=_reloaded(request, connector_id))
    return connector_out(_reloaded(request, connector.pk), secret=True)


class DeliveryFilter(Schema):
    state: Literal["queued", "delivering", "delivered", "failed", "dead"] | None = None
    limit: int = 50
    offset: int = 0


@router.get(
    "/connectors/{connector_id}/deliveries",
    response={200: DeliveriesOut, **_ERRORS},
    summary="The delivery log, newest first, with each delivery's latest attempts; "
    "`state=dead` is the dead-letter list",
)
def list_deliveries(
    request: HttpRequest, connector_id: int, filters: Query[DeliveryFilter]
) -> DeliveriesOut | JsonResponse:
    connector = _reloaded(request, connector_id)
    if not 1 <= filters.limit <= 200 or filters.offset < 0:
        return JsonResponse(
            {"detail": "limit must be from 1 to 200 and offset at least 0."}, status=422
        )
    page = selectors.delivery_log(
        connector=connector, state=filters.state, limit=filters.limit, offset=filters.offset
    )
    total = Delivery.objects.filter(connector=connector)
    if filters.state:
        total = total.filter(state=filters.state)
    return DeliveriesOut(count=total.count(), items=[delivery_out(d) for d in page])


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    response={202: DeliveryOut, 409: ErrorOut, **_ERRORS},
    summary="Send a delivery again now (same webhook-id); 409 when it is already on its way or "
    "the connector is disabled",
)
def redeliver(request: HttpRequest, delivery_id: int) -> Status:
    delivery = selectors.delivery_for(user=request.user, delivery_id=delivery_id)
    try:
        delivery = deliveries.redeliver(delivery=delivery)
    except DeliveryConflict as exc:
        raise HttpError(409, str(exc)) from None
    return Status(202, delivery_out(delivery))


@router.post(
    "/connectors/{connector_id}/replay",
    response={202: ReplayOut, 409: ErrorOut, **_ERRORS},
    summary="Send again the deliveries created in a time range (`only_dead`: the dead ones), "
    "in their original order",
)
@validation_errors
def replay(request: HttpRequest, connector_id: int, payload: ReplayIn) -> Status:
    connector = _reloaded(request, connector_id)
    since, until = (
        value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
        for value in (payload.since, payload.until)
    )
    try:
        count = deliveries.replay(
            connector=connector, since=since, until=until, only_dead=payload.only_dead
        )
    except DeliveryConflict as exc:
        raise HttpError(409, str(exc)) from None
    return Status(202, ReplayOut(requeued=count))
