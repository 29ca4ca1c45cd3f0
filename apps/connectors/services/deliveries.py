"""Deliveries: events recorded as owed (an outbox), sent after commit, at least once, in order
per endpoint, signed per Standard Webhooks, retried on its schedule, then dead-lettered.

- `enqueue_event()` writes one Delivery per matching enabled connector in the caller's transaction
  and publishes a drain task per connector on commit (a broker error is logged, never raised:
  the sweeper sends it again).
- `drain_connector()` holds the connector's lease (one drainer per endpoint) and sends its backlog
  oldest first over one kept-alive connection. A failure schedules that delivery's retry and
  stops: the rest waits behind it. A success means the endpoint answers: everything behind it
  goes at once.
- `probe_connector()`: while the oldest waits for its retry, a HEAD request every
  ORCHCAP_WEBHOOK_PROBE_SECONDS; when the endpoint answers, the backlog goes at once.
- `sweep()` (beat, every ORCHCAP_WEBHOOK_SWEEP_SECONDS): sends drain tasks for due backlogs whose
  message was lost or whose retry time came, probes, and disables endpoints failing too long.
"""

import json
import logging
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.connectors.errors import DeliveryConflict
from apps.connectors.models import (
    PENDING_STATES,
    Connector,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    EventType,
)
from apps.connectors.services.connectors import signing_secrets
from apps.connectors.signing import Signer
from apps.connectors.targets import TargetRefused, check_target
from apps.connectors.transport import Answer, Session
from apps.core.api import reason_of
from apps.notifications import services as notifications
from apps.notifications.models import Kind
from apps.people.models import Team

log = logging.getLogger(__name__)
# Deliveries a drainer takes (marks delivering) at a time, and how often what was sent is
# recorded: every RECORD_EVERY deliveries or RECORD_SECONDS, whichever comes first (so a slow
# endpoint's log and lease stay fresh; a worker dying mid-chunk re-sends at most what it hadn't
# recorded: at least once).
BATCH = 500
RECORD_EVERY = 250
RECORD_SECONDS = 1.0
LEASE = timedelta(minutes=5)
# A drain task not picked up within this long is taken as lost and sent again by the sweeper.
LOST_MESSAGE_AFTER = timedelta(seconds=60)
# Retries this close are sent as a delayed task; later ones are left to the sweeper.
COUNTDOWN_LIMIT_SECONDS = 60
USER_AGENT = "orchcap-webhooks/1"
# A drain sent for a new event while the backlog waits for a retry probes the endpoint, at most
# this often per endpoint (the sweeper's probe covers the quiet times).
NEW_EVENT_PROBE_GAP = timedelta(seconds=5)


# --- enqueueing -------------------------------------------------------------------------------


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _publish_drain(connector_id: int, countdown: float | None = None) -> None:
    from apps.connectors.tasks import drain_connector_task

    try:
        drain_connector_task.apply_async((connector_id,), countdown=countdown)
    except Exception as exc:
        # The deliveries are recorded as owed: the sweeper sends the task once the broker answers.
        log.warning(
            "drain of connector %s not sent (%s: %s)", connector_id, type(exc).__name__, exc
        )


def nudge(*, connector_ids: list[int]) -> None:
    """Record that drains were asked for now and send them once the transaction commits (one
    per connector however many events the transaction recorded)."""
    if not connector_ids:
        return
    Connector.objects.filter(pk__in=connector_ids).update(nudged_at=timezone.now())
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        # Joins this transaction's pending publish. Django drops a callback only when a savepoint
        # open at its registration rolls back, and every id added later was added inside that
        # savepoint (or after it was released, when it can no longer roll back): none is lost.
        for _, callback, _ in connection.run_on_commit:
            pending = getattr(callback, "connector_ids", None)
            if pending is not None:
                pending.update(connector_ids)
                return
    pending = set(connector_ids)

    def publish() -> None:
        for pk in sorted(pending):
            _publish_drain(pk)

    publish.connector_ids = pending  # type: ignore[attr-defined]
    transaction.on_commit(publish)


@dataclass(frozen=True)
class Event:
    """One event to enqueue: for every enabled connector of the team subscribed to its type (only
    those among `connector_ids` when given), about orchestration run `run_id` if any."""

    event_type: str
    payload: dict
    connector_ids: Collection[int] | None = None
    run_id: int | None = None


def _event_json(event: Event) -> str:
    """The payload as JSON text; ValidationError for a bad event."""
    if event.event_type not in EventType.values:
        raise ValidationError(f"Unknown event type {event.event_type!r}.")
    if not isinstance(event.payload, dict):
        raise ValidationError("The payload must be a JSON object.")
    try:
        return json.dumps(event.payload)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"The payload is not JSON: {exc}.") from None


_INSERT_DELIVERIES = """
    INSERT INTO connectors_delivery (
        id, connector_id, event_type, payload, webhook_id, state, created_at, next_attempt_at,
        attempts, retry_step, last_error, run_id)
    SELECT t.id, t.connector_id, t.event_type, t.payload::jsonb, t.webhook_id, 'queued',
           %(now)s, %(now)s, 0, 0, '', t.run_id
    FROM unnest(%(ids)b::bigint[], %(connectors)b::bigint[], %(types)b::text[],
                %(payloads)b::text[], %(webhook_ids)b::text[], %(runs)b::bigint[])
         AS t(id, connector_id, event_type, payload, webhook_id, run_id)
"""


def _insert(deliveries: list[Delivery], payloads: list[str], now: datetime) -> None:
    """Insert in one statement over arrays bound in binary (Django's bulk_create quotes every
    JSON payload in Python: ten times slower for a batch of outcomes). Ids come from the table's
    sequence first, in list order, so a connector's deliveries are sent in the order given."""
    connection.ensure_connection()
    # psycopg's own cursor on Django's connection: the same transaction.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('connectors_delivery', 'id'))"
            " FROM generate_series(1, %s)",
            [len(deliveries)],
        )
        for delivery, (pk,) in zip(deliveries, cursor.fetchall(), strict=True):
            delivery.pk = pk
            delivery._state.adding, delivery._state.db = False, connection.alias
        cursor.execute(
            _INSERT_DELIVERIES,
            {
                "now": now,
                "ids": [d.pk for d in deliveries],
                "connectors": [d.connector_id for d in deliveries],
                "types": [d.event_type for d in deliveries],
                "payloads": payloads,
                "webhook_ids": [d.webhook_id for d in deliveries],
                "runs": [d.run_id for d in deliveries],
            },
        )


def enqueue_events(
    *, team: Team, events: list[Event], now: datetime | None = None
) -> list[Delivery]:
    """The deliveries of many events of one team in four statements (its connectors, their ids,
    one insert, one nudge), in the caller's transaction and sent after it commits; per connector
    in the order of `events`. Raises ValidationError (nothing recorded) for an unknown event
    type or a payload that isn't a JSON object."""
    texts = [_event_json(event) for event in events]
    if not events:
        return []
    now = now or timezone.now()
    connectors = list(
        Connector.objects.filter(team=team, enabled=True)
        .order_by("pk")
        .values_list("pk", "event_types")
    )
    deliveries: list[Delivery] = []
    payloads: list[str] = []
    for event, text in zip(events, texts, strict=True):
        for pk, types in connectors:
            if event.event_type in types and (
                event.connector_ids is None or pk in event.connector_ids
            ):
                deliveries.append(
                    Delivery(
                        connector_id=pk,
                        event_type=event.event_type,
                        payload=event.payload,
                        webhook_id=new_webhook_id(),
                        created_at=now,
                        next_attempt_at=now,
                        run_id=event.run_id,
                    )
                )
                payloads.append(text)
    if not deliveries:
        return []
    _insert(deliveries, payloads, now)
    nudge(connector_ids=sorted({delivery.connector_id for delivery in deliveries}))
    return deliveries


def enqueue_event(
    *,
    team: Team,
    event_type: str,
    payload: dict,
    now: datetime | None = None,
    connector_ids: Collection[int] | None = None,
    run_id: int | None = None,
) -> list[Delivery]:
    """One queued Delivery per enabled connector of `team` subscribed to `event_type` (only
    those among `connector_ids` when given), written in the caller's transaction and sent after
    it commits; `run_id` ties them to the orchestration run the event is about. Raises
    ValidationError for an unknown event type or a payload that isn't a JSON object."""
    event = Event(event_type, payload, connector_ids=connector_ids, run_id=run_id)
    return enqueue_events(team=team, events=[event], now=now)


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Owed:
    """What the drain loop needs of a pending delivery (read as plain values, no model)."""

    pk: int
    event_type: str
    payload: dict
    webhook_id: str
    created_at: datetime
    next_attempt_at: datetime
    retry_step: int


_OWED_FIELDS = (
    "pk", "event_type", "payload", "webhook_id", "created_at", "next_attempt_at", "retry_step"
)  # fmt: skip


def message_body(delivery: Delivery | _Owed) -> bytes:
    """The JSON body: Standard Webhooks' {"type", "timestamp", "data"}."""
    return json.dumps(
        {
            "type": delivery.event_type,
            "timestamp": delivery.created_at.isoformat().replace("+00:00", "Z"),
            "data": delivery.payload,
        },
        separators=(",", ":"),
    ).encode()


def _headers(signer: Signer, webhook_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signer.header(webhook_id=webhook_id, timestamp=timestamp, body=body),
    }


def message_headers(*, connector: Connector, delivery: Delivery, body: bytes) -> dict[str, str]:
    signer = Signer(signing_secrets(connector, timezone.now()))
    return _headers(signer, delivery.webhook_id, body)


@dataclass
class DrainResult:
    claimed: bool = False
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def _claim(connector_id: int, now: datetime) -> str | None:
    token = uuid.uuid4().hex
    claimed = (
        Connector.objects.filter(pk=connector_id, enabled=True)
        .filter(Q(drain_lease_until__isnull=True) | Q(drain_lease_until__lt=now))
        .update(drain_token=token, drain_lease_until=now + LEASE)
    )
    return token if claimed else None


def _renew(connector_id: int, token: str) -> bool:
    return bool(
        Connector.objects.filter(pk=connector_id, drain_token=token, enabled=True).update(
            drain_lease_until=timezone.now() + LEASE
        )
    )


def _release(connector_id: int, token: str) -> None:
    Connector.objects.filter(pk=connector_id, drain_token=token).update(
        drain_token="", drain_lease_until=None
    )


def _due_work(connector_id: int, now: datetime) -> bool:
    head = (
        Delivery.objects.filter(connector_id=connector_id, state__in=PENDING_STATES)
        .order_by("id")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return head is not None and head <= now


def drain_connector(*, connector_id: int, force: bool = False) -> DrainResult:
    """Send the connector's due backlog in order (nothing when another drainer holds it or it is
    disabled). `force`: send the oldest now even if its retry time hasn't come (the endpoint was
    just seen answering)."""
    result = DrainResult()
    while True:
        token = _claim(connector_id, timezone.now())
        if token is None:
            return result
        result.claimed = True
        try:
            _drain_claimed(connector_id, token, force, result)
        finally:
            _release(connector_id, token)
        force = False
        # A drain task that arrived while we held the lease was dropped: what it was sent for
        # committed before our release, so it is seen here.
        if not _due_work(connector_id, timezone.now()):
            return result


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def _drain_claimed(connector_id: int, token: str, force: bool, result: DrainResult) -> None:
    connector = Connector.objects.get(pk=connector_id)
    session: Session | None = None
    try:
        while True:
            now = timezone.now()
            batch = [
                _Owed(*row)
                for row in Delivery.objects.filter(
                    connector_id=connector_id, state__in=PENDING_STATES
                )
                .order_by("id")
                .values_list(*_OWED_FIELDS)[:BATCH]
            ]
            if not batch:
                return
            if batch[0].next_attempt_at > now and not force:
                # The backlog waits behind its oldest delivery's retry, unless the endpoint
                # answers again: a drain sent for a new event looks (at most every few seconds).
                if not _claim_probe(connector_id, now, NEW_EVENT_PROBE_GAP):
                    return
                if not _answers(connector):
                    _disable_if_failing_too_long(connector_id, now)
                    return
            if session is None:
                try:
                    # Checked again right before connecting; the session connects to the address
                    # this check approved.
                    target = check_target(connector.url)
                except TargetRefused as exc:
                    _record_failure(connector, batch[0], now, None, error=reason_of(exc))
                    result.failed += 1
                    return
                session = Session(target, timeout=settings.ORCHCAP_WEBHOOK_TIMEOUT_SECONDS)
            ids = [delivery.pk for delivery in batch]
            Delivery.objects.filter(pk__in=ids).update(state=DeliveryState.DELIVERING)
            sent, stopped, dead, held = _send_batch(connector, token, session, batch)
            result.delivered += sent
            if sent < len(batch):
                # Claimed but not reached: back in the queue, in the same order.
                Delivery.objects.filter(pk__in=ids, state=DeliveryState.DELIVERING).update(
                    state=DeliveryState.QUEUED
                )
            if sent:
                force = True  # the endpoint answers: whatever waits goes now
            if stopped:
                result.dead += int(dead)
                result.failed += int(not dead)
                connector.refresh_from_db(fields=["enabled"])
                if not dead or not connector.enabled:
                    return
                held = _renew(connector_id, token)
            if not held:
                return
    finally:
        if session is not None:
            session.close()


def _send_batch(
    connector: Connector, token: str, session: Session, batch: list[_Owed]
) -> tuple[int, bool, bool, bool]:
    """Send `batch` in order until one fails, recording the successes every RECORD_EVERY or
    RECORD_SECONDS (which renews the lease). Returns (sent, stopped by a failure, that failure
    dead-lettered, lease still held)."""
    signer = Signer(signing_secrets(connector, timezone.now()))
    successes: list[tuple[int, datetime, Answer]] = []
    recorded_at = time.monotonic()
    sent = 0
    for delivery in batch:
        started = timezone.now()
        body = message_body(delivery)
        headers = _headers(signer, delivery.webhook_id, body)
        try:
            answer = session.request("POST", headers, body)
        except (OSError, HTTPException) as exc:
            answer, error = None, _describe(exc)
        else:
            if 200 <= answer.status < 300:
                successes.append((delivery.pk, started, answer))
                sent += 1
                if len(successes) >= RECORD_EVERY or (
                    time.monotonic() - recorded_at >= RECORD_SECONDS
                ):
                    held = _record_successes(connector, token, successes)
                    recorded_at = time.monotonic()
                    # A secret whose overlap ended meanwhile stops signing.
                    signer = Signer(signing_secrets(connector, timezone.now()))
                    if not held:
                        return sent, False, False, False
                continue
            error = ""
        # Logged in the order they happened: the successes before this failure.
        held = _record_successes(connector, token, successes)
        dead = _record_failure(connector, delivery, started, answer, error=error)
        return sent, True, dead, held
    held = _record_successes(connector, token, successes)
    return sent, False, False, held


# One statement, one round trip: the deliveries delivered, their attempt rows (in the order
# sent), the connector's success and the drainer's lease renewed (when still its own).
_RECORD_SUCCESSES = """
    WITH sent AS (
        SELECT * FROM unnest(%(ids)b::bigint[], %(statuses)b::int[],
                             %(started)b::timestamptz[], %(latencies)b::float8[],
                             %(snippets)b::text[])
                 WITH ORDINALITY AS t(id, status, started, latency, snippet, n)
    ), delivered AS (
        UPDATE connectors_delivery AS d
        SET state = 'delivered', delivered_at = %(now)s, attempts = d.attempts + 1,
            retry_step = 0, last_status = sent.status, last_error = ''
        FROM sent WHERE d.id = sent.id
    ), logged AS (
        INSERT INTO connectors_deliveryattempt
            (delivery_id, started_at, status_code, latency_ms, response_snippet, error)
        SELECT id, started, status, latency, snippet, '' FROM sent ORDER BY n
    )
    UPDATE connectors_connector
    SET last_success_at = %(now)s, failing_since = NULL,
        drain_lease_until = CASE WHEN drain_token = %(token)s AND enabled THEN %(lease)s
                                 ELSE drain_lease_until END
    WHERE id = %(connector)s
    RETURNING drain_token = %(token)s AND enabled
"""


def _record_successes(
    connector: Connector, token: str, successes: list[tuple[int, datetime, Answer]]
) -> bool:
    """Record (and clear) `successes` in one statement, renewing the lease; returns whether the
    drainer still holds it (False once the connector was disabled or the lease taken)."""
    if not successes:
        return True
    now = timezone.now()
    connection.ensure_connection()
    # psycopg's own cursor on Django's connection (the same transaction, if any): the arrays
    # bound in binary, no model instances.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _RECORD_SUCCESSES,
            {
                "ids": [pk for pk, _, _ in successes],
                "statuses": [answer.status for _, _, answer in successes],
                "started": [started for _, started, _ in successes],
                "latencies": [round(answer.latency_ms, 2) for _, _, answer in successes],
                "snippets": [answer.snippet for _, _, answer in successes],
                "now": now,
                "token": token,
                "lease": now + LEASE,
                "connector": connector.pk,
            },
        )
        row = cursor.fetchone()
    successes.clear()
    return bool(row and row[0])


def _record_failure(
    connector: Connector,
    delivery: _Owed,
    started: datetime,
    answer: Answer | None,
    *,
    error: str = "",
) -> bool:
    """Log the failed attempt and schedule the retry (or dead-letter it). Returns whether the
    delivery is dead."""
    now = timezone.now()
    schedule = settings.ORCHCAP_WEBHOOK_RETRY_SCHEDULE
    step = delivery.retry_step + 1
    gone = answer is not None and answer.status == 410
    if answer is not None and not error:
        error = f"HTTP {answer.status}"
    dead = gone or step > len(schedule)
    next_attempt = delivery.next_attempt_at if dead else now + timedelta(seconds=schedule[step - 1])
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.DEAD if dead else DeliveryState.FAILED,
            retry_step=step,
            attempts=F("attempts") + 1,
            next_attempt_at=next_attempt,
            last_status=answer.status if answer else None,
            last_error=error,
        )
        DeliveryAttempt.objects.create(
            delivery_id=delivery.pk,
            started_at=started,
            status_code=answer.status if answer else None,
            latency_ms=round(answer.latency_ms, 2) if answer else None,
            response_snippet=answer.snippet if answer else "",
            error=error,
        )
        Connector.objects.filter(pk=connector.pk, failing_since__isnull=True).update(
            failing_since=started
        )
    if gone:
        disable_connector(
            connector=connector,
            reason=f"The endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC.",
        )
    elif not _disable_if_failing_too_long(connector.pk, now) and not dead:
        delay = (next_attempt - now).total_seconds()
        if delay <= COUNTDOWN_LIMIT_SECONDS:
            # Marked as sent for its retry time: the sweeper won't send it a second time.
            Connector.objects.filter(pk=connector.pk).update(nudged_at=next_attempt)
            _publish_drain(connector.pk, countdown=delay)
    return dead


# --- disabling --------------------------------------------------------------------------------


def disable_connector(*, connector: Connector, reason: str, notify: bool = True) -> bool:
    """Disable an enabled connector with the reason and tell its owner by email. Returns whether
    it was enabled."""
    now = timezone.now()
    changed = Connector.objects.filter(pk=connector.pk, enabled=True).update(
        enabled=False, disabled_reason=reason, disabled_at=now
    )
    connector.refresh_from_db()
    if changed and notify and connector.owner:
        # In the app and by email, as the owner prefers (apps/notifications).
        notifications.notify(
            recipients=[connector.owner],
            kind=Kind.CONNECTOR_DISABLED,
            title=f"Connector {connector.name!r} was disabled",
            body=(
                f"The connector {connector.name!r} of team {connector.team.name} "
                f"({connector.url}) was disabled.\n\n{reason}\n\nDeliveries owed to it wait; "
                "enable it again on its page once the endpoint works, and they go out in order."
            ),
            url=reverse("connector_detail", args=[connector.pk]),
        )
    if changed:
        log.warning("connector %s disabled: %s", connector.pk, reason)
    return bool(changed)


def _disable_if_failing_too_long(connector_id: int, now: datetime) -> bool:
    hours = settings.ORCHCAP_WEBHOOK_DISABLE_AFTER_HOURS
    cutoff = now - timedelta(hours=hours)
    connector = Connector.objects.filter(
        pk=connector_id, enabled=True, failing_since__lte=cutoff
    ).first()
    if connector is None:
        return False
    since = connector.failing_since
    return disable_connector(
        connector=connector,
        reason=f"Every attempt failed since {since:%Y-%m-%d %H:%M} UTC (more than {hours} h).",
    )


# --- probing and sweeping ---------------------------------------------------------------------


def _claim_probe(connector_id: int, now: datetime, gap: timedelta) -> bool:
    """Whether this caller may probe the endpoint now (none did within `gap`)."""
    return bool(
        Connector.objects.filter(pk=connector_id)
        .filter(Q(probed_at__isnull=True) | Q(probed_at__lte=now - gap))
        .update(probed_at=now)
    )


def _answers(connector: Connector) -> bool:
    """A HEAD request to the endpoint: anything but a 5xx (a 501, a receiver that doesn't do
    HEAD, counts) means it answers."""
    try:
        target = check_target(connector.url)
        session = Session(target, timeout=settings.ORCHCAP_WEBHOOK_TIMEOUT_SECONDS)
        try:
            answer = session.request("HEAD", {"User-Agent": USER_AGENT}, None)
        finally:
            session.close()
    except (TargetRefused, OSError, HTTPException):
        return False
    return answer.status < 500 or answer.status == 501


def probe_connector(*, connector_id: int) -> bool:
    """A HEAD request to the endpoint; when it answers (anything but a 5xx; 501, a receiver that
    doesn't do HEAD, counts as answering), its backlog goes at once. Returns whether it answered."""
    connector = Connector.objects.filter(pk=connector_id, enabled=True).first()
    if connector is None:
        return False
    now = timezone.now()
    Connector.objects.filter(pk=connector_id).update(probed_at=now)
    answered = _answers(connector)
    if answered:
        drain_connector(connector_id=connector_id, force=True)
    else:
        _disable_if_failing_too_long(connector_id, now)
    return answered


def _publish_probe(connector_id: int) -> None:
    from apps.connectors.tasks import probe_connector_task

    try:
        probe_connector_task.delay(connector_id)
    except Exception as exc:
        log.warning(
            "probe of connector %s not sent (%s: %s)", connector_id, type(exc).__name__, exc
        )


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """For each enabled connector with a backlog and no drainer: a drain when its oldest delivery
    is due and no drain was sent for it (or the last one looks lost), a probe when it waits for
    a retry and wasn't probed for ORCHCAP_WEBHOOK_PROBE_SECONDS; endpoints failing for
    ORCHCAP_WEBHOOK_DISABLE_AFTER_HOURS are disabled. Returns counts of what was sent."""
    now = now or timezone.now()
    probe_cutoff = now - timedelta(seconds=settings.ORCHCAP_WEBHOOK_PROBE_SECONDS)
    heads = (
        Delivery.objects.filter(state__in=PENDING_STATES, connector__enabled=True)
        .filter(
            Q(connector__drain_lease_until__isnull=True) | Q(connector__drain_lease_until__lt=now)
        )
        .order_by("connector_id", "id")
        .distinct("connector_id")
        .values_list(
            "connector_id", "next_attempt_at", "connector__nudged_at", "connector__probed_at"
        )
    )
    drains: list[int] = []
    probes: list[int] = []
    for connector_id, due_at, nudged_at, probed_at in heads:
        if due_at <= now:
            if nudged_at is None or nudged_at < due_at or nudged_at < now - LOST_MESSAGE_AFTER:
                drains.append(connector_id)
        elif probed_at is None or probed_at <= probe_cutoff:
            probes.append(connector_id)
    if drains:
        Connector.objects.filter(pk__in=drains).update(nudged_at=now)
        for pk in drains:
            _publish_drain(pk)
    if probes:
        # Marked now, so the next sweep doesn't probe again while this one runs.
        Connector.objects.filter(pk__in=probes).update(probed_at=now)
        for pk in probes:
            _publish_probe(pk)
    disabled = 0
    cutoff = now - timedelta(hours=settings.ORCHCAP_WEBHOOK_DISABLE_AFTER_HOURS)
    for pk in Connector.objects.filter(enabled=True, failing_since__lte=cutoff).values_list(
        "pk", flat=True
    ):
        disabled += int(_disable_if_failing_too_long(pk, now))
    return {"drains": len(drains), "probes": len(probes), "disabled": disabled}


# --- by hand ----------------------------------------------------------------------------------


def redeliver(*, delivery: Delivery) -> Delivery:
    """Queue `delivery` again to be sent now, with the same webhook-id and a fresh retry
    schedule. Raises DeliveryConflict when it is already on its way or its connector is
    disabled."""
    connector = delivery.connector
    if not connector.enabled:
        raise DeliveryConflict("The connector is disabled: enable it first.")
    if delivery.state in (DeliveryState.QUEUED, DeliveryState.DELIVERING):
        raise DeliveryConflict("This delivery is already on its way.")
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.QUEUED, next_attempt_at=now, retry_step=0
    )
    nudge(connector_ids=[connector.pk])
    delivery.refresh_from_db()
    return delivery


MAX_REPLAY_DAYS = 31


def replay(
    *, connector: Connector, since: datetime, until: datetime, only_dead: bool = False
) -> int:
    """Queue again the delivered and dead deliveries (only the dead ones with `only_dead`) of
    `connector` created in [since, until), sent in their original order. Returns how many.
    Raises ValidationError for a bad range, DeliveryConflict when the connector is disabled."""
    if since >= until:
        raise ValidationError("`since` must be before `until`.")
    if until - since > timedelta(days=MAX_REPLAY_DAYS):
        raise ValidationError(f"Replay at most {MAX_REPLAY_DAYS} days at a time.")
    if not connector.enabled:
        raise DeliveryConflict("The connector is disabled: enable it first.")
    states = [DeliveryState.DEAD] if only_dead else [DeliveryState.DELIVERED, DeliveryState.DEAD]
    count = Delivery.objects.filter(
        connector=connector, created_at__gte=since, created_at__lt=until, state__in=states
    ).update(state=DeliveryState.QUEUED, next_attempt_at=timezone.now(), retry_step=0)
    if count:
        nudge(connector_ids=[connector.pk])
    return count
