"""What the metrics part of capital registers at start-up (called from CapitalConfig.ready())."""


def register_metrics() -> None:
    from apps.capital.metrics_prometheus import exposition
    from apps.core.registry import NavItem, register_metrics_exposition, register_nav_item
    from apps.people.models import TEAM_MANAGER_ROLES

    # Managers and admins of a team, and organisation admins: whoever has a dashboard to open.
    register_nav_item(
        NavItem(
            label="Capital",
            url_name="capital_dashboards",
            order=78,
            roles=TEAM_MANAGER_ROLES,
        )
    )
    register_metrics_exposition(exposition)
