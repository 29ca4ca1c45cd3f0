from celery import shared_task

from apps.core import outbox


@shared_task
def sweep_jobs() -> dict[str, int]:
    """Periodic (ORCHCAP_JOB_SWEEP_SECONDS): send again background jobs no worker picked up in
    time, recover runs lost with their worker (apps/core/outbox.py). {kind: jobs sent}."""
    return outbox.sweep()
