"""API shapes of the roadmap and the first-battle ranking."""

from datetime import datetime
from typing import Any

from ninja import Schema


class CriterionOut(Schema):
    kind: str
    label: str
    threshold: float
    value: float
    met: bool
    evidence: str
    missing: str
    met_at: datetime | None


class PhaseOut(Schema):
    number: int
    name: str
    window: str
    status: str  # done, current or ahead
    entered_at: datetime | None
    planned_start: datetime | None
    criteria: list[CriterionOut]


class PitfallOut(Schema):
    key: str  # perfection_trap, complexity_cascade or isolation_island
    name: str
    message: str
    evidence: list[str]


class BattleOut(Schema):
    name: str
    process: str | None
    reason: str
    chosen_by: str | None
    chosen_at: datetime
    rank: int | None
    total: float | None
    estimated_hours_per_week: float
    estimate_basis: dict[str, Any]
    estimate_frozen_at: datetime | None
    frozen_by_orchestration: str | None


class AssessmentRefOut(Schema):
    version: int
    recorded_at: datetime
    recorded_by: str | None


class EventOut(Schema):
    at: datetime
    kind: str
    text: str


class RoadmapOut(Schema):
    team: str
    measured_at: datetime
    current_phase: int
    current_phase_name: str
    days_in_phase: int | None
    phases: list[PhaseOut]
    pitfalls: list[PitfallOut]
    first_battle: BattleOut | None
    latest_assessment: AssessmentRefOut | None
    timeline: list[EventOut]


class PartOut(Schema):
    name: str
    score: float | None
    evidence: str


class BattleCriterionOut(Schema):
    key: str
    name: str
    score: float
    parts: list[PartOut]


class CandidateOut(Schema):
    key: str
    rank: int
    name: str
    connected: bool
    owner: str | None
    total: float
    hours_per_week: float
    estimate_basis: dict[str, Any]
    criteria: list[BattleCriterionOut]


class RankingOut(Schema):
    team: str
    weights: dict[str, float]
    candidates: list[CandidateOut]
