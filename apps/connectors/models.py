"""Outbound connectors: webhook endpoints of a team, the deliveries owed to them and every attempt.

A Delivery row is the record that a message is owed (the outbox): it is written in the
transaction of whatever produced the event and sent after commit, at least once, in order per
connector (apps/connectors/services/deliveries.py).
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from apps.core.models import TimeStampedModel
from apps.people.models import Team


class EventType(models.TextChoices):
    ITEM_DECIDED = "item.decided", "Item decided (by rule, model or expert)"
    ITEM_ROUTED = "item.routed", "Item routed to people"
    SLA_BREACHED = "sla.breached", "SLA breached"
    AUDIT_OVERTURNED = "audit.overturned", "Audit overturned a model decision"


class Connector(TimeStampedModel):
    """A team's webhook endpoint. Secrets are `whsec_<base64>` (Standard Webhooks); after a
    rotation the previous one stays valid (and signed with) until `previous_secret_expires_at`."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="connectors")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(default=list, help_text="Event types it receives.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # Failure bookkeeping: since when every attempt failed (auto-disabling), the last success.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    probed_at = models.DateTimeField(null=True, blank=True)
    # One drainer at a time sends a connector's deliveries (per-endpoint order): a lease, so a
    # worker that dies mid-drain blocks the connector only until it expires.
    drain_token = models.CharField(max_length=32, blank=True)
    drain_lease_until = models.DateTimeField(null=True, blank=True)
    # When a drain task was last sent for it (the sweeper sends again what no worker picked up).
    nudged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint("team", Lower("name"), name="connector_name_unique_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.team})"


class DeliveryState(models.TextChoices):
    QUEUED = "queued", "Queued"
    DELIVERING = "delivering", "Delivering"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed, will retry"
    DEAD = "dead", "Dead (retries exhausted)"


# Still owed to the endpoint: the connector's backlog, sent oldest first.
PENDING_STATES = (DeliveryState.QUEUED, DeliveryState.DELIVERING, DeliveryState.FAILED)


class Delivery(models.Model):
    """One event owed to one connector. `webhook_id` stays the same across retries and manual
    redeliveries (the receiver's idempotency key); `retry_step` counts failures since the last
    (re)queueing, `attempts` every attempt ever made."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    webhook_id = models.CharField(max_length=40, unique=True)
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.QUEUED
    )
    created_at = models.DateTimeField(db_index=True)
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    retry_step = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The orchestration run the event is about, if any: a plain id, not a foreign key, because
    # orchestrations builds on connectors (a run's trace lists its deliveries by this id).
    run_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["run_id", "id"],
                name="delivery_by_run",
                condition=models.Q(run_id__isnull=False),
            ),
            # The backlog of a connector, oldest first, and the sweeper's look for due heads.
            models.Index(
                fields=["connector", "id"],
                name="delivery_pending_by_connector",
                condition=models.Q(state__in=["queued", "delivering", "failed"]),
            ),
            models.Index(fields=["connector", "state", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} → {self.connector_id} ({self.state})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    response_snippet = models.CharField(max_length=1024, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return (
            f"attempt on {self.delivery_id} at {self.started_at}: {self.status_code or self.error}"
        )

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
