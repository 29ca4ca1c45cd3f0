from django.apps import AppConfig


class CapitalConfig(AppConfig):
    name = "apps.capital"
    label = "capital"
    verbose_name = "Capital (assessment, first battle, metrics, roadmap)"
