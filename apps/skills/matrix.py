"""Reads for a team's skills matrix: its people by the framework's skills with each level and the
evidence behind it, the single points of failure (a skill held at or above a level by one person
only, a process decided by one active expert), and the plans waiting for a manager.

Managers and admins of the team and organisation admins see it; a member in another role gets
PermissionDenied (403) and anyone outside the team Http404, as the team pages do. The number of
queries doesn't grow with the team: everything is read in bulk (see test_matrix_queries)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, Max, Min, OuterRef, Prefetch
from django.http import Http404
from django.utils import timezone

from apps.cases.models import Decision, DecisionSource
from apps.core.evidence_kinds import evidence_kind
from apps.people.models import TEAM_MANAGER_ROLES, Membership, Team
from apps.people.selectors import AnyUser, can_manage_team, is_org_admin, team_for_member
from apps.skills.models import (
    Evidence,
    EvidenceRule,
    PersonSkill,
    Plan,
    PlanReview,
    PlanState,
    Skill,
    SkillLevel,
)
from apps.skills.selectors import describe_rule, process_names

# A process whose decisions in this many days came from one person depends on that person.
ACTIVE_DAYS = 30
# The level a skill must be held at to count as covered, unless the manager picks another: the
# scale's second level (Practising); Aware is within anyone's first week.
DEFAULT_MIN_RANK = 2
# People's labels; the model's own decisions (autonomy level 3) are nobody's expertise.
HUMAN_SOURCES = [s for s in DecisionSource.values if s != DecisionSource.MODEL]


def team_matrix_for(*, viewer: AnyUser, slug: str) -> Team:
    """The team `slug` if `viewer` may see its skills matrix. Http404 for someone outside the team
    (they learn nothing), PermissionDenied for a member who doesn't manage it (experts and staff
    see only their own levels)."""
    team = team_for_member(user=viewer, slug=slug)
    if not can_manage_team(user=viewer, team=team):
        raise PermissionDenied("The skills matrix is for the team's managers and admins.")
    return team


def matrix_teams(*, viewer: AnyUser) -> list[Team]:
    """The teams whose matrix `viewer` may open, by name."""
    if is_org_admin(user=viewer):
        return list(Team.objects.order_by("name"))
    if not viewer.is_authenticated:
        return []
    managed = Membership.objects.filter(user=viewer, role__in=TEAM_MANAGER_ROLES)
    return list(Team.objects.filter(pk__in=managed.values("team_id")).order_by("name"))


@dataclass
class RuleEvidence:
    description: str
    count: int
    value: float | None
    value_label: str
    met: bool

    @cached_property  # read twice per cell (title and list), on hundreds of cells
    def text(self) -> str:
        figure = (
            f", {self.value_label or 'figure'} {self.value:.2f}" if self.value is not None else ""
        )
        return (
            f"{self.description} — measured {self.count}{figure}{'' if self.met else ' (not met)'}"
        )


@dataclass
class Cell:
    skill: Skill
    level: SkillLevel | None
    since: datetime | None
    evidence: list[RuleEvidence] = field(default_factory=list)
    url: str = ""  # where its evidence is (set by the page)

    @property
    def rank(self) -> int:
        return self.level.rank if self.level else 0

    # Strings for the page: a template renders an int through localisation, which on a
    # thousand cells costs more than the rest of the cell.
    @property
    def rank_class(self) -> str:
        return f"rank-{self.rank}"

    @property
    def label(self) -> str:
        return f"{self.level.rank}. {self.level.name}" if self.level else ""

    @cached_property
    def title(self) -> str:
        """The evidence in one line (a title attribute; the cell's <details> says it in full)."""
        if self.level is None:
            return f"{self.skill.name}: no level yet"
        lines = [f"{self.skill.name}: {self.level.name}"] + [e.text for e in self.evidence]
        return "; ".join(lines)


@dataclass
class Row:
    person: AbstractBaseUser
    cells: list[Cell]


@dataclass
class SkillSpof:
    skill: Skill
    holder: AbstractBaseUser
    level: SkillLevel


@dataclass
class ProcessSpof:
    slug: str
    name: str
    expert: str
    decisions: int
    last_at: datetime


@dataclass
class PlanToReview:
    plan: Plan
    waits_for_agreement: bool
    review_requested: bool


@dataclass
class TeamMatrix:
    team: Team
    skills: list[Skill]
    rows: list[Row]
    min_rank: int
    max_rank: int
    skill_spofs: list[SkillSpof]
    uncovered: list[Skill]  # held at min_rank by nobody in the team
    process_spofs: list[ProcessSpof]
    plans: list[PlanToReview]
    since: datetime

    @property
    def spof_count(self) -> int:
        return len(self.skill_spofs) + len(self.process_spofs)


def team_people(*, team: Team) -> list[AbstractBaseUser]:
    """The team's active members (any role), each once, by username."""
    holds_a_role = Membership.objects.filter(team=team, user=OuterRef("pk"))
    return list(
        get_user_model().objects.filter(Exists(holds_a_role), is_active=True).order_by("username")
    )


def _framework_skills(*, with_rules: bool = True) -> list[Skill]:
    levels = SkillLevel.objects.order_by("rank")
    if with_rules:
        levels = levels.prefetch_related(Prefetch("rules", EvidenceRule.objects.order_by("pk")))
    return list(Skill.objects.select_related("area").prefetch_related(Prefetch("levels", levels)))


def _rule_evidence(
    rule: EvidenceRule, measured: tuple | None, descriptions: dict[int, str]
) -> RuleEvidence:
    """One rule's evidence in a cell; `measured` is (count, value, met) or None."""
    kind = evidence_kind(rule.kind)
    return RuleEvidence(
        description=descriptions[rule.pk],
        count=measured[0] if measured else 0,
        value=measured[1] if measured else None,
        value_label=kind.value_label if kind else "",
        met=bool(measured and measured[2]),
    )


def cell_evidence(*, team: Team, person_id: int, skill_id: int) -> tuple[AbstractBaseUser, Cell]:
    """One cell of the matrix with its evidence (the page loads it when the cell is hovered,
    focused or opened): the person, who must be an active member of `team` (else Http404, as
    an unknown skill), and their level in the skill with the evidence of that level's rules."""
    holds_a_role = Membership.objects.filter(team=team, user=OuterRef("pk"))
    person = (
        get_user_model().objects.filter(Exists(holds_a_role), pk=person_id, is_active=True).first()
    )
    skill = (
        Skill.objects.filter(pk=skill_id)
        .prefetch_related(
            Prefetch(
                "levels",
                SkillLevel.objects.order_by("rank").prefetch_related(
                    Prefetch("rules", EvidenceRule.objects.order_by("pk"))
                ),
            )
        )
        .first()
    )
    if person is None or skill is None:
        raise Http404("No such person in this team, or no such skill.")
    held = PersonSkill.objects.filter(person=person, skill=skill, level__isnull=False).first()
    level = next((lv for lv in skill.levels.all() if held and lv.pk == held.level_id), None)
    cell = Cell(skill=skill, level=level, since=held.since if held and level else None)
    if level is not None:
        rules = list(level.rules.all())
        measured = {
            row[0]: row[1:]
            for row in Evidence.objects.filter(person=person, rule__in=rules).values_list(
                "rule_id", "count", "value", "met"
            )
        }
        processes = process_names()
        descriptions = {rule.pk: describe_rule(rule, processes) for rule in rules}
        cell.evidence = [_rule_evidence(r, measured.get(r.pk), descriptions) for r in rules]
    return person, cell


def process_spofs(*, team: Team, now: datetime) -> list[ProcessSpof]:
    """The team's processes whose people's decisions (not undone) over the last ACTIVE_DAYS days
    all came from one expert: who, how many, the last one. One aggregate query."""
    rows = (
        Decision.objects.filter(
            case__process__team=team,
            decided_at__gte=now - timedelta(days=ACTIVE_DAYS),
            decided_at__lte=now,
            retracted_at__isnull=True,
            source__in=HUMAN_SOURCES,
        )
        .values("case__process__slug", "case__process__name")
        .annotate(
            experts=Count("expert", distinct=True),
            expert=Min("expert__username"),
            decisions=Count("pk"),
            last_at=Max("decided_at"),
        )
        .filter(experts=1)
        .order_by("case__process__name")
    )
    return [
        ProcessSpof(
            slug=row["case__process__slug"], name=row["case__process__name"],
            expert=row["expert"], decisions=row["decisions"], last_at=row["last_at"],
        )
        for row in rows
    ]  # fmt: skip


def plans_to_review(*, people: list[AbstractBaseUser]) -> list[PlanToReview]:
    """The open plans (draft, agreed, active) of `people`, those waiting for a manager first: a
    draft the person proposed (a manager agrees to it) or a review asked for and not answered."""
    open_review = PlanReview.objects.filter(plan=OuterRef("pk"), resolved_at__isnull=True)
    plans = (
        Plan.objects.filter(person__in=[p.pk for p in people])
        .exclude(state=PlanState.DONE)
        .annotate(review_requested=Exists(open_review))
        .select_related("person", "target_role")
    )
    result = [
        PlanToReview(
            plan=plan,
            waits_for_agreement=plan.state == PlanState.DRAFT
            and plan.proposed_by_id == plan.person_id,
            review_requested=plan.review_requested,  # type: ignore[attr-defined]
        )
        for plan in plans
    ]
    result.sort(
        key=lambda p: (
            not (p.waits_for_agreement or p.review_requested),
            p.plan.person.username,
            p.plan.pk,
        )
    )
    return result


def team_matrix(
    *,
    team: Team,
    min_rank: int = DEFAULT_MIN_RANK,
    now: datetime | None = None,
    with_evidence: bool = True,
) -> TeamMatrix:
    """The skills matrix of `team` from the stored levels and evidence (refresh_person measures
    them): one row per active member, one cell per skill of the framework with the level held and
    (`with_evidence`) the evidence of that level's rules; the skills held at `min_rank` or above
    by exactly one member, and those held by nobody; the processes with one active expert; open
    plans. The page leaves the evidence out (cell_evidence gives a cell's when asked): for a
    team of 100 it is most of the page's weight."""
    now = now or timezone.now()
    people = team_people(team=team)
    ids = [p.pk for p in people]
    skills = _framework_skills(with_rules=with_evidence)
    # Tuples, not model instances: thousands of rows for a team of 100.
    held = {
        (person_id, skill_id): (level_id, since)
        for person_id, skill_id, level_id, since in PersonSkill.objects.filter(
            person_id__in=ids, level__isnull=False
        ).values_list("person_id", "skill_id", "level_id", "since")
    }
    levels = {level.pk: level for skill in skills for level in skill.levels.all()}
    evidence: dict[tuple[int, int], tuple] = {}
    descriptions: dict[int, str] = {}
    if with_evidence:
        evidence = {
            (row[0], row[1]): row[2:]
            for row in Evidence.objects.filter(person_id__in=ids).values_list(
                "person_id", "rule_id", "count", "value", "met"
            )
        }
        processes = process_names()
        descriptions = {
            rule.pk: describe_rule(rule, processes)
            for level in levels.values()
            for rule in level.rules.all()
        }
    # A skill whose scale stops below min_rank is judged at its top level (else it would be
    # reported uncovered for ever).
    bar = {
        skill.pk: min(min_rank, max((lv.rank for lv in skill.levels.all()), default=0))
        for skill in skills
    }
    rows = []
    holders: dict[int, list[tuple[AbstractBaseUser, SkillLevel]]] = {s.pk: [] for s in skills}
    for person in people:
        cells = []
        for skill in skills:
            row = held.get((person.pk, skill.pk))
            level = levels.get(row[0]) if row else None
            cell = Cell(skill=skill, level=level, since=row[1] if row and level else None)
            if level is not None:
                if with_evidence:
                    cell.evidence = [
                        _rule_evidence(rule, evidence.get((person.pk, rule.pk)), descriptions)
                        for rule in level.rules.all()
                    ]
                if level.rank >= bar[skill.pk]:
                    holders[skill.pk].append((person, level))
            cells.append(cell)
        rows.append(Row(person=person, cells=cells))
    spofs = [
        SkillSpof(skill=skill, holder=holders[skill.pk][0][0], level=holders[skill.pk][0][1])
        for skill in skills
        if len(holders[skill.pk]) == 1
    ]
    uncovered = [skill for skill in skills if bar[skill.pk] and not holders[skill.pk]]
    return TeamMatrix(
        team=team,
        skills=skills,
        rows=rows,
        min_rank=min_rank,
        max_rank=max((level.rank for level in levels.values()), default=0),
        skill_spofs=spofs,
        uncovered=uncovered,
        process_spofs=process_spofs(team=team, now=now),
        plans=plans_to_review(people=people),
        since=now - timedelta(days=ACTIVE_DAYS),
    )
