from celery import shared_task

from apps.fabric import protocol
from apps.fabric.services import completion, dispatch, local, sweeper


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


@shared_task(name=protocol.RUN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_on_local_node(**kwargs: object) -> None:
    """Fabric work placed on `local`, the control plane's own worker (services/local.py)."""
    local.run_message(kwargs)


@shared_task(acks_late=True)
def handle_finished_tasks(task_ids: list[int] | None = None) -> int:
    """Run the completion handlers of finished fabric tasks (these, or, periodically, any left
    unhandled): services/completion.py."""
    return completion.handle_finished(task_ids)
