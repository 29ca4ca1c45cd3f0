from celery import shared_task

from apps.fabric.services import dispatch, sweeper


@shared_task
def mark_lost_nodes() -> int:
    """Periodic (ORCHCAP_FABRIC_SWEEP_SECONDS): the sweeper. Nodes silent for 3 heartbeat
    intervals go offline and their work moves elsewhere; expired leases and quiet nodes are
    checked (services/sweeper.py). Returns the number of nodes marked lost."""
    return sweeper.sweep().lost_nodes


@shared_task
def schedule_pending_tasks() -> int:
    """Periodic (ORCHCAP_FABRIC_SCHEDULE_SECONDS): place pending tasks a node can take now."""
    return dispatch.place_pending()
