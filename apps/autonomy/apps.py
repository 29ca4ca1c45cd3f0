from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "apps.autonomy"
    label = "autonomy"
    verbose_name = "Autonomy levels"

    def ready(self) -> None:
        from apps.autonomy.home import home_context
        from apps.autonomy.receivers import on_cases_created, on_decision_recorded
        from apps.autonomy.selectors import (
            VIEW_ROLES,
            autonomy_processes,
            can_view_autonomy,
            suggestions_held_back,
        )
        from apps.cases.signals import cases_created, decision_recorded
        from apps.classifiers.gates import set_autonomy_hooks
        from apps.core.registry import (
            HomeSection,
            NavItem,
            register_home_section,
            register_nav_item,
        )

        set_autonomy_hooks(
            held_back=lambda process: suggestions_held_back(process=process),
            may_view_autonomy=lambda user, process: can_view_autonomy(user=user, process=process),
        )
        cases_created.connect(on_cases_created, dispatch_uid="autonomy-new-cases")
        decision_recorded.connect(on_decision_recorded, dispatch_uid="autonomy-outcomes")
        register_home_section(
            HomeSection(template="autonomy/home_section.html", provider=home_context, order=40)
        )
        # Only for those the overview lets in: a link that answers 403 is a broken promise.
        register_nav_item(
            NavItem(
                label="Autonomy",
                url_name="autonomy_overview",
                order=40,
                # Roles first (no query for staff); then whether their teams have processes.
                roles=VIEW_ROLES,
                org_admins=False,
                visible=lambda user: autonomy_processes(user=user).exists(),
            )
        )
