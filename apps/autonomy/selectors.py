from django.db.models import QuerySet

from apps.autonomy.models import AutonomyChange, CaseRoute, Level, ProcessAutonomy
from apps.cases.models import Case, Process
from apps.classifiers.gates import HeldBack
from apps.people.models import Membership, Role
from apps.people.selectors import AnyUser, roles_of

VIEW_ROLES = frozenset({Role.EXPERT, Role.MANAGER, Role.ADMIN})
MANAGE_ROLES = frozenset({Role.MANAGER, Role.ADMIN})


def can_view_autonomy(*, user: AnyUser, process: Process) -> bool:
    """The team's experts read the autonomy page; managers and admins also change it."""
    return bool(roles_of(user=user, team=process.team) & VIEW_ROLES)


def can_manage_autonomy(*, user: AnyUser, process: Process) -> bool:
    return bool(roles_of(user=user, team=process.team) & MANAGE_ROLES)


def autonomy_processes(*, user: AnyUser) -> QuerySet[Process]:
    """Processes of the teams where `user` is an expert, a manager or an admin."""
    if not user.is_authenticated:
        return Process.objects.none()
    teams = Membership.objects.filter(user=user, role__in=VIEW_ROLES).values("team_id")
    return (
        Process.objects.filter(team_id__in=teams)
        .select_related("team", "autonomy")
        .order_by("team__name", "name")
    )


def autonomy_of(*, process: Process) -> ProcessAutonomy:
    """The process's autonomy, or the defaults (level 0, unsaved) when nothing was set yet."""
    return ProcessAutonomy.objects.filter(process=process).first() or ProcessAutonomy(
        process=process
    )


def level_of(*, process: Process) -> int:
    """The process's autonomy level: 0 manual, 1 route, 2 suggest, 3 decide."""
    level = ProcessAutonomy.objects.filter(process=process).values_list("level", flat=True).first()
    return level if level is not None else Level.MANUAL


def suggestions_held_back(*, process: Process) -> HeldBack | None:
    """Below level 2 (suggest) the review pane holds the model's suggestion back: the level it
    is at and the one it needs; None from level 2 on."""
    level = level_of(process=process)
    if level >= Level.SUGGEST:
        return None
    return HeldBack(
        level=level,
        level_name=Level(level).label,
        required=Level.SUGGEST,
        required_name=Level.SUGGEST.label,
    )


def next_level(*, autonomy: ProcessAutonomy) -> int | None:
    """The level being earned (the shadow target), else the one above the current, else None."""
    if autonomy.target is not None:
        return autonomy.target
    return autonomy.level + 1 if autonomy.level < Level.DECIDE else None


def route_of(*, case: Case) -> CaseRoute | None:
    return CaseRoute.objects.filter(case=case).first()


def autonomy_history(*, process: Process, limit: int = 50) -> QuerySet[AutonomyChange]:
    return AutonomyChange.objects.filter(process=process).select_related("actor")[:limit]


def recent_routes(*, process: Process, limit: int = 20) -> QuerySet[CaseRoute]:
    return CaseRoute.objects.filter(process=process).select_related("case")[:limit]
