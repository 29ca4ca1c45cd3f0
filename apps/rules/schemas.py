from datetime import datetime
from typing import Any

from ninja import Schema


class RuleIn(Schema):
    name: str
    description: str = ""
    priority: int = 100
    condition: dict[str, Any]
    action: dict[str, Any]


class RuleRevisionIn(Schema):
    condition: dict[str, Any]
    action: dict[str, Any]


class RuleOut(Schema):
    id: int
    name: str
    description: str
    owner: str
    priority: int
    enabled: bool
    version: int
    condition: dict[str, Any]
    action: dict[str, Any]
    sentence: str
    backtest: dict[str, Any] | None
    backtested_at: datetime | None
    provenance: dict[str, Any]


class ErrorOut(Schema):
    detail: str
