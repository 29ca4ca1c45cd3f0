from django.apps import AppConfig


class CapitalConfig(AppConfig):
    name = "apps.capital"
    label = "capital"
    verbose_name = "Capital (assessment, first battle, metrics, roadmap)"

    def ready(self) -> None:
        from apps.capital.roadmap_ready import register_roadmap

        register_roadmap()

        from apps.capital.metrics_ready import register_metrics

        register_metrics()
