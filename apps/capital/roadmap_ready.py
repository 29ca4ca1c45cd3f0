"""What the assessment, first-battle and roadmap part of capital registers at start-up (called
from CapitalConfig.ready())."""

from django.db.models.signals import post_save


def register_roadmap() -> None:
    from apps.core.registry import NavItem, register_nav_item
    from apps.orchestrations.models import StageChange
    from apps.people.models import Role

    # Everyone in a team sees their teams' roadmaps (and organisation admins every team's).
    register_nav_item(
        NavItem(
            label="Roadmap",
            url_name="capital_roadmaps",
            order=80,
            # Any role in any team (from the roles the navigation loaded: no query).
            roles=frozenset(Role.values),
        )
    )
    post_save.connect(_freeze_on_live, sender=StageChange, dispatch_uid="capital_freeze_on_live")


def _freeze_on_live(sender: type, instance: object, created: bool, **kwargs: object) -> None:
    """An orchestration version went live: freeze the estimate of the battle that chose its
    process (the estimate stands as it was made; the measured value is compared with it)."""
    if not created or getattr(instance, "to_stage", "") != "live":
        return
    from apps.capital.services_roadmap import freeze_battle_estimates

    freeze_battle_estimates(team=instance.orchestration.team)
