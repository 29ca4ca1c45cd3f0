from django.apps import AppConfig


class SkillsConfig(AppConfig):
    name = "apps.skills"
    label = "skills"
    verbose_name = "Skills (framework, evidence, levels, plans)"

    def ready(self) -> None:
        from apps.core import evidence_kinds
        from apps.core.registry import NavItem, register_nav_item

        # Every app's skill_evidence.py registers the kinds it owns (this app's too).
        evidence_kinds.autodiscover()
        # One entry: the skills page links to paths, reviews (managers) and the framework (admins).
        register_nav_item(NavItem(label="My skills", url_name="my_skills", order=80))

        # Gold cases slipped into the review queue of experts new to a process (practice_queue.py),
        # and the gold box on a decided case's page for the team's managers.
        from apps.core.registry import (
            CasePanel,
            ReviewQueueHook,
            register_case_panel,
            register_review_queue_hook,
        )
        from apps.skills import practice_queue
        from apps.skills.practice_views import GOLD_PANEL, gold_panel

        register_review_queue_hook(
            ReviewQueueHook(
                serve=practice_queue.serve_gold,
                answer=practice_queue.answer_gold,
                skip=practice_queue.skip_gold,
            )
        )
        register_case_panel(CasePanel(template=GOLD_PANEL, provider=gold_panel, order=90))

        # Routing by measured expertise (routing.py): new cases get their first reviewer, and a
        # label keeps the expertise profiles current and hands a learner's case to its checker.
        from apps.cases.signals import cases_created, decision_recorded, decision_retracted
        from apps.skills import routing_receivers

        cases_created.connect(routing_receivers.on_cases_created, dispatch_uid="skills-routing")
        decision_recorded.connect(
            routing_receivers.on_decision_recorded, dispatch_uid="skills-routing-decided"
        )
        decision_retracted.connect(
            routing_receivers.on_decision_retracted, dispatch_uid="skills-routing-undone"
        )
