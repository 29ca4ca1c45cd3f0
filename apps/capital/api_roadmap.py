"""Roadmap API: a team's phases with their measured criteria, pitfalls, first battle and
timeline, and the first-battle ranking. The team's members (any role) and organisation admins
read them; anyone else gets 404."""

from django.http import HttpRequest
from ninja import Router

from apps.capital.schemas_roadmap import RankingOut, RoadmapOut
from apps.capital.selectors_assessment import capital_team
from apps.capital.selectors_battle import current_battle, ranking, weights_of
from apps.capital.selectors_battle_outcome import battle_outcome
from apps.capital.views_roadmap import roadmap_context

router = Router(tags=["capital"])


def _username(user: object) -> str | None:
    return user.get_username() if user is not None else None


@router.get(
    "/teams/{slug}/roadmap",
    response=RoadmapOut,
    summary="A team's roadmap: phases, criteria with evidence, pitfalls, first battle, timeline",
)
def team_roadmap(request: HttpRequest, slug: str) -> dict:
    team = capital_team(user=request.user, slug=slug)
    context = roadmap_context(team)
    battle = context["battle"]
    latest = context["latest_assessment"]
    return {
        "team": team.slug,
        "measured_at": context["now"],
        "current_phase": context["current"].spec.number,
        "current_phase_name": context["current"].spec.name,
        "days_in_phase": context["days_in_phase"],
        "phases": [
            {
                "number": phase.spec.number,
                "name": phase.spec.name,
                "window": phase.spec.window,
                "status": phase.status,
                "entered_at": phase.entered_at,
                "planned_start": phase.planned_start,
                "criteria": [
                    {
                        "kind": c.kind,
                        "label": c.label,
                        "threshold": c.threshold,
                        "value": c.value,
                        "met": c.met,
                        "evidence": c.evidence,
                        "missing": c.missing,
                        "met_at": c.met_at,
                    }
                    for c in phase.criteria
                ],
            }
            for phase in context["phases"]
        ],
        "pitfalls": [vars(p) for p in context["pitfalls"]],
        "first_battle": (
            {
                "name": battle.name,
                "process": battle.process.slug if battle.process else None,
                "reason": battle.reason,
                "chosen_by": _username(battle.chosen_by),
                "chosen_at": battle.chosen_at,
                "rank": battle.scores.get("rank"),
                "total": battle.scores.get("total"),
                "estimated_hours_per_week": battle.estimated_hours_per_week,
                "estimate_basis": battle.estimate_basis,
                "estimate_frozen_at": battle.estimate_frozen_at,
                "frozen_by_orchestration": (
                    battle.frozen_by_orchestration.slug if battle.frozen_by_orchestration else None
                ),
            }
            if battle
            else None
        ),
        "latest_assessment": (
            {
                "version": latest.version,
                "recorded_at": latest.recorded_at,
                "recorded_by": _username(latest.recorded_by),
            }
            if latest
            else None
        ),
        "timeline": context["timeline"],
    }


@router.get(
    "/teams/{slug}/first-battle",
    response=RankingOut,
    summary="A team's first-battle candidates, ranked, with every part's score and evidence, "
    "and the current battle's estimate beside the value measured since go-live",
)
def team_battle_ranking(request: HttpRequest, slug: str) -> dict:
    team = capital_team(user=request.user, slug=slug)
    battle = current_battle(team=team)
    outcome = battle_outcome(choice=battle)
    return {
        "team": team.slug,
        "weights": weights_of(team=team),
        "candidates": [candidate.as_json() for candidate in ranking(team=team)],
        "first_battle": (
            {
                "name": battle.name,
                "process": battle.process.slug if battle.process else None,
                "chosen_at": battle.chosen_at,
                "estimated_hours_per_week": battle.estimated_hours_per_week,
                "estimate_frozen_at": battle.estimate_frozen_at,
                "outcome": outcome.as_json() if outcome else None,
            }
            if battle
            else None
        ),
    }
