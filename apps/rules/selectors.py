from django.db.models import QuerySet

from apps.cases.models import Process
from apps.people.models import Role
from apps.people.selectors import AnyUser, roles_of
from apps.rules.models import Rule


def rules_of(*, process: Process) -> QuerySet[Rule]:
    return (
        Rule.objects.filter(process=process)
        .select_related("current", "owner")
        .order_by("priority", "pk")
    )


def can_author(*, user: AnyUser, process: Process) -> bool:
    """The team's experts, managers and admins write, backtest and enable rules."""
    return bool(roles_of(user=user, team=process.team) & {Role.EXPERT, Role.MANAGER, Role.ADMIN})
