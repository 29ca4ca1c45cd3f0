"""Reads: who may see whose skills, a person's levels with the evidence behind them and what is
missing, the framework, paths and the reviews waiting for a manager."""

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Prefetch, QuerySet
from django.http import Http404

from apps.cases.models import Process
from apps.core.evidence_kinds import EvidenceKind, evidence_kind
from apps.people.models import TEAM_MANAGER_ROLES, Membership
from apps.people.selectors import AnyUser, is_org_admin
from apps.skills.models import (
    CareerRole,
    Evidence,
    EvidenceRule,
    LevelEvent,
    ManualEvidence,
    PersonSkill,
    Plan,
    PlanReview,
    PlanState,
    Skill,
    SkillArea,
    SkillLevel,
)

# --- who sees whom ------------------------------------------------------------------------------


def managed_people_ids(*, viewer: AnyUser) -> set[int]:
    """Ids of the people in the teams where `viewer` is a manager or admin (themselves included)."""
    if not viewer.is_authenticated:
        return set()
    teams = Membership.objects.filter(user=viewer, role__in=TEAM_MANAGER_ROLES).values("team_id")
    return set(Membership.objects.filter(team_id__in=teams).values_list("user_id", flat=True))


def manages(*, viewer: AnyUser, person: AbstractBaseUser) -> bool:
    """Whether `viewer` manages `person`: a manager or admin of one of the person's teams, or an
    organisation admin. Nobody manages themself (their own evidence needs someone else)."""
    if not viewer.is_authenticated or viewer.pk == person.pk:
        return False
    return is_org_admin(user=viewer) or person.pk in managed_people_ids(viewer=viewer)


def can_view_person(*, viewer: AnyUser, person: AbstractBaseUser) -> bool:
    """A person's levels and evidence: themself, their team's managers and organisation admins."""
    return viewer.is_authenticated and (
        viewer.pk == person.pk or manages(viewer=viewer, person=person)
    )


def person_for(*, viewer: AnyUser, user_id: int | None = None, username: str | None = None):  # type: ignore[no-untyped-def]
    """The person `viewer` may see, by id or username; Http404 otherwise (others learn nothing)."""
    users = get_user_model().objects.filter(is_active=True)
    person = (
        users.filter(pk=user_id).first()
        if user_id is not None
        else users.filter(username=username).first()
    )
    if person is None or not can_view_person(viewer=viewer, person=person):
        raise Http404("No such person")
    return person


def plan_for(*, viewer: AnyUser, plan_id: int) -> Plan:
    plan = (
        Plan.objects.select_related("person", "target_role", "proposed_by", "agreed_by")
        .filter(pk=plan_id)
        .first()
    )
    if plan is None or not can_view_person(viewer=viewer, person=plan.person):
        raise Http404("No such plan")
    return plan


def manual_evidence_for(*, viewer: AnyUser, evidence_id: int) -> ManualEvidence:
    row = ManualEvidence.objects.select_related("person", "skill").filter(pk=evidence_id).first()
    if row is None or not can_view_person(viewer=viewer, person=row.person):
        raise Http404("No such evidence")
    return row


def plan_review_for(*, viewer: AnyUser, review_id: int) -> PlanReview:
    row = PlanReview.objects.select_related("plan__person").filter(pk=review_id).first()
    if row is None or not can_view_person(viewer=viewer, person=row.plan.person):
        raise Http404("No such review")
    return row


# --- the framework ------------------------------------------------------------------------------


def framework() -> QuerySet[SkillArea]:
    """Areas with their skills, levels and rules prefetched, in order."""
    return SkillArea.objects.prefetch_related(
        Prefetch(
            "skills",
            queryset=Skill.objects.prefetch_related(
                Prefetch("levels", queryset=SkillLevel.objects.prefetch_related("rules")),
                "prerequisites",
            ),
        )
    )


def roles() -> QuerySet[CareerRole]:
    return CareerRole.objects.prefetch_related(
        "leads_to", "comes_from", "requirements__skill__area"
    )


def _scope(rule: EvidenceRule, processes: dict[str, str]) -> str:
    parts = []
    if rule.params.get("process"):
        slug = rule.params["process"]
        parts.append(f" in {processes.get(slug, slug)}")
    if rule.params.get("label"):
        parts.append(f" for label {rule.params['label']}")
    if rule.period_days:
        parts.append(f" over the last {rule.period_days} days")
    return "".join(parts)


def process_names() -> dict[str, str]:
    return dict(Process.objects.values_list("slug", "name"))


def describe_rule(rule: EvidenceRule, processes: dict[str, str] | None = None) -> str:
    """The rule in words: "Decisions on decided cases…: at least 20, agreement ≥ 0.8 in Claims
    over the last 90 days"."""
    kind = evidence_kind(rule.kind)
    label = kind.label if kind else f"unknown kind {rule.kind}"
    text = f"{label}: at least {rule.min_count}"
    if rule.min_value is not None:
        text += (
            f", {kind.value_label if kind and kind.value_label else 'figure'} ≥ {rule.min_value:g}"
        )
    if kind and kind.key == "rules.rules_authored" and rule.params.get("min_precision"):
        text += f" (each with precision ≥ {rule.params['min_precision']:g})"
    return text + _scope(rule, processes if processes is not None else process_names())


def missing_for(rule: EvidenceRule, evidence: Evidence | None, processes: dict[str, str]) -> str:
    """What the person still has to do to meet `rule`, concretely ("" when it is met)."""
    if evidence is not None and evidence.met:
        return ""
    kind: EvidenceKind | None = evidence_kind(rule.kind)
    if kind is None:
        return "this rule's kind is not installed"
    count = evidence.count if evidence else 0
    value = evidence.value if evidence else None
    short = max(rule.min_count - count, 0)
    text = kind.todo.format(n=short) if short else ""
    if rule.min_value is not None and (value is None or value < rule.min_value):
        now = f" (now {value:.2f})" if value is not None else ""
        bar = f"{kind.value_label or 'figure'} ≥ {rule.min_value:g}{now}"
        text = f"{text} with {bar}" if text else f"reach {bar}"
    return text + _scope(rule, processes)


# --- a person's skills --------------------------------------------------------------------------


@dataclass
class RuleView:
    rule: EvidenceRule
    description: str
    evidence: Evidence | None
    missing: str
    value_label: str


@dataclass
class LevelView:
    level: SkillLevel
    held: bool
    rules: list[RuleView] = field(default_factory=list)


@dataclass
class SkillView:
    skill: Skill
    level: SkillLevel | None
    since: object
    next_level: LevelView | None
    levels: list[LevelView]
    manual_rule: bool  # some level accepts manual evidence

    @property
    def rank(self) -> int:
        return self.level.rank if self.level else 0


@dataclass
class AreaView:
    area: SkillArea
    skills: list[SkillView]


def person_skills(*, person: AbstractBaseUser) -> list[AreaView]:
    """Every skill of the framework with `person`'s level, the evidence measured for each rule and
    what is missing for the next level. Read from the stored evidence (see refresh_person)."""
    evidence = {row.rule_id: row for row in Evidence.objects.filter(person=person)}
    held = {
        row.skill_id: row
        for row in PersonSkill.objects.filter(person=person).select_related("level")
    }
    processes = process_names()
    areas = []
    for area in framework():
        skills = []
        for skill in area.skills.all():
            current = held.get(skill.pk)
            rank = current.level.rank if current and current.level else 0
            levels = []
            manual = False
            for level in skill.levels.all():
                view = LevelView(level=level, held=level.rank <= rank)
                for rule in level.rules.all():
                    manual = manual or rule.kind == "skills.manual"
                    kind = evidence_kind(rule.kind)
                    row = evidence.get(rule.pk)
                    view.rules.append(
                        RuleView(
                            rule=rule,
                            description=describe_rule(rule, processes),
                            evidence=row,
                            missing=missing_for(rule, row, processes),
                            value_label=kind.value_label if kind else "",
                        )
                    )
                levels.append(view)
            next_level = next((v for v in levels if v.level.rank == rank + 1), None)
            skills.append(
                SkillView(
                    skill=skill,
                    level=current.level if current else None,
                    since=current.since if current and current.level else None,
                    next_level=next_level,
                    levels=levels,
                    manual_rule=manual,
                )
            )
        areas.append(AreaView(area=area, skills=skills))
    return areas


def level_history(*, person: AbstractBaseUser, limit: int = 50) -> QuerySet[LevelEvent]:
    return LevelEvent.objects.filter(person=person).select_related("skill", "level")[:limit]


def manual_evidence_of(*, person: AbstractBaseUser) -> QuerySet[ManualEvidence]:
    return ManualEvidence.objects.filter(person=person).select_related("skill", "reviewed_by")


def plans_of(*, person: AbstractBaseUser) -> QuerySet[Plan]:
    return Plan.objects.filter(person=person).select_related(
        "target_role", "proposed_by", "agreed_by"
    )


# --- paths --------------------------------------------------------------------------------------


def suggested_order(skills: list[Skill]) -> list[Skill]:
    """`skills` with prerequisites first (among those given), otherwise in framework order. A
    cycle someone drew in the framework doesn't lock anything: the order then falls back to the
    framework's."""
    by_pk = {skill.pk: skill for skill in skills}
    graph = {
        skill.pk: [p.pk for p in skill.prerequisites.all() if p.pk in by_pk] for skill in skills
    }
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError:
        return skills
    position = {skill.pk: index for index, skill in enumerate(skills)}
    ordered: list[Skill] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        ordered.extend(by_pk[pk] for pk in ready)
        sorter.done(*ready)
    return ordered


@dataclass
class PathStep:
    skill: Skill
    rank: int  # the level the role asks for
    level_name: str
    held_rank: int | None  # the viewer's (or planned person's) level, when known
    prerequisites: list[Skill]

    @property
    def reached(self) -> bool:
        return self.held_rank is not None and self.held_rank >= self.rank


def role_path(*, role: CareerRole, person: AbstractBaseUser | None = None) -> list[PathStep]:
    """The skills `role` asks for, in suggested order, with `person`'s levels when given."""
    requirements = list(
        role.requirements.select_related("skill").prefetch_related(
            "skill__prerequisites", "skill__levels"
        )
    )
    ranks = {req.skill_id: req.rank for req in requirements}
    held: dict[int, int] = {}
    if person is not None:
        held = dict(
            PersonSkill.objects.filter(person=person, level__isnull=False).values_list(
                "skill_id", "level__rank"
            )
        )
    steps = []
    for skill in suggested_order([req.skill for req in requirements]):
        names = {level.rank: level.name for level in skill.levels.all()}
        steps.append(
            PathStep(
                skill=skill,
                rank=ranks[skill.pk],
                level_name=names.get(ranks[skill.pk], f"level {ranks[skill.pk]}"),
                held_rank=held.get(skill.pk, 0) if person is not None else None,
                prerequisites=list(skill.prerequisites.all()),
            )
        )
    return steps


# --- reviews waiting for a manager --------------------------------------------------------------


@dataclass
class Reviews:
    evidence: list[ManualEvidence]
    plans_to_agree: list[Plan]
    plan_reviews: list[PlanReview]

    @property
    def total(self) -> int:
        return len(self.evidence) + len(self.plans_to_agree) + len(self.plan_reviews)


def reviews_for(*, manager: AnyUser) -> Reviews:
    """What waits for `manager` among the people they manage (never their own)."""
    if is_org_admin(user=manager):
        people = get_user_model().objects.exclude(pk=manager.pk).values("pk")
    else:
        people = list(managed_people_ids(viewer=manager) - {manager.pk})
    evidence = ManualEvidence.objects.filter(
        person__in=people, state=ManualEvidence.State.PENDING
    ).select_related("person", "skill")
    plans = (
        Plan.objects.filter(person__in=people, state=PlanState.DRAFT)
        .filter(proposed_by=F("person"))
        .select_related("person", "target_role")
    )
    plan_reviews = PlanReview.objects.filter(
        plan__person__in=people, resolved_at__isnull=True
    ).select_related("plan__person", "plan__target_role", "requested_by")
    return Reviews(list(evidence), list(plans), list(plan_reviews))
