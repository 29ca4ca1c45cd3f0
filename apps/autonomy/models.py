from django.conf import settings
from django.db import models
from django.db.models import F, Q

from apps.cases.models import Case, Process
from apps.classifiers.models import ModelVersion
from apps.rules.models import Rule


class Level(models.IntegerChoices):
    MANUAL = 0, "Manual"
    ROUTE = 1, "Route"
    SUGGEST = 2, "Suggest"
    DECIDE = 3, "Decide"


LEVEL_HELP = {
    Level.MANUAL: "experts take every case from the team's queue",
    Level.ROUTE: "rules and the model pick the team or expert queue of each new case",
    Level.SUGGEST: "experts see the model's suggestion while they decide",
    Level.DECIDE: "the model decides alone above the confidence threshold; a sample is audited",
}


class ProcessAutonomy(models.Model):
    """How far a process runs on its own, what it is earning in shadow mode, and the gate's bar."""

    process = models.OneToOneField(Process, on_delete=models.CASCADE, related_name="autonomy")
    level = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.MANUAL)
    level_since = models.DateTimeField(null=True, blank=True)
    target = models.PositiveSmallIntegerField(
        choices=Level.choices,
        null=True,
        blank=True,
        help_text="The level being earned in shadow mode.",
    )
    shadow_started_at = models.DateTimeField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The model version the current level was earned with.",
    )
    threshold = models.FloatField(
        default=0.9, help_text="The model acts (routes, decides) only at or above this confidence."
    )
    target_precision = models.FloatField(
        default=0.95, help_text="Precision the model must reach at the threshold."
    )
    min_shadow = models.PositiveIntegerField(
        default=200, help_text="Shadow predictions experts must decide before a promotion."
    )
    audit_rate = models.FloatField(
        default=0.1, help_text="Share of confident cases sent to experts at level 3 (audit)."
    )
    audit_window = models.PositiveIntegerField(
        default=100, help_text="Audited decisions the precision is measured over (sliding)."
    )
    min_audits = models.PositiveIntegerField(
        default=20, help_text="Audited decisions needed before an automatic demotion can happen."
    )
    routes = models.JSONField(
        default=dict,
        blank=True,
        help_text='{label: "team:<slug>" | "expert:<username>"}: where a case the model labels '
        "this way goes at level 1 and above.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "process autonomy"
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__gt=0) & Q(threshold__lte=1), name="autonomy_threshold_range"
            ),
            models.CheckConstraint(
                condition=Q(target_precision__gt=0) & Q(target_precision__lte=1),
                name="autonomy_target_precision_range",
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1),
                name="autonomy_audit_rate_range",
            ),
            models.CheckConstraint(condition=Q(level__lte=3), name="autonomy_level_range"),
            models.CheckConstraint(
                condition=Q(target__isnull=True) | (Q(target__gt=F("level")) & Q(target__lte=3)),
                name="autonomy_target_above_level",
            ),
            models.CheckConstraint(
                condition=Q(audit_window__gte=1) & Q(min_audits__gte=1),
                name="autonomy_audit_window_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.process}: level {self.level}"

    @property
    def level_name(self) -> str:
        return Level(self.level).label

    @property
    def target_name(self) -> str:
        return Level(self.target).label if self.target is not None else ""


class ShadowPrediction(models.Model):
    """What the model (and the rules) would have done with a case, recorded when it was still open;
    the experts' final label is filled in once they decide it."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="shadow_predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(
        Rule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rule_action = models.JSONField(
        null=True, blank=True, help_text="The first-match rule's action."
    )
    label = models.CharField(max_length=100)
    confidence = models.FloatField()
    route = models.CharField(
        max_length=160, blank=True, help_text="The route that would be chosen, if any."
    )
    route_source = models.CharField(max_length=10, blank=True, help_text="rule or model")
    backfilled = models.BooleanField(
        default=False,
        help_text="Computed over a case experts had already decided (demo evidence), not in "
        "shadow mode; never counted unless asked for.",
    )
    created_at = models.DateTimeField()
    outcome_label = models.CharField(max_length=100, blank=True)
    correct = models.BooleanField(null=True, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "model_version"], name="shadow_one_per_case_and_version"
            )
        ]
        indexes = [models.Index(fields=["process", "model_version", "backfilled"])]

    def __str__(self) -> str:
        return f"shadow {self.label} ({self.confidence:.2f}) on case {self.case_id}"


class CaseRoute(models.Model):
    """Where a new case was routed at level 1 or above: a team's or an expert's queue."""

    class Source(models.TextChoices):
        RULE = "rule", "Rule"
        MODEL = "model", "Model label"

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="+")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="route")
    route = models.CharField(max_length=160, help_text='"team:<slug>" or "expert:<username>"')
    source = models.CharField(max_length=10, choices=Source.choices)
    rule = models.ForeignKey(
        Rule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    label = models.CharField(max_length=100, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["process", "route"])]

    def __str__(self) -> str:
        return f"case {self.case_id} → {self.route}"

    @property
    def kind(self) -> str:
        return self.route.partition(":")[0]

    @property
    def name(self) -> str:
        return self.route.partition(":")[2]


class AuditSample(models.Model):
    """A case the model was confident about at level 3 but that was drawn for audit: it stays open
    for experts, and their label measures the model's precision over a sliding window."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="+")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="audit")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=100)
    confidence = models.FloatField()
    draw = models.FloatField(help_text="The random number that sent the case to audit.")
    created_at = models.DateTimeField()
    expert_label = models.CharField(max_length=100, blank=True)
    correct = models.BooleanField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["process", "decided_at"])]

    def __str__(self) -> str:
        return f"audit of case {self.case_id}"


class AutonomyChange(models.Model):
    """The log: every shadow start, promotion, demotion and settings change, with its evidence."""

    class Kind(models.TextChoices):
        SHADOW = "shadow", "Shadow mode started"
        SHADOW_STOPPED = "shadow_stopped", "Shadow mode stopped"
        PROMOTE = "promote", "Promoted"
        DEMOTE = "demote", "Demoted"
        SETTINGS = "settings", "Settings changed"

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    from_level = models.PositiveSmallIntegerField(choices=Level.choices)
    to_level = models.PositiveSmallIntegerField(choices=Level.choices)
    target = models.PositiveSmallIntegerField(choices=Level.choices, null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    automatic = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["process", "-at"])]

    def __str__(self) -> str:
        return f"{self.process}: {self.kind} {self.from_level} → {self.to_level}"

    @property
    def actor_name(self) -> str:
        if self.actor_id:
            return self.actor.username
        return "automatic" if self.automatic else "system"
