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
