"""Configuring connectors: create, change, enable/disable, rotate the secret."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.connectors import signing
from apps.connectors.models import Connector, EventType
from apps.connectors.targets import check_target
from apps.people.models import Team

MAX_URL_LENGTH = 2000


def clean_event_types(event_types: list[str]) -> list[str]:
    """The event types, known ones only, without repeats; raises ValidationError otherwise."""
    if not event_types:
        raise ValidationError({"event_types": ["Choose at least one event type."]})
    known = set(EventType.values)
    unknown = [value for value in event_types if value not in known]
    if unknown:
        raise ValidationError(
            {
                "event_types": [
                    f"Unknown event type {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(EventType.values)}."
                ]
            }
        )
    return list(dict.fromkeys(event_types))


def clean_url(url: str) -> str:
    url = url.strip()
    if not url:
        raise ValidationError({"url": ["Give the endpoint's URL."]})
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError({"url": [f"At most {MAX_URL_LENGTH} characters."]})
    try:
        check_target(url)
    except ValidationError as exc:
        raise ValidationError({"url": exc.messages}) from None
    return url


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Give the connector a name."]})
    if len(name) > 120:
        raise ValidationError({"name": ["At most 120 characters."]})
    return name


def _save(connector: Connector) -> None:
    try:
        with transaction.atomic():
            connector.save()
    except IntegrityError:
        raise ValidationError(
            {"name": [f"The team already has a connector named {connector.name!r}."]}
        ) from None


def create_connector(
    *,
    team: Team,
    name: str,
    url: str,
    event_types: list[str],
    owner: AbstractBaseUser,
    description: str = "",
) -> Connector:
    """A new enabled connector with a fresh secret. Raises ValidationError for a bad name, event
    type or a URL the SSRF check refuses."""
    connector = Connector(
        team=team,
        name=_clean_name(name),
        url=clean_url(url),
        event_types=clean_event_types(event_types),
        owner=owner,
        description=description.strip(),
        secret=signing.new_secret(),
    )
    _save(connector)
    return connector


def update_connector(*, connector: Connector, values: dict[str, object]) -> Connector:
    """Change name, url, event_types, description or enabled (only the keys given). Enabling
    clears the reason it was disabled and its failure streak."""
    if "name" in values:
        connector.name = _clean_name(str(values["name"]))
    if "url" in values:
        connector.url = clean_url(str(values["url"]))
    if "event_types" in values:
        connector.event_types = clean_event_types(list(values["event_types"]))  # type: ignore[arg-type]
    if "description" in values:
        connector.description = str(values["description"]).strip()
    if "enabled" in values and bool(values["enabled"]) != connector.enabled:
        if values["enabled"]:
            connector.enabled = True
            connector.disabled_reason = ""
            connector.disabled_at = None
            connector.failing_since = None
        else:
            connector.enabled = False
            connector.disabled_reason = "Disabled by hand."
            connector.disabled_at = timezone.now()
    _save(connector)
    if connector.enabled:
        from apps.connectors.services.deliveries import nudge

        nudge(connector_ids=[connector.pk])  # a backlog held while disabled goes now
    return connector


def rotate_secret(*, connector: Connector, now: datetime | None = None) -> Connector:
    """A new secret; the current one keeps signing for ORCHCAP_WEBHOOK_SECRET_OVERLAP_HOURS
    (both signatures are sent meanwhile). Returns the connector with its new `secret`."""
    now = now or timezone.now()
    overlap = timedelta(hours=settings.ORCHCAP_WEBHOOK_SECRET_OVERLAP_HOURS)
    connector.previous_secret = connector.secret if overlap else ""
    connector.previous_secret_expires_at = now + overlap if overlap else None
    connector.secret = signing.new_secret()
    connector.secret_rotated_at = now
    connector.save(
        update_fields=[
            "previous_secret",
            "previous_secret_expires_at",
            "secret",
            "secret_rotated_at",
            "updated_at",
        ]
    )
    return connector


def signing_secrets(connector: Connector, now: datetime) -> list[str]:
    """The secrets that sign a message sent now: the current one, and the previous one while its
    overlap lasts."""
    valid = [connector.secret]
    expires = connector.previous_secret_expires_at
    if connector.previous_secret and expires and expires > now:
        valid.append(connector.previous_secret)
    return valid
