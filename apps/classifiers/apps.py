from django.apps import AppConfig


class ClassifiersConfig(AppConfig):
    name = "apps.classifiers"
    label = "classifiers"
    verbose_name = "Classifiers"

    def ready(self) -> None:
        from apps.cases.signals import decision_recorded
        from apps.classifiers.receivers import on_decision_recorded

        decision_recorded.connect(on_decision_recorded, dispatch_uid="classifiers-retrain")

        # Active learning and the review pane's suggestions.
        from apps.cases.signals import cases_created
        from apps.classifiers.active import on_cases_created
        from apps.classifiers.panels import TEMPLATE, suggestion_panel
        from apps.core.registry import CasePanel, register_case_panel

        cases_created.connect(on_cases_created, dispatch_uid="classifiers-score-new-cases")
        # Training and batch prediction run on the compute fabric; this files their results.
        import apps.classifiers.fabric  # noqa: F401 (registers the completion handlers)

        register_case_panel(CasePanel(template=TEMPLATE, provider=suggestion_panel, order=50))
        # Precedents weigh fields by what the promoted model says decides cases.
        from apps.classifiers.importance import promoted_model_weights
        from apps.core.registry import register_precedent_weights

        register_precedent_weights(promoted_model_weights)

        # Training jobs are sent again by the job sweeper when no worker picked them up.
        from apps.classifiers.jobs import TRAINING_JOBS
        from apps.core.outbox import register_job_kind

        register_job_kind(TRAINING_JOBS)
