from celery import shared_task

from apps.cases.models import Process
from apps.classifiers import services


@shared_task(acks_late=True)
def train_model(job_id: int) -> None:
    services.run_training_job(job_id)


@shared_task
def retrain_if_due(process_id: int) -> None:
    process = Process.objects.filter(pk=process_id).first()
    if process is not None:
        services.retrain_if_due(process=process)


# --- active learning ------------------------------------------------------------------------------


@shared_task(acks_late=True)
def score_cases(process_id: int, case_ids: list[int] | None = None) -> int:
    """Store the promoted model's uncertainty on open cases (all of them without `case_ids`)."""
    from apps.classifiers import active

    process = Process.objects.filter(pk=process_id).first()
    if process is None:
        return 0
    return active.score_open_cases(process=process, case_ids=case_ids)


@shared_task
def refresh_uncertainty() -> dict[str, int]:
    from apps.classifiers import active

    return active.refresh_uncertainty()
