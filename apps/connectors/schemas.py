from datetime import datetime

from ninja import Field, Schema


class ErrorOut(Schema):
    detail: str


class ConnectorIn(Schema):
    team: str = Field(max_length=50, description="The team's slug.")
    name: str = Field(max_length=120)
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(min_length=1, max_length=20)
    description: str = Field("", max_length=2000)


class ConnectorPatch(Schema):
    name: str | None = Field(None, max_length=120)
    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = Field(None, min_length=1, max_length=20)
    description: str | None = Field(None, max_length=2000)
    enabled: bool | None = None


class ConnectorOut(Schema):
    id: int
    team: str
    name: str
    description: str
    url: str
    event_types: list[str]
    owner: str | None
    enabled: bool
    disabled_reason: str
    disabled_at: datetime | None
    failing_since: datetime | None
    last_success_at: datetime | None
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None
    backlog: int = Field(description="Deliveries still owed (queued, delivering, failed).")
    dead: int = Field(description="Deliveries whose retries ran out (the dead-letter list).")
    created_at: datetime


class ConnectorSecretOut(ConnectorOut):
    secret: str = Field(description="`whsec_…`: shown on creation and rotation only.")


class AttemptOut(Schema):
    started_at: datetime
    status_code: int | None
    latency_ms: float | None
    response_snippet: str
    error: str


class DeliveryOut(Schema):
    id: int
    connector: int
    webhook_id: str
    event_type: str
    payload: dict
    state: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str
    recent_attempts: list[AttemptOut] = Field(default_factory=list)


class DeliveriesOut(Schema):
    count: int
    items: list[DeliveryOut]


class ReplayIn(Schema):
    since: datetime
    until: datetime
    only_dead: bool = False


class ReplayOut(Schema):
    requeued: int
