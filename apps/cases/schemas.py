"""Request and response shapes of the cases API (django-ninja), and the OpenAPI text of the bodies
the handlers validate themselves (intake and decision imports report errors row by row)."""

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

from apps.cases.models import CaseStatus
from apps.cases.schema import FIELD_TYPES
from apps.cases.services.export import FORMATS
from apps.cases.services.intake import MAX_BATCH

# --- errors -------------------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str = Field(description="Why the request was refused.")


class SchemaProblemOut(Schema):
    path: str = Field(description="The part at fault, e.g. fields[2].choices or priority_field.")
    message: str = Field(description="What is wrong with it.")


class SchemaErrorOut(Schema):
    detail: str = Field(description="Every problem in one line: `path: message; …`.")
    errors: list[SchemaProblemOut] = Field(
        default_factory=list, description="Every problem of the schema, not only the first."
    )


class RowErrorOut(Schema):
    row: int = Field(description="Index of the row in the list sent (0-based).")
    errors: dict[str, str] = Field(description="{part of the row: what is wrong with it}")


class BatchErrorOut(Schema):
    detail: str
    rows: list[RowErrorOut] = Field(
        default_factory=list, description="Row-level errors; nothing was written."
    )


# --- processes ----------------------------------------------------------------------------------


class FieldSpecIn(Schema):
    name: str = Field(description="lower_snake_case, unique in the schema", examples=["amount"])
    type: str = Field(description=f"One of: {', '.join(FIELD_TYPES)}.", examples=["money"])
    required: bool = False
    label: str | None = Field(None, description="Shown to experts; defaults to the name.")
    help_text: str | None = None
    choices: list[str] | None = Field(None, description="Allowed values of a category field.")
    currency: str | None = Field(None, description="ISO currency of a money field.")
    group: str | None = Field(None, description="Fields with the same group are shown together.")


class DecisionOptionIn(Schema):
    label: str = Field(examples=["approve"])
    description: str | None = None
    reason_codes: list[str] = Field(default_factory=list, examples=[["ok"]])


class ProcessIn(Schema):
    team: str = Field(description="Slug of the team that owns the process.", examples=["ap"])
    name: str = Field(max_length=120)
    slug: str = Field("", description="Defaults to the slugified name.")
    description: str = ""
    minutes_per_case: float = Field(5, ge=0, description="Minutes an expert spends by hand.")
    overlap: int = Field(1, description="Independent experts per case (1 to 10).")
    priority_field: str = Field("", description="A number, money, date or boolean field.")
    priority_descending: bool = True
    queue_order: Literal["priority", "uncertainty", "due"] = Field(
        "priority",
        description="Fresh cases by the priority field, most uncertain for the promoted model "
        "first (active learning), or soonest due first (the SLA of routed items).",
    )
    random_share: float = Field(
        0.2, ge=0, le=1, description="With uncertainty order: the share of random picks (0 to 1)."
    )
    fields: list[FieldSpecIn]
    decisions: list[DecisionOptionIn]


class SchemaIn(Schema):
    fields: list[FieldSpecIn]
    decisions: list[DecisionOptionIn]


class ProcessOut(Schema):
    slug: str
    name: str
    team: str = Field(description="Team slug.")
    description: str
    minutes_per_case: float
    overlap: int
    priority_field: str
    priority_descending: bool
    queue_order: str = Field(description="priority, uncertainty or due.")
    random_share: float
    is_synthetic: bool
    schema_version: int = Field(description="Number of the current schema version.")
    fields: list[dict[str, Any]] = Field(description="Field definitions of the current schema.")
    decisions: list[dict[str, Any]] = Field(description="Decision options of the current schema.")
    created_at: datetime
    updated_at: datetime


# --- intake -------------------------------------------------------------------------------------


class IntakeRowOut(Schema):
    id: int | None = Field(
        description="The case; with `orchestration`, the case made for a routed item, null for "
        "an item the orchestration answered (standard or decided) or hasn't finished."
    )
    external_id: str | None
    created: bool = Field(description="False when the external_id already existed.")


class IntakeOut(Schema):
    created: int
    existing: int
    cases: list[IntakeRowOut] = Field(
        description="One entry per row sent, in order. With `orchestration` the answer also has "
        "`runs`: each row's run, in order, as the items API returns it."
    )


class ImportOut(Schema):
    imported: int


_CASE_ROW = {
    "type": "object",
    "required": ["fields"],
    "additionalProperties": False,
    "properties": {
        "external_id": {
            "type": "string",
            "maxLength": 200,
            "description": "Your id; re-sending it returns the existing case, never a duplicate.",
        },
        "fields": {
            "type": "object",
            "additionalProperties": True,
            "description": "Values of the process's schema fields, by name.",
        },
        "exception": {
            "type": "object",
            "description": "What went wrong.",
            "properties": {
                "reason": {"type": "string", "maxLength": 2000},
                "fields": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Names of the fields at fault.",
                },
            },
        },
    },
}
CASES_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _CASE_ROW,
                    {"type": "array", "items": _CASE_ROW, "minItems": 1, "maxItems": MAX_BATCH},
                ]
            },
            "example": [
                {
                    "external_id": "INV-1001",
                    "fields": {"vendor": "Acme GmbH", "amount": 1250.5},
                    "exception": {"reason": "PO missing", "fields": ["po_status"]},
                }
            ],
        }
    },
}
_DECISION_ROW = {
    "type": "object",
    "required": ["external_id", "label", "expert", "decided_at"],
    "properties": {
        "external_id": {"type": "string", "description": "A case of this process."},
        "label": {"type": "string"},
        "reason_code": {"type": "string"},
        "rationale": {"type": "string"},
        "expert": {"type": "string", "description": "Username of a member of the team."},
        "decided_at": {"type": "string", "format": "date-time"},
    },
}
DECISIONS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": _DECISION_ROW,
                "minItems": 1,
                "maxItems": MAX_BATCH,
            },
            "example": [
                {
                    "external_id": "INV-1001",
                    "label": "approve",
                    "reason_code": "ok",
                    "rationale": "PO found by phone",
                    "expert": "erin",
                    "decided_at": "2025-11-03T10:15:00Z",
                }
            ],
        }
    },
}


# --- cases --------------------------------------------------------------------------------------


class ExceptionOut(Schema):
    reason: str
    fields: list[str]


class CaseOut(Schema):
    id: int
    external_id: str | None
    status: str
    schema_version: int
    fields: dict[str, Any]
    exception: ExceptionOut | None
    final_label: str
    final_reason_code: str
    decided_at: datetime | None
    created_at: datetime
    is_synthetic: bool


class CaseFilters(Schema):
    status: CaseStatus | None = Field(None, description="open, adjudication or decided")
    final_label: str | None = Field(None, description="Cases settled with this label")
    external_id: str | None = Field(None, description="The case with this external id")
    created_after: datetime | None = Field(None, description="Received after this time")
    created_before: datetime | None = Field(None, description="Received before this time")
    decided_after: datetime | None = Field(None, description="Settled after this time")
    limit: int = Field(100, ge=1, le=500, description="Page size (at most 500)")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")


class CasePage(Schema):
    items: list[CaseOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class DecisionIn(Schema):
    label: str
    reason_code: str = ""
    rationale: str = Field("", max_length=20_000)
    key_factors: list[str] = Field(
        default_factory=list, description="Names of the fields that drove the decision."
    )


class DecisionOut(Schema):
    id: int
    case_id: int
    expert: str = Field(description="Username.")
    label: str
    reason_code: str
    rationale: str
    key_factors: list[str]
    source: str
    decided_at: datetime
    retracted_at: datetime | None


class EventOut(Schema):
    kind: str
    actor: str | None
    at: datetime
    data: dict[str, Any]


class CaseDetailOut(CaseOut):
    process: str = Field(description="Process slug.")
    labels_hidden: bool = Field(
        description="True while review is blind for the caller: the case is open and the caller "
        "has not labelled it; `decisions` is then left out."
    )
    decisions: list[DecisionOut] | None = Field(
        None, description="Every decision, retracted ones included; absent when labels_hidden."
    )
    timeline: list[EventOut]


class DecisionCreatedOut(DecisionOut):
    case_status: str = Field(description="The case's status after this decision.")


class ExportQuery(Schema):
    format: str = Field(
        "csv", description="csv or jsonl", json_schema_extra={"enum": list(FORMATS)}
    )
