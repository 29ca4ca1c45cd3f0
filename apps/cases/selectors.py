from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
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


def may_see_labels(*, user: AnyUser, case: Case) -> bool:
    """Blind review: an expert sees others' labels only once the case is settled or they labelled it
    themselves; managers and adjudicators always may."""
    if case.status != CaseStatus.OPEN:
        return True
    if can_manage_process(user=user, process=case.process) or can_adjudicate(
        user=user, process=case.process
    ):
        return True
    return Decision.objects.filter(case=case, expert=user, retracted_at__isnull=True).exists()


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
