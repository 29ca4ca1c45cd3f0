"""Roadmap exit criteria: each kind measures one figure of a team from orchcap's tables and
compares it with the threshold an organisation admin set (PhaseCriterion rows).

A kind returns the value, whether it is met, the evidence, what is missing, and when it was met
(where the tables say so: the date of the 200th decision, of the first live version…), which
dates the team's entry into the next phase.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Min

from apps.capital import metrics
from apps.capital.models import Assessment, BattleChoice, ListedAsset
from apps.cases.models import Decision, DecisionSource, Process
from apps.fabric.models import ComputeNode, NodeState
from apps.orchestrations.models import (
    Orchestration,
    OrchestrationVersion,
    Stage,
    StageChange,
)
from apps.people.models import Team

EXPERT_SOURCES = (
    DecisionSource.REVIEW,
    DecisionSource.API,
    DecisionSource.IMPORT,
    DecisionSource.ADJUDICATION,
)


@dataclass(frozen=True)
class Result:
    value: float
    met: bool
    evidence: str
    missing: str
    met_at: datetime | None = None
    source: str = ""  # where a figure came from when it matters (the metrics)


@dataclass(frozen=True)
class Kind:
    label: str  # "{threshold}" is replaced by the threshold
    unit: str  # "count", "share" or "hours"
    measure: Callable[[Team, float, datetime], Result]


def _nth(dates: list[datetime], threshold: float) -> datetime | None:
    """The date the count reached `threshold` (dates in any order), None if it never did."""
    needed = max(1, math.ceil(threshold))
    ordered = sorted(d for d in dates if d is not None)
    return ordered[needed - 1] if len(ordered) >= needed else None


def _count(value: float, threshold: float) -> bool:
    return value >= threshold


# --- the kinds ----------------------------------------------------------------------------------


def assessment_recorded(team: Team, threshold: float, now: datetime) -> Result:
    dates = list(Assessment.objects.filter(team=team).values_list("recorded_at", flat=True))
    met = _count(len(dates), threshold)
    return Result(
        len(dates),
        met,
        f"{len(dates)} assessment(s) recorded"
        + (f", the latest on {max(dates):%Y-%m-%d}" if dates else ""),
        "" if met else "record the reality assessment (Assessment page, Record)",
        _nth(dates, threshold),
    )


def battle_chosen(team: Team, threshold: float, now: datetime) -> Result:
    current = BattleChoice.objects.filter(team=team, superseded_at__isnull=True).first()
    first = BattleChoice.objects.filter(team=team).aggregate(at=Min("chosen_at"))["at"]
    value = 1 if current else 0
    met = _count(value, threshold)
    return Result(
        value,
        met,
        f"first battle: {current.name}, chosen {current.chosen_at:%Y-%m-%d}"
        if current
        else "no first battle chosen",
        "" if met else "pick the first battle (First battle page)",
        first if met else None,
    )


def nodes_enrolled(team: Team, threshold: float, now: datetime) -> Result:
    dates = list(
        ComputeNode.objects.filter(team=team, approved_at__isnull=False, revoked_at__isnull=True)
        .exclude(state=NodeState.RETIRED)
        .values_list("approved_at", flat=True)
    )
    met = _count(len(dates), threshold)
    return Result(
        len(dates),
        met,
        f"{len(dates)} machine(s) of the team enrolled and approved",
        ""
        if met
        else f"enrol {math.ceil(threshold) - len(dates)} more machine(s) for the team "
        "(an enrolment token with --team)",
        _nth(dates, threshold),
    )


def process_decisions(team: Team, threshold: float, now: datetime) -> Result:
    counts = dict(
        Decision.objects.filter(
            case__process__team=team, retracted_at__isnull=True, source__in=EXPERT_SOURCES
        )
        .values_list("case__process__name")
        .annotate(n=Count("pk"))
        .order_by()
    )
    best_name, best = max(counts.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0))
    met = _count(best, threshold)
    met_at = None
    if met:
        needed = max(1, math.ceil(threshold))
        dates = [
            Decision.objects.filter(
                case__process=process, retracted_at__isnull=True, source__in=EXPERT_SOURCES
            )
            .order_by("decided_at", "pk")
            .values_list("decided_at", flat=True)[needed - 1]
            for process in Process.objects.filter(team=team, name__in=counts)
            if counts[process.name] >= threshold
        ]
        met_at = min(dates) if dates else None
    return Result(
        best,
        met,
        f"{best} expert decisions in {best_name}" if best_name else "no expert decisions yet",
        "" if met else f"{math.ceil(threshold) - best} more expert decisions in one process",
        met_at,
    )


def _first_live(team: Team) -> dict[int, datetime]:
    """{orchestration id: when a version of it first went live} for orchestrations live now."""
    live_now = OrchestrationVersion.objects.filter(
        orchestration__team=team, stage=Stage.LIVE
    ).values("orchestration_id")
    return dict(
        StageChange.objects.filter(orchestration_id__in=live_now, to_stage=Stage.LIVE)
        .values_list("orchestration_id")
        .annotate(at=Min("created_at"))
        .order_by()
    )


def orchestrations_live(team: Team, threshold: float, now: datetime) -> Result:
    first = _first_live(team)
    names = list(
        Orchestration.objects.filter(pk__in=first).order_by("name").values_list("name", flat=True)
    )
    met = _count(len(first), threshold)
    return Result(
        len(first),
        met,
        f"{len(first)} orchestration(s) live" + (f": {', '.join(names)}" if names else ""),
        "" if met else f"{math.ceil(threshold) - len(first)} more orchestration(s) live",
        _nth(list(first.values()), threshold),
    )


# All time, for the metrics' measure(): before any team could have started.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


# One roadmap evaluation asks the metrics for several figures at the same `now`: the last
# answer is kept for that (team, now) only, so a later evaluation always measures afresh.
_last_measured: dict[tuple[int, datetime], dict] = {}


def _team_metrics(team: Team, now: datetime) -> dict:
    """The team's all-time figures from apps/capital/metrics.py: the one definition of each
    figure (overturns and standard items not credited), shared with the dashboard and the API."""
    key = (team.pk, now)
    if key in _last_measured:
        return _last_measured[key]
    figures = metrics.measure(team_id=team.pk, start=EPOCH, end=now)[None]
    _last_measured.clear()
    _last_measured[key] = figures
    return figures


def team_hours_saved(team: Team, now: datetime) -> tuple[float, str]:
    return float(_team_metrics(team, now)["hours_saved"].num), "metrics: hours saved"


def hours_saved(team: Team, threshold: float, now: datetime) -> Result:
    hours, source = team_hours_saved(team, now)
    met = hours >= threshold and hours > 0
    return Result(
        round(hours, 2),
        met,
        f"{hours:.1f} hours saved, measured ({source})",
        "" if met else f"{max(threshold - hours, 0):.1f} more hours saved by a live orchestration",
        source=source,
    )


def team_reuse_share(team: Team, now: datetime) -> tuple[float, str]:
    raw = _team_metrics(team, now)["component_reuse"]
    share = raw.num / raw.den if raw.den else 0.0
    return share, f"metrics: {raw.num:g} of {raw.den or 0:g} versions reuse a component"


def reuse_share(team: Team, threshold: float, now: datetime) -> Result:
    share, source = team_reuse_share(team, now)
    met = share >= threshold and share > 0
    return Result(
        round(share, 3),
        met,
        f"{share * 100:.0f} % of orchestration versions reuse a component ({source})",
        "" if met else f"reuse at least {threshold * 100:.0f} %",
        source=source,
    )


def assets_listed(team: Team, threshold: float, now: datetime) -> Result:
    count = ListedAsset.objects.filter(team=team).count()
    met = _count(count, threshold)
    return Result(
        count,
        met,
        f"{count} machine(s) listed",
        "" if met else "list the team's machines on the assessment",
    )


def sources_reachable(team: Team, threshold: float, now: datetime) -> Result:
    from apps.capital.selectors_assessment import data_figures

    figures = data_figures(team=team)
    share = figures["reachable"] / figures["listed"] if figures["listed"] else 0.0
    met = share >= threshold and figures["listed"] > 0
    return Result(
        round(share, 3),
        met,
        f"{figures['reachable']} of {figures['listed']} listed data sources reachable",
        "" if met else "enrol nodes that host the team's data sources (--data-source)",
    )


def active_experts(team: Team, threshold: float, now: datetime) -> Result:
    count = (
        Decision.objects.filter(
            case__process__team=team,
            retracted_at__isnull=True,
            source__in=EXPERT_SOURCES,
            decided_at__gte=now - timedelta(days=30),
        )
        .values("expert")
        .distinct()
        .count()
    )
    met = _count(count, threshold)
    return Result(
        count,
        met,
        f"{count} expert(s) decided in the last 30 days",
        "" if met else f"{math.ceil(threshold) - count} more active expert(s)",
    )


def autonomy_level(team: Team, threshold: float, now: datetime) -> Result:
    from apps.autonomy.models import ProcessAutonomy

    level = (
        ProcessAutonomy.objects.filter(process__team=team)
        .order_by("-level")
        .values_list("level", flat=True)
        .first()
    ) or 0
    met = _count(level, threshold)
    return Result(
        level,
        met,
        f"highest autonomy level {level}",
        "" if met else f"a process at autonomy level {threshold:g} or above",
    )


KINDS: dict[str, Kind] = {
    "assessment_recorded": Kind("Assessments recorded ≥ {threshold}", "count", assessment_recorded),
    "battle_chosen": Kind("A first battle chosen", "count", battle_chosen),
    "nodes_enrolled": Kind("Machines enrolled ≥ {threshold}", "count", nodes_enrolled),
    "process_decisions": Kind(
        "A process with ≥ {threshold} expert decisions", "count", process_decisions
    ),
    "orchestrations_live": Kind("Orchestrations live ≥ {threshold}", "count", orchestrations_live),
    "hours_saved": Kind("Hours saved (measured) ≥ {threshold}", "hours", hours_saved),
    "reuse_share": Kind("Component reuse ≥ {threshold}", "share", reuse_share),
    "assets_listed": Kind("Machines listed ≥ {threshold}", "count", assets_listed),
    "sources_reachable": Kind("Data sources reachable ≥ {threshold}", "share", sources_reachable),
    "active_experts": Kind("Active experts ≥ {threshold}", "count", active_experts),
    "autonomy_level": Kind("A process at autonomy level ≥ {threshold}", "count", autonomy_level),
}


def label_of(kind: str, threshold: float) -> str:
    spec = KINDS.get(kind)
    if spec is None:
        return f"{kind} ≥ {threshold:g}"
    shown = f"{threshold * 100:g} %" if spec.unit == "share" else f"{threshold:g}"
    return spec.label.format(threshold=shown)


def measure(kind: str, *, team: Team, threshold: float, now: datetime) -> Result:
    spec = KINDS.get(kind)
    if spec is None:  # a row left from a kind that no longer exists: shown, never met
        return Result(0, False, f"unknown kind {kind!r}", "an organisation admin removes it")
    return spec.measure(team, threshold, now)
