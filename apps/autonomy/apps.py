from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "apps.autonomy"
    label = "autonomy"
    verbose_name = "Autonomy levels"

    def ready(self) -> None:
        from apps.autonomy.home import home_context
        from apps.autonomy.receivers import on_cases_created, on_decision_recorded
        from apps.autonomy.selectors import shows_suggestions
        from apps.cases.signals import cases_created, decision_recorded
        from apps.classifiers.panels import set_suggestion_gate
        from apps.core.registry import (
            HomeSection,
            NavItem,
            register_home_section,
            register_nav_item,
        )

        set_suggestion_gate(lambda process: shows_suggestions(process=process))
        cases_created.connect(on_cases_created, dispatch_uid="autonomy-new-cases")
        decision_recorded.connect(on_decision_recorded, dispatch_uid="autonomy-outcomes")
        register_home_section(
            HomeSection(template="autonomy/home_section.html", provider=home_context, order=40)
        )
        register_nav_item(NavItem(label="Autonomy", url_name="autonomy_overview", order=40))
