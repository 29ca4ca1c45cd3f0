from celery import shared_task

from apps.orchestrations import sla


@shared_task
def escalate_overdue_task() -> int:
    """Periodic (ORCHCAP_SLA_SWEEP_SECONDS): the escalation step due for each overdue routed
    item (sla.escalate_overdue). Returns how many steps were taken."""
    return len(sla.escalate_overdue())
