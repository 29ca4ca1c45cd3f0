"""Orchestrations: a process's deployable decision pipeline, as a list of immutable versions.

A version pins its components (exception filter, rules at their versions, model version,
autonomy policy, routing, connectors, SLA) while it is a draft; from shadow on only its stage
(and canary share) changes, and every change is a StageChange row.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.cases.models import Process
from apps.classifiers.models import ModelVersion
from apps.core.models import TimeStampedModel
from apps.people.models import Team


class Stage(models.TextChoices):
    DRAFT = "draft", "Draft"
    SHADOW = "shadow", "Shadow"
    CANARY = "canary", "Canary"
    LIVE = "live", "Live"
    RETIRED = "retired", "Retired"


class Orchestration(TimeStampedModel):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="orchestrations")
    process = models.ForeignKey(Process, on_delete=models.PROTECT, related_name="orchestrations")
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["team__name", "name"]

    def __str__(self) -> str:
        return self.name


class OrchestrationVersion(models.Model):
    orchestration = models.ForeignKey(
        Orchestration, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    exception_filter = models.JSONField(
        null=True,
        blank=True,
        help_text="Rule-language condition: items it matches are exceptions; the others get "
        '"standard". None: every item is an exception.',
    )
    rules = models.JSONField(default=list, help_text='[{"rule": id, "version": n}] in order.')
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    autonomy_level = models.PositiveSmallIntegerField(default=0)
    threshold = models.FloatField(default=0.9)
    audit_rate = models.FloatField(default=0.1)
    routes = models.JSONField(default=dict, help_text='{label: "team:<slug>" | "expert:<name>"}')
    connector_ids = models.JSONField(default=list)
    sla_minutes = models.PositiveIntegerField(null=True, blank=True)
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.DRAFT)
    canary_share = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    stage_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["orchestration", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["orchestration", "number"], name="orchestration_version_unique"
            ),
            # One live version (and one canary) per orchestration, whatever the races.
            models.UniqueConstraint(
                fields=["orchestration"],
                condition=Q(stage="live"),
                name="orchestration_one_live_version",
            ),
            models.UniqueConstraint(
                fields=["orchestration"],
                condition=Q(stage="canary"),
                name="orchestration_one_canary_version",
            ),
            models.CheckConstraint(
                condition=(Q(stage="canary") & Q(canary_share__gt=0) & Q(canary_share__lt=1))
                | (~Q(stage="canary") & Q(canary_share__isnull=True)),
                name="orchestration_canary_share_range",
            ),
            models.CheckConstraint(
                condition=Q(autonomy_level__lte=3), name="orchestration_level_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.orchestration} v{self.number} ({self.stage})"


class StageChange(models.Model):
    orchestration = models.ForeignKey(
        Orchestration, on_delete=models.CASCADE, related_name="stage_changes"
    )
    version = models.ForeignKey(
        OrchestrationVersion, on_delete=models.CASCADE, related_name="stage_changes"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_stage = models.CharField(max_length=10, choices=Stage.choices)
    to_stage = models.CharField(max_length=10, choices=Stage.choices)
    canary_share = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True)
    rollback = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"v{self.version_id}: {self.from_stage} → {self.to_stage}"


class ComponentKind(models.TextChoices):
    RULE = "rule", "Rule"
    MODEL = "model", "Model version"
    CONNECTOR = "connector", "Connector"


class ComponentReuse(models.Model):
    """One component used by one orchestration version (the capital metrics count reuses)."""

    version = models.ForeignKey(
        OrchestrationVersion, on_delete=models.CASCADE, related_name="components"
    )
    orchestration = models.ForeignKey(Orchestration, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ComponentKind.choices)
    component_id = models.PositiveBigIntegerField()
    component_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "component_id"])]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "kind", "component_id"], name="component_reuse_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.component_id} in {self.version}"
