"""Routing API: a process's routing strategy and knobs, its candidates' profiles, and the replay
comparing today's order with routing by expertise. Managers and admins of the process's team and
organisation admins; anyone else 404 (it shows people's accuracy)."""

from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from apps.core.api import validation_errors
from apps.skills.routing import pool_rows, update_policy
from apps.skills.routing_profiles import policy_for
from apps.skills.routing_simulation import simulate_routing
from apps.skills.routing_views import routing_process_for
from apps.skills.schemas import ErrorOut

router = Router(tags=["skills"])
_ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class PolicyIn(Schema):
    strategy: Literal["order", "expertise"]
    learning_share: float = Field(0.1, ge=0, le=1)
    prior_weight: int = Field(10, ge=0)
    expert_min_decisions: int = Field(20, ge=0)
    speed_weight: float = Field(0.05, ge=0)
    load_penalty: float = Field(0.01, ge=0)


class CandidateOut(Schema):
    username: str
    decisions: int
    accuracy: float | None
    median_seconds: float | None
    load: int
    learner: bool


class RoutingOut(PolicyIn):
    process: str
    candidates: list[CandidateOut]


class PersonLineOut(Schema):
    username: str
    today_cases: int
    strategy_cases: int
    measured_decisions: int
    measured_accuracy: float | None


class ReplayedOut(Schema):
    case_id: int
    region: str
    today: str
    today_expected: float
    today_agreed: bool
    strategy: str
    strategy_expected: float
    learning: bool
    checker: str


class SimulationOut(Schema):
    process: str
    measured_cases: int
    replayed: int
    today_expected: float | None
    today_observed: float | None
    strategy_expected: float | None
    learning_cases: int
    changed: int
    people: list[PersonLineOut]
    cases: list[ReplayedOut]


def _out(process, policy) -> RoutingOut:  # type: ignore[no-untyped-def]
    return RoutingOut(
        process=process.slug,
        strategy=policy.strategy,
        learning_share=policy.learning_share,
        prior_weight=policy.prior_weight,
        expert_min_decisions=policy.expert_min_decisions,
        speed_weight=policy.speed_weight,
        load_penalty=policy.load_penalty,
        candidates=[CandidateOut(**vars(r)) for r in pool_rows(process=process, policy=policy)],
    )


@router.get(
    "/skills/routing/{slug}",
    response={200: RoutingOut, **_ERRORS},
    summary="A process's routing strategy, its knobs and the candidates' measured profiles",
)
def routing(request: HttpRequest, slug: str) -> RoutingOut:
    process = routing_process_for(viewer=request.user, slug=slug)
    return _out(process, policy_for(process=process))


@router.put(
    "/skills/routing/{slug}",
    response={200: RoutingOut, **_ERRORS},
    summary="Set a process's routing strategy (order or expertise) and its knobs",
)
@validation_errors
def set_routing(request: HttpRequest, slug: str, body: PolicyIn) -> RoutingOut:
    process = routing_process_for(viewer=request.user, slug=slug)
    return _out(process, update_policy(process=process, **body.dict()))


@router.get(
    "/skills/routing/{slug}/simulation",
    response={200: SimulationOut, **_ERRORS},
    summary="Replay recorded decisions under today's order and routing by expertise",
)
@validation_errors
def simulation(request: HttpRequest, slug: str, holdout: float = 0.3) -> SimulationOut:
    process = routing_process_for(viewer=request.user, slug=slug)
    result = simulate_routing(process=process, policy=policy_for(process=process), holdout=holdout)
    return SimulationOut(
        process=process.slug,
        measured_cases=result.measured_cases,
        replayed=result.replayed,
        today_expected=result.today_expected,
        today_observed=result.today_observed,
        strategy_expected=result.strategy_expected,
        learning_cases=result.learning_cases,
        changed=result.changed,
        people=[PersonLineOut(**vars(line)) for line in result.people],
        cases=[ReplayedOut(**vars(row)) for row in result.rows],
    )
