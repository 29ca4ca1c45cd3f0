from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class NodeClass(models.TextChoices):
    SERVER = "server", "Server"
    WORKSTATION = "workstation", "Workstation"
    EDGE = "edge", "Edge box"
    GPU = "gpu", "GPU host"


class NodeState(models.TextChoices):
    PENDING = "pending", "Pending approval"
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline (heartbeats lost)"
    PLANNED_OFFLINE = "planned_offline", "Planned offline"
    DRAINING = "draining", "Draining"
    RETIRED = "retired", "Retired"


# States whose agent is expected to heartbeat; the sweeper marks them offline when it stops.
LIVE_STATES = frozenset({NodeState.ONLINE, NodeState.DRAINING})


class ComputeNode(TimeStampedModel):
    """A machine that lends its spare capacity to orchcap through `orchcap-agent`.

    Capabilities are split: `detected` is what the agent's probe measured (psutil, nvidia-smi) and
    is refreshed by heartbeats; `declared` is what the owner asserted at enrolment and is shown as
    such. Labels and hosted data sources are placement constraints (site, residency).
    """

    name = models.CharField(max_length=120)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="compute_nodes",
    )
    purpose = models.CharField(max_length=200, blank=True)
    team = models.ForeignKey(
        "people.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="compute_nodes",
    )
    node_class = models.CharField(max_length=16, choices=NodeClass.choices)
    detected = models.JSONField(default=dict, blank=True)
    declared = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    data_sources = models.JSONField(default=list, blank=True)
    max_concurrent_tasks = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=16, choices=NodeState.choices, default=NodeState.PENDING)
    # An admin's drain sticks across agent restarts until they resume the node.
    drain_requested = models.BooleanField(default=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    software_version = models.CharField(max_length=40, blank=True)
    credential_hash = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64)
    timezone = models.CharField(max_length=64, default="UTC")
    availability = models.JSONField(default=dict, blank=True)

    # Heartbeat summary: only the latest one is kept (no row per heartbeat).
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    heartbeat_count = models.PositiveBigIntegerField(default=0)
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_percent = models.FloatField(null=True, blank=True)
    load_average = models.FloatField(null=True, blank=True)
    running_tasks = models.PositiveSmallIntegerField(default=0)
    idle_seconds = models.PositiveIntegerField(null=True, blank=True)

    # Dispatch: the agent says whether its worker consumes the node's queue; the control plane
    # flags a node whose worker took no work sent to it in time (it heartbeats but is stuck).
    worker_ready = models.BooleanField(default=False)
    not_consuming_since = models.DateTimeField(null=True, blank=True)
    last_task_at = models.DateTimeField(null=True, blank=True)  # a task started or finished
    # The control plane's own Celery worker, enrolled by itself as node `local`: it runs payloads
    # in-process and records their results in the database directly (no credential, no HTTP).
    control_plane = models.BooleanField(default=False)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [
            models.Index(fields=["state", "last_heartbeat_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_concurrent_tasks__gte=1), name="fabric_node_max_tasks_positive"
            ),
            models.UniqueConstraint(
                fields=["control_plane"],
                condition=Q(control_plane=True),
                name="fabric_one_control_plane_node",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_approved(self) -> bool:
        return self.approved_at is not None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def gpu_count(self) -> int:
        """Detected GPUs, or the declared count when the probe saw none."""
        detected = len(self.detected.get("gpus") or [])
        declared = self.declared.get("gpus")
        if detected == 0 and isinstance(declared, int) and not isinstance(declared, bool):
            return declared
        return detected


class EnrollmentToken(models.Model):
    """A single-use secret that lets one machine enrol; only its SHA-256 is stored.

    `team` and `labels` scope the node it creates (token labels win over the agent's own), and
    the token's creator becomes the node's owner.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    note = models.CharField(max_length=200, blank=True)
    team = models.ForeignKey(
        "people.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    labels = models.JSONField(default=dict, blank=True)
    auto_approve = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.OneToOneField(
        ComputeNode,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="enrollment_token",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"enrolment token {self.prefix}…"


class NodeEventKind(models.TextChoices):
    ENROLLED = "enrolled", "Enrolled"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    STATE = "state", "State changed"
    DRAIN = "drain", "Drain requested"
    RESUMED = "resumed", "Resumed"
    RECLAIMED = "reclaimed", "Reclaimed by owner"
    RELEASED = "released", "Released by owner"
    RETIRED = "retired", "Retired"
    REVOKED = "revoked", "Credential revoked"
    HEARTBEAT_LOST = "heartbeat_lost", "Heartbeats lost"
    POLICY = "policy", "Availability changed"
    SETTINGS = "settings", "Settings changed"
    NOT_CONSUMING = "not_consuming", "Not consuming its queue"
    CONSUMING = "consuming", "Consuming again"
    TASKS_MOVED = "tasks_moved", "Tasks moved elsewhere"


class NodeEvent(models.Model):
    """A node's history, newest first; never edited."""

    node = models.ForeignKey(ComputeNode, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=NodeEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_state = models.CharField(max_length=16, choices=NodeState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=NodeState.choices, blank=True)
    message = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["node", "-at"])]

    def __str__(self) -> str:
        return f"{self.node}: {self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"


class FabricTaskState(models.TextChoices):
    PENDING = "pending", "Pending (no eligible node)"
    PLACED = "placed", "Placed on a node"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


# Leased to a node: counted against its capacity, renewed by its heartbeats, moved when it is lost.
OPEN_TASK_STATES = (FabricTaskState.PLACED, FabricTaskState.RUNNING)
FINISHED_TASK_STATES = (FabricTaskState.DONE, FabricTaskState.FAILED)


class FabricTask(models.Model):
    """A unit of payload work for the fabric.

    The scheduler's decision is saved in `placement` (the best candidates with scores, rejected
    nodes with reasons) so "why isn't it running?" has an answer. `attempts` is the number of the
    current attempt: each dispatch to a node is a new one (a `TaskAttempt`), and only a result for
    the current attempt from the node it was sent to is recorded. `lease_expires_at` is when the
    control plane gives up on the current attempt unless the node reports it again.
    """

    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    requirements = models.JSONField(default=dict, blank=True)
    artifacts = models.JSONField(default=list, blank=True)  # SHA-256s the payload may fetch
    # Consumption probes the sweeper sends to quiet nodes (not user work).
    system = models.BooleanField(default=False)
    # Short work that may travel in one message with other tasks for the same node (a batch of
    # small payloads costs one broker message per node and placement pass, not one per task).
    bundle = models.BooleanField(default=False)
    # Pull: sent to a capability queue (`fabric.gpu`, `fabric.class.<class>`) where the first
    # free node of that kind takes it, once the control plane agreed it may (a claim). `node` is
    # empty until then. A refused claim, or nobody taking it in time, places it directly.
    pull = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    # Who acts on the result: a handler registered with services.completion (e.g. the classifier
    # registry storing a model trained on a node). `handled_at` is set once it ran.
    on_done = models.CharField(max_length=64, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(
        max_length=16, choices=FabricTaskState.choices, default=FabricTaskState.PENDING
    )
    node = models.ForeignKey(
        ComputeNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    placement = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            models.Index(fields=["node", "state"]),
            # Capacity (tasks leased per node) is counted on every placement: only open tasks.
            models.Index(
                fields=["node"],
                condition=Q(state__in=["placed", "running"]),
                name="fabric_task_open_by_node",
            ),
            # The queue of pending work, read in order whenever a slot frees.
            models.Index(fields=["id"], condition=Q(state="pending"), name="fabric_task_pending"),
            # Finished work whose handler has not run yet (the completion catch-up reads it).
            models.Index(
                fields=["id"],
                condition=Q(state__in=["done", "failed"], handled_at__isnull=True) & ~Q(on_done=""),
                name="fabric_task_unhandled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_TASK_STATES

    @property
    def queue_name(self) -> str:
        return f"node.{self.node_id}" if self.node_id else ""


class AttemptState(models.TextChoices):
    DISPATCHED = "dispatched", "Sent to the node"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    LOST = "lost", "Lost (moved elsewhere)"


class TaskAttempt(models.Model):
    """One dispatch of a task to one node. Never deleted; at most one per task is `done`, which
    the database enforces, so a redelivered or late result can never complete a task twice."""

    task = models.ForeignKey(FabricTask, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    # A random value sent with the message and echoed with the result: a message left in a queue
    # from another database (a restore, a reset test database) can't complete a task here.
    token = models.CharField(max_length=32)
    node = models.ForeignKey(
        ComputeNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="attempts"
    )
    state = models.CharField(
        max_length=16, choices=AttemptState.choices, default=AttemptState.DISPATCHED
    )
    dispatched_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["task", "number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="fabric_attempt_number_unique"),
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(state="done"),
                name="fabric_one_done_attempt_per_task",
            ),
        ]
        indexes = [models.Index(fields=["node", "finished_at"])]

    def __str__(self) -> str:
        return f"attempt {self.number} of task {self.task_id} on node {self.node_id}"


class FabricArtifact(models.Model):
    """Bytes a payload needs (a model, a rule set), addressed by SHA-256. A node may download one
    only while it holds a task that names it."""

    sha256 = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField()
    content = models.BinaryField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Set when a node uploaded it as the output of one of its tasks (a trained model).
    produced_by = models.ForeignKey(
        FabricTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="outputs"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"artefact {self.sha256[:12]}… ({self.size} bytes)"
