from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.http import Http404

from apps.cases.models import Case, CaseEvent, CaseStatus, Decision, DecisionSource, Process
from apps.people.models import Membership, Role
from apps.people.selectors import roles_of

AnyUser = AbstractBaseUser | AnonymousUser


def processes_for(*, user: AnyUser) -> QuerySet[Process]:
    """Processes of the teams `user` belongs to."""
    if not user.is_authenticated:
        return Process.objects.none()
    return (
        Process.objects.filter(team__memberships__user=user)
        .distinct()
        .select_related("team", "schema")
    )


def process_for_member(*, user: AnyUser, slug: str) -> Process:
    """The process `slug` if `user` is in its team; 404 otherwise."""
    process = processes_for(user=user).filter(slug=slug).first()
    if process is None:
        raise Http404("No such process")
    return process


def case_for_member(*, user: AnyUser, case_id: int) -> Case:
    case = (
        Case.objects.filter(pk=case_id, process__team__memberships__user=user)
        .select_related("process__team", "process__schema", "schema_version")
        .first()
    )
    if case is None:
        raise Http404("No such case")
    return case


def can_review(*, user: AnyUser, process: Process) -> bool:
    """Experts of the team review, or only the named reviewers when the process names some."""
    if Role.EXPERT not in roles_of(user=user, team=process.team):
        return False
    named = process.reviewers.all()
    return not named.exists() or named.filter(pk=user.pk).exists()


def can_adjudicate(*, user: AnyUser, process: Process) -> bool:
    """The process's adjudicators settle disagreements; without named ones, the team's managers do."""
    named = process.adjudicators.all()
    if named.exists():
        return named.filter(pk=user.pk).exists() and bool(roles_of(user=user, team=process.team))
    return Role.MANAGER in roles_of(user=user, team=process.team)


def can_manage_process(
    *, user: AnyUser, process: Process | None = None, team_id: int | None = None
) -> bool:
    team_id = team_id if team_id is not None else process.team_id  # type: ignore[union-attr]
    return Membership.objects.filter(
        user=user, team_id=team_id, role__in=[Role.MANAGER, Role.ADMIN]
    ).exists()


def active_decisions(*, case: Case) -> QuerySet[Decision]:
    return case.decisions.filter(retracted_at__isnull=True).select_related("expert")


def sees_every_label(*, user: AnyUser, process: Process) -> bool:
    """Managers, admins and the process's adjudicators see every label, open cases included."""
    return can_manage_process(user=user, process=process) or can_adjudicate(
        user=user, process=process
    )


def _labels_visible(*, user: AnyUser, case_prefix: str) -> Q:
    """The blind rule as a filter on cases (`case_prefix` "") or on rows that point at a case
    ("case__"): a case's labels show once it is no longer open, or once `user` labelled it."""
    labelled = Decision.objects.filter(expert_id=user.pk, retracted_at__isnull=True).values(
        "case_id"
    )
    return ~Q(**{f"{case_prefix}status": CaseStatus.OPEN}) | Q(**{f"{case_prefix}id__in": labelled})


def cases_with_visible_labels(*, user: AnyUser, process: Process) -> QuerySet[Case]:
    """The cases of `process` whose experts' labels, reason codes and rationales `user` may see.

    The blind rule: while a case is open, an expert who hasn't labelled it sees nobody's label on
    it (nor staff, who never label). Everyone sees them once the case is no longer open (decided
    or awaiting adjudication); managers, admins and the process's adjudicators always do.
    """
    cases = Case.objects.filter(process=process)
    if not user.is_authenticated:
        return cases.none()
    if sees_every_label(user=user, process=process):
        return cases
    return cases.filter(_labels_visible(user=user, case_prefix=""))


def visible_decisions(
    *, user: AnyUser, process: Process, decisions: QuerySet[Decision] | None = None
) -> QuerySet[Decision]:
    """`decisions` (by default every decision of `process`) narrowed to those `user` may see under
    the blind rule (see cases_with_visible_labels); their own decisions always show. Every page
    and endpoint that shows, counts or learns from experts' labels or rationales reads them
    through here."""
    if decisions is None:
        decisions = Decision.objects.filter(case__process=process)
    if not user.is_authenticated:
        return decisions.none()
    if sees_every_label(user=user, process=process):
        return decisions
    return decisions.filter(_labels_visible(user=user, case_prefix="case__") | Q(expert_id=user.pk))


def may_see_labels(*, user: AnyUser, case: Case) -> bool:
    """Whether `user` may see the other experts' labels on `case` (the blind rule)."""
    return cases_with_visible_labels(user=user, process=case.process).filter(pk=case.pk).exists()


def case_timeline(*, case: Case) -> QuerySet[CaseEvent]:
    return case.events.select_related("actor").order_by("at", "pk")


def adjudication_queue(*, process: Process) -> QuerySet[Case]:
    return process.cases.filter(status=CaseStatus.ADJUDICATION).order_by("created_at", "pk")


def decided_cases(*, process: Process) -> QuerySet[Case]:
    return process.cases.filter(status=CaseStatus.DECIDED)


def review_decisions(*, process: Process) -> QuerySet[Decision]:
    """Active expert labels (not adjudications) of a process, for agreement measures."""
    return Decision.objects.filter(
        case__process=process,
        retracted_at__isnull=True,
        source__in=[DecisionSource.REVIEW, DecisionSource.API, DecisionSource.IMPORT],
    )
