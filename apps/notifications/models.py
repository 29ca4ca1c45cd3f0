"""Notifications: what a person is told (a case routed to them, an SLA breached, a connector of
theirs disabled), in the app (the bell) and by email, each kind as they prefer.

The app sits just above `people`: every other app may notify, and it knows nothing of them; a
notification carries its own words and a link, written by whoever sends it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Kind(models.TextChoices):
    CASE_ROUTED = "case_routed", "A case routed to me"
    SLA_BREACHED = "sla_breached", "An SLA breached (mine, or my team's for managers)"
    CONNECTOR_DISABLED = "connector_disabled", "A connector I own disabled"


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="A path inside orchcap.")
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    # Whether it is shown in the app (the bell and the list); False: sent by email only.
    in_app = models.BooleanField(default=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The list: a person's notifications, newest first.
            models.Index(fields=["recipient", "-id"], name="notification_recent_idx"),
            # The bell on every page: one count over this small partial index.
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True, in_app=True),
                name="notification_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.title}"


class Preference(models.Model):
    """How a person wants one kind: no row means the default (in the app and by email)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: in_app={self.in_app} email={self.email}"
