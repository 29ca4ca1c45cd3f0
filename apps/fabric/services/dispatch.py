"""Submitting work: place each task on a node and send it to that node's durable queue.

Placement runs under one PostgreSQL advisory lock, so two submitters (or a submitter and a
node freeing a slot) never give one free slot to two tasks. Messages are published after the
transaction commits: a node never receives a task whose row it can't see the result of. A task
that no node can take stays pending with the scheduler's reasons and is placed when a node frees
a slot, comes online, or by the periodic pending-task scheduler.
"""

import json
import logging
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import JSONField
from django.db.models.fields.json import KT
from django.utils import timezone

from apps.fabric import payloads, protocol, scheduler, selectors
from apps.fabric.errors import NodeConflict
from apps.fabric.models import (
    AttemptState,
    ComputeNode,
    FabricArtifact,
    FabricTask,
    FabricTaskState,
    NodeState,
    TaskAttempt,
)

log = logging.getLogger(__name__)
SCHEDULER_LOCK = 0x0FAB_D15C  # pg_advisory_xact_lock key: one placement decision at a time
PENDING_BATCH = 500


def lease_seconds() -> int:
    return protocol.LEASE_HEARTBEATS * int(settings.ORCHCAP_HEARTBEAT_SECONDS)


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    requirements: dict[str, Any] = field(default_factory=dict)
    artifacts: tuple[str, ...] = ()
    idempotency_key: str | None = None
    # Short work: may share a broker message with other tasks for the same node.
    bundle: bool = False
    # To a capability queue, for the first free node of the chosen kind (see FabricTask.pull).
    pull: bool = False
    # A completion handler for the result (services/completion.py).
    on_done: str = ""


@dataclass(frozen=True)
class Dispatch:
    """One broker message to one node: a task, or a bundle of short ones."""

    node_id: int | None  # None: a pull task, for whichever node claims it
    celery_id: str
    kwargs: dict[str, Any]
    attempts: tuple[tuple[int, int], ...]  # (task id, attempt) it carries
    queue: str = ""  # the node's own queue unless set


def _check(spec: TaskSpec) -> None:
    try:
        payloads.validate(spec.kind, spec.payload, spec.artifacts)
    except payloads.PayloadError as exc:
        raise ValidationError(str(exc)) from None
    try:
        scheduler.Requirements.from_json(spec.requirements)
    except scheduler.RequirementError as exc:
        raise ValidationError(f"requirements: {exc}") from None
    if spec.idempotency_key is not None and not 0 < len(spec.idempotency_key) <= 120:
        raise ValidationError("idempotency_key must be 1 to 120 characters")


def _check_artifacts_exist(specs: list[TaskSpec]) -> None:
    wanted = {sha for spec in specs for sha in spec.artifacts}
    if not wanted:
        return
    known = set(FabricArtifact.objects.filter(sha256__in=wanted).values_list("sha256", flat=True))
    missing = sorted(wanted - known)
    if missing:
        raise ValidationError(f"unknown artefact(s): {', '.join(m[:12] + '…' for m in missing)}")


def _same(task: FabricTask, spec: TaskSpec) -> bool:
    return (
        task.kind == spec.kind
        and task.payload == spec.payload
        and task.requirements == (spec.requirements or {})
        and list(task.artifacts) == list(spec.artifacts)
    )


def submit_task(
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    requirements: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    submitted_by: AbstractBaseUser | None = None,
    artifacts: Iterable[str] = (),
    pull: bool = False,
    on_done: str = "",
) -> FabricTask:
    """Create a task and place it now if a node can take it, else leave it pending with the
    reason. The same `idempotency_key` again returns the first task instead of a new one (and
    is refused when the work differs). Raises ValidationError for a bad kind, payload,
    requirements or artefact."""
    spec = TaskSpec(
        kind=kind,
        payload=payload or {},
        requirements=requirements or {},
        artifacts=tuple(artifacts),
        idempotency_key=idempotency_key,
        pull=pull,
        on_done=on_done,
    )
    return submit_tasks(specs=[spec], submitted_by=submitted_by)[0]


def submit_tasks(
    *, specs: list[TaskSpec], submitted_by: AbstractBaseUser | None = None
) -> list[FabricTask]:
    """submit_task for many tasks in one transaction and one placement pass (a batch of work
    arrives faster this way); returns the tasks in the order of `specs`."""
    for spec in specs:
        _check(spec)
    _check_artifacts_exist(specs)
    keys = [s.idempotency_key for s in specs if s.idempotency_key]
    if len(keys) != len(set(keys)):
        raise ValidationError("an idempotency_key appears twice in one batch")
    user = submitted_by if submitted_by is not None and submitted_by.is_authenticated else None
    try:
        return _submit(specs, keys, user)
    except IntegrityError:
        # Another request created a task with one of these keys meanwhile: its task is ours.
        return _submit(specs, keys, user)


def _submit(
    specs: list[TaskSpec], keys: list[str], user: AbstractBaseUser | None
) -> list[FabricTask]:
    with transaction.atomic():
        existing = {
            t.idempotency_key: t for t in FabricTask.objects.filter(idempotency_key__in=keys)
        }
        new = []
        for spec in specs:
            if spec.idempotency_key in existing:
                if not _same(existing[spec.idempotency_key], spec):
                    raise ValidationError(
                        f"idempotency_key {spec.idempotency_key!r} was used for different work"
                    )
                continue
            new.append(
                FabricTask(
                    kind=spec.kind,
                    payload=spec.payload,
                    requirements=spec.requirements or {},
                    artifacts=list(spec.artifacts),
                    idempotency_key=spec.idempotency_key,
                    bundle=spec.bundle and not spec.pull,
                    pull=spec.pull,
                    on_done=spec.on_done,
                    created_by=user,
                )
            )
        if new:
            place(new, now=timezone.now(), new=True)
    made = iter(new)
    return [
        existing[s.idempotency_key] if s.idempotency_key in existing else next(made) for s in specs
    ]


def lock_scheduler() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEDULER_LOCK])


def stored_placement(placement: scheduler.Placement, now: datetime) -> dict[str, Any]:
    data = placement.to_json()
    data["at"] = now.isoformat()
    return data


def place(
    tasks: list[FabricTask],
    *,
    now: datetime,
    facts: list[scheduler.NodeFacts] | None = None,
    new: bool = False,
) -> list[Dispatch]:
    """Run the scheduler for `tasks` (pending, in this order) and dispatch the ones it places.

    Must run inside a transaction; it takes the scheduler lock. Each placed task gets a new
    attempt and a lease; the message goes out after commit. `new` tasks are not saved yet:
    they are created with their placement. Returns what will be sent."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("place() must run inside a transaction")
    lock_scheduler()
    by_id = {f.node_id: f for f in (facts if facts is not None else selectors.node_candidates())}
    lease = timedelta(seconds=lease_seconds())
    changed: list[FabricTask] = []
    placed: list[FabricTask] = []
    parsed: dict[str, scheduler.Requirements] = {}  # a batch of work shares its requirements
    for task in tasks:
        key = json.dumps(task.requirements, sort_keys=True)
        if key not in parsed:
            parsed[key] = scheduler.Requirements.from_json(task.requirements)
        requirements = parsed[key]
        placement = scheduler.filter_and_score(by_id.values(), requirements, now)
        old_reason = _reason_of(task)
        if placement.node_id is None:
            if old_reason != placement.reason:
                task.placement = stored_placement(placement, now)
                changed.append(task)
            continue
        chosen = by_id[placement.node_id]
        if task.pull:
            # The first free node of the chosen kind takes it; the claim checks that node.
            queue = protocol.pull_queue_name(gpus=requirements.gpus, node_class=chosen.node_class)
            _assign(task, node_id=None, now=now, lease=lease)
            placement.node_id = None
            placement.reason = (
                f"sent to {queue}: the first free node there that may run it takes it "
                f"(best placed now: {chosen.name})"
            )
            task.placement = {**stored_placement(placement, now), "queue": queue}
        else:
            by_id[chosen.node_id] = replace(chosen, running_tasks=chosen.running_tasks + 1)
            _assign(task, node_id=chosen.node_id, now=now, lease=lease)
            task.placement = stored_placement(placement, now)
        changed.append(task)
        placed.append(task)
    if new:
        insert_rows(tasks)
    elif changed:
        _save_placements(changed)
    if not placed:
        return []
    attempts = [_attempt_row(task, now) for task in placed]
    insert_rows(attempts)
    dispatches = _messages(placed, attempts)
    transaction.on_commit(lambda: publish(dispatches))
    return dispatches


@contextmanager
def bound_cursor() -> Iterator[Any]:
    """A cursor that sends its parameters apart from the statement (server-side binding), for
    statements that take whole columns as arrays: Django's cursors bind on the client, quoting
    and escaping every element of every array into the SQL text in Python."""
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def insert_rows(objs: list[FabricTask] | list[TaskAttempt]) -> None:
    """bulk_create for a batch of tasks or attempts in one INSERT whose columns are passed as
    arrays: a parameter per column instead of one per field and row (a 500-task batch has
    thousands), and a JSON value the batch shares (its payload, say) is encoded once. Sets each
    object's pk, in order, like bulk_create."""
    if not objs:
        return
    meta = type(objs[0])._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
    columns, casts, arrays = [], [], []
    for f in fields:
        values = [f.pre_save(obj, True) for obj in objs]  # auto_now_add and the like
        if isinstance(f, JSONField):
            seen: dict[int, str | None] = {}
            encoded = []
            for value in values:
                if id(value) not in seen:
                    seen[id(value)] = None if value is None else json.dumps(value, cls=f.encoder)
                encoded.append(seen[id(value)])
            values, cast = encoded, "text[]::jsonb[]"
        else:
            values = [f.get_db_prep_save(value, connection) for value in values]
            cast = f"{f.db_type(connection)}[]"
        columns.append(connection.ops.quote_name(f.column))
        casts.append(f"%b::{cast}")
        arrays.append(values)
    with bound_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 (our tables and columns)
            f"SELECT * FROM unnest({', '.join(casts)}) RETURNING "
            f"{connection.ops.quote_name(meta.pk.column)}",
            arrays,
        )
        # Rows come back in the order they were given (what bulk_create relies on too).
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = connection.alias


def _messages(tasks: list[FabricTask], attempts: list[TaskAttempt]) -> list[Dispatch]:
    """One message per task, except that bundle tasks for the same node go together."""
    singles: list[Dispatch] = []
    bundles: dict[int, list[tuple[FabricTask, TaskAttempt]]] = {}
    for task, row in zip(tasks, attempts, strict=True):
        if task.bundle and not task.pull:
            bundles.setdefault(task.node_id, []).append((task, row))
            continue
        singles.append(
            Dispatch(
                node_id=task.node_id,
                celery_id=protocol.celery_task_id(task.pk, task.attempts, row.token),
                kwargs=_message_of(task, row.token),
                attempts=((task.pk, task.attempts),),
                queue=(task.placement or {}).get("queue", "") if task.pull else "",
            )
        )
    for node_id, pairs in bundles.items():
        for start in range(0, len(pairs), protocol.BUNDLE_MAX):
            chunk = pairs[start : start + protocol.BUNDLE_MAX]
            singles.append(
                Dispatch(
                    node_id=node_id,
                    celery_id=f"fabric-bundle-{secrets.token_hex(8)}",
                    kwargs=protocol.bundle_message([_message_of(t, r.token) for t, r in chunk]),
                    attempts=tuple((t.pk, t.attempts) for t, _ in chunk),
                )
            )
    return singles


def _message_of(task: FabricTask, token: str) -> dict[str, Any]:
    return protocol.message(
        task_id=task.pk,
        attempt=task.attempts,
        token=token,
        kind=task.kind,
        payload=task.payload,
        artifacts=task.artifacts,
        pull=task.pull and task.node_id is None,
    )


def _reason_of(task: FabricTask) -> str | None:
    if "placement" in task.get_deferred_fields():
        return getattr(task, "placement_reason", None)
    return (task.placement or {}).get("reason")


def _save_placements(tasks: list[FabricTask]) -> None:
    """One UPDATE for the whole pass, its rows passed as arrays (a statement per task, or
    Django's bulk_update with its CASE per field and object, costs more)."""
    with bound_cursor() as cursor:
        cursor.execute(
            f"UPDATE {FabricTask._meta.db_table} AS t SET state = v.state, "  # noqa: S608 (our table)
            "node_id = v.node_id, attempts = v.attempts, placement = v.placement, "
            "placed_at = v.placed_at, started_at = v.started_at, "
            "lease_expires_at = v.lease_expires_at "
            "FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::int[], %b::text[]::jsonb[], "
            "%b::timestamptz[], %b::timestamptz[], %b::timestamptz[]) "
            "AS v(id, state, node_id, attempts, placement, placed_at, started_at, "
            "lease_expires_at) WHERE t.id = v.id",
            [
                [t.pk for t in tasks],
                [str(t.state) for t in tasks],
                [t.node_id for t in tasks],
                [t.attempts for t in tasks],
                [_placement_json(t.placement) for t in tasks],
                [t.placed_at for t in tasks],
                [t.started_at for t in tasks],
                [t.lease_expires_at for t in tasks],
            ],
        )


def _placement_json(placement: dict[str, Any]) -> str:
    return json.dumps(placement, separators=(",", ":"))


def _assign(task: FabricTask, *, node_id: int | None, now: datetime, lease: timedelta) -> None:
    task.state = FabricTaskState.PLACED
    task.node_id = node_id
    task.attempts += 1
    task.placed_at = now
    task.started_at = None
    task.lease_expires_at = now + lease


def _attempt_row(task: FabricTask, now: datetime) -> TaskAttempt:
    return TaskAttempt(
        task=task,
        number=task.attempts,
        token=secrets.token_hex(8),
        node_id=task.node_id,
        dispatched_at=now,
    )


def dispatch_to(*, task: FabricTask, node: ComputeNode, reason: str, now: datetime) -> Dispatch:
    """Send `task` to `node` without asking the scheduler (the sweeper's consumption probes:
    the point is to test that very node). Inside a transaction."""
    lock_scheduler()
    _assign(task, node_id=node.pk, now=now, lease=timedelta(seconds=lease_seconds()))
    task.placement = {"node_id": node.pk, "reason": reason, "at": now.isoformat()}
    task.save()
    row = _attempt_row(task, now)
    row.save()
    [dispatch] = _messages([task], [row])
    transaction.on_commit(lambda: publish([dispatch]))
    return dispatch


def probe_node(
    *, node: ComputeNode, submitted_by: AbstractBaseUser | None = None, seconds: float = 0
) -> FabricTask:
    """A probe sent to this very node, whatever the scheduler would choose: an admin's end-to-
    end check of a new machine. Raises NodeConflict when the node can't take work at all."""
    node.refresh_from_db()
    if node.state != NodeState.ONLINE or not node.is_approved:
        raise NodeConflict(f"{node.name} is {node.get_state_display().lower()}: it takes no work.")
    if not node.worker_ready:
        raise NodeConflict(f"{node.name}'s agent runs no worker yet; start `orchcap-agent run`.")
    user = submitted_by if submitted_by is not None and submitted_by.is_authenticated else None
    now = timezone.now()
    with transaction.atomic():
        task = FabricTask.objects.create(
            kind="probe", payload={"seconds": seconds}, created_by=user
        )
        who = f" by {user.get_username()}" if user is not None else ""
        dispatch_to(task=task, node=node, now=now, reason=f"probe of {node.name} sent{who}")
    return task


def place_pending(*, now: datetime | None = None, limit: int = PENDING_BATCH) -> int:
    """Place pending tasks, oldest first, while some node has a free slot; returns how many were
    placed. Tasks that still fit nowhere get their reason refreshed."""
    now = now or timezone.now()
    with transaction.atomic():
        # Looked for under the lock: a placement pass in flight (a submission) may not have seen
        # the slots our caller just freed, and the tasks it leaves pending are only visible once
        # it commits, which is when we get the lock. Checked before it, they could be missed.
        lock_scheduler()
        if not FabricTask.objects.filter(state=FabricTaskState.PENDING).exists():
            return 0
        facts = selectors.node_candidates()
        free = sum(
            max(0, f.max_tasks - f.running_tasks)
            for f in facts
            if f.state == "online" and f.approved and f.worker_ready and f.consuming
        )
        # Placements stay in the database (only their reason is read): a queue is read often.
        pending = (
            FabricTask.objects.filter(state=FabricTaskState.PENDING)
            .defer("placement", "result")
            .annotate(placement_reason=KT("placement__reason"))
            .order_by("pk")  # submission order (ids only grow); the partial index serves it
        )
        if free == 0:
            # Nothing can start anywhere: keep the reasons from the last pass (cheap when a
            # long queue waits for a full fleet), unless that pass is old.
            stale = (now - timedelta(seconds=60)).isoformat()
            tasks = list(pending.filter(placement__at__lt=stale)[: min(limit, 50)])
        else:
            # Enough to fill the free slots even if some tasks fit none of them.
            tasks = list(pending[: min(limit, free + 10)])
        placed = place(tasks, now=now, facts=facts) if tasks else []
    return len(placed)


# --- publishing -------------------------------------------------------------------------------


def publish(dispatches: list[Dispatch]) -> None:
    """Send each message to its node's durable queue. On a broker failure the tasks not sent go
    back to pending, with the reason, instead of waiting out a lease."""
    if not dispatches:
        return
    from kombu import Connection
    from kombu.pools import producers

    from orchcap.celery import app

    sent = 0
    try:
        with producers[Connection(settings.ORCHCAP_NODE_BROKER_URL)].acquire(
            block=True, timeout=10
        ) as producer:
            for dispatch in dispatches:
                queue = protocol.queue(dispatch.queue or protocol.node_queue_name(dispatch.node_id))
                app.send_task(
                    protocol.RUN_TASK,
                    kwargs=dispatch.kwargs,
                    task_id=dispatch.celery_id,
                    queue=queue,
                    producer=producer,
                    # Celery would repr() the payload for its logs; nodes' payloads can be big.
                    argsrepr="()",
                    kwargsrepr=f"{{attempts: {list(dispatch.attempts)[:5]}}}",
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.3},
                )
                sent += 1
    except Exception as exc:  # kombu's errors vary by transport; any of them means "not sent"
        log.warning("fabric: could not publish %d message(s): %s", len(dispatches) - sent, exc)
        unsent = [ref for d in dispatches[sent:] for ref in d.attempts]
        unsent_back_to_pending(unsent, reason=f"the broker could not be reached: {exc}")


def unsent_back_to_pending(attempts: list[tuple[int, int]], *, reason: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        for task_id, attempt in attempts:
            updated = FabricTask.objects.filter(
                pk=task_id, attempts=attempt, state=FabricTaskState.PLACED
            ).update(
                state=FabricTaskState.PENDING,
                node=None,
                lease_expires_at=None,
                placement={"reason": f"waiting: {reason}"[:500], "at": now.isoformat()},
            )
            if updated:
                TaskAttempt.objects.filter(task_id=task_id, number=attempt).update(
                    state=AttemptState.LOST, finished_at=now, note=f"not sent: {reason}"[:300]
                )
