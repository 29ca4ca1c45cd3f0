from celery import shared_task

from apps.orchestrations import execution


@shared_task
def sweep_runs() -> int:
    """Periodic (ORCHCAP_RUN_SWEEP_SECONDS): send to the compute fabric the unfinished runs that
    nothing evaluates any more (execution.sweep_runs). Returns how many were sent."""
    return execution.sweep_runs()
