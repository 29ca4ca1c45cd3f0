from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "apps.cases"
    label = "cases"
    verbose_name = "Knowledge capture"

    def ready(self) -> None:
        from apps.cases.home import home_context
        from apps.core.registry import (
            HomeSection,
            NavItem,
            register_home_section,
            register_nav_item,
        )

        register_home_section(
            HomeSection(template="cases/home_section.html", provider=home_context, order=10)
        )
        register_nav_item(NavItem(label="Processes", url_name="process_list", order=10))
