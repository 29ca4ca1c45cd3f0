from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Random
from pgvector.django import HnswIndex, VectorField

from apps.core.models import OutboxJob, TimeStampedModel
from apps.people.models import Team

EMBEDDING_DIMENSIONS = 256


class QueueOrder(models.TextChoices):
    PRIORITY = "priority", "Priority field"
    UNCERTAINTY = "uncertainty", "Model uncertainty (active learning)"
    DUE = "due", "Due time (SLA of routed items), then priority"


class Process(TimeStampedModel):
    """A business process whose exception cases experts review (invoice matching, claims, …)."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="processes")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    minutes_per_case = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        default=5,
        help_text="Minutes an expert spends on a case by hand.",
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="How many independent experts label each case."
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="reviewed_processes",
        help_text="Named reviewers; empty means every expert of the team.",
    )
    adjudicators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="adjudicated_processes",
        help_text="Experts who settle disagreements; empty means the team's managers.",
    )
    priority_field = models.CharField(
        max_length=63,
        blank=True,
        help_text="A number, money or date field: higher first (or lower, see order).",
    )
    priority_descending = models.BooleanField(default=True)
    schema = models.ForeignKey(
        "ProcessSchemaVersion", on_delete=models.PROTECT, null=True, related_name="+"
    )
    lease_seconds = models.PositiveIntegerField(default=600)
    is_synthetic = models.BooleanField(
        default=False, help_text="Generated demo data, shown as such."
    )
    queue_order = models.CharField(
        max_length=16,
        choices=QueueOrder.choices,
        default=QueueOrder.PRIORITY,
        help_text="How fresh cases are ordered: by the priority field, or most uncertain first.",
    )
    random_share = models.FloatField(
        default=0.2,
        help_text="With uncertainty order: the share of picks made at random, so that the model "
        "can be evaluated on an unbiased sample.",
    )
    # The ModelVersion (classifiers) whose uncertainty the open cases carry; a plain id so that
    # cases does not depend on classifiers. Lets the periodic scoring notice a newer promotion.
    uncertainty_model_id = models.PositiveBigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="process_name_unique_in_team"),
            models.CheckConstraint(
                condition=Q(overlap__gte=1) & Q(overlap__lte=10), name="process_overlap_range"
            ),
            models.CheckConstraint(
                condition=Q(random_share__gte=0) & Q(random_share__lte=1),
                name="process_random_share_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProcessSchemaVersion(models.Model):
    """One version of a process's case schema and decision options; cases keep the version they came in."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="schema_versions")
    version = models.PositiveIntegerField()
    fields = models.JSONField(help_text="[{name, type, label, help_text, required, choices}]")
    decisions = models.JSONField(help_text="[{label, description, reason_codes}]")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["process", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["process", "version"], name="schema_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.process} schema v{self.version}"

    @property
    def labels(self) -> list[str]:
        return [option["label"] for option in self.decisions]

    def reason_codes(self, label: str) -> list[str]:
        for option in self.decisions:
            if option["label"] == label:
                return list(option.get("reason_codes") or [])
        return []

    def field(self, name: str) -> dict | None:
        return next((spec for spec in self.fields if spec["name"] == name), None)


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    ADJUDICATION = "adjudication", "Needs adjudication"
    DECIDED = "decided", "Decided"


class Case(models.Model):
    """An exception a process raised, to be decided by experts."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="cases")
    schema_version = models.ForeignKey(
        ProcessSchemaVersion, on_delete=models.PROTECT, related_name="+"
    )
    # NULL, not "": cases without an external id must not collide in the unique constraint.
    external_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    fields = models.JSONField(default=dict)
    exception_reason = models.TextField(blank=True)
    exception_fields = models.JSONField(default=list, help_text="Names of the fields at fault.")
    status = models.CharField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    priority = models.FloatField(
        default=0, help_text="Derived from the process's priority field; higher first."
    )
    label_count = models.PositiveSmallIntegerField(
        default=0, help_text="Active (not retracted) labels."
    )
    final_label = models.CharField(max_length=100, blank=True)
    final_reason_code = models.CharField(max_length=100, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    is_synthetic = models.BooleanField(default=False)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Active learning. Database defaults too: intake and bulk loads insert with raw SQL.
    uncertainty = models.FloatField(
        null=True,
        blank=True,
        help_text="1 - margin of the promoted model (0: sure, 1: torn); empty until scored.",
    )
    random_key = models.FloatField(
        db_default=Random(),
        editable=False,
        help_text="A stable uniform key, independent of the case, for unbiased random picks.",
    )
    extra_labels = models.PositiveSmallIntegerField(
        default=0,
        db_default=0,
        help_text="Labels asked beyond the process's overlap (a second look).",
    )
    # Autonomy level 1 ("route"): the expert a rule or the model sent the case to. The queue
    # offers it to them first and to colleagues only after their own cases.
    routed_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # SLA (set for items an orchestration routed to people; docs/orchestrations.md): when the
    # case is due, when it first went past that, the escalation steps taken (0 to 3) and when the
    # next one is due (NULL: none left). Capital counts breaches and attainment from these.
    due_by = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0, db_default=0)
    escalate_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["process", "external_id"],
                condition=Q(external_id__isnull=False),
                name="case_external_id_unique_in_process",
            )
        ]
        indexes = [
            # The review queue: open cases of a process, most urgent first.
            models.Index(
                fields=["process", "label_count", "-priority", "created_at"],
                condition=Q(status="open"),
                name="case_queue_idx",
            ),
            # Active learning: fresh cases most uncertain first, and random picks by a stable key.
            models.Index(
                F("process"),
                F("label_count"),
                F("uncertainty").desc(nulls_last=True),
                F("priority").desc(),
                F("created_at"),
                condition=Q(status="open"),
                name="case_uncertainty_idx",
            ),
            models.Index(
                fields=["process", "label_count", "random_key"],
                condition=Q(status="open"),
                name="case_random_idx",
            ),
            models.Index(
                fields=["routed_to", "process", "-priority", "created_at"],
                condition=Q(status="open", routed_to__isnull=False),
                name="case_routed_idx",
            ),
            # The queue by due time (a process's `due` order): fresh cases soonest due first.
            models.Index(
                F("process"),
                F("label_count"),
                F("due_by").asc(nulls_last=True),
                F("priority").desc(),
                F("created_at"),
                condition=Q(status="open"),
                name="case_due_idx",
            ),
            # The SLA sweep: open cases whose next escalation step is due.
            models.Index(
                fields=["escalate_at"],
                condition=Q(status="open", escalate_at__isnull=False),
                name="case_escalate_idx",
            ),
            models.Index(fields=["process", "status", "decided_at"], name="case_status_idx"),
            # Case lists and exports walk one process newest- or oldest-first.
            models.Index(fields=["process", "-created_at", "-id"], name="case_process_recent_idx"),
            # The periodic catch-up finds cases still waiting for their embedding.
            models.Index(
                fields=["id"], condition=Q(embedding__isnull=True), name="case_unembedded_idx"
            ),
            HnswIndex(
                name="case_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"Case {self.external_id or self.pk} ({self.process})"

    @property
    def required_labels(self) -> int:
        """Labels that settle the case: the process's overlap plus any second look asked for."""
        return self.process.overlap + self.extra_labels


class DecisionSource(models.TextChoices):
    REVIEW = "review", "Review"
    IMPORT = "import", "Imported history"
    ADJUDICATION = "adjudication", "Adjudication"
    API = "api", "API"
    MODEL = "model", "Decided by the model (autonomy level 3)"


class Decision(models.Model):
    """One expert's label on a case. Never deleted: an undo marks it retracted."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="decisions")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions"
    )
    label = models.CharField(max_length=100)
    reason_code = models.CharField(max_length=100, blank=True)
    rationale = models.TextField(blank=True)
    key_factors = models.JSONField(default=list, blank=True)
    seconds_spent = models.FloatField(null=True, blank=True)
    source = models.CharField(
        max_length=16, choices=DecisionSource.choices, default=DecisionSource.REVIEW
    )
    decided_at = models.DateTimeField()
    retracted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["decided_at"]
        constraints = [
            # One active label per expert per case (adjudication is its own source).
            models.UniqueConstraint(
                fields=["case", "expert", "source"],
                condition=Q(retracted_at__isnull=True),
                name="decision_one_active_per_expert",
            )
        ]
        indexes = [
            models.Index(fields=["expert", "decided_at"]),
            models.Index(fields=["case", "expert"]),
        ]

    def __str__(self) -> str:
        return f"{self.expert} → {self.label} on {self.case_id}"


class CaseClaim(models.Model):
    """A lease: an expert holds a case while reviewing it; it expires unless renewed."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="claims")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="case_claims"
    )
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "expert"], name="claim_unique_expert")
        ]
        indexes = [
            models.Index(fields=["expert", "expires_at"]),
            models.Index(fields=["case", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.expert} holds {self.case_id} until {self.expires_at:%H:%M:%S}"


class CaseSkip(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="skips")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    skipped_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "expert"], name="skip_unique_expert")
        ]

    def __str__(self) -> str:
        return f"{self.expert} skipped {self.case_id}"


class CaseEvent(models.Model):
    """The case timeline: who did what, when, with before/after."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(max_length=32)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # The queue keeps a second look away from whoever asked for it (few rows, fast probe).
            models.Index(
                fields=["case", "actor"],
                condition=Q(kind="second_look"),
                name="caseevent_second_look_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.case_id}"


# Background imports' name in the job outbox (apps/core/outbox.py; registered in apps.py).
IMPORT_KIND = "cases.import"


class ImportJob(OutboxJob):
    """A CSV/JSONL upload processed in the background, with progress and row-level errors (an
    outbox job once its mapping is confirmed: sent again when no worker picked it up)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    file_format = models.CharField(max_length=8)
    mapping = models.JSONField(
        default=dict, help_text="{source column: schema field or special target}"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_cases = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} into {self.process} ({self.state})"
