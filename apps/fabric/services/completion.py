"""Acting on finished work: the control plane's side of a payload's result.

A node only computes; what its result means (a model to file in the registry, scores to write on
cases) is decided here, by the handler named in the task's `on_done`. Domains register handlers
with `@completion_handler("name")` in their app's ready(). Handlers run on the control plane's
worker, once per task: the task row is locked and `handled_at` set in the same transaction. They
are triggered when a result is recorded and, as a catch-up, periodically (a lost trigger message
only delays them).
"""

import logging
from collections.abc import Callable, Iterable

from django.db import transaction
from django.utils import timezone

from apps.fabric.models import FINISHED_TASK_STATES, FabricTask

log = logging.getLogger(__name__)
Handler = Callable[[FabricTask], None]
HANDLERS: dict[str, Handler] = {}
CATCH_UP_BATCH = 100


def completion_handler(name: str) -> Callable[[Handler], Handler]:
    """Register `handler(task)` for tasks submitted with `on_done=name`. It runs inside the
    transaction that marks the task handled; an exception rolls its writes back and is logged,
    and the task is marked handled with the error (handlers record their own failures, such as a
    training job that failed)."""

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


def unhandled_task_ids(limit: int = CATCH_UP_BATCH) -> list[int]:
    return list(
        FabricTask.objects.filter(state__in=FINISHED_TASK_STATES, handled_at__isnull=True)
        .exclude(on_done="")
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def handle_finished(task_ids: Iterable[int] | None = None) -> int:
    """Run the handlers of these finished tasks (or of the oldest unhandled ones); returns how
    many ran. Tasks another worker is handling right now are skipped, not waited for."""
    ids = list(task_ids) if task_ids is not None else unhandled_task_ids()
    ran = 0
    for task_id in ids:
        with transaction.atomic():
            task = (
                FabricTask.objects.select_for_update(skip_locked=True)
                .filter(pk=task_id, state__in=FINISHED_TASK_STATES, handled_at__isnull=True)
                .exclude(on_done="")
                .first()
            )
            if task is None:
                continue
            handler = HANDLERS.get(task.on_done)
            if handler is None:
                log.error("fabric task %s: no handler named %r", task.pk, task.on_done)
            else:
                try:
                    with transaction.atomic():
                        handler(task)
                except Exception:
                    log.exception("fabric task %s: its %r handler failed", task.pk, task.on_done)
            FabricTask.objects.filter(pk=task.pk).update(handled_at=timezone.now())
            ran += 1
    return ran


def handle_soon(task_ids: list[int]) -> None:
    """After commit, ask the control plane's worker to run these finished tasks' handlers
    (record_results calls it for the tasks it finished that name one)."""
    if not task_ids:
        return

    def send() -> None:
        from apps.fabric.tasks import handle_finished_tasks

        try:
            handle_finished_tasks.delay(task_ids)
        except Exception as exc:  # the periodic catch-up runs them later
            log.warning("fabric: could not queue handlers for %d task(s): %s", len(task_ids), exc)

    transaction.on_commit(send)
