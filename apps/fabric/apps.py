from django.apps import AppConfig


class FabricConfig(AppConfig):
    name = "apps.fabric"
    label = "fabric"
    verbose_name = "Compute fabric"

    def ready(self) -> None:
        from apps.core.registry import (
            HomeSection,
            NavItem,
            register_home_section,
            register_nav_item,
        )
        from apps.fabric.home import home_context
        from apps.fabric.ownership import shows_my_machines
        from apps.people.models import Role

        register_home_section(
            HomeSection(template="fabric/home_section.html", provider=home_context, order=80)
        )
        # Admins only (a team's admin sees its nodes): everyone else would get a 403.
        register_nav_item(
            NavItem(
                label="Fabric",
                url_name="fabric_fleet",
                order=80,
                roles=frozenset({Role.ADMIN}),
            )
        )
        # Owners who aren't admins (admins have "Fabric"): their own machines only.
        register_nav_item(
            NavItem(
                label="My machines",
                url_name="fabric_my_nodes",
                order=81,
                visible=lambda user: shows_my_machines(user=user),
            )
        )
