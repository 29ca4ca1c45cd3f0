"""Writes: editing the framework, recomputing evidence and levels, manual evidence and plans."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.core.evidence_kinds import Measurement, evidence_kind
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


@dataclass(frozen=True)
class Refreshed:
    person_id: int
    rules: int
    granted: int
    lost: int


def _measure(rule: EvidenceRule, person: AbstractBaseUser, now: datetime) -> Measurement:
    kind = evidence_kind(rule.kind)
    if kind is None:  # an app that registered it was removed: the rule is simply not met
        return Measurement(count=0)
    params = {p.name: p.default for p in kind.params if p.default is not None} | rule.params
    since = now - timedelta(days=rule.period_days) if rule.period_days else None
    return kind.measure(person=person, params=params, since=since, until=now)


def _met(rule: EvidenceRule, measurement: Measurement) -> bool:
    if measurement.count < rule.min_count:
        return False
    return rule.min_value is None or (
        measurement.value is not None and measurement.value >= rule.min_value
    )


def refresh_person(*, person: AbstractBaseUser, now: datetime | None = None) -> Refreshed:
    """Measure every evidence rule for `person`, store the evidence, and grant or take away levels
    to match: a level is held when its rules are met (all, or any, as the level says) and every
    lower level is held; a level with no rules is never granted automatically. Each change is a
    LevelEvent. Idempotent: a second run with the same records changes nothing but the times."""
    now = now or timezone.now()
    rules = list(EvidenceRule.objects.select_related("level__skill"))
    with transaction.atomic():
        # One refresh of a person at a time (the periodic task and a "recompute" button).
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, person.pk])
        met: dict[int, bool] = {}
        rows = []
        for rule in rules:
            measurement = _measure(rule, person, now)
            met[rule.pk] = _met(rule, measurement)
            rows.append(
                Evidence(
                    person=person,
                    rule=rule,
                    count=measurement.count,
                    value=measurement.value,
                    met=met[rule.pk],
                    since=now - timedelta(days=rule.period_days) if rule.period_days else None,
                    until=now,
                    refs=[{"label": r.label, "url": r.url} for r in measurement.refs],
                    computed_at=now,
                )
            )
        Evidence.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["person", "rule"],
            update_fields=["count", "value", "met", "since", "until", "refs", "computed_at"],
        )
        granted, lost = _settle_levels(person, rules, met, now)
    return Refreshed(person_id=person.pk, rules=len(rules), granted=granted, lost=lost)


# Evidence kinds a new or undone label can change (their keys' prefixes).
DECISION_KINDS = ("cases.",)


def refresh_person_kinds(
    *,
    person: AbstractBaseUser,
    prefixes: tuple[str, ...] = DECISION_KINDS,
    now: datetime | None = None,
) -> Refreshed:
    """Incremental refresh_person: measure again only the rules whose kind starts with one of
    `prefixes` (a rule never measured for the person is measured too); the others keep their
    stored evidence. Levels are settled as by refresh_person. What a decision needs at once; the
    hourly full refresh still catches decay in every kind."""
    now = now or timezone.now()
    rules = list(EvidenceRule.objects.select_related("level__skill"))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, person.pk])
        met = dict(Evidence.objects.filter(person=person).values_list("rule_id", "met"))
        rows = []
        for rule in rules:
            if rule.pk in met and not rule.kind.startswith(prefixes):
                continue
            measurement = _measure(rule, person, now)
            met[rule.pk] = _met(rule, measurement)
            rows.append(
                Evidence(
                    person=person, rule=rule, count=measurement.count, value=measurement.value,
                    met=met[rule.pk],
                    since=now - timedelta(days=rule.period_days) if rule.period_days else None,
                    until=now, refs=[{"label": r.label, "url": r.url} for r in measurement.refs],
                    computed_at=now,
                )
            )  # fmt: skip
        Evidence.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["person", "rule"],
            update_fields=["count", "value", "met", "since", "until", "refs", "computed_at"],
        )
        granted, lost = _settle_levels(person, rules, met, now)
    return Refreshed(person_id=person.pk, rules=len(rows), granted=granted, lost=lost)


def _settle_levels(
    person: AbstractBaseUser, rules: list[EvidenceRule], met: dict[int, bool], now: datetime
) -> tuple[int, int]:
    by_level: dict[int, list[EvidenceRule]] = {}
    for rule in rules:
        by_level.setdefault(rule.level_id, []).append(rule)
    held = {
        row.skill_id: row
        for row in PersonSkill.objects.filter(person=person).select_related("level")
    }
    granted = lost = 0
    for skill in Skill.objects.prefetch_related("levels"):
        reached: SkillLevel | None = None
        for level in skill.levels.all():  # by rank
            level_rules = by_level.get(level.pk, [])
            outcomes = [met[r.pk] for r in level_rules]
            ok = bool(outcomes) and (
                all(outcomes) if level.match == LevelMatch.ALL else any(outcomes)
            )
            if not ok:
                break
            reached = level
        current = held.get(skill.pk)
        before = current.level if current else None
        before_rank = before.rank if before else 0
        after_rank = reached.rank if reached else 0
        if before_rank == after_rank:
            continue
        levels = {level.rank: level for level in skill.levels.all()}
        if after_rank > before_rank:
            for rank in range(before_rank + 1, after_rank + 1):
                LevelEvent.objects.create(
                    person=person, skill=skill, level=levels[rank], kind=LevelEvent.GRANTED,
                    detail=_why(levels[rank], by_level, met, granted=True), at=now,
                )  # fmt: skip
                granted += 1
        else:
            for rank in range(before_rank, after_rank, -1):
                level = levels.get(rank) or before
                LevelEvent.objects.create(
                    person=person, skill=skill, level=level, kind=LevelEvent.LOST,
                    detail=_why(levels.get(after_rank + 1), by_level, met, granted=False), at=now,
                )  # fmt: skip
                lost += 1
        PersonSkill.objects.update_or_create(
            person=person, skill=skill, defaults={"level": reached, "since": now}
        )
    return granted, lost


def _why(
    level: SkillLevel | None,
    by_level: dict[int, list[EvidenceRule]],
    met: dict[int, bool],
    *,
    granted: bool,
) -> str:
    from apps.skills.selectors import describe_rule

    if level is None:
        return ""
    rules = [r for r in by_level.get(level.pk, []) if met[r.pk] == granted]
    prefix = "met: " if granted else "no longer met: "
    return (prefix + "; ".join(describe_rule(r) for r in rules))[:300] if rules else ""


def people_with_skills() -> list[AbstractBaseUser]:
    """Everyone whose skills are measured: active members of some team."""
    members = Membership.objects.values("user_id")
    return list(get_user_model().objects.filter(is_active=True, pk__in=members).order_by("pk"))


def refresh_everyone(*, now: datetime | None = None) -> list[Refreshed]:
    now = now or timezone.now()
    return [refresh_person(person=person, now=now) for person in people_with_skills()]


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
