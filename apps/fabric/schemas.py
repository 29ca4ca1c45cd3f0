from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema


class ErrorOut(Schema):
    detail: str


class CapabilitiesIn(Schema):
    detected: dict[str, Any] = Field(default_factory=dict)
    declared: dict[str, Any] = Field(default_factory=dict)


class EnrollIn(Schema):
    token: str = Field(max_length=200)
    name: str = Field(max_length=120)
    capabilities: CapabilitiesIn = Field(default_factory=CapabilitiesIn)
    labels: dict[str, Any] = Field(default_factory=dict)
    data_sources: list[str] = Field(default_factory=list)
    fingerprint: str = Field(max_length=64)
    software_version: str = Field("", max_length=40)
    timezone: str = Field("UTC", max_length=64)
    node_class: Literal["server", "workstation", "edge", "gpu"] | None = None
    max_concurrent_tasks: int | None = Field(None, ge=1, le=256)


class EnrollOut(Schema):
    node_id: int
    credential: str
    state: str
    heartbeat_seconds: int


class TaskRefIn(Schema):
    task: int
    attempt: int
    token: str = Field(max_length=32)


class HeartbeatIn(Schema):
    status: Literal["running", "stopping", "stopped"] = "running"
    cpu_percent: float | None = None
    memory_percent: float | None = None
    load_average: float | None = None
    running_tasks: int = Field(0, ge=0)
    idle_seconds: float | None = Field(None, ge=0)
    # Sent now and then, not every beat: a fresh probe (e.g. free disk changed).
    detected: dict[str, Any] | None = None
    software_version: str | None = Field(None, max_length=40)
    # The attempts its worker holds (their leases are renewed) and whether the worker consumes.
    tasks: list[TaskRefIn] | None = Field(None, max_length=1000)
    worker: Literal["none", "starting", "ready"] | None = None


class HeartbeatOut(Schema):
    node_id: int
    state: str
    accept_work: bool
    reason: str
    heartbeat_seconds: int
    broker_url: str | None = None
    queues: list[str] = Field(default_factory=list)
    max_concurrent_tasks: int = 1
    consuming: bool = True


class NodeSelfOut(HeartbeatOut):
    name: str
    availability: str
    labels: dict[str, str]


class NodeOut(Schema):
    id: int
    name: str
    node_class: str
    state: str
    owner: str | None
    team: str | None
    purpose: str
    approved: bool
    revoked: bool
    detected: dict[str, Any]
    declared: dict[str, Any]
    labels: dict[str, str]
    data_sources: list[str]
    max_concurrent_tasks: int
    running_tasks: int
    cpu_percent: float | None
    memory_percent: float | None
    idle_seconds: int | None
    last_heartbeat_at: datetime | None
    software_version: str
    fingerprint: str
    timezone: str
    availability: str
    accept_work: bool
    reason: str


class TaskIn(Schema):
    """`probe` takes `seconds`; `call` takes `function` and `args`; or give the whole `payload`."""

    kind: str = Field(max_length=64)
    requirements: dict[str, Any] = Field(default_factory=dict)
    seconds: float | None = None
    function: str | None = Field(None, max_length=100)
    args: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    artifacts: list[str] = Field(default_factory=list, max_length=100)
    idempotency_key: str | None = Field(None, max_length=120)
    # To a capability queue, for the first free node of the kind that may run it.
    pull: bool = False


class NodeRefOut(Schema):
    id: int
    name: str


class AttemptOut(Schema):
    number: int
    node: NodeRefOut | None
    state: str
    dispatched_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    note: str


class TaskOut(Schema):
    id: int
    kind: str
    state: str
    system: bool
    pull: bool
    node: NodeRefOut | None
    reason: str
    placement: dict[str, Any]
    requirements: dict[str, Any]
    artifacts: list[str]
    attempt: int
    attempts: list[AttemptOut]
    result: Any = None
    error: str
    created_at: datetime
    placed_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    lease_expires_at: datetime | None


class ResultIn(Schema):
    attempt: int = Field(ge=1)
    token: str = Field(max_length=32)
    ok: bool
    result: Any = None
    error: str = Field("", max_length=20_000)
    duration_seconds: float | None = Field(None, ge=0)


class BatchResultIn(ResultIn):
    task: int


class ResultsIn(Schema):
    results: list[BatchResultIn] = Field(max_length=1000)


class ResultOutcomeOut(Schema):
    task: int
    recorded: bool
    reason: str


class ClaimIn(Schema):
    attempt: int = Field(ge=1)
    token: str = Field(max_length=32)


class ClaimOut(Schema):
    task: int
    claimed: bool
    reason: str


class ResultsOut(Schema):
    outcomes: list[ResultOutcomeOut]


class ArtifactOut(Schema):
    sha256: str
    size: int
    name: str
