from datetime import datetime
from typing import Any

from ninja import Schema


class RuleIn(Schema):
    name: str
    description: str = ""
    priority: int = 100
    condition: dict[str, Any]
    action: dict[str, Any]
    # Where the rule came from, e.g. an accepted induction candidate: {"source": "induced", …}.
    provenance: dict[str, Any] | None = None


class CandidateOut(Schema):
    condition: dict[str, Any]
    action: dict[str, Any]
    sentence: str
    support: int
    correct: int
    precision: float


class InductionOut(Schema):
    candidates: list[CandidateOut]


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
