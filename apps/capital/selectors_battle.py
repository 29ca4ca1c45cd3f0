"""The first-battle ranking: every candidate process (connected, or named by the team but not
connected) scored 0-1 on the seed's three criteria, each from parts measured in orchcap's
tables, with the evidence shown beside every part. docs/capital.md gives the formulas.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.capital.models import BattleChoice, BattleWeights, CandidateProcess, PhaseCriterion
from apps.capital.selectors_assessment import (
    infrastructure_figures,
    minutes_used,
    people_figures,
    process_figures,
)
from apps.people.models import Membership, Team

DEFAULT_DECISIONS_TARGET = 200  # enough to induce rules and train a model (phase 1's criterion)
TARGET_ACTIVE_EXPERTS = 2  # two experts deciding: knowledge not held by one person
TARGET_DECISIONS_PER_WEEK = 20  # a steady stream of decisions to learn from
MAX_CLEAR_LABELS = 6  # up to six outcomes reads as a clear boundary; more dilutes it
CRITERIA = (
    ("pain", "High pain, clear boundaries"),
    ("data", "Existing data, available infrastructure"),
    ("stakeholders", "Engaged stakeholders"),
)


@dataclass
class Part:
    name: str
    score: float | None  # None: not measurable here, left out of its criterion's mean
    evidence: str


@dataclass
class Criterion:
    key: str
    name: str
    score: float
    parts: list[Part] = field(default_factory=list)


@dataclass
class Candidate:
    key: str  # "process:<slug>" or "named:<id>"
    name: str
    connected: bool
    criteria: list[Criterion]
    total: float
    hours_per_week: float
    estimate_basis: dict[str, Any]
    owner: str | None
    rank: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def weights_of(*, team: Team) -> dict[str, float]:
    row = BattleWeights.objects.filter(team=team).first()
    if row is None:
        return {"pain": 1.0, "data": 1.0, "stakeholders": 1.0}
    return {"pain": row.pain, "data": row.data, "stakeholders": row.stakeholders}


def decisions_target() -> float:
    """Decisions a process needs to learn from: phase 1's `process_decisions` threshold, so the
    ranking and the roadmap ask for the same number."""
    threshold = (
        PhaseCriterion.objects.filter(kind="process_decisions")
        .order_by("phase")
        .values_list("threshold", flat=True)
        .first()
    )
    return float(threshold) if threshold else DEFAULT_DECISIONS_TARGET


def _mean(parts: list[Part]) -> float:
    scores = [p.score for p in parts if p.score is not None]
    return sum(scores) / len(scores) if scores else 0.0


def _capped(value: float, target: float) -> float:
    return min(1.0, value / target) if target > 0 else 0.0


def _label_part(labels: int) -> float:
    if labels <= 0:
        return 0.0
    return 1.0 if labels <= MAX_CLEAR_LABELS else MAX_CLEAR_LABELS / labels


def _capacity(infra: dict[str, Any]) -> Part:
    online = infra["nodes_online"] + infra["shared_nodes_online"]
    if online:
        return Part(
            "Fabric capacity",
            1.0,
            f"{infra['nodes_online']} of the team's nodes and {infra['shared_nodes_online']} "
            "shared node(s) online: training and scoring fit on any of them",
        )
    if infra["nodes_enrolled"]:
        return Part(
            "Fabric capacity",
            0.5,
            f"{infra['nodes_enrolled']} node(s) enrolled, none online now",
        )
    return Part("Fabric capacity", 0.0, "no node enrolled for the team and none shared online")


def ranking(
    *, team: Team, now: datetime | None = None, assessed: dict[str, Any] | None = None
) -> list[Candidate]:
    """The team's candidates, best first, with the manager's weights applied.

    Pain is relative: the candidate with the most hand work (cases a week times minutes per case,
    weighted by how long its backlog waits) scores 1 and the others their share of it. Every
    other part is absolute (a share, or a count against a target). `assessed` is
    `assessment_figures(team, now)` when the caller has it already (the report shows both).
    """
    now = now or timezone.now()
    weights = weights_of(team=team)
    target = decisions_target()
    if assessed is None:
        infra = infrastructure_figures(team=team, now=now)
        people = people_figures(team=team, now=now)
        processes = process_figures(team=team, now=now)
    else:
        infra, people = assessed["infrastructure"], assessed["people"]
        processes = assessed["process"]["processes"]
    capacity = _capacity(infra)
    agreement = {row["process"]: row for row in people["agreement"]}
    members = set(Membership.objects.filter(team=team).values_list("user_id", flat=True))
    owners = dict(
        CandidateProcess.objects.filter(process__team=team).values_list("process__slug", "owner_id")
    )
    rows: list[dict[str, Any]] = []

    for figures in processes:
        minutes, source = minutes_used(figures)
        age = figures["backlog_age_days"] or 0.0
        hours = (figures["cases_per_week"] or 0) * minutes / 60
        measured = agreement.get(figures["slug"], {})
        owner_ok = owners.get(figures["slug"]) in members
        rows.append(
            {
                "key": f"process:{figures['slug']}",
                "name": figures["name"],
                "connected": True,
                "hours": hours,
                "pain_raw": hours * (1 + age / 7),
                "pain_evidence": (
                    f"{figures['cases_per_week']} cases a week \u00d7 {minutes:g} min ({source}) = "
                    f"{hours:.1f} h a week; backlog {figures['backlog']} waiting "
                    f"{age:.1f} days on average (\u00d7 {1 + age / 7:.2f})"
                ),
                "basis": {
                    "cases_per_week": figures["cases_per_week"],
                    "minutes_per_case": minutes,
                    "minutes_source": source,
                    "backlog_age_days": age,
                },
                "boundaries": [
                    Part(
                        "Outcomes",
                        _label_part(figures["labels"]),
                        f"{figures['labels']} decision labels (clear up to {MAX_CLEAR_LABELS})",
                    ),
                    Part(
                        "Typed fields",
                        figures["typed_fields"] / figures["fields"] if figures["fields"] else 0.0,
                        f"{figures['typed_fields']} of {figures['fields']} fields typed "
                        "(number, money, category, date, boolean); process variants need mined "
                        "event logs (not yet)",
                    ),
                ],
                "data": [
                    Part(
                        "Decisions recorded",
                        _capped(figures["decisions"], target),
                        f"{figures['decisions']} expert decisions (target {target:g})",
                    ),
                    Part(
                        "Field completeness",
                        figures["field_completeness"] or 0.0,
                        f"{(figures['field_completeness'] or 0) * 100:.0f} % of schema fields "
                        "filled in the latest cases",
                    ),
                    capacity,
                ],
                "stakeholders": [
                    Part(
                        "Owner",
                        1.0 if owner_ok else 0.0,
                        f"owner {figures['owner']}" if owner_ok else "no owner in the team",
                    ),
                    Part(
                        "Active experts",
                        _capped(figures["active_experts"], TARGET_ACTIVE_EXPERTS),
                        f"{figures['active_experts']} expert(s) decided in the last 30 days "
                        f"(target {TARGET_ACTIVE_EXPERTS})",
                    ),
                    Part(
                        "Decisions a week",
                        _capped(figures["decisions_per_week"] or 0, TARGET_DECISIONS_PER_WEEK),
                        f"{figures['decisions_per_week']} a week over the last 4 weeks (target "
                        f"{TARGET_DECISIONS_PER_WEEK})",
                    ),
                    Part(
                        "Agreement",
                        measured.get("percent"),
                        (
                            f"{measured['percent'] * 100:.0f} % of label pairs agree on "
                            f"{measured['cases_compared']} cases"
                            if measured.get("percent") is not None
                            else "not measured: no case has two labels (left out)"
                        ),
                    ),
                ],
                "owner": figures["owner"],
            }
        )

    connected = {row["name"].lower() for row in rows}
    for named in CandidateProcess.objects.filter(team=team, process__isnull=True).select_related(
        "owner"
    ):
        if named.name.lower() in connected:
            continue  # connected since it was named: ranked once, on its measured figures
        volume = named.cases_per_week or 0.0
        minutes = named.minutes_per_case or 0.0
        hours = volume * minutes / 60
        owner_ok = named.owner_id in members
        rows.append(
            {
                "key": f"named:{named.pk}",
                "name": named.name,
                "connected": False,
                "hours": hours,
                "pain_raw": hours,
                "pain_evidence": (
                    f"{volume:g} cases a week \u00d7 {minutes:g} min (the manager's estimates) = "
                    f"{hours:.1f} h a week; backlog age unknown until connected"
                ),
                "basis": {
                    "cases_per_week": volume,
                    "minutes_per_case": minutes,
                    "minutes_source": "estimated by the manager",
                    "backlog_age_days": None,
                },
                "boundaries": [
                    Part(
                        "Outcomes",
                        _label_part(len(named.labels or [])),
                        f"{len(named.labels or [])} outcomes named",
                    ),
                    Part(
                        "Typed fields",
                        0.5 if named.fields else 0.0,
                        f"{len(named.fields or [])} inputs named, types unknown until a schema "
                        "exists (0.5 when named)",
                    ),
                ],
                "data": [
                    Part("Decisions recorded", 0.0, "not connected: no decisions recorded"),
                    Part("Field completeness", 0.0, "not connected: no cases"),
                    capacity,
                ],
                "stakeholders": [
                    Part(
                        "Owner",
                        1.0 if owner_ok else 0.0,
                        f"owner {named.owner.get_username()}" if owner_ok else "no owner named",
                    ),
                    Part("Active experts", 0.0, "not connected: no decisions"),
                    Part("Decisions a week", 0.0, "not connected: no decisions"),
                    Part("Agreement", None, "not connected (left out)"),
                ],
                "owner": named.owner.get_username() if named.owner else None,
            }
        )

    top_pain = max((r["pain_raw"] for r in rows), default=0.0)
    total_weight = sum(weights.values())
    candidates = []
    for row in rows:
        pain = row["pain_raw"] / top_pain if top_pain > 0 else 0.0
        pain_parts = [
            Part("Pain", pain, row["pain_evidence"] + f"; {pain:.2f} of the most painful"),
            *row["boundaries"],
        ]
        # Pain and boundaries weigh the same within the first criterion: pain, then the mean of
        # the boundary parts.
        first = (pain + _mean(row["boundaries"])) / 2
        criteria = [
            Criterion("pain", CRITERIA[0][1], first, pain_parts),
            Criterion("data", CRITERIA[1][1], _mean(row["data"]), row["data"]),
            Criterion(
                "stakeholders", CRITERIA[2][1], _mean(row["stakeholders"]), row["stakeholders"]
            ),
        ]
        total = (
            sum(weights[c.key] * c.score for c in criteria) / total_weight if total_weight else 0.0
        )
        candidates.append(
            Candidate(
                key=row["key"],
                name=row["name"],
                connected=row["connected"],
                criteria=criteria,
                total=total,
                hours_per_week=row["hours"],
                estimate_basis=row["basis"],
                owner=row["owner"],
            )
        )
    candidates.sort(key=lambda c: (-c.total, c.name))
    for index, candidate in enumerate(candidates, start=1):
        candidate.rank = index
    return candidates


def current_battle(*, team: Team) -> BattleChoice | None:
    return (
        BattleChoice.objects.filter(team=team, superseded_at__isnull=True)
        .select_related("chosen_by", "process", "candidate", "frozen_by_orchestration")
        .first()
    )


def battle_history(*, team: Team) -> list[BattleChoice]:
    return list(
        BattleChoice.objects.filter(team=team).select_related("chosen_by").order_by("-chosen_at")
    )
