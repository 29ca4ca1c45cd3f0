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
        from apps.people.models import Role

        register_home_section(
            HomeSection(template="cases/home_section.html", provider=home_context, order=10)
        )
        register_nav_item(NavItem(label="Processes", url_name="process_list", order=10))
        register_nav_item(
            NavItem(
                label="My decisions",
                url_name="my_decisions",
                order=11,
                roles=frozenset({Role.EXPERT}),
                org_admins=False,
            )
        )

        # Background imports are sent again by the job sweeper when no worker picked them up.
        from apps.cases.jobs import IMPORT_JOBS
        from apps.core.outbox import register_job_kind

        register_job_kind(IMPORT_JOBS)
