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
The process mean and typical speed are of everyone with a profile in the process, as in the
simulation. A decision reads one statement (pool, region, loads, the profiles changed since the
last read) and takes the rest from memory: the process's profiles and, per pool and policy, a
`Scoring` with each candidate's expected accuracy per (region, segments).
"""

import math
import threading
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
from apps.skills.routing_profiles import Profile, add_stat, policy_for, segment_keys


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


class Scoring:
    """What the scores take from the pool, their profiles and the policy's weights alone: the
    process mean and typical speed, each candidate's decisions, speed and whether they are
    learning, and their expected accuracies per (region, segments), each worked out once (a
    process's cases fall in a few dozen of those). `choose` makes one per call unless given one;
    routing keeps one with a process's profiles in memory (`decide_for`), so a decision is the
    loads and a sort."""

    __slots__ = ("_accuracies", "_profiles", "mean", "people", "pool", "weight")

    def __init__(
        self,
        *,
        pool: list[int],
        profiles: dict[int, Profile],
        policy: RoutingPolicy,
        mean: float | None = None,
        median_seconds: float | None = None,
    ) -> None:
        self.pool = pool
        self.mean = process_mean(profiles) if mean is None else mean
        typical = process_median_seconds(profiles) if median_seconds is None else median_seconds
        self.weight = policy.prior_weight
        speed_weight, min_decisions = policy.speed_weight, policy.expert_min_decisions
        self._profiles = [profiles.get(person_id) for person_id in pool]
        people = []  # (person id, decisions, speed, learner), in pool order
        for person_id, profile in zip(pool, self._profiles, strict=True):
            speed = 0.0
            decisions = 0
            if profile is not None:
                decisions = profile.process.decisions
                if profile.median_seconds and typical:
                    ratio = math.log2(typical / profile.median_seconds)
                    speed = speed_weight * max(-1.0, min(1.0, ratio))
            people.append((person_id, decisions, speed, decisions < min_decisions))
        self.people = people
        self._accuracies: dict[tuple[str, tuple[str, ...]], list[float]] = {}

    def accuracies(self, region: str, segments: list[str]) -> list[float]:
        """Each candidate's expected accuracy on a case of this region and these segments."""
        key = (region, tuple(segments))
        found = self._accuracies.get(key)
        if found is None:
            mean, weight = self.mean, self.weight
            found = [
                expected_accuracy(p, mean=mean, weight=weight, region=region, segments=segments)
                for p in self._profiles
            ]
            if len(self._accuracies) < _MAX_REGIONS:
                self._accuracies[key] = found
        return found


# Distinct (region, segments) a Scoring keeps the accuracies of (a process has a few dozen; a
# schema with free-text categories could have many more).
_MAX_REGIONS = 2048


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
    scoring: Scoring | None = None,
) -> Choice | None:
    """Who gets the case first, and, for a learning case, who checks it. None: nobody in the
    pool. `mean` and `median_seconds` default to those of `profiles` (pass them when the
    profiles hold only the pool, to keep the process's own). `scoring`: one made before for
    this pool, these profiles and this policy's weights (then `profiles`, `mean` and
    `median_seconds` are not read: the candidates and their fixed scores are the scoring's)."""
    if not pool:
        return None
    if scoring is None:
        scoring = Scoring(
            pool=pool, profiles=profiles, policy=policy, mean=mean, median_seconds=median_seconds
        )
    load_penalty, get_load = policy.load_penalty, loads.get
    candidates = []
    append = candidates.append
    accuracies = scoring.accuracies(region, segments)
    for (person_id, decisions, speed, learner), accuracy in zip(
        scoring.people, accuracies, strict=True
    ):
        load = get_load(person_id, 0)
        append(
            Candidate(
                person_id,
                decisions,
                accuracy,
                speed,
                load,
                accuracy + speed - load_penalty * load,
                learner,
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
# as much as the work), one row: the pool (candidate_pool's rule, or the people given), the
# case's region, the candidates' loads counted on case_routed_idx (an index-only scan of their
# open routed cases), and of the process's expertise profiles only those changed since the
# `since` horizon (below) with every stat row of those people. The load is counted, not stored:
# Case.routed_to and status are written by cases, autonomy, orchestrations and skills, in bulk
# too, and a count kept beside them would be one more thing each of those writes has to keep
# right; at 200 people it costs ~0.1 ms.
_TEAM_POOL = """
    SELECT DISTINCT m.user_id FROM people_membership m JOIN auth_user u ON u.id = m.user_id
    WHERE m.team_id = %(team)s AND m.role = 'expert' AND u.is_active
      AND (NOT EXISTS (SELECT 1 FROM cases_process_reviewers r WHERE r.process_id = %(process)s)
           OR m.user_id IN (SELECT r.user_id FROM cases_process_reviewers r
                            WHERE r.process_id = %(process)s))
"""
_GIVEN_POOL = "SELECT DISTINCT unnest(%(people)s::bigint[])"
_INPUTS = """
    WITH people AS MATERIALIZED (SELECT ARRAY(SELECT person_id FROM ({pool}) pool(person_id)
                                              ORDER BY person_id) AS ids),
    changed AS MATERIALIZED (
        SELECT person_id, xid FROM skills_profilechange
        WHERE process_id = %(process)s AND xid >= %(since)s
    ),
    stat AS (
        SELECT e.person_id, e.dimension, e.key, e.decisions, e.agreed, e.median_seconds
        FROM changed c JOIN skills_expertisestat e
             ON e.person_id = c.person_id AND e.process_id = %(process)s
    ),
    load AS (
        SELECT c.routed_to_id AS person_id, count(*) AS n FROM cases_case c, people
        WHERE c.status = 'open' AND c.routed_to_id = ANY(people.ids) GROUP BY c.routed_to_id
    )
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
           coalesce(pg_current_xact_id_if_assigned()::text::bigint, 0),
           coalesce((SELECT s.label FROM autonomy_shadowprediction s WHERE s.case_id = %(case)s
                     ORDER BY s.created_at DESC, s.id DESC LIMIT 1), ''),
           (SELECT ids FROM people), l.people, l.counts, c.people, c.xids,
           s.people, s.dimensions, s.keys, s.decisions, s.agreed, s.medians
    FROM (SELECT array_agg(person_id) AS people, array_agg(n) AS counts FROM load) l,
         (SELECT array_agg(person_id) AS people, array_agg(xid) AS xids FROM changed) c,
         (SELECT array_agg(person_id) AS people, array_agg(dimension) AS dimensions,
                 array_agg(key) AS keys, array_agg(decisions) AS decisions,
                 array_agg(agreed) AS agreed, array_agg(median_seconds) AS medians
          FROM stat) s
"""
_INPUTS_TEAM_POOL = _INPUTS.format(pool=_TEAM_POOL)
_INPUTS_GIVEN_POOL = _INPUTS.format(pool=_GIVEN_POOL)


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


# --- profiles in memory ---------------------------------------------------------------------------
# Each process's expertise profiles are kept in memory, with the horizon they are true up to: the
# xmin of the snapshot that read them (every transaction below it had ended). A trigger records,
# for every change to skills_expertisestat whoever makes it, the changing transaction's id per
# (process, person) in ProfileChange; a decision reads only the people whose last change is at or
# above the horizon (none, mostly: one index probe), and every stat row of those. A change
# committed after a read has an id at or above that read's horizon, so the next read sees it; a
# change still running at a read is read again until the horizon passes it. What a transaction
# itself changed and hasn't committed is used for its decision and never kept (it may roll back).


@dataclass
class _Known:
    horizon: int
    profiles: dict[int, Profile]
    scorings: dict[tuple, Scoring]


_KNOWN: dict[tuple[str, str, str, int], _Known] = {}
_KNOWN_LOCK = threading.Lock()
_MAX_PROCESSES = 256  # processes kept; past that the oldest read is dropped


def _known_key(process_id: int) -> tuple[str, str, str, int]:
    settings = connection.settings_dict
    return (str(settings["HOST"]), str(settings["PORT"]), str(settings["NAME"]), process_id)


def _profiles_from(columns: tuple, base: dict[int, Profile]) -> dict[int, Profile]:
    """`base` with the changed people's profiles replaced by their rows (none: removed)."""
    changed_people, _xids, people, dimensions, keys, decisions, agreed, medians = columns
    if not changed_people:
        return base
    profiles = dict(base)
    for person_id in changed_people:
        profiles.pop(person_id, None)
    for row in zip(people or (), dimensions or (), keys or (), decisions or (), agreed or (),
                   medians or (), strict=True):  # fmt: skip
        add_stat(profiles, row)
    return profiles


@dataclass(frozen=True)
class DecisionInputs:
    pool: list[int]
    region: str
    profiles: dict[int, Profile]
    loads: dict[int, int]
    scoring: Scoring | None = None


def decision_inputs(
    *, case: Case, pool: list[int] | None = None, policy: RoutingPolicy | None = None
) -> DecisionInputs:
    """What deciding `case` reads (one statement): the candidates (`pool`, or candidate_pool's
    rule), the case's region, the process's profiles (everyone with stats in it: from memory,
    read again for the people changed since) and the candidates' loads now. With a `policy`,
    the Scoring of those candidates too (kept with the profiles while they hold)."""
    key = _known_key(case.process_id)
    known = _KNOWN.get(key)
    params: dict[str, object] = {
        "process": case.process_id,
        "case": case.pk,
        "since": known.horizon if known else 0,
    }
    if pool is None:
        params["team"] = case.process.team_id
        (row,) = _fetch_prepared("skills_routing_inputs_team", _INPUTS_TEAM_POOL, params)
    else:
        params["people"] = pool
        (row,) = _fetch_prepared("skills_routing_inputs_given", _INPUTS_GIVEN_POOL, params)
    horizon, own, region, people, load_people, load_counts, *changes = row
    changed_people, changed_xids = changes[0] or (), changes[1] or ()
    if known is not None and not changed_people:
        profiles = known.profiles
        if horizon > known.horizon:  # nothing changed: they hold up to the newer horizon
            known.horizon = horizon
    else:
        profiles = _profiles_from(tuple(changes), known.profiles if known else {})
        if own and own in changed_xids:
            known = None  # this transaction's own changes: used for it, never kept
        else:
            known = _remember(key, _Known(horizon, profiles, {}))
    pool_ids = list(people or ())
    scoring = _scoring(known, pool_ids, profiles, policy) if policy is not None else None
    loads = dict(zip(load_people or (), load_counts or (), strict=True))
    return DecisionInputs(pool_ids, region, profiles, loads, scoring)


def _remember(key: tuple[str, str, str, int], fresh: _Known) -> _Known:
    with _KNOWN_LOCK:
        known = _KNOWN.get(key)
        # A slower reader with an older snapshot doesn't replace a newer read.
        if known is not None and known.horizon > fresh.horizon:
            return fresh
        _KNOWN.pop(key, None)
        _KNOWN[key] = fresh  # last read last: the oldest read is the first key
        while len(_KNOWN) > _MAX_PROCESSES:
            del _KNOWN[next(iter(_KNOWN))]
        return fresh


def _scoring(
    known: _Known | None, pool: list[int], profiles: dict[int, Profile], policy: RoutingPolicy
) -> Scoring:
    # The process's own mean and typical speed: of everyone with a profile in it.
    key = (
        tuple(pool),
        policy.prior_weight,
        policy.speed_weight,
        policy.expert_min_decisions,
    )
    scoring = known.scorings.get(key) if known is not None else None
    if scoring is None:
        scoring = Scoring(pool=pool, profiles=profiles, policy=policy)
        if known is not None:
            if len(known.scorings) >= 8:  # pools and weights of one process: a handful
                known.scorings.clear()
            known.scorings[key] = scoring
    return scoring


def decide_for(
    *, case: Case, policy: RoutingPolicy, pool: list[int] | None = None
) -> Choice | None:
    """The routing decision for `case` from the stored profiles and the loads now (no write).
    `case.process` with its schema should be loaded (select_related) by the caller."""
    segments = segment_keys(case.fields, case.process, policy.bounds)
    inputs = decision_inputs(case=case, pool=pool, policy=policy)
    return choose(
        pool=inputs.pool,
        profiles=inputs.profiles,
        loads=inputs.loads,
        policy=policy,
        region=inputs.region,
        segments=segments,
        random_key=case.random_key,
        scoring=inputs.scoring,
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
