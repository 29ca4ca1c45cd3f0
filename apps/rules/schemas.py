from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema


class RuleIn(Schema):
    name: str
    description: str = ""
    priority: int = 100
    condition: dict[str, Any]
    action: dict[str, Any]
    # Where the rule came from, e.g. an accepted induction candidate: {"source": "induced", …}.
    provenance: dict[str, Any] | None = None


class InduceIn(Schema):
    method: Literal["tree", "rule_list"] = "tree"


class CandidateOut(Schema):
    condition: dict[str, Any]
    action: dict[str, Any]
    sentence: str
    support: int
    correct: int
    precision: float
    method: str
    fingerprint: str


class InductionOut(Schema):
    method: str
    candidates: list[CandidateOut]


class RejectionIn(Schema):
    condition: dict[str, Any]
    action: dict[str, Any]
    reason: str
    # What the candidate showed when it was rejected, e.g. {"method", "support", "precision"}.
    evidence: dict[str, Any] = Field(default_factory=dict)


class RejectionOut(Schema):
    id: int
    condition: dict[str, Any]
    action: dict[str, Any]
    sentence: str
    fingerprint: str
    reason: str
    evidence: dict[str, Any]
    rejected_by: str | None
    rejected_at: datetime


class DraftIn(Schema):
    label: str
    # Cases whose rationales (for `label`) the model reads: e.g. a rationale group's cases.
    cases: list[int] = Field(min_length=1, max_length=50)


class DraftOut(Schema):
    condition: dict[str, Any]
    action: dict[str, Any]
    sentence: str
    model: str
    provenance: dict[str, Any]


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
