"""Routing by measured expertise: who gets a new case of a process first (docs/skills.md#routing).

The candidates are the process's reviewers who are experts of its team (every expert of the team
when it names none). Each is scored on the case from their profile (routing_profiles.py):

- **accuracy**: their agreement with final labels in the process, shrunk toward the process mean
  by `prior_weight` decisions' worth of it ((agreed + k·mean) / (n + k)); then, for the case's
  label region and each of its field segments, their accuracy there shrunk toward that process
  accuracy the same way; the expected accuracy is the mean of those (the process accuracy alone
  when the case has neither region nor segment);
- **speed**: `speed_weight` · log2(the process's median of people's median seconds / theirs),
  clamped to ±1 (twice as fast: +weight; unknown: 0);
- **load**: minus `load_penalty` per open case routed to them now (in any process).

score = expected accuracy + speed - load; ties go to the lighter load, then the lower id.
People with fewer than `expert_min_decisions` decided labels in the process are **learners**:
a `learning_share` of cases (those whose stable random key falls below it) goes to the learner
with the least load (then the most decisions), with one label more required (a second look) and
the best-scored expert named as its checker: once the learner has labelled, the case is routed
to the checker, whom the queue offers it to first. With no expert, everyone is a candidate.

The decision itself (`choose`) is a pure function of profiles and loads, so the simulation
(routing_simulation.py) replays it on recorded decisions with profiles measured on earlier ones.
"""

import math
import weakref
from dataclasses import dataclass
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Process
from apps.people.models import Membership, Role
from apps.skills.models import ExpertiseStat, RoutedCase, RoutingPolicy, RoutingStrategy
from apps.skills.routing_profiles import Counts, Profile, policy_for, segment_keys


class Candidate(NamedTuple):
    # A tuple, not a dataclass: a decision makes one per candidate (200 of them) and a tuple is
    # several times cheaper to build.
    person_id: int
    decisions: int
    expected_accuracy: float
    speed: float
    load: int
    score: float
    learner: bool


@dataclass(frozen=True)
class Choice:
    assignee_id: int
    checker_id: int | None
    learning: bool
    expected_accuracy: float
    score: float
    candidates: list[Candidate]
    region: str = ""


def _shrunk(agreed: int, decisions: int, prior: float, weight: int) -> float:
    return (agreed + weight * prior) / (decisions + weight)


def process_mean(profiles: dict[int, Profile]) -> float:
    """Agreement of everyone's labels in the process (0.5 before anyone decided anything)."""
    n = sum(p.process.decisions for p in profiles.values())
    return sum(p.process.agreed for p in profiles.values()) / n if n else 0.5


def process_median_seconds(profiles: dict[int, Profile]) -> float | None:
    medians = sorted(p.median_seconds for p in profiles.values() if p.median_seconds)
    if not medians:
        return None
    mid = len(medians) // 2
    return medians[mid] if len(medians) % 2 else (medians[mid - 1] + medians[mid]) / 2


def expected_accuracy(
    profile: Profile | None, *, mean: float, weight: int, region: str, segments: list[str]
) -> float:
    """A person's expected accuracy on a case of this region and these segments."""
    if profile is None:
        return mean
    base = _shrunk(profile.process.agreed, profile.process.decisions, mean, weight)
    parts = []
    if region:
        counts = profile.labels.get(region)
        parts.append(_shrunk(counts.agreed, counts.decisions, base, weight) if counts else base)
    for key in segments:
        counts = profile.segments.get(key)
        parts.append(_shrunk(counts.agreed, counts.decisions, base, weight) if counts else base)
    return sum(parts) / len(parts) if parts else base


def choose(
    *,
    pool: list[int],
    profiles: dict[int, Profile],
    loads: dict[int, int],
    policy: RoutingPolicy,
    region: str,
    segments: list[str],
    random_key: float,
    mean: float | None = None,
    median_seconds: float | None = None,
) -> Choice | None:
    """Who gets the case first, and, for a learning case, who checks it. None: nobody in the
    pool. `mean` and `median_seconds` default to those of `profiles` (pass them when the
    profiles hold only the pool, to keep the process's own)."""
    if not pool:
        return None
    mean = process_mean(profiles) if mean is None else mean
    typical = process_median_seconds(profiles) if median_seconds is None else median_seconds
    weight, speed_weight = policy.prior_weight, policy.speed_weight
    load_penalty, min_decisions = policy.load_penalty, policy.expert_min_decisions
    log2, get_profile, get_load = math.log2, profiles.get, loads.get
    candidates = []
    for person_id in pool:
        profile = get_profile(person_id)
        accuracy = expected_accuracy(
            profile, mean=mean, weight=weight, region=region, segments=segments
        )
        speed = 0.0
        decisions = 0
        if profile is not None:
            decisions = profile.process.decisions
            if profile.median_seconds and typical:
                speed = speed_weight * max(-1.0, min(1.0, log2(typical / profile.median_seconds)))
        load = get_load(person_id, 0)
        candidates.append(
            Candidate(
                person_id,
                decisions,
                accuracy,
                speed,
                load,
                accuracy + speed - load_penalty * load,
                decisions < min_decisions,
            )
        )
    candidates.sort(key=lambda c: (-c.score, c.load, c.person_id))
    experts = [c for c in candidates if not c.learner]
    if experts and random_key < policy.learning_share and len(experts) < len(candidates):
        learner = min(
            (c for c in candidates if c.learner), key=lambda c: (c.load, -c.decisions, c.person_id)
        )
        return Choice(
            assignee_id=learner.person_id,
            checker_id=experts[0].person_id,
            learning=True,
            expected_accuracy=learner.expected_accuracy,
            score=learner.score,
            candidates=candidates,
            region=region,
        )
    best = (experts or candidates)[0]
    return Choice(
        assignee_id=best.person_id,
        checker_id=None,
        learning=False,
        expected_accuracy=best.expected_accuracy,
        score=best.score,
        candidates=candidates,
        region=region,
    )


# --- reading what a decision needs -------------------------------------------------------------


def candidate_pool(*, process: Process) -> list[int]:
    """Ids of the active experts of the process's team, narrowed to its named reviewers if any."""
    experts = Membership.objects.filter(
        team_id=process.team_id, role=Role.EXPERT, user__is_active=True
    ).values_list("user_id", flat=True)
    named = set(process.reviewers.values_list("pk", flat=True))
    return sorted(set(experts) & named if named else set(experts))


_LOADS = """
    SELECT routed_to_id, count(*) FROM cases_case
    WHERE status = 'open' AND routed_to_id = ANY(%(people)s) GROUP BY routed_to_id
"""


def current_loads(*, people: list[int]) -> dict[int, int]:
    """Open cases routed to each person now, in any process (case_routed_idx)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOADS, {"people": people})
        return dict(cursor.fetchall())


# The model's predicted label for the case: its latest shadow prediction ("" without one).
_REGION = """
    SELECT coalesce((SELECT s.label FROM autonomy_shadowprediction s WHERE s.case_id = %(case)s
                     ORDER BY s.created_at DESC, s.id DESC LIMIT 1), '')
"""


# Everything one decision reads, in one statement (one round trip: on a busy machine each costs
# as much as the work): the pool (candidate_pool's rule, or the people given), the case's region,
# one row per candidate with their stored process, region and segment counts pivoted (each part
# read through the unique index (process, dimension, key, person), not every process's rows of
# those people), and their load counted on case_routed_idx (an index-only scan of their open
# routed cases). The load is counted, not stored: Case.routed_to and status are written by
# cases, autonomy, orchestrations and skills, in bulk too, and a count kept beside them would
# be one more thing each of those writes has to keep right; at 200 people it costs ~0.1 ms.
_TEAM_POOL = """
    SELECT DISTINCT m.user_id FROM people_membership m JOIN auth_user u ON u.id = m.user_id
    WHERE m.team_id = %(team)s AND m.role = 'expert' AND u.is_active
      AND (NOT EXISTS (SELECT 1 FROM cases_process_reviewers r WHERE r.process_id = %(process)s)
           OR m.user_id IN (SELECT r.user_id FROM cases_process_reviewers r
                            WHERE r.process_id = %(process)s))
"""
_GIVEN_POOL = "SELECT DISTINCT unnest(%(people)s::bigint[])"
_INPUTS = """
    WITH pool(person_id) AS MATERIALIZED ({pool}),
    people AS MATERIALIZED (SELECT ARRAY(SELECT person_id FROM pool) AS ids),
    region(label) AS MATERIALIZED ({region}),
    stat AS (
        SELECT e.person_id, e.dimension, e.key, e.decisions, e.agreed, e.median_seconds
        FROM skills_expertisestat e, people
        WHERE e.process_id = %(process)s AND e.dimension = 'process' AND e.key = ''
          AND e.person_id = ANY(people.ids)
        UNION ALL
        SELECT e.person_id, e.dimension, e.key, e.decisions, e.agreed, NULL
        FROM skills_expertisestat e, people, region
        WHERE e.process_id = %(process)s AND e.dimension = 'label' AND e.key = region.label
          AND region.label <> '' AND e.person_id = ANY(people.ids)
        UNION ALL
        SELECT e.person_id, e.dimension, e.key, e.decisions, e.agreed, NULL
        FROM skills_expertisestat e, people
        WHERE e.process_id = %(process)s AND e.dimension = 'segment'
          AND e.key = ANY(%(segments)s::text[]) AND e.person_id = ANY(people.ids)
    ),
    profile AS (
        SELECT person_id,
               max(decisions) FILTER (WHERE dimension = 'process') AS decisions,
               max(agreed) FILTER (WHERE dimension = 'process') AS agreed,
               max(median_seconds) FILTER (WHERE dimension = 'process') AS median_seconds,
               max(decisions) FILTER (WHERE dimension = 'label') AS region_decisions,
               max(agreed) FILTER (WHERE dimension = 'label') AS region_agreed,
               array_agg(key) FILTER (WHERE dimension = 'segment') AS segment_keys,
               array_agg(decisions) FILTER (WHERE dimension = 'segment') AS segment_decisions,
               array_agg(agreed) FILTER (WHERE dimension = 'segment') AS segment_agreed
        FROM stat GROUP BY person_id
    ),
    load AS (
        SELECT c.routed_to_id AS person_id, count(*) AS n FROM cases_case c, people
        WHERE c.status = 'open' AND c.routed_to_id = ANY(people.ids) GROUP BY c.routed_to_id
    )
    SELECT p.person_id, (SELECT * FROM region), f.decisions, f.agreed, f.median_seconds,
           f.region_decisions, f.region_agreed, f.segment_keys, f.segment_decisions,
           f.segment_agreed, coalesce(l.n, 0)
    FROM pool p LEFT JOIN profile f USING (person_id) LEFT JOIN load l USING (person_id)
    ORDER BY p.person_id
"""
_INPUTS_TEAM_POOL = _INPUTS.format(pool=_TEAM_POOL, region=_REGION)
_INPUTS_GIVEN_POOL = _INPUTS.format(pool=_GIVEN_POOL, region=_REGION)


# Raw connections (Django reconnects with a new one) and the statements prepared on each.
_PREPARED: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()


def _fetch_prepared(name: str, sql: str, params: dict[str, object]) -> list[tuple]:
    # Planning the statement above costs about as much as running it (1 to 2 ms): it is
    # PREPAREd once per database session and each decision only EXECUTEs it. By SQL, not
    # psycopg's own preparing: Django's cursors bind on the client side, where psycopg
    # doesn't prepare. A prepared statement outlives a rolled-back transaction (PREPARE isn't
    # transactional), so the record below stays true. (Behind a pooler, it needs session
    # pooling: in transaction pooling the next EXECUTE may reach another server session.)
    connection.ensure_connection()
    prepared = _PREPARED.setdefault(connection.connection, set())
    keys = list(params)
    with connection.cursor() as cursor:
        if name not in prepared:
            body = sql
            for number, key in enumerate(keys, 1):
                body = body.replace(f"%({key})s", f"${number}")
            cursor.execute(f"PREPARE {name} AS {body}")
            prepared.add(name)
        cursor.execute(
            f"EXECUTE {name}({', '.join(['%s'] * len(keys))})", [params[key] for key in keys]
        )
        return cursor.fetchall()


@dataclass(frozen=True)
class DecisionInputs:
    pool: list[int]
    region: str
    profiles: dict[int, Profile]
    loads: dict[int, int]


def decision_inputs(
    *, case: Case, segments: list[str], pool: list[int] | None = None
) -> DecisionInputs:
    """What deciding `case` reads (one statement): the candidates (`pool`, or candidate_pool's
    rule), the case's region, their stored profiles with only the rows the case needs (process,
    its region, its `segments`) and their loads now."""
    params: dict[str, object] = {"process": case.process_id, "case": case.pk, "segments": segments}
    if pool is None:
        params["team"] = case.process.team_id
        rows = _fetch_prepared("skills_routing_inputs_team", _INPUTS_TEAM_POOL, params)
    else:
        params["people"] = pool
        rows = _fetch_prepared("skills_routing_inputs_given", _INPUTS_GIVEN_POOL, params)
    region = rows[0][1] if rows else ""
    profiles: dict[int, Profile] = {}
    loads: dict[int, int] = {}
    for person_id, _r, n, ok, median, region_n, region_ok, keys, seg_n, seg_ok, load in rows:
        if load:
            loads[person_id] = load
        if n is None and region_n is None and keys is None:
            continue  # no stored profile in this process
        profiles[person_id] = Profile(
            person_id,
            Counts(n or 0, ok or 0),
            median,
            {region: Counts(region_n, region_ok)} if region_n is not None else {},
            dict(zip(keys, map(Counts, seg_n, seg_ok), strict=True)) if keys else {},
        )
    return DecisionInputs([row[0] for row in rows], region, profiles, loads)


def decide_for(
    *, case: Case, policy: RoutingPolicy, pool: list[int] | None = None
) -> Choice | None:
    """The routing decision for `case` from the stored profiles and the loads now (no write).
    `case.process` with its schema should be loaded (select_related) by the caller."""
    segments = segment_keys(case.fields, case.process, policy.bounds)
    # The process mean and typical speed are the candidates' (their process rows come with the
    # profiles).
    inputs = decision_inputs(case=case, segments=segments, pool=pool)
    return choose(
        pool=inputs.pool,
        profiles=inputs.profiles,
        loads=inputs.loads,
        policy=policy,
        region=inputs.region,
        segments=segments,
        random_key=case.random_key,
    )


# --- acting on it -------------------------------------------------------------------------------


def route_case(*, case_id: int) -> RoutedCase | None:
    """Route a new case of a process whose strategy is by expertise: set its first reviewer
    (Case.routed_to) and, for a learning case, ask one label more (a second look, for the
    checker). Leaves alone a case already routed (a rule or orchestration route wins), labelled,
    held under a lease or no longer open; returns the RoutedCase, or None when nothing was done."""
    now = timezone.now()
    with transaction.atomic():
        case = (
            Case.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("process__schema")
            .filter(pk=case_id, status=CaseStatus.OPEN, label_count=0, routed_to__isnull=True)
            .first()
        )
        if case is None or case.claims.filter(expires_at__gt=now).exists():
            return None
        policy = policy_for(process=case.process)
        if policy.strategy != RoutingStrategy.EXPERTISE:
            return None
        choice = decide_for(case=case, policy=policy)
        if choice is None:
            return None
        case.routed_to_id = choice.assignee_id
        fields = ["routed_to"]
        if choice.learning:
            case.extra_labels += 1
            fields.append("extra_labels")
        case.save(update_fields=fields)
        return RoutedCase.objects.create(
            case=case,
            process=case.process,
            assignee_id=choice.assignee_id,
            checker_id=choice.checker_id,
            learning=choice.learning,
            region=choice.region,
            expected_accuracy=round(choice.expected_accuracy, 4),
            score=round(choice.score, 4),
            routed_at=now,
        )


def route_cases(*, process_id: int, case_ids: list[int]) -> int:
    """Route each of `case_ids` in turn (each sees the loads the previous ones added)."""
    if not RoutingPolicy.objects.filter(
        process_id=process_id, strategy=RoutingStrategy.EXPERTISE
    ).exists():
        return 0
    return sum(1 for case_id in case_ids if route_case(case_id=case_id) is not None)


def hand_to_checker(*, case_id: int, expert_id: int) -> bool:
    """After the learner labelled a learning case, the case waits for its checker (the queue
    offers a partly labelled case routed to someone who hasn't labelled it to them first).

    The checker is a preference, not a lock: any other expert still gets the case once they
    have nothing else (cases.services.queue), and a checker who is no longer among the
    process's candidates (left the team, deactivated, no longer a named reviewer) isn't waited
    for at all: the case is routed to nobody and any expert may give its second label."""
    routed = (
        RoutedCase.objects.filter(
            case_id=case_id, learning=True, assignee_id=expert_id, checker__isnull=False
        )
        .select_related("process")
        .first()
    )
    if routed is None:
        return False
    checker_id = routed.checker_id
    if checker_id not in candidate_pool(process=routed.process):
        checker_id = None
    return bool(
        Case.objects.filter(pk=case_id, status=CaseStatus.OPEN, routed_to_id=expert_id).update(
            routed_to_id=checker_id
        )
    )


def users_by_id(ids: list[int]) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))


# --- settings and what the manager sees ---------------------------------------------------------

POLICY_FIELDS = (
    "strategy",
    "learning_share",
    "prior_weight",
    "expert_min_decisions",
    "speed_weight",
    "load_penalty",
)


# Beyond these a knob means nothing more (and the integer columns hold at most 2**31 - 1).
POLICY_LIMITS = {
    "prior_weight": 10_000,
    "expert_min_decisions": 1_000_000,
    "speed_weight": 100.0,
    "load_penalty": 100.0,
}


def update_policy(*, process: Process, **values: object) -> RoutingPolicy:
    """Set the process's routing strategy and knobs (POLICY_FIELDS). ValidationError with the
    reason for an unknown field, strategy, a share outside 0 to 1 or a negative weight."""
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"unknown routing settings: {', '.join(sorted(unknown))}")
    policy = policy_for(process=process)
    for name, value in values.items():
        setattr(policy, name, value)
    if policy.strategy not in RoutingStrategy.values:
        raise ValidationError(
            f"strategy must be one of {', '.join(RoutingStrategy.values)}, got {policy.strategy!r}"
        )
    if not 0 <= float(policy.learning_share) <= 1:
        raise ValidationError(
            f"learning_share must be between 0 and 1, got {policy.learning_share}"
        )
    for name, most in POLICY_LIMITS.items():
        value = float(getattr(policy, name))
        if not (math.isfinite(value) and 0 <= value <= most):
            raise ValidationError(
                f"{name} must be between 0 and {most:g}, got {getattr(policy, name)}"
            )
    policy.save()
    return policy


@dataclass(frozen=True)
class PoolRow:
    person_id: int
    username: str
    decisions: int
    accuracy: float | None
    median_seconds: float | None
    load: int
    learner: bool


def pool_rows(*, process: Process, policy: RoutingPolicy) -> list[PoolRow]:
    """The candidates with their stored process profile and load, most decisions first."""
    pool = candidate_pool(process=process)
    stats = {
        row[0]: row[1:]
        for row in ExpertiseStat.objects.filter(
            process=process, dimension="process", key="", person_id__in=pool
        ).values_list("person_id", "decisions", "agreed", "median_seconds")
    }
    loads = current_loads(people=pool)
    names = users_by_id(pool)
    rows = []
    for person_id in pool:
        decisions, agreed, median = stats.get(person_id, (0, 0, None))
        rows.append(
            PoolRow(
                person_id=person_id,
                username=names.get(person_id, "?"),
                decisions=decisions,
                accuracy=round(agreed / decisions, 4) if decisions else None,
                median_seconds=median,
                load=loads.get(person_id, 0),
                learner=decisions < policy.expert_min_decisions,
            )
        )
    return sorted(rows, key=lambda r: (-r.decisions, r.username))
