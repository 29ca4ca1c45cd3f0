from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class OutboxJob(models.Model):
    """Fields of background work recorded in the database and sent through the broker: the row
    is the outbox (apps/core/outbox.py sends it again when no worker picked it up in time)."""

    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last sent to the broker."
    )
    dispatch_attempts = models.PositiveIntegerField(
        default=0, help_text="How many times its task was sent (a claim fences earlier runs)."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the worker running it."
    )
    lost_runs = models.PositiveSmallIntegerField(
        default=0, help_text="Runs lost with their worker (sent again up to a limit)."
    )

    class Meta:
        abstract = True
