from celery import shared_task

from apps.cases.models import Process
from apps.classifiers import services


@shared_task(acks_late=True)
def train_model(job_id: int) -> None:
    """Send the job to the compute fabric; its node trains, the completion handler files it."""
    from apps.classifiers import fabric

    fabric.send_training_job(job_id)


@shared_task
def retrain_if_due(process_id: int) -> None:
    process = Process.objects.filter(pk=process_id).first()
    if process is not None:
        services.retrain_if_due(process=process)


# --- active learning ------------------------------------------------------------------------------


@shared_task(acks_late=True)
def score_cases(process_id: int, case_ids: list[int] | None = None) -> int:
    """Score open cases with the promoted model on the compute fabric (all of them without
    `case_ids`); the uncertainty is stored as results come back. Returns the tasks sent."""
    from apps.classifiers import fabric

    process = Process.objects.filter(pk=process_id).first()
    if process is None:
        return 0
    return len(fabric.send_scoring(process=process, case_ids=case_ids))


@shared_task
def refresh_uncertainty() -> dict[str, int]:
    """The periodic catch-up, on the fabric: {process slug: scoring tasks sent}."""
    from apps.classifiers import fabric

    return fabric.refresh_uncertainty()
