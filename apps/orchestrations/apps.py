from django.apps import AppConfig


class OrchestrationsConfig(AppConfig):
    name = "apps.orchestrations"
    label = "orchestrations"
    verbose_name = "Orchestrations (versioned decision pipelines)"

    def ready(self) -> None:
        from apps.core.registry import NavItem, register_nav_item
        from apps.orchestrations.selectors import VIEW_ROLES

        # Only for those the list page lets in (a team's experts, managers and admins).
        register_nav_item(
            NavItem(
                label="Orchestrations",
                url_name="orchestration_list",
                order=55,
                roles=VIEW_ROLES,
            )
        )
        # The cases intake API's `?orchestration=` (cases can't import orchestrations).
        from apps.cases.intake_routes import register_orchestrated_intake
        from apps.orchestrations.cases_intake import intake_cases

        register_orchestrated_intake(intake_cases)
