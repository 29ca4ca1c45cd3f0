from celery import shared_task

from apps.orchestrations import people


@shared_task
def catch_up_decisions_task() -> int:
    """Periodic (every 5 minutes): expert decisions on runs' cases that their traces lack
    (people.catch_up_decisions). Returns how many were recorded."""
    return people.catch_up_decisions()
