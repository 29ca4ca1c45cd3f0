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
    # Pinned to a site: its runs are evaluated only on fabric nodes labelled site=<this>.
    site = models.CharField(max_length=60, blank=True)
    # A model version of the process predicting in shadow beside the live version's model on the
    # same items (apps/orchestrations/challenger.py); it acts on nothing.
    challenger = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    challenger_since = models.DateTimeField(null=True, blank=True)

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


class SiteChange(models.Model):
    """One change of the site an orchestration is pinned to (a data-residency decision, so who
    made it and why are kept with the old and new site; "" is "not pinned")."""

    orchestration = models.ForeignKey(
        Orchestration, on_delete=models.CASCADE, related_name="site_changes"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_site = models.CharField(max_length=60, blank=True)
    to_site = models.CharField(max_length=60, blank=True)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.orchestration_id}: {self.from_site or '-'} → {self.to_site or '-'}"


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


class Outcome(models.TextChoices):
    STANDARD = "standard", "Standard"
    DECIDED = "decided", "Decided"
    ROUTED = "routed", "Routed"


class RunState(models.TextChoices):
    RECEIVED = "received", "Received"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"


class Run(models.Model):
    """One inbound item through one pinned version. The version is fixed at receipt, and every
    step records the component versions it used, so a run explains itself after they change."""

    orchestration = models.ForeignKey(Orchestration, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(OrchestrationVersion, on_delete=models.PROTECT, related_name="runs")
    external_id = models.CharField(max_length=200)
    fields = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.RECEIVED)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    label = models.CharField(max_length=120, blank=True)
    reason_code = models.CharField(max_length=120, blank=True)
    decided_by = models.CharField(
        max_length=60, blank=True, help_text='"rule:<id>@<version>", "model@<version>" or ""'
    )
    confidence = models.FloatField(null=True, blank=True)
    routed_to = models.CharField(max_length=200, blank=True)
    due_by = models.DateTimeField(null=True, blank=True)
    case = models.ForeignKey(
        "cases.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The item's own connector for its events (besides the version's), given with the item.
    callback = models.ForeignKey(
        "connectors.Connector", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Execution (apps/orchestrations/execution.py): the shadow version pinned at receipt, the
    # fabric task evaluating the run's batch, when it was last sent and how often.
    shadow_version = models.ForeignKey(
        OrchestrationVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    fabric_task = models.ForeignKey(
        "fabric.FabricTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["orchestration", "-id"]),
            models.Index(fields=["orchestration", "idempotency_key"]),
            # The sweeper reads the unfinished runs often; they are few.
            models.Index(
                fields=["id"], condition=~Q(state="finished"), name="orchestration_run_unfinished"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["orchestration", "external_id"], name="run_external_id_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.orchestration} {self.external_id} ({self.outcome or self.state})"


class StepKind(models.TextChoices):
    RECEIVED = "received", "Received"
    EXCEPTION_CHECK = "exception_check", "Exception check"
    RULES_EVALUATED = "rules_evaluated", "Rules evaluated"
    MODEL = "model", "Model"
    AUTONOMY = "autonomy", "Autonomy"
    ROUTE = "route", "Route"
    DECIDED = "decided", "Decided"
    STANDARD = "standard", "Standard"
    SHADOW = "shadow", "Shadow"
    CHALLENGER = "challenger", "Challenger"
    EXECUTED = "executed", "Executed"
    EXPERT_DECISION = "expert_decision", "Expert decision"
    DECISION_RETRACTED = "decision_retracted", "Decision undone"
    AUDIT = "audit", "Audit"
    SLA_BREACHED = "sla_breached", "SLA breached"


class RunStep(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=StepKind.choices)
    data = models.JSONField(default=dict)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="run_step_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.number} {self.kind}"


class InboundRequest(models.Model):
    """One Idempotency-Key of one orchestration: the body's hash and, once answered, the answer.
    A row without an answer is a request still in flight (a re-send gets 409)."""

    orchestration = models.ForeignKey(Orchestration, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["orchestration", "key"], name="inbound_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.orchestration_id}:{self.key}"


class ChallengerAction(models.TextChoices):
    SET = "set", "Challenger set"
    CLEARED = "cleared", "Challenger cleared"
    PROMOTED = "promoted", "Challenger promoted to a draft"


class ChallengerEvent(models.Model):
    """One change of an orchestration's challenger, or its promotion to a draft version."""

    orchestration = models.ForeignKey(
        Orchestration, on_delete=models.CASCADE, related_name="challenger_events"
    )
    action = models.CharField(max_length=10, choices=ChallengerAction.choices)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    draft = models.ForeignKey(
        OrchestrationVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.orchestration_id}: {self.action}"
