"""Writes: editing the framework, recomputing evidence and levels, manual evidence and plans."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.evidence_kinds import Measurement, built_once, evidence_kind, involved
from apps.people.models import Membership
from apps.skills.models import (
    CareerRole,
    Evidence,
    EvidenceRule,
    LevelEvent,
    LevelMatch,
    ManualEvidence,
    PersonSkill,
    Plan,
    PlanEvent,
    PlanReview,
    PlanState,
    RoleRequirement,
    Skill,
    SkillArea,
    SkillLevel,
)
from apps.skills.selectors import manages
from apps.skills.skill_evidence import MANUAL

# --- the framework ------------------------------------------------------------------------------


def create_area(*, slug: str, name: str, description: str = "") -> SkillArea:
    if SkillArea.objects.filter(slug=slug).exists():
        raise ValidationError(f"There is already an area {slug!r}.")
    position = SkillArea.objects.count()
    return SkillArea.objects.create(
        slug=slug, name=name, description=description, position=position
    )


def create_skill(*, area: SkillArea, slug: str, name: str, description: str = "") -> Skill:
    if Skill.objects.filter(slug=slug).exists():
        raise ValidationError(f"There is already a skill {slug!r}.")
    position = Skill.objects.filter(area=area).count()
    return Skill.objects.create(
        area=area, slug=slug, name=name, description=description, position=position
    )


def update_skill(
    *, skill: Skill, area: SkillArea, name: str, description: str, prerequisites: list[Skill]
) -> Skill:
    if any(p.pk == skill.pk for p in prerequisites):
        raise ValidationError("A skill can't be its own prerequisite.")
    skill.area, skill.name, skill.description = area, name, description
    skill.save(update_fields=["area", "name", "description"])
    skill.prerequisites.set(prerequisites)
    return skill


def add_level(
    *, skill: Skill, name: str, description: str = "", match: str = LevelMatch.ALL
) -> SkillLevel:
    """A new top level of `skill`'s scale (rank after the last)."""
    if match not in LevelMatch.values:
        raise ValidationError(f"A level matches {' or '.join(LevelMatch.values)}.")
    last = skill.levels.order_by("-rank").values_list("rank", flat=True).first() or 0
    return SkillLevel.objects.create(
        skill=skill, rank=last + 1, name=name, description=description, match=match
    )


def add_rule(
    *,
    level: SkillLevel,
    kind: str,
    params: dict[str, Any] | None = None,
    min_count: int = 1,
    min_value: float | None = None,
    period_days: int | None = None,
) -> EvidenceRule:
    """An evidence rule on `level`. ValidationError for an unknown kind, a parameter the kind
    doesn't take or can't read, or thresholds out of range."""
    registered = evidence_kind(kind)
    if registered is None:
        raise ValidationError(f"There is no evidence kind {kind!r}.")
    params = dict(params or {})
    if kind == MANUAL:
        params["skill"] = level.skill.slug
    clean = registered.clean_params(params)
    if min_count < 0:
        raise ValidationError("The minimum count can't be negative.")
    if min_value is not None and not -1 <= min_value <= 1:
        raise ValidationError("The minimum figure is a share or a kappa: between -1 and 1.")
    if min_value is not None and not registered.value_label:
        raise ValidationError(f"{registered.label} has no figure to compare with a minimum.")
    if period_days is not None and not 1 <= period_days <= 3650:
        raise ValidationError("The period is between 1 and 3650 days.")
    return EvidenceRule.objects.create(
        level=level,
        kind=kind,
        params=clean,
        min_count=min_count,
        min_value=min_value,
        period_days=period_days,
    )


def create_role(*, slug: str, name: str, description: str = "") -> CareerRole:
    if CareerRole.objects.filter(slug=slug).exists():
        raise ValidationError(f"There is already a role {slug!r}.")
    return CareerRole.objects.create(
        slug=slug, name=name, description=description, position=CareerRole.objects.count()
    )


def update_role(
    *, role: CareerRole, name: str, description: str, leads_to: list[CareerRole]
) -> CareerRole:
    if any(r.pk == role.pk for r in leads_to):
        raise ValidationError("A role can't lead to itself.")
    role.name, role.description = name, description
    role.save(update_fields=["name", "description"])
    role.leads_to.set(leads_to)
    return role


def set_requirement(*, role: CareerRole, skill: Skill, rank: int) -> RoleRequirement:
    """The level of `skill` that `role` asks for (replacing an earlier one)."""
    if not skill.levels.filter(rank=rank).exists():
        raise ValidationError(f"{skill.name} has no level {rank}.")
    requirement, _ = RoleRequirement.objects.update_or_create(
        role=role, skill=skill, defaults={"rank": rank}
    )
    return requirement


# --- evidence and levels ------------------------------------------------------------------------

# pg_advisory_xact_lock's first key: the skills refresh of one person at a time.
_LOCK_NAMESPACE = 0x534B49  # "SKI"
# People settled in one transaction by refresh_everyone (each holds an advisory lock till then).
_PEOPLE_A_TRANSACTION = 200


@dataclass(frozen=True)
class Refreshed:
    person_id: int
    rules: int
    granted: int
    lost: int


# (rule id, person id) → measurement
Measured = dict[tuple[int, int], Measurement]


@dataclass(frozen=True)
class _Framework:
    digest: str
    rules: list[EvidenceRule]  # with their level and skill
    skills: list[tuple[Skill, list[SkillLevel]]]  # every skill with levels, its levels by rank


# A digest of the framework's four small tables, read in one statement.
_FRAMEWORK_DIGEST = """
    SELECT concat_ws('/',
        (SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '') FROM skills_skillarea t),
        (SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '') FROM skills_skill t),
        (SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '') FROM skills_skilllevel t),
        (SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '') FROM skills_evidencerule t))
"""
_framework_read: _Framework | None = None


def _framework(digest: str | None = None) -> _Framework:
    """The evidence rules and every skill's levels, read once per process and again whenever
    the framework's rows changed, whoever changed them (an edit, an import, the admin, another
    process): their digest is one statement (or part of `_begin_refresh`'s, given), where the
    two reads and their model instances cost a decision's refresh several milliseconds. The
    instances are shared: read them only."""
    global _framework_read
    if digest is None:
        with connection.cursor() as cursor:
            cursor.execute(_FRAMEWORK_DIGEST)
            (digest,) = cursor.fetchone()
    known = _framework_read
    if known is not None and known.digest == digest:
        return known
    rules = list(EvidenceRule.objects.select_related("level__skill"))
    levels_of: dict[int, tuple[Skill, list[SkillLevel]]] = {}
    for level in SkillLevel.objects.select_related("skill").order_by(
        "skill__area__position", "skill__position", "skill__name", "skill_id", "rank"
    ):
        levels_of.setdefault(level.skill_id, (level.skill, []))[1].append(level)
    # Read after the digest: a change in between only makes the next call read again.
    _framework_read = _Framework(digest, rules, list(levels_of.values()))
    return _framework_read


def _period(rule: EvidenceRule, now: datetime) -> datetime | None:
    return now - timedelta(days=rule.period_days) if rule.period_days else None


def _measure_rules(
    rules: list[EvidenceRule], people: list[AbstractBaseUser], now: datetime
) -> Measured:
    """Every rule measured for everyone in `people`: one bulk measurement per distinct (kind,
    parameters), its periods together (`EvidenceKind.measure_people_periods`), shared by the
    rules that ask the same (the default framework's five `decisions_agree` rules are one)."""
    asked: dict[tuple[str, str], tuple[Any, dict[str, Any], dict[int | None, list[int]]]] = {}
    for rule in rules:
        kind = evidence_kind(rule.kind)
        if kind is None:  # an app that registered it was removed: the rule is simply not met
            continue
        params = {p.name: p.default for p in kind.params if p.default is not None} | rule.params
        key = (rule.kind, json.dumps(params, sort_keys=True, default=str))
        by_period = asked.setdefault(key, (kind, params, {}))[2]
        by_period.setdefault(rule.period_days or None, []).append(rule.pk)
    # A kind measures only the people it can count anything for (`EvidenceKind.involves`): a
    # person's refresh skips the rules, models and nodes they have none of, one query for all.
    who = involved(list({kind.key: kind for kind, _, _ in asked.values()}.values()), people)
    measured: Measured = {}
    for kind, params, by_period in asked.values():
        some = people if kind.key not in who else [p for p in people if p.pk in who[kind.key]]
        if not some:
            continue
        periods = list(by_period)
        results = kind.measure_people_periods(
            people=some,
            params=params,
            periods=[now - timedelta(days=days) if days else None for days in periods],
            until=now,
        )
        for days, result in zip(periods, results, strict=True):
            for person_id, measurement in result.items():
                for rule_pk in by_period[days]:
                    measured[rule_pk, person_id] = measurement
    return measured


def _met(rule: EvidenceRule, measurement: Measurement) -> bool:
    if measurement.count < rule.min_count:
        return False
    return rule.min_value is None or (
        measurement.value is not None and measurement.value >= rule.min_value
    )


def _met_of(rules: list[EvidenceRule], measured: Measured, person_id: int) -> dict[int, bool]:
    return {
        rule.pk: _met(rule, measured.get((rule.pk, person_id)) or Measurement(count=0))
        for rule in rules
    }


# Fixed text only (the digest's): S608 has nothing to guard.
_BEGIN_REFRESH = f"""
    SELECT count(pg_advisory_xact_lock(%s, id)), set_config('synchronous_commit', 'off', true),
           ({_FRAMEWORK_DIGEST})
    FROM unnest(%s::int[]) AS id
"""  # noqa: S608


def _begin_refresh(people_ids: list[int]) -> str:
    """In a refresh's transaction, one statement: lock `people_ids` (one refresh of a person at
    a time: the hourly job, a decision's task, a "measure again" click; in id order so that two
    bulk runs can't deadlock), commit without waiting for the disk, and the framework's digest.
    Evidence and levels are recomputed from the records by the next refresh, so losing the last
    moment's commits in a crash costs nothing; waiting for the flush cost each refresh 1-3 ms."""
    with connection.cursor() as cursor:
        cursor.execute(_BEGIN_REFRESH, [_LOCK_NAMESPACE, sorted(people_ids)])
        return cursor.fetchone()[2]


_UPSERT_EVIDENCE = """
    INSERT INTO skills_evidence (person_id, rule_id, count, value, met, since, until, refs,
                                 computed_at)
    SELECT person_id, rule_id, count, value, met, since, until, refs, computed_at
    FROM jsonb_to_recordset(%s::jsonb) AS r(person_id integer, rule_id bigint, count integer,
         value double precision, met boolean, since timestamptz, until timestamptz, refs jsonb,
         computed_at timestamptz)
    -- a rule deleted (a framework import) or a person removed since they were read: skipped
    WHERE EXISTS (SELECT 1 FROM skills_evidencerule WHERE id = r.rule_id)
      AND EXISTS (SELECT 1 FROM auth_user WHERE id = r.person_id)
    ON CONFLICT (person_id, rule_id) DO UPDATE SET count = EXCLUDED.count,
        value = EXCLUDED.value, met = EXCLUDED.met, since = EXCLUDED.since,
        until = EXCLUDED.until, refs = EXCLUDED.refs, computed_at = EXCLUDED.computed_at
"""


# (person id, skill id) → the level held (None: none, or lost)
Held = dict[tuple[int, int], int | None]
_HELD = "SELECT person_id, skill_id, level_id FROM skills_personskill WHERE person_id = ANY(%s)"


def _store_evidence(
    people_ids: list[int],
    rules: list[EvidenceRule],
    measured: Measured,
    now: datetime,
    *,
    newer_only: bool = False,
) -> Held:
    """Upsert one Evidence row per (person, rule), and read the levels they hold, in one
    statement. `newer_only`: keep a row measured after `now` (a decision's refresh that ran
    while the hourly job measured). The caller holds their locks."""
    rows = []
    for person_id in people_ids:
        for rule in rules:
            measurement = measured.get((rule.pk, person_id)) or Measurement(count=0)
            since = _period(rule, now)
            rows.append(
                {
                    "person_id": person_id,
                    "rule_id": rule.pk,
                    "count": measurement.count,
                    "value": measurement.value,
                    "met": _met(rule, measurement),
                    "since": since.isoformat() if since else None,
                    "until": now.isoformat(),
                    "refs": [{"label": r.label, "url": r.url} for r in measurement.refs],
                    "computed_at": now.isoformat(),
                }
            )
    sql = _UPSERT_EVIDENCE
    if newer_only:
        sql += " WHERE skills_evidence.computed_at <= EXCLUDED.computed_at"
    # The levels held are read beside it (the upsert doesn't change them): a round trip less.
    sql = f"WITH stored AS ({sql} RETURNING 1) {_HELD}"
    with connection.cursor() as cursor:
        if rows:
            cursor.execute(sql, [json.dumps(rows), people_ids])
        else:
            cursor.execute(_HELD, [people_ids])
        return {(person_id, skill_id): level_id for person_id, skill_id, level_id in cursor}


def refresh_person(*, person: AbstractBaseUser, now: datetime | None = None) -> Refreshed:
    """Measure every evidence rule for `person`, store the evidence, and grant or take away levels
    to match: a level is held when its rules are met (all, or any, as the level says) and every
    lower level is held; a level with no rules is never granted automatically. Each change is a
    LevelEvent. Idempotent: a second run with the same records changes nothing but the times."""
    now = now or timezone.now()
    with transaction.atomic():
        framework = _framework(_begin_refresh([person.pk]))
        rules = framework.rules
        measured = _measure_rules(rules, [person], now)
        held = _store_evidence([person.pk], rules, measured, now)
        met = {person.pk: _met_of(rules, measured, person.pk)}
        (refreshed,) = _settle_levels([person.pk], framework, now, met=met, held=held)
    return Refreshed(person.pk, len(rules), refreshed.granted, refreshed.lost)


# Evidence kinds a new or undone label can change (their keys' prefixes).
DECISION_KINDS = ("cases.",)


@dataclass(frozen=True)
class CaseChange:
    """What a label given or undone on one case can change: rules of the case's process (or of
    every process) whose kind that case can change."""

    process_slug: str
    kinds: frozenset[str]

    def concerns(self, rule: EvidenceRule) -> bool:
        return rule.kind in self.kinds and rule.params.get("process") in (
            None,
            "",
            self.process_slug,
        )


def case_change(*, case_id: int, prefixes: tuple[str, ...] = DECISION_KINDS) -> CaseChange:
    """The CaseChange of `case_id`, read once for all its labellers (one query): a kind with
    `changed_by_case` asks it (peer kappa: is the case labelled by two people; adjudications: was
    it adjudicated), one without is always concerned."""
    from apps.cases.models import Case
    from apps.core.evidence_kinds import evidence_kinds

    concerned = [kind for kind in evidence_kinds() if kind.key.startswith(prefixes)]
    asks = [i for i, kind in enumerate(concerned) if kind.changed_by_case]

    def build(case_id: int) -> QuerySet:
        questions = {f"k{i}": concerned[i].changed_by_case() for i in asks}  # type: ignore[misc]
        cases = Case.objects.filter(pk=case_id).annotate(**questions)
        return cases.values_list("process__slug", *questions)

    # One query for the process and every kind's question (a round trip each cost ~2 ms),
    # built once (building it cost more than running it).
    rows = built_once(("case_change", *(kind.key for kind in concerned)), build, case_id=case_id)
    process_slug, *answers = rows[0] if rows else ("", *[False] * len(asks))
    row = {f"k{i}": answer for i, answer in zip(asks, answers, strict=True)}
    kinds = frozenset(
        kind.key
        for i, kind in enumerate(concerned)
        if kind.changed_by_case is None or row.get(f"k{i}", False)
    )
    return CaseChange(process_slug=process_slug or "", kinds=kinds)


_STORED_MET = "SELECT rule_id, met FROM skills_evidence WHERE person_id = %s"


def refresh_person_kinds(
    *,
    person: AbstractBaseUser,
    prefixes: tuple[str, ...] = DECISION_KINDS,
    change: CaseChange | None = None,
    now: datetime | None = None,
) -> Refreshed:
    """Incremental refresh_person: measure again only the rules whose kind starts with one of
    `prefixes`, or, given the `change` a label on a case makes, only the rules it concerns (a
    label in one process can't change a rule about another; one on a case nobody else labelled
    can't change a kappa); a rule never measured for the person is measured too; the others keep
    their stored evidence. Levels are settled as by refresh_person. What a decision needs at
    once; the hourly full refresh still catches decay in every kind."""
    now = now or timezone.now()
    with transaction.atomic():
        framework = _framework(_begin_refresh([person.pk]))
        rules = framework.rules
        with connection.cursor() as cursor:
            cursor.execute(_STORED_MET, [person.pk])
            met: dict[int, bool] = dict(cursor.fetchall())
        again = [
            rule
            for rule in rules
            if rule.pk not in met
            or (change.concerns(rule) if change else rule.kind.startswith(prefixes))
        ]
        measured = _measure_rules(again, [person], now)
        held = _store_evidence([person.pk], again, measured, now)
        met |= _met_of(again, measured, person.pk)
        (refreshed,) = _settle_levels([person.pk], framework, now, met={person.pk: met}, held=held)
    return Refreshed(person.pk, len(again), refreshed.granted, refreshed.lost)


def _settle_levels(
    people_ids: list[int],
    framework: _Framework,
    now: datetime,
    *,
    held: Held,
    met: dict[int, dict[int, bool]] | None = None,
) -> list[Refreshed]:
    """Levels of `people_ids` set to match `met` ({person: {rule: met}}; None: their stored
    evidence, read once), from the levels they `held` (read under their locks), the changes
    written in bulk. The caller holds their locks."""
    from apps.skills.selectors import process_names

    rules = framework.rules
    by_level: dict[int, list[EvidenceRule]] = {}
    for rule in rules:
        by_level.setdefault(rule.level_id, []).append(rule)
    if met is None:
        met = {pk: {} for pk in people_ids}
        stored = Evidence.objects.filter(person_id__in=people_ids)
        for person_id, rule_id, ok in stored.values_list("person_id", "rule_id", "met"):
            met[person_id][rule_id] = ok
    level_of = {level.pk: level for _, levels in framework.skills for level in levels}
    unknown = {pk for pk in held.values() if pk is not None and pk not in level_of}
    if unknown:  # a level added since the framework was read: not one of its skill's ranks
        level_of |= SkillLevel.objects.in_bulk(unknown)
    skills = framework.skills  # a skill without levels has nothing to settle
    processes: dict[str, str] | None = None
    events: list[LevelEvent] = []
    changed: list[PersonSkill] = []
    refreshed = []
    for person_id in people_ids:
        mine = met[person_id]
        granted = lost = 0
        for skill, levels in skills:
            reached: SkillLevel | None = None
            for level in levels:  # by rank
                outcomes = [mine.get(r.pk, False) for r in by_level.get(level.pk, [])]
                ok = bool(outcomes) and (
                    all(outcomes) if level.match == LevelMatch.ALL else any(outcomes)
                )
                if not ok:
                    break
                reached = level
            current = held.get((person_id, skill.pk))
            before = level_of.get(current) if current is not None else None
            before_rank = before.rank if before else 0
            after_rank = reached.rank if reached else 0
            if before_rank == after_rank:
                continue
            if processes is None:
                processes = process_names()
            by_rank = {level.rank: level for level in levels}
            if after_rank > before_rank:
                for rank in range(before_rank + 1, after_rank + 1):
                    detail = _why(by_rank[rank], by_level, mine, processes, granted=True)
                    events.append(
                        LevelEvent(
                            person_id=person_id, skill=skill, level=by_rank[rank],
                            kind=LevelEvent.GRANTED, detail=detail, at=now,
                        )
                    )  # fmt: skip
                    granted += 1
            else:
                detail = _why(by_rank.get(after_rank + 1), by_level, mine, processes, granted=False)
                for rank in range(before_rank, after_rank, -1):
                    events.append(
                        LevelEvent(
                            person_id=person_id, skill=skill, level=by_rank.get(rank) or before,
                            kind=LevelEvent.LOST, detail=detail, at=now,
                        )
                    )  # fmt: skip
                    lost += 1
            changed.append(PersonSkill(person_id=person_id, skill=skill, level=reached, since=now))
        refreshed.append(Refreshed(person_id, len(rules), granted, lost))
    # In list order, so that the history's ids follow the ranks (granted upwards, lost downwards).
    LevelEvent.objects.bulk_create(events)
    PersonSkill.objects.bulk_create(
        changed,
        update_conflicts=True,
        unique_fields=["person", "skill"],
        update_fields=["level", "since"],
    )
    return refreshed


def _why(
    level: SkillLevel | None,
    by_level: dict[int, list[EvidenceRule]],
    met: dict[int, bool],
    processes: dict[str, str],
    *,
    granted: bool,
) -> str:
    from apps.skills.selectors import describe_rule

    if level is None:
        return ""
    rules = [r for r in by_level.get(level.pk, []) if met.get(r.pk, False) == granted]
    prefix = "met: " if granted else "no longer met: "
    return (prefix + "; ".join(describe_rule(r, processes) for r in rules))[:300] if rules else ""


def people_with_skills() -> list[AbstractBaseUser]:
    """Everyone whose skills are measured: active members of some team."""
    members = Membership.objects.values("user_id")
    return list(get_user_model().objects.filter(is_active=True, pk__in=members).order_by("pk"))


def refresh_everyone(*, now: datetime | None = None) -> list[Refreshed]:
    """refresh_person for every team member, in bulk: each rule measured for everyone at once
    (one grouped query per distinct rule, `EvidenceKind.measure_many`), then, a few hundred
    people a transaction under their locks, the evidence upserted in one statement and levels
    settled from one read. The measuring holds no lock: a person's evidence that a decision's
    refresh stored meanwhile (measured later than `now`) is kept, and their levels follow it."""
    now = now or timezone.now()
    people = people_with_skills()
    framework = _framework()
    rules = framework.rules
    measured = _measure_rules(rules, people, now)
    refreshed: list[Refreshed] = []
    ids = [person.pk for person in people]
    for start in range(0, len(ids), _PEOPLE_A_TRANSACTION):
        chunk = ids[start : start + _PEOPLE_A_TRANSACTION]
        with transaction.atomic():
            _begin_refresh(chunk)  # the framework measured is the one read above
            held = _store_evidence(chunk, rules, measured, now, newer_only=True)
            refreshed += _settle_levels(chunk, framework, now, held=held)
    return refreshed


# --- manual evidence ----------------------------------------------------------------------------


def submit_manual_evidence(
    *, person: AbstractBaseUser, skill: Skill, kind: str, title: str, url: str = "", note: str = ""
) -> ManualEvidence:
    if kind not in ManualEvidence.Kind.values:
        raise ValidationError(f"Manual evidence is a {', '.join(ManualEvidence.Kind.values)}.")
    if not title.strip():
        raise ValidationError("Say what the course or certificate is.")
    return ManualEvidence.objects.create(
        person=person, skill=skill, kind=kind, title=title.strip(), url=url, note=note,
        submitted_at=timezone.now(),
    )  # fmt: skip


def review_manual_evidence(
    *, evidence: ManualEvidence, reviewer: AbstractBaseUser, approve: bool, note: str = ""
) -> ManualEvidence:
    """Approve or reject pending manual evidence; only a manager of the person (never the person
    themself). An approval recomputes the person's levels at once."""
    if not manages(viewer=reviewer, person=evidence.person):
        raise ValidationError("Only a manager of this person's team can review their evidence.")
    with transaction.atomic():
        evidence = ManualEvidence.objects.select_for_update().get(pk=evidence.pk)
        if evidence.state != ManualEvidence.State.PENDING:
            raise ValidationError(
                f"This evidence was already {evidence.get_state_display().lower()}."
            )
        if not approve and not note.strip():
            raise ValidationError("Say why the evidence is rejected.")
        evidence.state = ManualEvidence.State.APPROVED if approve else ManualEvidence.State.REJECTED
        evidence.reviewed_by, evidence.reviewed_at, evidence.review_note = (
            reviewer,
            timezone.now(),
            note,
        )
        evidence.save(update_fields=["state", "reviewed_by", "reviewed_at", "review_note"])
    if approve:
        refresh_person(person=evidence.person)
    return evidence


# --- plans --------------------------------------------------------------------------------------

NEXT_STATE = {PlanState.DRAFT: PlanState.AGREED, PlanState.AGREED: PlanState.ACTIVE,
              PlanState.ACTIVE: PlanState.DONE}  # fmt: skip


def create_plan(
    *, person: AbstractBaseUser, target_role: CareerRole, by: AbstractBaseUser, note: str = ""
) -> Plan:
    """A draft plan: the person picks a target role, or a manager of theirs proposes one."""
    if by.pk != person.pk and not manages(viewer=by, person=person):
        raise ValidationError("Only the person or a manager of their team can propose a plan.")
    if (
        Plan.objects.filter(person=person, target_role=target_role)
        .exclude(state=PlanState.DONE)
        .exists()
    ):
        raise ValidationError(f"There is already an open plan towards {target_role.name}.")
    plan = Plan.objects.create(person=person, target_role=target_role, proposed_by=by, note=note)
    PlanEvent.objects.create(
        plan=plan, to_state=PlanState.DRAFT, actor=by, note=note, at=plan.created_at
    )
    return plan


def transition_plan(*, plan: Plan, to: str, actor: AbstractBaseUser, note: str = "") -> Plan:
    """Move `plan` one step: draft → agreed (by the other party: a manager when the person
    proposed it, the person when a manager did), agreed → active (either), active → done (a
    manager). Anything else raises ValidationError saying why."""
    if to not in PlanState.values:
        raise ValidationError(f"A plan is {', '.join(PlanState.values)}; not {to!r}.")
    with transaction.atomic():
        plan = Plan.objects.select_for_update().select_related("person").get(pk=plan.pk)
        expected = NEXT_STATE.get(plan.state)
        if expected != to:
            raise ValidationError(
                f"A plan goes draft → agreed → active → done; this one is {plan.state}, "
                f"so it can't become {to}."
            )
        is_person = actor.pk == plan.person_id
        is_manager = manages(viewer=actor, person=plan.person)
        if to == PlanState.AGREED:
            proposed_by_person = plan.proposed_by_id == plan.person_id
            if proposed_by_person and not is_manager:
                raise ValidationError("A plan you proposed is agreed by a manager of your team.")
            if not proposed_by_person and not is_person:
                raise ValidationError(
                    "A plan a manager proposed is agreed by the person it is for."
                )
            plan.agreed_by = actor
        elif to == PlanState.ACTIVE and not (is_person or is_manager):
            raise ValidationError("Only the person or their manager can start a plan.")
        elif to == PlanState.DONE and not is_manager:
            raise ValidationError("A manager of the person's team marks a plan done.")
        before = plan.state
        plan.state = to
        plan.save(update_fields=["state", "agreed_by", "updated_at"])
        PlanEvent.objects.create(
            plan=plan, from_state=before, to_state=to, actor=actor, note=note, at=timezone.now()
        )
    return plan


def request_plan_review(*, plan: Plan, by: AbstractBaseUser, note: str = "") -> PlanReview:
    if by.pk != plan.person_id:
        raise ValidationError("The person the plan is for asks for its review.")
    if plan.state not in (PlanState.AGREED, PlanState.ACTIVE):
        raise ValidationError("Reviews are for agreed or active plans.")
    if plan.reviews.filter(resolved_at__isnull=True).exists():
        raise ValidationError("A review of this plan is already waiting for a manager.")
    return PlanReview.objects.create(
        plan=plan, requested_by=by, requested_at=timezone.now(), note=note
    )


def resolve_plan_review(*, review: PlanReview, by: AbstractBaseUser, response: str) -> PlanReview:
    if not manages(viewer=by, person=review.plan.person):
        raise ValidationError("A manager of the person's team answers a plan review.")
    if not response.strip():
        raise ValidationError("Write what you told them (the review's answer).")
    with transaction.atomic():
        review = PlanReview.objects.select_for_update().get(pk=review.pk)
        if review.resolved_at is not None:
            raise ValidationError("This review was already answered.")
        review.resolved_by, review.resolved_at, review.response = (
            by,
            timezone.now(),
            response.strip(),
        )
        review.save(update_fields=["resolved_by", "resolved_at", "response"])
    return review
