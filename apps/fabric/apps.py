from django.apps import AppConfig


class FabricConfig(AppConfig):
    name = "apps.fabric"
    label = "fabric"
    verbose_name = "Compute fabric"

    def ready(self) -> None:
        from apps.core.registry import HomeSection, register_home_section
        from apps.fabric.home import home_context

        # Admins only. Not a nav item: registry.NavItem has no role filter, so every user would
        # see a "Fabric" link that answers 403.
        register_home_section(
            HomeSection(template="fabric/home_section.html", provider=home_context, order=80)
        )
