"""The periodic sweep: lost nodes, stranded work, quiet nodes.

1. Nodes silent for 3 heartbeat intervals are marked offline (heartbeats.mark_lost_nodes).
2. Open tasks whose node can't finish them (offline, stopped, retired) or whose lease ran out
   move back to pending and are placed elsewhere at once, as a new attempt. A late result from
   the old attempt is ignored (services/results.py), and the queue of a node that was lost is
   emptied, so that the node, when it returns, doesn't run the moved work for nothing.
3. A lease that ran out before the node even started the task means its worker doesn't take
   work from its queue: the node is flagged "not consuming" and gets no more work.
4. A node that ran nothing for ORCHCAP_FABRIC_PROBE_SECONDS gets a 0-second probe, so a stuck
   worker on an idle node is found before real work is sent to it. A flagged node gets one after
   a lease, then less often (see send_probes): it is sent no work, so a probe it returns is what clears the flag, and a worker that
   was restarted (or a flag raised by work a dead worker had fetched) must not wait
   ORCHCAP_FABRIC_PROBE_SECONDS with nothing dispatched. A probe nobody took is not placed
   elsewhere: it was a question to its node, answered.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from apps.fabric import protocol, selectors
from apps.fabric.models import (
    LIVE_STATES,
    OPEN_TASK_STATES,
    AttemptState,
    ComputeNode,
    FabricTask,
    FabricTaskState,
    NodeEventKind,
    NodeState,
    TaskAttempt,
)
from apps.fabric.services import dispatch, heartbeats
from apps.fabric.services.consumption import flag_not_consuming
from apps.fabric.services.history import record_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    lost_nodes: int
    moved_tasks: int
    probes: int
    placed: int


def sweep(*, now: datetime | None = None) -> SweepReport:
    now = now or timezone.now()
    lost = heartbeats.mark_lost_nodes(now=now)
    moved = move_stranded_tasks(now=now)
    probes = send_probes(now=now)
    placed = dispatch.place_pending(now=now) if moved else 0
    return SweepReport(lost_nodes=len(lost), moved_tasks=moved, probes=probes, placed=placed)


def _why_stranded(task: FabricTask, now: datetime) -> tuple[str, bool]:
    """(reason, the node never took it) for an open task that must move."""
    node = task.node
    if node is None and task.pull:
        queue = (task.placement or {}).get("queue", "its queue")
        return f"no node took it from {queue} within {dispatch.lease_seconds()} s", False
    if node is None:
        return "its node no longer exists", False
    if node.revoked_at is not None or node.state not in LIVE_STATES:
        return f"{node.name} is {node.get_state_display().lower()}", False
    seconds = dispatch.lease_seconds()
    if task.state == FabricTaskState.PLACED:
        return f"{node.name} did not take it from its queue within {seconds} s", True
    return f"{node.name} stopped reporting it for {seconds} s", False


def move_stranded_tasks(*, now: datetime | None = None) -> int:
    """Move open tasks off nodes that can't finish them; returns how many moved (or failed for
    good after ORCHCAP_FABRIC_MAX_ATTEMPTS attempts)."""
    now = now or timezone.now()
    # An unclaimed pull task has no node yet: only its lease decides.
    stranded = Q(node__isnull=True, pull=False)
    stranded |= Q(node__isnull=False) & ~Q(node__state__in=LIVE_STATES)
    stranded |= Q(node__revoked_at__isnull=False) | Q(lease_expires_at__lt=now)
    candidates = FabricTask.objects.filter(state__in=OPEN_TASK_STATES).filter(stranded)
    if not candidates.exists():
        return 0
    with transaction.atomic():
        # The scheduler's lock first (placing and moving must not interleave), then the rows.
        dispatch.lock_scheduler()
        tasks = list(
            candidates.select_for_update(of=("self",)).select_related("node").order_by("pk")
        )
        if not tasks:
            return 0
        by_node: dict[int, list[str]] = defaultdict(list)
        nodes: dict[int, ComputeNode] = {}
        for task in tasks:
            node = task.node
            reason, never_taken = _why_stranded(task, now)
            if never_taken and node is not None:
                flag_not_consuming(node=node, now=now, why=reason)
            _requeue(task, reason=reason, now=now)
            if node is not None:
                nodes[node.pk] = node
                by_node[node.pk].append(f"#{task.pk}")
        for node_id, numbers in by_node.items():
            record_event(
                node=nodes[node_id],
                kind=NodeEventKind.TASKS_MOVED,
                message=f"{len(numbers)} task(s) taken back: {', '.join(numbers[:20])}",
                at=now,
            )
        # A lost node gets no new work, so what waits in its queue now is what was just moved:
        # a node coming back would run it for nothing (its results are ignored). A node that is
        # still live keeps its queue: work sent to it since is valid.
        gone = sorted(n.pk for n in nodes.values() if n.revoked_at or n.state not in LIVE_STATES)
        if gone:
            transaction.on_commit(lambda: purge_node_queues(gone))
    return len(tasks)


def purge_node_queues(node_ids: list[int]) -> int:
    """Empty the durable queues `node.<id>` of these nodes; returns how many messages went.
    A broker that can't be reached is logged, not raised: the sweep has done its work, and a
    returning node's stale results are ignored anyway. (On Redis, what the dead worker had
    already fetched comes back to its queue only after the visibility timeout; a returning node
    may still run that, and its result is ignored.)"""
    from orchcap.celery import app

    purged = 0
    try:
        with app.connection_for_write(settings.ORCHCAP_NODE_BROKER_URL) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.1)
            channel = connection.default_channel
            for node_id in node_ids:
                # Declared as publishers and agents declare it (RabbitMQ refuses a purge of a
                # queue that doesn't exist), then emptied.
                queue = protocol.queue(protocol.node_queue_name(node_id))(channel)
                queue.declare()
                purged += queue.purge() or 0
    except Exception as exc:  # kombu's errors vary by transport; any of them means "not now"
        log.warning("fabric: could not purge the queues of lost node(s) %s: %s", node_ids, exc)
    return purged


def _requeue(task: FabricTask, *, reason: str, now: datetime) -> None:
    TaskAttempt.objects.filter(task=task, number=task.attempts).update(
        state=AttemptState.LOST, finished_at=now, note=reason[:300]
    )
    if task.pull and task.node_id is None:
        task.pull = False  # nobody of that kind took it: place it directly next time
    task.node = None
    task.lease_expires_at = None
    task.started_at = None
    if task.system:
        # A consumption probe asks one node; run elsewhere it would say nothing about it (and
        # a stuck node probed every lease would pile them up).
        task.state = FabricTaskState.FAILED
        task.error = f"not taken: {reason}"
        task.finished_at = now
    elif task.attempts >= settings.ORCHCAP_FABRIC_MAX_ATTEMPTS:
        task.state = FabricTaskState.FAILED
        task.error = f"gave up after {task.attempts} attempts; the last one: {reason}"
        task.finished_at = now
    else:
        task.state = FabricTaskState.PENDING
        task.placement = {
            **(task.placement or {}),
            "reason": f"waiting to be placed again: {reason}",
            "at": now.isoformat(),
            "node_id": None,
        }
    task.save(
        update_fields=[
            "node", "lease_expires_at", "started_at", "state", "error", "finished_at", "placement",
            "pull",
        ]
    )  # fmt: skip


def send_probes(*, now: datetime | None = None) -> int:
    """A 0-second probe to each online node with a worker that may take work now and either
    ran nothing (and was sent no probe) for ORCHCAP_FABRIC_PROBE_SECONDS, or is flagged not
    consuming and is due another probe (_flagged_probe_due); returns how many were sent."""
    now = now or timezone.now()
    quiet_since = now - timedelta(seconds=settings.ORCHCAP_FABRIC_PROBE_SECONDS)
    busy = FabricTask.objects.filter(node=OuterRef("pk"), state__in=OPEN_TASK_STATES)
    probes = FabricTask.objects.filter(attempt_log__node=OuterRef("pk"), system=True)
    quiet = (
        Q(created_at__lt=quiet_since)
        & (Q(last_task_at__isnull=True) | Q(last_task_at__lt=quiet_since))
        & ~Exists(busy)
        & ~Exists(probes.filter(placed_at__gte=quiet_since))
    )
    nodes = (
        ComputeNode.objects.filter(
            state=NodeState.ONLINE,
            approved_at__isnull=False,
            revoked_at__isnull=True,
            worker_ready=True,
        )
        .filter(quiet | Q(not_consuming_since__isnull=False))
        .annotate(last_probe_at=Subquery(probes.order_by("-placed_at").values("placed_at")[:1]))
    )
    sent = 0
    for node in nodes:
        flagged = node.not_consuming_since is not None
        if flagged and not _flagged_probe_due(node, node.last_probe_at, now):
            continue
        if not selectors.work_decision(node=node, now=now).available:
            continue
        if flagged:
            why = f"{node.name} is flagged not consuming"
        else:
            quiet_for = "never ran a task" if node.last_task_at is None else "ran nothing"
            why = f"{node.name} {quiet_for} for {settings.ORCHCAP_FABRIC_PROBE_SECONDS} s"
        with transaction.atomic():
            task = FabricTask.objects.create(kind="probe", payload={"seconds": 0}, system=True)
            dispatch.dispatch_to(task=task, node=node, now=now, reason=f"consumption check: {why}")
        sent += 1
    return sent


def _flagged_probe_due(node: ComputeNode, last_probe_at: datetime | None, now: datetime) -> bool:
    """A flagged node gets no work, so only a probe it takes clears the flag: the first goes a
    lease after the last one (at once, when the flag came from a lost probe), the next ones
    after as long again as the node had been flagged (L, 2L, 4L, ...), at most every
    ORCHCAP_FABRIC_PROBE_SECONDS. A worker that came back (restarted, or free of what a dead
    worker had fetched) is seen within a lease or two, not after PROBE_SECONDS with nothing
    dispatched; a stuck one's queue, where its probes wait, gets a few an hour."""
    lease = timedelta(seconds=dispatch.lease_seconds())
    if last_probe_at is None:
        return True
    flagged_for = max(timedelta(0), last_probe_at - node.not_consuming_since)
    cap = max(lease, timedelta(seconds=settings.ORCHCAP_FABRIC_PROBE_SECONDS))
    return now - last_probe_at >= min(max(lease, flagged_for), cap)
