"""Capital models.

The metrics (apps/capital/metrics*.py, snapshots.py, the dashboard) own `MetricSnapshot`,
`BaselineOverride` and `MoneyRate`. The assessment, first-battle and roadmap models follow them.
"""

from django.conf import settings
from django.db import models

from apps.cases.models import Process
from apps.people.models import Team


class MetricSnapshot(models.Model):
    """One day's figures of a team (process null) or of one of its processes.

    Written by `apps.capital.snapshots.take_snapshot`, which replaces the row for the same
    (team, process, day): re-running a day gives the same row. `figures` maps a metric key
    (apps/capital/definitions.py) to {"value", "numerator", "denominator"} as measured that day.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_snapshots")
    process = models.ForeignKey(
        Process, on_delete=models.CASCADE, null=True, blank=True, related_name="capital_snapshots"
    )
    day = models.DateField()
    figures = models.JSONField(default=dict)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "process", "day"],
                name="capital_snapshot_one_per_day",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["team", "day"], name="capital_snap_team_day")]
        ordering = ["team", "process", "day"]

    def __str__(self) -> str:
        return f"{self.team_id}/{self.process_id or '-'} {self.day}"


class BaselineOverride(models.Model):
    """A manager's baseline for one metric, instead of the measured one. Kept as history:
    the latest row with `cleared_at` null applies, and the figure says it was overridden."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_baselines")
    process = models.ForeignKey(
        Process, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    metric = models.CharField(max_length=60)
    value = models.FloatField()
    reason = models.TextField()
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    set_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "metric", "set_at"], name="capital_baseline_lookup")
        ]
        ordering = ["-set_at"]

    def __str__(self) -> str:
        return f"{self.metric}={self.value} ({self.team_id})"


class MoneyRate(models.Model):
    """What a manager says an hour of expert time or a decided case is worth, to show value in
    money. Kept as history; the latest row applies (process null: the team's default)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="capital_money_rates")
    process = models.ForeignKey(
        Process, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    per_hour = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    per_case = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    set_at = models.DateTimeField()

    class Meta:
        ordering = ["-set_at"]

    def __str__(self) -> str:
        return f"{self.team_id}/{self.process_id or '-'} {self.per_hour}/h {self.per_case}/case"


# The assessment, first-battle and roadmap models live in their own module (another helper's
# area); importing them here is what registers them with the app.
from apps.capital.models_roadmap import *  # noqa: E402, F403
