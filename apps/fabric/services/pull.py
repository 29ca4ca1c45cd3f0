"""Pull tasks: the node that took one from a capability queue claims it before running it.

A capability queue (`fabric.gpu`, `fabric.class.edge`…) is shared by every node of that kind,
including ones that may not run the task right now (outside their hours, reclaimed, full, the
wrong site). So the taker asks first: the claim runs the scheduler's checks for that node and
that task, and either makes the task the node's (from then on it is like a pushed task: leases,
artefacts, results) or refuses with the reasons; a refused task is placed directly on a node that
may run it, so one ineligible taker can't bounce it around.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.fabric import scheduler, selectors
from apps.fabric.models import (
    OPEN_TASK_STATES,
    AttemptState,
    ComputeNode,
    FabricTask,
    FabricTaskState,
    TaskAttempt,
)
from apps.fabric.services import dispatch


@dataclass(frozen=True)
class Claim:
    claimed: bool
    reason: str


def claim_task(
    *, node: ComputeNode, task_id: int, attempt: int, token: str, now: datetime | None = None
) -> Claim:
    now = now or timezone.now()
    with transaction.atomic():
        dispatch.lock_scheduler()  # a claim uses a slot, like a placement
        task = FabricTask.objects.select_for_update().filter(pk=task_id, pull=True).first()
        row = (
            TaskAttempt.objects.select_for_update()
            .filter(task_id=task_id, number=attempt, token=token)
            .first()
        )
        if task is None or row is None or task.attempts != attempt:
            return Claim(False, "not the current attempt of a pull task")
        if task.node_id == node.pk and row.node_id == node.pk:
            return Claim(True, "already claimed by this node")  # a redelivered message
        if task.node_id is not None or task.state != FabricTaskState.PLACED:
            return Claim(False, "taken by another node, or no longer waiting")
        leased = FabricTask.objects.filter(node=node, state__in=OPEN_TASK_STATES).count()
        facts = selectors.node_facts(node=node, leased=leased)
        reasons = scheduler.rejection_reasons(
            facts, scheduler.Requirements.from_json(task.requirements), now
        )
        if reasons:
            why = f"{node.name} took it from {task.placement.get('queue')} but may not run it: "
            why += "; ".join(reasons)
            row.state, row.node, row.finished_at, row.note = AttemptState.LOST, node, now, why[:300]
            row.save(update_fields=["state", "node", "finished_at", "note"])
            # Placed directly this time: the scheduler picks a node that may run it.
            task.pull = False
            task.state = FabricTaskState.PENDING
            task.lease_expires_at = None
            task.placement = {**task.placement, "reason": f"waiting: {why}", "node_id": None}
            task.save(update_fields=["pull", "state", "lease_expires_at", "placement"])
            dispatch.place([task], now=now)
            return Claim(False, why)
        task.node = node
        task.placement = {
            **task.placement,
            "node_id": node.pk,
            "reason": f"{task.placement.get('reason', '')}; claimed by {node.name}",
            "claimed_at": now.isoformat(),
        }
        task.save(update_fields=["node", "placement"])
        row.node = node
        row.save(update_fields=["node"])
        return Claim(True, f"claimed by {node.name}")
