"""Reads for the roadmap: the seed's four phases with their measured exit criteria, the phase a
team is in, the seed's pitfalls measured, and a timeline of what happened."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max, Min
from django.utils import timezone

from apps.capital import criteria
from apps.capital.models import Assessment, BattleChoice, PhaseCriterion, PhaseEntry
from apps.cases.models import Case, Decision
from apps.fabric.models import ComputeNode
from apps.orchestrations.models import (
    Orchestration,
    OrchestrationVersion,
    Stage,
    StageChange,
)
from apps.people.models import Membership, Team


@dataclass(frozen=True)
class PhaseSpec:
    number: int
    name: str
    window: str
    starts_month: int  # months after the team's start the seed plans it to begin
    ends_month: int | None


PHASES = (
    PhaseSpec(1, "Assessment and foundation", "Months 1-3", 0, 3),
    PhaseSpec(2, "First orchestrations", "Months 4-6", 3, 6),
    PhaseSpec(3, "Expansion and connection", "Months 7-12", 6, 12),
    PhaseSpec(4, "Compound growth", "Year 2 and beyond", 12, None),
)
PERFECTION_TRAP_DAYS = 90  # in phase 1 longer than its three months
CASCADE_MIN_STARTED = 3  # "many processes started": three or more with an orchestration
ISOLATION_DAYS = 30  # an orchestration no person touched for this long


@dataclass
class CriterionState:
    id: int
    kind: str
    label: str
    threshold: float
    value: float
    met: bool
    evidence: str
    missing: str
    met_at: datetime | None
    source: str = ""


@dataclass
class PhaseState:
    spec: PhaseSpec
    criteria: list[CriterionState]
    entered_at: datetime | None
    status: str  # "done", "current" or "ahead"
    planned_start: datetime | None = None

    @property
    def all_met(self) -> bool:
        return bool(self.criteria) and all(c.met for c in self.criteria)


@dataclass
class Pitfall:
    key: str
    name: str
    message: str
    evidence: list[str] = field(default_factory=list)


def criteria_rows() -> list[PhaseCriterion]:
    return list(PhaseCriterion.objects.select_related("updated_by").order_by("phase", "position"))


def team_start(*, team: Team) -> datetime:
    """When the team started: created, or its first case arrived if that was earlier (history
    loaded with its dates)."""
    first_case = Case.objects.filter(process__team=team).aggregate(at=Min("created_at"))["at"]
    return min(d for d in (team.created_at, first_case) if d is not None)


def evaluate_phase(
    *, team: Team, phase: int, rows: list[PhaseCriterion], now: datetime
) -> list[CriterionState]:
    states = []
    for row in rows:
        if row.phase != phase:
            continue
        result = criteria.measure(row.kind, team=team, threshold=row.threshold, now=now)
        states.append(
            CriterionState(
                id=row.pk,
                kind=row.kind,
                label=criteria.label_of(row.kind, row.threshold),
                threshold=row.threshold,
                value=result.value,
                met=result.met,
                evidence=result.evidence,
                missing=result.missing,
                met_at=result.met_at,
                source=result.source,
            )
        )
    return states


def roadmap_state(*, team: Team, now: datetime | None = None) -> list[PhaseState]:
    """Each phase with its criteria measured now and the date the team entered it (from
    PhaseEntry rows, which services_roadmap.advance_roadmap writes in the hourly capital refresh;
    before the first refresh, phase 1 is dated from the team's start). Reads only."""
    now = now or timezone.now()
    rows = criteria_rows()
    entries = dict(PhaseEntry.objects.filter(team=team).values_list("phase", "entered_at"))
    current = max(entries, default=1)
    start = entries.get(1) or team_start(team=team)
    entries.setdefault(1, start)
    phases = []
    for spec in PHASES:
        status = (
            "done" if spec.number < current else "current" if spec.number == current else "ahead"
        )
        phases.append(
            PhaseState(
                spec=spec,
                criteria=evaluate_phase(team=team, phase=spec.number, rows=rows, now=now),
                entered_at=entries.get(spec.number),
                status=status,
                planned_start=start + timedelta(days=round(spec.starts_month * 30.44)),
            )
        )
    return phases


def current_phase(phases: list[PhaseState]) -> PhaseState:
    return next(p for p in phases if p.status == "current")


# --- pitfalls -----------------------------------------------------------------------------------


def _last_touch(orchestration: Orchestration) -> datetime | None:
    """The last time a person worked on the orchestration: a stage change or a version they made,
    or an expert decision on a case of its process (the model's own decisions don't count)."""
    dates = [
        StageChange.objects.filter(orchestration=orchestration, actor__isnull=False).aggregate(
            at=Max("created_at")
        )["at"],
        OrchestrationVersion.objects.filter(
            orchestration=orchestration, created_by__isnull=False
        ).aggregate(at=Max("created_at"))["at"],
        Decision.objects.filter(
            case__process_id=orchestration.process_id,
            retracted_at__isnull=True,
            source__in=criteria.EXPERT_SOURCES,
        ).aggregate(at=Max("decided_at"))["at"],
    ]
    dates = [d for d in dates if d is not None]
    return max(dates) if dates else None


def pitfalls(*, team: Team, phases: list[PhaseState], now: datetime | None = None) -> list[Pitfall]:
    """The seed's pitfalls that the figures show now (an empty list when none)."""
    now = now or timezone.now()
    found: list[Pitfall] = []
    phase = current_phase(phases)
    if phase.spec.number == 1 and phase.entered_at is not None:
        days = (now - phase.entered_at).days
        if days > PERFECTION_TRAP_DAYS:
            missing = [c.missing for c in phase.criteria if not c.met and c.missing]
            found.append(
                Pitfall(
                    "perfection_trap",
                    "The perfection trap",
                    f"In phase 1 for {days} days (more than {PERFECTION_TRAP_DAYS}): start with "
                    "what you have rather than waiting for perfect data, processes or machines.",
                    [f"phase 1 entered {phase.entered_at:%Y-%m-%d}", *missing],
                )
            )
    deployed = (
        OrchestrationVersion.objects.filter(orchestration__team=team)
        .exclude(stage=Stage.RETIRED)
        .values_list("orchestration__process__name", "stage")
    )
    started: set[str] = set()
    live: set[str] = set()
    for process_name, stage in deployed:
        started.add(process_name)
        if stage == Stage.LIVE:
            live.add(process_name)
    if len(started) >= CASCADE_MIN_STARTED and not live:
        found.append(
            Pitfall(
                "complexity_cascade",
                "The complexity cascade",
                f"{len(started)} processes have orchestrations under way and none is live: "
                "finish one simple orchestration before starting more.",
                [", ".join(sorted(started))],
            )
        )
    members = set(Membership.objects.filter(team=team).values_list("user_id", flat=True))
    active_ids = (
        OrchestrationVersion.objects.filter(
            orchestration__team=team, stage__in=[Stage.SHADOW, Stage.CANARY, Stage.LIVE]
        )
        .values_list("orchestration_id", flat=True)
        .distinct()
    )
    island_evidence = []
    for orchestration in Orchestration.objects.filter(pk__in=active_ids).select_related("owner"):
        touched = _last_touch(orchestration)
        if touched is None or now - touched > timedelta(days=ISOLATION_DAYS):
            when = f"since {touched:%Y-%m-%d}" if touched else "ever"
            island_evidence.append(f"{orchestration.name}: no person touched it {when}")
        if orchestration.owner_id is None or orchestration.owner_id not in members:
            owner = orchestration.owner.get_username() if orchestration.owner else "nobody"
            island_evidence.append(
                f"{orchestration.name}: its owner ({owner}) is not in the team any more"
            )
    if island_evidence:
        found.append(
            Pitfall(
                "isolation_island",
                "The isolation island",
                "Orchestrations drifting away from the people who run the process: give each "
                "an owner in the team and keep experts reviewing its cases and audits.",
                island_evidence,
            )
        )
    return found


# --- timeline -----------------------------------------------------------------------------------


def timeline(*, team: Team, phases: list[PhaseState]) -> list[dict[str, Any]]:
    """What happened on the team's road, oldest first: phases entered, assessments recorded,
    battles chosen, the first machine enrolled, orchestrations first live."""
    events: list[dict[str, Any]] = [
        {
            "at": p.entered_at,
            "kind": "phase",
            "text": f"Entered phase {p.spec.number}: {p.spec.name}",
        }
        for p in phases
        if p.entered_at
    ]
    events += [
        {"at": a.recorded_at, "kind": "assessment", "text": f"Assessment v{a.version} recorded"}
        for a in Assessment.objects.filter(team=team)
    ]
    events += [
        {"at": b.chosen_at, "kind": "battle", "text": f"First battle chosen: {b.name}"}
        for b in BattleChoice.objects.filter(team=team)
    ]
    first_node = (
        ComputeNode.objects.filter(team=team, approved_at__isnull=False)
        .order_by("approved_at")
        .first()
    )
    if first_node:
        events.append(
            {
                "at": first_node.approved_at,
                "kind": "node",
                "text": f"First machine enrolled: {first_node.name}",
            }
        )
    for name, at in (
        StageChange.objects.filter(orchestration__team=team, to_stage=Stage.LIVE)
        .values_list("orchestration__name")
        .annotate(at=Min("created_at"))
        .order_by()
    ):
        events.append({"at": at, "kind": "live", "text": f"{name} went live"})
    events.sort(key=lambda e: e["at"])
    return events
