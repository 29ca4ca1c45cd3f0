from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.cases.models import Process, ProcessSchemaVersion
from apps.core.models import OutboxJob

# The training jobs' name in the job outbox (apps/core/outbox.py; registered in apps.py).
TRAINING_KIND = "classifiers.training"
ALGORITHM_LABELS = {
    "logistic_regression": "Logistic regression",
    "hist_gradient_boosting": "Histogram gradient boosting",
}


class LearningSettings(models.Model):
    """How a process's classifiers are trained and when their doubts about a label count."""

    process = models.OneToOneField(Process, on_delete=models.CASCADE, related_name="learning")
    min_decisions = models.PositiveIntegerField(
        default=50, help_text="Decided cases needed before a model can be trained."
    )
    retrain_after = models.PositiveIntegerField(
        default=200,
        help_text="Train a new version after this many new decisions (0: only by hand).",
    )
    auto_promote = models.BooleanField(
        default=False,
        help_text="Promote a retrained version when its held-out macro-F1 is at least the current one's.",
    )
    label_error_confidence = models.FloatField(
        default=0.9,
        help_text="A single expert's label is offered for a second look when the model disagrees "
        "with at least this confidence.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(label_error_confidence__gt=0) & Q(label_error_confidence__lte=1),
                name="learning_label_error_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Learning settings of {self.process}"


class ModelArtifact(models.Model):
    """A fitted pipeline, serialised; addressed by the SHA-256 of its bytes (loading re-checks it)."""

    sha256 = models.CharField(max_length=64, unique=True)
    content = models.BinaryField()
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"artifact {self.sha256[:12]} ({self.size} bytes)"


class ModelVersion(models.Model):
    """One trained classifier of a process, with what it was trained on and how well it did."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="model_versions")
    version = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=60)
    params = models.JSONField(default=dict)
    labels = models.JSONField(help_text="The labels the model can predict, in its order.")
    schema_version = models.ForeignKey(
        ProcessSchemaVersion, on_delete=models.PROTECT, related_name="+"
    )
    snapshot_size = models.PositiveIntegerField()
    snapshot_hash = models.CharField(
        max_length=64, help_text="SHA-256 over the training cases' ids and labels, in id order."
    )
    snapshot_ids = models.BinaryField(help_text="The training cases' ids (zlib, int64).")
    decided_at_training = models.PositiveIntegerField(
        default=0, help_text="Decided cases of the process when the training data was read."
    )
    metrics = models.JSONField(default=dict)
    cross_validation = models.JSONField(default=list)
    artifact = models.ForeignKey(ModelArtifact, on_delete=models.PROTECT, related_name="versions")
    artifact_sha256 = models.CharField(max_length=64)
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    trained_at = models.DateTimeField()
    training_seconds = models.FloatField(default=0)
    is_promoted = models.BooleanField(default=False)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    # Predicts only on GPU nodes of the compute fabric: orchestration runs using it are placed
    # there, never evaluated in the web request.
    gpu_only = models.BooleanField(default=False)

    class Meta:
        ordering = ["process", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["process", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["process"], condition=Q(is_promoted=True), name="one_promoted_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.process} model v{self.version}"

    @property
    def algorithm_label(self) -> str:
        return ALGORITHM_LABELS.get(self.algorithm, self.algorithm)


class TrainingJob(OutboxJob):
    """A training run in the background, with its progress for the UI and API (an outbox job:
    sent again when no worker picked it up, see apps/core/outbox.py)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="training_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    trigger = models.CharField(max_length=20, default="manual", help_text="manual or retrain")
    decided_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Train only on cases decided before this moment (the rest stays unseen, to "
        "measure the model on later decisions).",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The compute-fabric task that trains it (the background path; see fabric.py).
    fabric_task = models.OneToOneField(
        "fabric.FabricTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="training_job",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One training at a time per process: a second request gets the running job.
            models.UniqueConstraint(
                fields=["process"],
                condition=Q(state__in=["queued", "running"]),
                name="one_active_training_job",
            )
        ]

    def __str__(self) -> str:
        return f"Training {self.pk} of {self.process} ({self.state})"

    def current_stage(self) -> str:
        """The stage, read live from its fabric task while a node has it."""
        task = self.fabric_task if self.state == self.State.RUNNING else None
        if task is None:
            return self.stage
        node = task.node.name if task.node_id else ""
        if task.state == "pending":
            return f"waiting for a node: {(task.placement or {}).get('reason', 'none can take it')}"
        if task.state == "placed":
            return f"sent to node {node}"
        if task.state == "running":
            return f"training on node {node}"
        return "storing the model"

    @property
    def is_active(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)


class RegistryEvent(models.Model):
    """The registry's history: trained, promoted, rolled back — who and when."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.model_version}"

    @property
    def kind_label(self) -> str:
        return self.kind.replace("_", " ")
