"""Writes: notify people (in the app and by email, as each prefers), mark read, set preferences."""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from apps.notifications.models import Kind, Notification, Preference

log = logging.getLogger(__name__)
TITLE_MAX = 200


def notify(
    *,
    recipients: Iterable[AbstractBaseUser],
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
) -> list[Notification]:
    """Tell each active recipient (each once) about something of `kind`, as they prefer: a row
    shown in the app, an email sent after the caller's transaction commits (to those with an
    address), or both. A row is written whenever either is wanted (`in_app` says whether the
    app shows it), so that an email is recorded too. Returns those rows.
    ValidationError for an unknown kind."""
    if kind not in Kind.values:
        raise ValidationError(f"Unknown notification kind {kind!r}.")
    people = {user.pk: user for user in recipients if user is not None and user.is_active}
    if not people:
        return []
    chosen = {p.user_id: p for p in Preference.objects.filter(user_id__in=list(people), kind=kind)}
    now = timezone.now()
    rows: list[Notification] = []
    wants_email: set[int] = set()
    for pk in sorted(people):
        preference = chosen.get(pk)
        in_app = preference.in_app if preference else True
        by_email = (preference.email if preference else True) and bool(people[pk].email)
        if not in_app and not by_email:
            continue
        if by_email:
            wants_email.add(pk)
        rows.append(
            Notification(
                recipient_id=pk, kind=kind, title=title[:TITLE_MAX], body=body, url=url,
                created_at=now, in_app=in_app,
            )
        )  # fmt: skip
    rows = Notification.objects.bulk_create(rows)
    emails = [row.pk for row in rows if row.recipient_id in wants_email]
    if emails:
        transaction.on_commit(lambda: send_emails(notification_ids=emails))
    return rows


def absolute_url(path: str) -> str:
    if not path or "://" in path:
        return path
    return settings.ORCHCAP_BASE_URL.rstrip("/") + path


def send_emails(*, notification_ids: list[int]) -> int:
    """Email these notifications (one connection for all) and mark them emailed. A failure is
    logged, never raised: the notification stays in the app. Returns how many were sent."""
    rows = list(
        Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True)
        .select_related("recipient")
        .order_by("pk")
    )
    messages = []
    for row in rows:
        text = row.body
        if row.url:
            text = f"{text}\n\n{absolute_url(row.url)}".strip()
        text += "\n\n(Choose what orchcap emails you on your notification preferences page.)"
        messages.append(EmailMessage(f"orchcap: {row.title}", text, None, [row.recipient.email]))
    if not messages:
        return 0
    try:
        sent = get_connection().send_messages(messages) or 0
    except Exception as exc:
        log.warning("notification emails not sent (%s: %s)", type(exc).__name__, exc)
        return 0
    Notification.objects.filter(pk__in=[row.pk for row in rows]).update(emailed_at=timezone.now())
    return sent


def mark_read(*, user: AbstractBaseUser, notification: Notification) -> Notification:
    """Mark one of `user`'s notifications read (already read: unchanged)."""
    if notification.recipient_id != user.pk:
        raise ValidationError("Not your notification.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=notification.read_at
        )
    return notification


def mark_all_read(*, user: AbstractBaseUser) -> int:
    """Mark every unread notification of `user` read; returns how many."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def set_preferences(
    *, user: AbstractBaseUser, choices: dict[str, dict[str, bool]]
) -> list[Preference]:
    """Set `user`'s choice for the given kinds: {kind: {"in_app": bool, "email": bool}} (a kind
    left out keeps its choice). ValidationError for an unknown kind or a value not a boolean."""
    for kind, choice in choices.items():
        if kind not in Kind.values:
            raise ValidationError(
                f"Unknown notification kind {kind!r}; one of {', '.join(Kind.values)}."
            )
        if set(choice) - {"in_app", "email"}:
            raise ValidationError(f"{kind}: only in_app and email can be set.")
        if not all(isinstance(value, bool) for value in choice.values()):
            raise ValidationError(f"{kind}: in_app and email are true or false.")
    saved = []
    with transaction.atomic():
        for kind in sorted(choices):
            preference, _ = Preference.objects.update_or_create(
                user=user, kind=kind, defaults=choices[kind]
            )
            saved.append(preference)
    return saved
