from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"
    verbose_name = "Connectors (outbound webhooks)"

    def ready(self) -> None:
        from apps.core.registry import NavItem, register_nav_item

        register_nav_item(NavItem(label="Connectors", url_name="connector_list", order=60))
