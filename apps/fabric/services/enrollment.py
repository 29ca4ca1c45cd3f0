"""Enrolment tokens, enrolling a machine, and authenticating a node by its credential."""

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.fabric import availability
from apps.fabric.errors import EnrollmentRefused, NodeRefused
from apps.fabric.models import (
    ComputeNode,
    EnrollmentToken,
    NodeClass,
    NodeEventKind,
    NodeState,
)
from apps.fabric.services.history import record_event
from apps.people.models import Team

TOKEN_PREFIX = "oce_"  # noqa: S105 (a visible prefix, not a secret)
CREDENTIAL_PREFIX = "ocn_"
MAX_TOKEN_LIFETIME = timedelta(days=30)
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
LABEL_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MAX_LABELS = 32
MAX_JSON_CHARS = 20_000


def hash_secret(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """ "90m", "24h", "7d" → timedelta; ValidationError for anything else."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValidationError(f"expiry must look like 30m, 24h or 7d, got {text!r}")
    delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if delta < timedelta(minutes=1) or delta > MAX_TOKEN_LIFETIME:
        raise ValidationError("expiry must be between 1 minute and 30 days")
    return delta


def clean_labels(labels: object, *, what: str = "labels") -> dict[str, str]:
    """{key: value} with lower-case keys like `site` and short string values."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ValidationError(f"{what} must be an object of key=value pairs")
    if len(labels) > MAX_LABELS:
        raise ValidationError(f"at most {MAX_LABELS} {what}")
    cleaned = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise ValidationError(
                f"{what}: {key!r} is not a valid key (lower-case letters, digits, _ . -)"
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError(f"{what}: the value of {key!r} must be text or a number")
        text = str(value).strip()
        if not text or len(text) > 100:
            raise ValidationError(f"{what}: the value of {key!r} must be 1 to 100 characters")
        cleaned[key] = text
    return cleaned


def parse_label_args(pairs: list[str], *, what: str = "label") -> dict[str, str]:
    """["site=branch-3", …] from a command line → labels; ValidationError on a bad pair."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"{what} {pair!r} must look like key=value")
        labels[key.strip()] = value.strip()
    return clean_labels(labels, what=f"{what}s")


def create_enrollment_token(
    *,
    created_by: AbstractBaseUser | None,
    expires_in: timedelta = timedelta(hours=24),
    team: Team | None = None,
    labels: dict[str, str] | None = None,
    auto_approve: bool = False,
    note: str = "",
) -> tuple[EnrollmentToken, str]:
    """A single-use token; returns it with the raw secret, which is shown once and never stored."""
    if expires_in < timedelta(minutes=1) or expires_in > MAX_TOKEN_LIFETIME:
        raise ValidationError("expiry must be between 1 minute and 30 days")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = EnrollmentToken.objects.create(
        token_hash=hash_secret(raw),
        prefix=raw[:10],
        note=note.strip()[:200],
        team=team,
        labels=clean_labels(labels),
        auto_approve=auto_approve,
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
        expires_at=timezone.now() + expires_in,
    )
    return token, raw


def revoke_enrollment_token(*, token: EnrollmentToken) -> None:
    if token.revoked_at is None and token.used_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


@dataclass(frozen=True)
class Enrolment:
    node: ComputeNode
    credential: str  # raw; the agent stores it, orchcap keeps only its hash


def clean_json_object(value: object, what: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be an object")
    if len(json.dumps(value, default=str)) > MAX_JSON_CHARS:
        raise ValidationError(f"{what} is too large")
    return value


def _clean_declared(value: object) -> dict[str, object]:
    declared = clean_json_object(value, "declared capabilities")
    for key, item in declared.items():
        if not LABEL_KEY.match(str(key)):
            raise ValidationError(f"declared capability {key!r} is not a valid name")
        if not isinstance(item, str | int | float | bool):
            raise ValidationError(f"declared capability {key!r} must be a number, text or bool")
    return declared


def _clean_data_sources(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(s, str) and 0 < len(s.strip()) <= 100 for s in value
    ):
        raise ValidationError("data sources must be a list of names (1 to 100 characters)")
    return sorted({s.strip() for s in value})


def _guess_class(detected: dict[str, object], declared: dict[str, object]) -> str:
    if detected.get("gpus") or declared.get("gpus"):
        return NodeClass.GPU
    return NodeClass.SERVER


def _check_token(raw_token: str, now: datetime) -> EnrollmentToken:
    token = (
        EnrollmentToken.objects.select_for_update()
        .filter(token_hash=hash_secret(raw_token.strip()))
        .first()
    )
    if token is None:
        raise EnrollmentRefused("unknown enrolment token")
    if token.revoked_at is not None:
        raise EnrollmentRefused("this enrolment token was revoked")
    if token.used_at is not None:
        raise EnrollmentRefused("this enrolment token was already used; ask for a new one")
    if token.expires_at <= now:
        raise EnrollmentRefused(
            f"this enrolment token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; "
            "ask for a new one",
            status=410,
        )
    return token


@transaction.atomic
def enroll_node(
    *,
    raw_token: str,
    name: str,
    detected: dict[str, object] | None = None,
    declared: dict[str, object] | None = None,
    labels: dict[str, str] | None = None,
    data_sources: list[str] | None = None,
    fingerprint: str,
    software_version: str = "",
    node_timezone: str = "UTC",
    node_class: str | None = None,
    max_concurrent_tasks: int | None = None,
) -> Enrolment:
    """Turn a valid token into a node (pending approval unless the token auto-approves).

    Raises EnrollmentRefused for an unknown, revoked, used (403) or expired (410) token and
    ValidationError for bad node details. The token row is locked, so two machines racing with
    one token get one node between them.
    """
    now = timezone.now()
    token = _check_token(raw_token, now)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationError("name must be 1 to 120 characters")
    fingerprint = (fingerprint or "").strip()
    if not re.fullmatch(r"[0-9a-fA-F:]{16,64}", fingerprint):
        raise ValidationError("fingerprint must be 16 to 64 hex digits")
    detected = clean_json_object(detected, "detected capabilities")
    declared = _clean_declared(declared)
    if node_class is not None and node_class not in NodeClass.values:
        raise ValidationError(f"class must be one of {', '.join(NodeClass.values)}")
    try:
        availability.zone(node_timezone)
    except availability.PolicyError:
        node_timezone = "UTC"  # an odd local zone must not block enrolment; the admin can fix it
    if max_concurrent_tasks is not None and not 1 <= max_concurrent_tasks <= 256:
        raise ValidationError("max concurrent tasks must be from 1 to 256")
    chosen_class = node_class or _guess_class(detected, declared)
    cpu_cores = detected.get("cpu_cores")
    default_max = cpu_cores if isinstance(cpu_cores, int) and 0 < cpu_cores <= 256 else 1
    raw_credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    node = ComputeNode.objects.create(
        name=name,
        owner=token.created_by,
        team=token.team,
        node_class=chosen_class,
        detected=detected,
        declared=declared,
        # The token's scope wins: an agent can't move itself to another site.
        labels={**clean_labels(labels), **token.labels},
        data_sources=_clean_data_sources(data_sources),
        max_concurrent_tasks=max_concurrent_tasks or default_max,
        state=NodeState.ONLINE if token.auto_approve else NodeState.PENDING,
        approved_by=token.created_by if token.auto_approve else None,
        approved_at=now if token.auto_approve else None,
        software_version=(software_version or "")[:40],
        credential_hash=hash_secret(raw_credential),
        fingerprint=fingerprint.lower(),
        timezone=node_timezone,
        availability=(
            availability.EVENINGS_AND_WEEKENDS
            if chosen_class == NodeClass.WORKSTATION
            else availability.ANY_TIME
        ),
        # Enrolling is contact: the sweeper gives the agent its first heartbeat intervals.
        last_heartbeat_at=now,
    )
    token.used_at = now
    token.used_by = node
    token.save(update_fields=["used_at", "used_by"])
    record_event(
        node=node,
        kind=NodeEventKind.ENROLLED,
        to_state=node.state,
        message=f"enrolled with token {token.prefix}… (fingerprint {node.fingerprint[:16]})",
        at=now,
    )
    if token.auto_approve:
        record_event(
            node=node,
            kind=NodeEventKind.APPROVED,
            actor=token.created_by,
            from_state=NodeState.PENDING,
            to_state=NodeState.ONLINE,
            message="approved automatically by its enrolment token",
            at=now,
        )
    return Enrolment(node=node, credential=raw_credential)


def authenticate_node(*, node_id: int, secret: str) -> ComputeNode | None:
    """The node whose credential this is, or None when the id or secret is wrong (401).

    Raises NodeRefused (403) for a correct credential that was revoked or whose node retired.
    """
    # Every heartbeat (200/s for 1,000 nodes at the default interval) starts here: a raw
    # SELECT costs well under half the CPU of compiling the ORM's query for this wide row.
    table = ComputeNode._meta.db_table
    found = ComputeNode.objects.raw(f"SELECT * FROM {table} WHERE id = %s", [node_id])  # noqa: S608 (our table)
    node = next(iter(found), None) if 0 < node_id < 2**63 else None  # beyond bigint: no node
    # Compare even when the node is missing, so timing doesn't tell which ids exist.
    expected = node.credential_hash if node is not None else "0" * 64
    if not hmac.compare_digest(expected, hash_secret(secret)) or node is None:
        return None
    if node.revoked_at is not None:
        raise NodeRefused("this node's credential was revoked; enrol the machine again")
    if node.state == NodeState.RETIRED:
        raise NodeRefused("this node is retired")
    return node


def heartbeat_seconds() -> int:
    return int(settings.ORCHCAP_HEARTBEAT_SECONDS)
