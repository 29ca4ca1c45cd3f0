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


class EstimateOut(Schema):
    hours_per_week: float
    items_per_week: float  # the cases a week the estimate was made from
    source: str  # where its minutes per case came from


class MeasuredOut(Schema):
    hours_per_week: float
    items_per_week: float  # automatic decisions that stood, a week
    hours: float  # over the period, before scaling to a week
    items: int
    overturns: int
    minutes_source: str


class OutcomeOut(Schema):
    """Estimated (frozen at go-live) vs measured since, per week."""

    process: str
    live_since: datetime
    period_start: datetime | None
    period_end: datetime
    days: int  # whole days measured, at most 28; 0: not measured yet
    estimated: EstimateOut
    measured: MeasuredOut | None
    hours_share: float | None  # measured hours a week / estimated


class CurrentBattleOut(Schema):
    name: str
    process: str | None
    chosen_at: datetime
    estimated_hours_per_week: float
    estimate_frozen_at: datetime | None
    outcome: OutcomeOut | None  # null until an orchestration of the process goes live


class RankingOut(Schema):
    team: str
    weights: dict[str, float]
    candidates: list[CandidateOut]
    first_battle: CurrentBattleOut | None
