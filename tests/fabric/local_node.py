"""Helpers for tests that run fabric work on `local`, the control plane's node, in-process (the
body of the message its queue would deliver, as the worker would run it)."""

from apps.fabric import protocol
from apps.fabric.models import ComputeNode, FabricTask, TaskAttempt
from apps.fabric.services import completion, local


def ready_local_node() -> ComputeNode:
    node = local.ensure_local_node(concurrency=2)
    ComputeNode.objects.filter(pk=node.pk).update(worker_ready=True)
    node.refresh_from_db()
    return node


def message_of(task: FabricTask) -> dict:
    """The message the node's queue received for the task's current attempt."""
    task.refresh_from_db()
    attempt = TaskAttempt.objects.get(task=task, number=task.attempts)
    return protocol.message(
        task_id=task.pk, attempt=attempt.number, token=attempt.token, kind=task.kind,
        payload=task.payload, artifacts=task.artifacts,
    )  # fmt: skip


def run_on_local(*, handle: bool = True) -> int:
    """Run every task placed on `local` (then the completion handlers); returns how many ran."""
    node = ComputeNode.objects.get(control_plane=True)
    placed = list(FabricTask.objects.filter(node=node, state="placed").order_by("pk"))
    for task in placed:
        local.run_message(message_of(task))
    if handle:
        completion.handle_finished()
    return len(placed)
