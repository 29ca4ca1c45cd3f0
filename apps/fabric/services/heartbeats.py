"""Heartbeats from agents, and the sweeper that notices the ones that stopped."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from apps.fabric import protocol, selectors
from apps.fabric.errors import NodeRefused
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
from apps.fabric.services import dispatch, last_seen
from apps.fabric.services.consumption import mark_consuming
from apps.fabric.services.enrollment import clean_json_object, hash_secret
from apps.fabric.services.history import record_event

MISSED_HEARTBEATS = 3  # silent for this many intervals → offline


class AgentStatus:
    RUNNING = "running"
    STOPPING = "stopping"  # got SIGTERM: finishing current work, takes nothing new
    STOPPED = "stopped"  # last word before a planned shutdown

    ALL = (RUNNING, STOPPING, STOPPED)


class WorkerStatus:
    NONE = "none"  # the agent runs no worker (not approved yet, or heartbeats only)
    STARTING = "starting"
    READY = "ready"  # consuming its queues

    ALL = (NONE, STARTING, READY)


@dataclass(frozen=True)
class HeartbeatReply:
    node_id: int
    state: str
    accept_work: bool
    reason: str
    heartbeat_seconds: int
    # Where and what to consume; only for approved nodes that aren't retired.
    broker_url: str | None = None
    queues: tuple[str, ...] = ()
    max_concurrent_tasks: int = 1
    consuming: bool = True  # False: the control plane saw work sent to it not being taken


def dispatch_details(node: ComputeNode) -> tuple[str | None, tuple[str, ...]]:
    """The broker URL and queues an approved node's worker consumes (none before approval)."""
    if not node.is_approved or node.is_revoked or node.state == NodeState.RETIRED:
        return None, ()
    queues = [protocol.node_queue_name(node.pk)]
    queues += protocol.capability_queue_names(node_class=node.node_class, gpus=node.gpu_count)
    return settings.ORCHCAP_NODE_BROKER_URL, tuple(queues)


def renew_leases(
    *, node: ComputeNode, held: list[tuple[int, int, str]], now: datetime
) -> list[int]:
    """The node holds these (task, attempt, token)s: each current one is running, with a fresh
    lease. Returns the task ids renewed. Old attempts it still holds are not renewed (their
    tasks were moved elsewhere).

    One statement checks and renews: a result recorded meanwhile (the task row is locked while
    it is written) is seen by the check, so a finished task is never made running again."""
    wanted = sorted(set(held))
    if not wanted:
        return []
    lease = now + timedelta(seconds=protocol.LEASE_HEARTBEATS * settings.ORCHCAP_HEARTBEAT_SECONDS)
    tasks, attempts = FabricTask._meta.db_table, TaskAttempt._meta.db_table
    with dispatch.bound_cursor() as cursor:
        # Rows locked in id order, like results and the sweeper lock them: no deadlock.
        cursor.execute(
            "WITH held AS ("  # noqa: S608 (our tables)
            f"SELECT t.id FROM {tasks} AS t "
            "JOIN unnest(%(ids)s::bigint[], %(numbers)s::int[], %(tokens)s::text[]) "
            "AS h(task_id, number, token) ON t.id = h.task_id AND t.attempts = h.number "
            f"JOIN {attempts} AS a ON a.task_id = h.task_id AND a.number = h.number "
            "AND a.token = h.token AND a.node_id = %(node)s "
            "WHERE t.node_id = %(node)s AND t.state = ANY(%(open)s::text[]) "
            "ORDER BY t.id FOR UPDATE OF t) "
            f"UPDATE {tasks} AS t SET state = %(running)s, lease_expires_at = %(lease)s, "
            "started_at = COALESCE(t.started_at, %(now)s) FROM held WHERE t.id = held.id "
            "RETURNING t.id",
            {
                "running": str(FabricTaskState.RUNNING),
                "lease": lease,
                "now": now,
                "ids": [t for t, _, _ in wanted],
                "numbers": [n for _, n, _ in wanted],
                "tokens": [k for _, _, k in wanted],
                "node": node.pk,
                "open": [str(s) for s in OPEN_TASK_STATES],
            },
        )
        current = sorted(row[0] for row in cursor.fetchall())
        if not current:
            return []
        cursor.execute(
            f"UPDATE {attempts} AS a SET state = %(running)s, started_at = %(now)s "  # noqa: S608 (our tables)
            f"FROM {tasks} AS t WHERE t.id = ANY(%(ids)s::bigint[]) AND a.task_id = t.id "
            "AND a.number = t.attempts AND a.node_id = %(node)s AND a.state = %(dispatched)s",
            {
                "running": str(AttemptState.RUNNING),
                "now": now,
                "ids": current,
                "node": node.pk,
                "dispatched": str(AttemptState.DISPATCHED),
            },
        )
    ComputeNode.objects.filter(pk=node.pk).update(last_task_at=now)
    if node.not_consuming_since is not None:
        mark_consuming(node=node, now=now, why="it reported running work")
    return current


_HEARTBEAT_FIELDS = [
    "last_heartbeat_at", "heartbeat_count", "cpu_percent", "memory_percent", "load_average",
    "running_tasks", "worker_ready", "idle_seconds", "software_version", "state", "updated_at",
]  # fmt: skip


def _bounded(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else max(low, min(high, float(value)))


def _figures(
    *,
    cpu_percent: float | None,
    memory_percent: float | None,
    load_average: float | None,
    running_tasks: int,
    idle_seconds: float | None,
    tasks: list[tuple[int, int, str]] | None,
) -> dict[str, object]:
    """The load figures a heartbeat stores, each clamped to what its column holds."""
    return {
        "cpu_percent": _bounded(cpu_percent, 0, 100),
        "memory_percent": _bounded(memory_percent, 0, 100),
        "load_average": _bounded(load_average, 0, 10_000),
        "running_tasks": max(0, min(int(len(tasks) if tasks is not None else running_tasks),
                                    32_767)),
        "idle_seconds": None if idle_seconds is None
        else max(0, min(int(idle_seconds), 2**31 - 1)),
    }  # fmt: skip


def record_heartbeat(
    *,
    node: ComputeNode,
    status: str = AgentStatus.RUNNING,
    cpu_percent: float | None = None,
    memory_percent: float | None = None,
    load_average: float | None = None,
    running_tasks: int = 0,
    idle_seconds: float | None = None,
    detected: dict[str, object] | None = None,
    software_version: str | None = None,
    tasks: list[tuple[int, int, str]] | None = None,
    worker: str | None = None,
    now: datetime | None = None,
) -> HeartbeatReply:
    """Store the heartbeat's summary on the node, move its state, renew the leases of the
    (task, attempt)s it holds, and say whether it may take new work now, with where to get it.
    Raises NodeRefused when the node was revoked or retired meanwhile."""
    if status not in AgentStatus.ALL:
        raise ValidationError(f"status must be one of {', '.join(AgentStatus.ALL)}")
    if worker is not None and worker not in WorkerStatus.ALL:
        raise ValidationError(f"worker must be one of {', '.join(WorkerStatus.ALL)}")
    now = now or timezone.now()
    figures = _figures(
        cpu_percent=cpu_percent, memory_percent=memory_percent, load_average=load_average,
        running_tasks=running_tasks, idle_seconds=idle_seconds, tasks=tasks,
    )  # fmt: skip
    steady = (
        status == AgentStatus.RUNNING
        and worker in (None, WorkerStatus.READY)
        and not tasks
        and not detected
        and node.state == NodeState.ONLINE
        and node.worker_ready
    )
    # Outside a transaction: one statement, one round trip (no BEGIN and COMMIT around it).
    if steady and _record_steady_beat(node=node, figures=figures, version=software_version,
                                      now=now):  # fmt: skip
        return node_reply(node=node, now=now)
    with transaction.atomic():
        # Lock: an admin's approve/drain/retire and this heartbeat must not overwrite each other.
        node = ComputeNode.objects.select_for_update().get(pk=node.pk)
        if node.revoked_at is not None:
            raise NodeRefused("this node's credential was revoked; enrol the machine again")
        if node.state == NodeState.RETIRED:
            raise NodeRefused("this node is retired")

        node.last_heartbeat_at = now
        node.heartbeat_count += 1
        for name, value in figures.items():
            setattr(node, name, value)
        was_ready = node.worker_ready
        if worker is not None:
            node.worker_ready = worker == WorkerStatus.READY
        if status != AgentStatus.RUNNING:
            node.worker_ready = False  # stopping: takes nothing new
        if detected:
            node.detected = clean_json_object(detected, "detected capabilities")
        if software_version:
            node.software_version = software_version[:40]

        before = node.state
        if before != NodeState.PENDING:
            if status == AgentStatus.STOPPED:
                node.state = NodeState.PLANNED_OFFLINE
            elif status == AgentStatus.STOPPING or node.drain_requested:
                node.state = NodeState.DRAINING
            else:
                node.state = NodeState.ONLINE
        # Only what a heartbeat changes: a full-row save would rewrite (and re-serialise) every
        # column of the node, 200 times a second for 1,000 nodes at the default interval.
        node.save(update_fields=_HEARTBEAT_FIELDS + (["detected"] if detected else []))
        if node.state != before:
            messages = {
                NodeState.PLANNED_OFFLINE: "the agent stopped (planned)",
                NodeState.DRAINING: "the agent is stopping"
                if status == AgentStatus.STOPPING
                else "heartbeats resumed; drain still requested",
                NodeState.ONLINE: "heartbeats resumed"
                if before == NodeState.OFFLINE
                else "the agent started",
            }
            record_event(
                node=node,
                kind=NodeEventKind.STATE,
                from_state=before,
                to_state=node.state,
                message=messages.get(node.state, ""),
                at=now,
            )
        if tasks:
            renew_leases(node=node, held=tasks, now=now)
        if node.worker_ready and not was_ready and node.not_consuming_since is not None:
            # The flag was about the worker before: this one has just started consuming.
            mark_consuming(node=node, now=now, why="its worker (re)started")
        if (
            node.state == NodeState.ONLINE
            and node.worker_ready
            and (before != NodeState.ONLINE or not was_ready)
        ):
            # It can take work now: pending tasks needn't wait for the periodic scheduler.
            transaction.on_commit(lambda: dispatch.place_pending(now=now))
        return node_reply(node=node, now=now)


def _record_steady_beat(
    *, node: ComputeNode, figures: dict[str, object], version: str | None, now: datetime
) -> bool:
    """Most heartbeats only bring new load figures from an online node whose worker consumes:
    one UPDATE stores them, its WHERE re-checking (under the row lock the UPDATE takes) that
    nothing an admin or the sweeper decides changed meanwhile. False when something did, or
    the node is not in that state: the caller takes the full path. Updates `node` in place.

    Why: at the default 5 s interval 1,000 nodes send 200 heartbeats/s, and reading the whole
    node row under a lock, then saving it, costs several times this statement's CPU."""
    table = ComputeNode._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_heartbeat_at = %(now)s, updated_at = %(now)s, "  # noqa: S608 (our table)
            "heartbeat_count = heartbeat_count + 1, cpu_percent = %(cpu_percent)s, "
            "memory_percent = %(memory_percent)s, load_average = %(load_average)s, "
            "running_tasks = %(running_tasks)s, idle_seconds = %(idle_seconds)s, "
            "software_version = COALESCE(NULLIF(%(version)s, ''), software_version) "
            "WHERE id = %(id)s AND state = %(online)s AND worker_ready AND revoked_at IS NULL "
            "AND NOT drain_requested RETURNING heartbeat_count, software_version",
            {**figures, "now": now, "id": node.pk, "online": str(NodeState.ONLINE),
             "version": (version or "")[:40]},
        )  # fmt: skip
        row = cursor.fetchone()
    if row is None:
        return False
    node.heartbeat_count, node.software_version = row
    node.last_heartbeat_at = node.updated_at = now
    for name, value in figures.items():
        setattr(node, name, value)
    return True


# What node_reply reads: the fast path's read returns it (no second round trip).
_REPLY_COLUMNS = (
    "state", "approved_at", "node_class", "detected", "declared", "max_concurrent_tasks",
    "not_consuming_since", "availability", "timezone",
)  # fmt: skip
_JSON_COLUMNS = {"detected", "declared", "availability"}
_STEADY_NODE_SQL = (
    f"SELECT {', '.join(_REPLY_COLUMNS)} FROM {ComputeNode._meta.db_table} "  # noqa: S608 (our table)
    "WHERE id = %s AND credential_hash = %s AND revoked_at IS NULL AND state = %s "
    "AND worker_ready AND NOT drain_requested"
)


def record_steady_heartbeat(
    *,
    node_id: int,
    secret: str,
    cpu_percent: float | None = None,
    memory_percent: float | None = None,
    load_average: float | None = None,
    running_tasks: int = 0,
    idle_seconds: float | None = None,
    software_version: str | None = None,
    tasks_reported: bool = False,
    now: datetime | None = None,
) -> HeartbeatReply | None:
    """The common heartbeat: an online node whose worker consumes, holding no work, reporting
    its load. Returns its reply, or None when the node isn't in that state or the credential
    doesn't match (a wrong id or secret, a revoked, draining, retired or not-ready node): the
    caller then takes the full path (`authenticate_node` + `record_heartbeat`), which answers
    401/403 or moves the state.

    One indexed read checks the credential's hash and `revoked_at IS NULL` on every heartbeat,
    so a revocation refuses the very next one (no credential cache to invalidate). The figures
    go to the per-process buffer (services/last_seen.py), written in one UPDATE for all nodes
    every ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS; with 0, straight away. `tasks_reported`: the
    body carried an empty `tasks` list, so `running_tasks` is 0, as record_heartbeat counts."""
    if not 0 < node_id < 2**63:
        return None
    now = now or timezone.now()
    figures = _figures(
        cpu_percent=cpu_percent, memory_percent=memory_percent, load_average=load_average,
        running_tasks=running_tasks, idle_seconds=idle_seconds,
        tasks=[] if tasks_reported else None,
    )  # fmt: skip
    version = (software_version or "")[:40]
    # This read is the request's health check too: Django's own (CONN_HEALTH_CHECKS, a SELECT 1
    # before the first query of each request) would double the heartbeat's round trips. A
    # broken connection fails here instead, is closed, and the full path opens a new one.
    connection.health_check_done = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(_STEADY_NODE_SQL, [node_id, hash_secret(secret), str(NodeState.ONLINE)])
            row = cursor.fetchone()
    except (OperationalError, InterfaceError):
        connection.close()
        return None
    if row is None:
        return None
    if settings.ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS > 0:
        last_seen.buffer.add(node_id=node_id, at=now, figures=figures, version=version)
        last_seen.flush_if_due()
    else:
        last_seen.write_seen({node_id: last_seen.Seen(at=now, figures=figures, version=version)})
    read = {
        name: json.loads(value) if name in _JSON_COLUMNS and isinstance(value, str) else value
        for name, value in zip(_REPLY_COLUMNS, row, strict=True)
    }
    read["id"] = node_id
    # As the ORM builds a row it read (the other columns deferred; node_reply reads none of them,
    # and the one-read test would see it if it did): a third of the CPU of ComputeNode(**fields).
    # from_db takes the values in the model's field order.
    names = [f.attname for f in ComputeNode._meta.concrete_fields if f.attname in read]
    node = ComputeNode.from_db(None, names, [read[name] for name in names])
    node.revoked_at, node.worker_ready, node.last_heartbeat_at = None, True, now
    for name, value in figures.items():
        setattr(node, name, value)
    return node_reply(node=node, now=now)


def node_reply(*, node: ComputeNode, now: datetime | None = None) -> HeartbeatReply:
    """What a node is told about itself: the heartbeat's answer, and `GET /fabric/node`."""
    decision = selectors.work_decision(node=node, now=now or timezone.now())
    broker_url, queues = dispatch_details(node)
    return HeartbeatReply(
        node_id=node.pk,
        state=node.state,
        accept_work=decision.available,
        reason=decision.reason,
        heartbeat_seconds=settings.ORCHCAP_HEARTBEAT_SECONDS,
        broker_url=broker_url,
        queues=queues,
        max_concurrent_tasks=node.max_concurrent_tasks,
        consuming=node.not_consuming_since is None,
    )


def mark_lost_nodes(*, now: datetime | None = None) -> list[ComputeNode]:
    """Mark online and draining nodes that missed 3 heartbeats offline; returns them.

    Planned-offline and pending nodes are left alone: nobody expects their heartbeats. Each
    update re-checks the heartbeat time, so a heartbeat that lands meanwhile wins.
    """
    now = now or timezone.now()
    interval = settings.ORCHCAP_HEARTBEAT_SECONDS
    cutoff = now - timedelta(seconds=MISSED_HEARTBEATS * interval)
    lost = []
    for node in ComputeNode.objects.filter(state__in=LIVE_STATES, last_heartbeat_at__lt=cutoff):
        with transaction.atomic():
            updated = ComputeNode.objects.filter(
                pk=node.pk, state=node.state, last_heartbeat_at__lt=cutoff
            ).update(state=NodeState.OFFLINE, updated_at=now)
            if not updated:
                continue
            silent = int((now - node.last_heartbeat_at).total_seconds())
            record_event(
                node=node,
                kind=NodeEventKind.HEARTBEAT_LOST,
                from_state=node.state,
                to_state=NodeState.OFFLINE,
                message=f"no heartbeat for {silent} s (expected every {interval} s)",
                at=now,
            )
            node.state = NodeState.OFFLINE
            lost.append(node)
    return lost
