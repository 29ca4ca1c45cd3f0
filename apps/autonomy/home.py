"""The home page's autonomy section for managers: each managed process's level and target."""

from django.contrib.auth.models import AbstractBaseUser

from apps.autonomy import selectors
from apps.autonomy.models import Level
from apps.people.models import Membership


def home_context(user: AbstractBaseUser) -> dict[str, object] | None:
    teams = Membership.objects.filter(user=user, role__in=selectors.MANAGE_ROLES).values("team_id")
    processes = list(selectors.autonomy_processes(user=user).filter(team_id__in=teams))
    if not processes:
        return None
    rows = []
    for process in processes:
        autonomy = getattr(process, "autonomy", None)
        level = autonomy.level if autonomy else Level.MANUAL
        target = autonomy.target if autonomy else None
        rows.append(
            {
                "process": process,
                "level": level,
                "level_name": Level(level).label,
                "target": target,
                "target_name": Level(target).label if target is not None else "",
            }
        )
    return {"rows": rows}
