from datetime import datetime
from typing import Any

from ninja import Schema


class ErrorOut(Schema):
    detail: str


class GateErrorOut(Schema):
    detail: str
    missing: list[str] = []
    evidence: dict[str, Any] | None = None


class SettingsOut(Schema):
    threshold: float
    target_precision: float
    min_shadow: int
    audit_rate: float
    audit_window: int
    min_audits: int
    routes: dict[str, str]


class SettingsIn(Schema):
    threshold: float | None = None
    target_precision: float | None = None
    min_shadow: int | None = None
    audit_rate: float | None = None
    audit_window: int | None = None
    min_audits: int | None = None
    routes: dict[str, Any] | None = None


class ChangeOut(Schema):
    kind: str
    from_level: int
    to_level: int
    target: int | None
    actor: str
    reason: str
    evidence: dict[str, Any]
    at: datetime


class AutonomyOut(Schema):
    process: str
    level: int
    level_name: str
    level_since: datetime | None
    target: int | None
    target_name: str
    shadow_started_at: datetime | None
    settings: SettingsOut
    next_level: int | None
    evidence: dict[str, Any] | None
    missing: list[str]
    passed: bool | None
    audits: dict[str, Any] | None
    history: list[ChangeOut]


class PromoteIn(Schema):
    level: int
    reason: str = ""


class DemoteIn(Schema):
    level: int
    reason: str


class ShadowIn(Schema):
    target: int
    reason: str = ""
