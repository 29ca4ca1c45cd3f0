from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"
    verbose_name = "Connectors (outbound webhooks)"

    def ready(self) -> None:
        from apps.core.registry import NavItem, register_nav_item
        from apps.people.models import TEAM_MANAGER_ROLES

        # Only for those the page lets in (the team's managers and admins).
        register_nav_item(
            NavItem(
                label="Connectors",
                url_name="connector_list",
                order=60,
                roles=TEAM_MANAGER_ROLES,
            )
        )
