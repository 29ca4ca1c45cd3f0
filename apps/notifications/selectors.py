"""Reads: a person's notifications, the bell's count, their preferences."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from apps.notifications.models import Kind, Notification, Preference

# The bell shows "99+" beyond this: the count stops there, so it stays cheap however many wait.
BELL_CAP = 99


def notifications_for(*, user: AbstractBaseUser, unread: bool = False) -> QuerySet[Notification]:
    """`user`'s notifications shown in the app, newest first."""
    rows = Notification.objects.filter(recipient=user, in_app=True)
    if unread:
        rows = rows.filter(read_at__isnull=True)
    return rows.order_by("-id")


def notification_for(*, user: AbstractBaseUser, notification_id: int) -> Notification:
    """One of `user`'s notifications; Http404 for anyone else's (they learn nothing of it)."""
    found = Notification.objects.filter(pk=notification_id, recipient=user, in_app=True).first()
    if found is None:
        raise Http404("No such notification.")
    return found


def unread_count(*, user: AbstractBaseUser) -> int:
    """Unread in-app notifications of `user`, counted up to BELL_CAP + 1 (one query on the
    partial index notification_unread_idx)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM notifications_notification "
            "WHERE recipient_id = %s AND read_at IS NULL AND in_app LIMIT %s) AS unread",
            [user.pk, BELL_CAP + 1],
        )
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class PreferenceRow:
    kind: str
    label: str
    in_app: bool
    email: bool


def preferences_for(*, user: AbstractBaseUser) -> list[PreferenceRow]:
    """Every kind with `user`'s choice (the default, in the app and by email, where none)."""
    chosen = {p.kind: p for p in Preference.objects.filter(user=user)}
    return [
        PreferenceRow(
            kind=kind,
            label=label,
            in_app=chosen[kind].in_app if kind in chosen else True,
            email=chosen[kind].email if kind in chosen else True,
        )
        for kind, label in Kind.choices
    ]
