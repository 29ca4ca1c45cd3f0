from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema


class ErrorOut(Schema):
    detail: str


class OrchestrationIn(Schema):
    process: str = Field(max_length=60, description="The process's slug (its team owns it).")
    slug: str = Field(max_length=60)
    name: str = Field(max_length=120)


class PinnedRule(Schema):
    rule: int
    version: int | None = Field(None, description="Leave out to pin the rule's current version.")


class VersionIn(Schema):
    """Components of a new draft. With `from_version`, that version's components are the base
    and only the fields given here change."""

    from_version: int | None = None
    exception_filter: dict[str, Any] | None = Field(
        None, description="Rule-language condition; items it doesn't match get `standard`."
    )
    rules: list[PinnedRule] | None = None
    model_version: int | None = Field(None, description="The process's model version number.")
    autonomy_level: int | None = None
    threshold: float | None = None
    audit_rate: float | None = None
    routes: dict[str, str] | None = None
    connectors: list[int] | None = None
    sla_minutes: int | None = None


class StageIn(Schema):
    stage: Literal["shadow", "canary", "live", "retired"]
    canary_share: float | None = None
    reason: str = Field("", max_length=2000)


class RollbackIn(Schema):
    to: int = Field(description="The earlier version number to make live again.")
    reason: str = Field(max_length=2000)


class VersionOut(Schema):
    number: int
    stage: str
    canary_share: float | None
    exception_filter: dict[str, Any] | None
    rules: list[dict[str, int]]
    model_version: int | None
    autonomy_level: int
    threshold: float
    audit_rate: float
    routes: dict[str, str]
    connectors: list[int]
    sla_minutes: int | None
    created_by: str | None
    created_at: datetime
    stage_changed_at: datetime | None


class StageChangeOut(Schema):
    version: int
    from_stage: str
    to_stage: str
    canary_share: float | None
    reason: str
    rollback: bool
    actor: str | None
    at: datetime


class SiteChangeOut(Schema):
    from_site: str = Field(description='The site before ("": not pinned).')
    to_site: str = Field(description='The site after ("": not pinned).')
    reason: str
    actor: str | None
    at: datetime


class OrchestrationOut(Schema):
    slug: str
    name: str
    team: str
    process: str
    owner: str | None
    site: str = Field(
        description="The site its runs are evaluated at (fabric nodes labelled site=<this>); "
        "empty: anywhere. Only an organisation admin sets it."
    )
    live_version: int | None
    versions: int
    created_at: datetime


class OrchestrationFiguresOut(Schema):
    items_today: int = Field(description="Items received since midnight (the site's time zone).")
    finished_today: int = Field(description="Of them, those with an outcome.")
    straight_through_share: float | None = Field(
        description="Of today's finished items, the share answered with no person involved "
        "(standard, or decided by a rule or the model); null before any finished."
    )
    waiting_for_people: int = Field(
        description="Items whose case (routed, or drawn for audit) is open or in adjudication."
    )
    sla_breaches: int = Field(
        description="Items that went past their due time (first escalation) in the last 7 days."
    )
    failing_deliveries: int = Field(
        description="Events for its items owed to a connector that are failing (retrying) or "
        "dead (retries exhausted)."
    )
    dead_deliveries: int = Field(description="Of the failing deliveries, the dead ones.")


class OrchestrationSummaryOut(OrchestrationOut):
    stages: list[str] = Field(
        description='What runs on traffic now, newest first: "v3 shadow", "v2 live", '
        '"v4 canary 0.10".'
    )
    figures: OrchestrationFiguresOut


class OrchestrationPatchIn(Schema):
    site: str = Field(
        max_length=60,
        description='Pin the orchestration to a site ("" unpins it): its items are evaluated '
        "only on fabric nodes labelled site=<this>. Organisation admins only.",
    )
    reason: str = Field(
        "",
        max_length=2000,
        description="Why the site changes: required when it does (logged in `site_log` with "
        "you as the actor); saving the same site changes and logs nothing.",
    )


class OrchestrationDetailOut(OrchestrationOut):
    site_nodes: int | None = Field(
        None,
        description="Enrolled nodes labelled with its site (null when not pinned): with 0 its "
        "items wait until one enrolls.",
    )
    version_list: list[VersionOut]
    stage_log: list[StageChangeOut]
    site_log: list[SiteChangeOut] = Field(
        description="Its site changes, newest first (the last 50): who, from, to and why."
    )


class DiffOut(Schema):
    from_version: int
    to_version: int
    components: dict[str, Any]
    settings: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    same: bool


class RunStepOut(Schema):
    number: int
    kind: str
    data: dict[str, Any]
    at: datetime


class DeliveryAttemptOut(Schema):
    started_at: datetime
    status_code: int | None
    latency_ms: float | None
    error: str


class RunDeliveryOut(Schema):
    id: int
    connector: int
    connector_name: str
    event_type: str
    webhook_id: str
    state: str = Field(description="queued, delivering, delivered, failed (retrying) or dead")
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    latency_ms: float | None = Field(description="The latest attempt's latency.")
    recent_attempts: list[DeliveryAttemptOut] = Field(description="Oldest first, the latest 10.")


class RunOut(Schema):
    id: int
    external_id: str
    version: int
    state: str
    outcome: str
    label: str
    reason_code: str
    decided_by: str = Field(
        description='"rule:<id>@<version>", "model@<version>", "expert:<username>" or empty.'
    )
    confidence: float | None
    routed_to: str
    due_by: datetime | None
    case_id: int | None
    callback: int | None = Field(None, description="The item's own callback connector, if any.")
    received_at: datetime
    finished_at: datetime | None
    created: bool | None = Field(
        None, description="In an answer to items: false when the external_id was known."
    )


class RunDetailOut(RunOut):
    fields: dict[str, Any]
    steps: list[RunStepOut]
    deliveries: list[RunDeliveryOut] = Field(
        description="The connector events sent for this run (item.decided, item.routed, "
        "audit.overturned, sla.breached) and their attempts, oldest first."
    )


class ItemsOut(Schema):
    created: int
    existing: int
    runs: list[RunOut]


class AcceptedOut(Schema):
    created: int
    existing: int
    run_ids: list[int]


class RunPage(Schema):
    runs: list[RunOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class RunFilters(Schema):
    external_id: str | None = Field(None, max_length=200)
    outcome: Literal["standard", "decided", "routed"] | None = None
    version: int | None = Field(None, ge=1, le=2**31)
    since: datetime | None = None
    cursor: str | None = Field(None, max_length=30, description="`next_cursor` of the last page")
    limit: int = Field(50, ge=1, le=200)


class BatchErrorOut(Schema):
    detail: str
    rows: list[dict[str, Any]] | None = None


_ITEM = {
    "type": "object",
    "required": ["external_id", "fields"],
    "properties": {
        "external_id": {"type": "string", "maxLength": 150},
        "fields": {"type": "object", "description": "Values for the process's schema."},
        "callback": {
            "type": ["integer", "null"],
            "description": "A connector of the orchestration's team that also receives this "
            "item's events (besides the version's connectors).",
        },
    },
}
ITEMS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [_ITEM, {"type": "array", "items": _ITEM, "minItems": 1, "maxItems": 500}]
            },
            "example": {"external_id": "INV-1001", "fields": {"vendor": "Acme GmbH"}},
        }
    },
}
