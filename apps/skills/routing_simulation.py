"""The routing comparison a manager sees before switching a process to routing by expertise:
a replay of its recorded decisions (docs/skills.md#the-simulation).

The process's decided cases are split by creation time: profiles are measured on the earlier
`1 - holdout` share (routing_profiles.measured_profiles) and the later share is replayed in
creation order. For each replayed case:

- **today's order**: who got it is who gave its first label (review, API or import);
- **by expertise**: `routing.choose` with those profiles, the process's current candidate pool
  and a simulated load: the replayed cases routed to a person that were still open (by their
  recorded decided time) when this one arrived.

Each side's **expected accuracy** is the mean, over the replayed cases, of the chosen person's
accuracy measured on the earlier cases only (held out from what is replayed), for the case's
label region and segments. For today's order the observed agreement of those first labels is
given beside it. A learning case counts with its learner's expected accuracy (its checker's
second label is not in the figure).
"""

import heapq
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection

from apps.cases.models import Process
from apps.skills.models import RoutingPolicy
from apps.skills.routing import (
    Scoring,
    candidate_pool,
    choose,
    expected_accuracy,
    process_mean,
    users_by_id,
)
from apps.skills.routing_profiles import (
    LABEL_SOURCES,
    measure_bounds,
    measured_profiles,
    segment_keys,
)

MAX_REPLAY = 5000
SHOWN_ROWS = 50

# Decided cases with their first human label, the region and the stable random key.
_CASES = """
    SELECT c.id, c.created_at, c.decided_at, c.fields, c.final_label, c.random_key,
           f.expert_id, f.label, sp.label
    FROM cases_case c
    JOIN LATERAL (
        SELECT d.expert_id, d.label FROM cases_decision d
        WHERE d.case_id = c.id AND d.retracted_at IS NULL AND d.source = ANY(%(sources)s)
        ORDER BY d.decided_at, d.id LIMIT 1
    ) f ON true
    LEFT JOIN LATERAL (
        SELECT s.label FROM autonomy_shadowprediction s WHERE s.case_id = c.id
        ORDER BY s.created_at DESC, s.id DESC LIMIT 1
    ) sp ON true
    WHERE c.process_id = %(process)s AND c.status = 'decided' AND c.final_label <> ''
    ORDER BY c.created_at, c.id
"""


@dataclass(frozen=True)
class ReplayedCase:
    case_id: int
    region: str
    today: str
    today_expected: float
    today_agreed: bool
    strategy: str
    strategy_expected: float
    learning: bool
    checker: str


@dataclass
class PersonLine:
    username: str
    today_cases: int = 0
    strategy_cases: int = 0
    measured_decisions: int = 0
    measured_accuracy: float | None = None


@dataclass
class Simulation:
    process: Process
    cutoff: datetime | None
    measured_cases: int
    replayed: int
    today_expected: float | None
    today_observed: float | None
    strategy_expected: float | None
    learning_cases: int
    changed: int
    people: list[PersonLine] = field(default_factory=list)
    rows: list[ReplayedCase] = field(default_factory=list)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def simulate_routing(
    *, process: Process, policy: RoutingPolicy, holdout: float = 0.3
) -> Simulation:
    """Replay the last `holdout` share of the process's decided cases (at most MAX_REPLAY)
    under today's order and under `policy` (its knobs; its strategy setting is ignored).
    ValidationError for a holdout outside 0.05 to 0.95."""
    if not 0.05 <= holdout <= 0.95:
        raise ValidationError(f"holdout must be between 0.05 and 0.95, got {holdout}")
    with connection.cursor() as cursor:
        cursor.execute(_CASES, {"process": process.pk, "sources": list(LABEL_SOURCES)})
        cases = cursor.fetchall()
    split = len(cases) - max(1, round(len(cases) * holdout)) if cases else 0
    replay = cases[split:][-MAX_REPLAY:]
    if split == 0 or not replay:
        return Simulation(process, None, split, 0, None, None, None, 0, 0)
    cutoff = replay[0][1]
    bounds = measure_bounds(process)
    profiles = measured_profiles(process=process, before=cutoff, bounds=bounds)
    mean = process_mean(profiles)
    pool = candidate_pool(process=process)
    weight = policy.prior_weight
    # The held-out profiles don't change during the replay: the scores' fixed part once.
    scoring = Scoring(pool=pool, profiles=profiles, policy=policy, mean=mean)
    open_until: dict[int, list[datetime]] = {p: [] for p in pool}  # min-heaps of decided times
    rows: list[ReplayedCase] = []
    today_exp, today_ok, strat_exp = [], [], []
    lines: dict[int, PersonLine] = {}
    learning = changed = 0
    ids = set(pool) | {row[6] for row in replay} | set(profiles)
    names = users_by_id(list(ids))
    for case_id, created, decided, fields, final, key, first_id, first_label, region in replay:
        region = region or ""
        # a raw cursor hands jsonb over as text (Django parses it only for model fields)
        segments = segment_keys(
            json.loads(fields) if isinstance(fields, str) else fields, process, bounds
        )
        for heap in open_until.values():
            while heap and heap[0] <= created:
                heapq.heappop(heap)
        loads = {p: len(h) for p, h in open_until.items()}
        choice = choose(
            pool=pool,
            profiles=profiles,
            loads=loads,
            policy=policy,
            region=region,
            segments=segments,
            random_key=key,
            scoring=scoring,
        )
        today = expected_accuracy(
            profiles.get(first_id), mean=mean, weight=weight, region=region, segments=segments
        )
        today_exp.append(today)
        today_ok.append(1.0 if first_label == final else 0.0)
        lines.setdefault(first_id, PersonLine(names.get(first_id, "?"))).today_cases += 1
        strategy_name, strategy_value, checker = "", today, ""
        if choice is not None:
            heapq.heappush(open_until[choice.assignee_id], decided or created)
            strategy_value = choice.expected_accuracy
            strategy_name = names.get(choice.assignee_id, "?")
            line = lines.setdefault(choice.assignee_id, PersonLine(strategy_name))
            line.strategy_cases += 1
            learning += choice.learning
            changed += choice.assignee_id != first_id
            checker = names.get(choice.checker_id, "") if choice.checker_id else ""
        strat_exp.append(strategy_value)
        if len(rows) < SHOWN_ROWS:
            rows.append(
                ReplayedCase(
                    case_id=case_id,
                    region=region,
                    today=names.get(first_id, "?"),
                    today_expected=round(today, 4),
                    today_agreed=first_label == final,
                    strategy=strategy_name,
                    strategy_expected=round(strategy_value, 4),
                    learning=bool(choice and choice.learning),
                    checker=checker,
                )
            )
    for person_id, line in lines.items():
        profile = profiles.get(person_id)
        if profile and profile.process.decisions:
            line.measured_decisions = profile.process.decisions
            line.measured_accuracy = round(profile.process.agreed / profile.process.decisions, 4)
    return Simulation(
        process=process,
        cutoff=cutoff,
        measured_cases=split,
        replayed=len(replay),
        today_expected=_mean(today_exp),
        today_observed=_mean(today_ok),
        strategy_expected=_mean(strat_exp),
        learning_cases=learning,
        changed=changed,
        people=sorted(lines.values(), key=lambda line: line.username),
        rows=rows,
    )
