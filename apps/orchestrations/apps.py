import importlib

from django.apps import AppConfig


class OrchestrationsConfig(AppConfig):
    name = "apps.orchestrations"
    label = "orchestrations"
    verbose_name = "Orchestrations (versioned decision pipelines)"

    def ready(self) -> None:
        from apps.cases.signals import decision_recorded, decision_retracted
        from apps.core.registry import NavItem, register_nav_item
        from apps.orchestrations.receivers import on_decision_recorded, on_decision_retracted
        from apps.orchestrations.selectors import VIEW_ROLES

        # Expert decisions on a run's case become steps of its trace (and its outcome events).
        decision_recorded.connect(on_decision_recorded, dispatch_uid="orchestrations-decisions")
        decision_retracted.connect(on_decision_retracted, dispatch_uid="orchestrations-undos")
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
        # Runs are evaluated on the compute fabric; this registers the handler of their results.
        importlib.import_module("apps.orchestrations.execution")
        # The periodic catch-up of expert decisions a lost signal kept from a run's trace.
        import apps.orchestrations.tasks_events  # noqa: F401

        # The SLA sweep: escalation of overdue routed items (sla.py).
        importlib.import_module("apps.orchestrations.tasks_sla")
