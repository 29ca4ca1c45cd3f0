"""Notifications API: your notifications (list, mark read) and your preferences. Everything is
the caller's own: someone else's notification is 404."""

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from apps.core.api import validation_errors
from apps.notifications import selectors, services
from apps.notifications.models import Notification
from apps.notifications.schemas import (
    ErrorOut,
    MarkedOut,
    NotificationOut,
    NotificationsOut,
    PreferenceIn,
    PreferenceOut,
)

router = Router(tags=["notifications"])
_ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class ListFilter(Schema):
    unread: bool = Field(False, description="Only unread notifications.")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


def notification_out(row: Notification) -> NotificationOut:
    return NotificationOut(
        id=row.pk, kind=row.kind, title=row.title, body=row.body, url=row.url,
        created_at=row.created_at, read_at=row.read_at, emailed_at=row.emailed_at,
    )  # fmt: skip


@router.get(
    "/notifications",
    response={200: NotificationsOut, **_ERRORS},
    summary="Your notifications, newest first, with the unread count",
)
def list_notifications(request: HttpRequest, filters: Query[ListFilter]) -> NotificationsOut:
    rows = selectors.notifications_for(user=request.user, unread=filters.unread)
    return NotificationsOut(
        unread=selectors.unread_count(user=request.user),
        count=rows.count(),
        items=[
            notification_out(row) for row in rows[filters.offset : filters.offset + filters.limit]
        ],
    )


@router.post(
    "/notifications/read-all",
    response={200: MarkedOut, **_ERRORS},
    summary="Mark all your notifications read",
)
def read_all(request: HttpRequest) -> MarkedOut:
    return MarkedOut(marked=services.mark_all_read(user=request.user))


@router.post(
    "/notifications/{notification_id}/read",
    response={200: NotificationOut, **_ERRORS},
    summary="Mark one of your notifications read",
)
def read_one(request: HttpRequest, notification_id: int) -> NotificationOut:
    row = selectors.notification_for(user=request.user, notification_id=notification_id)
    return notification_out(services.mark_read(user=request.user, notification=row))


def _preferences(request: HttpRequest) -> list[PreferenceOut]:
    return [
        PreferenceOut(kind=row.kind, label=row.label, in_app=row.in_app, email=row.email)
        for row in selectors.preferences_for(user=request.user)
    ]


@router.get(
    "/notifications/preferences",
    response={200: list[PreferenceOut], **_ERRORS},
    summary="Your choice for each kind: in the app, by email",
)
def get_preferences(request: HttpRequest) -> list[PreferenceOut]:
    return _preferences(request)


@router.put(
    "/notifications/preferences",
    response={200: list[PreferenceOut], **_ERRORS},
    summary="Set your choice for the kinds given (the others keep theirs)",
)
@validation_errors
def put_preferences(request: HttpRequest, payload: list[PreferenceIn]) -> list[PreferenceOut]:
    services.set_preferences(
        user=request.user,
        choices={p.kind: {"in_app": p.in_app, "email": p.email} for p in payload},
    )
    return _preferences(request)
