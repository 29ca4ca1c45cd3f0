"""Results from nodes: recorded once, only for the current attempt, only from its node.

A result can arrive twice (the agent retried a POST whose answer it lost, a message was
redelivered) or late (the task was moved to another node after this one went silent). Each task
row is locked while its result is written, the result must name the task's current attempt and
come from the node that attempt was sent to, and the database allows one `done` attempt per
task; so whatever arrives, a task completes at most once.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.fabric.models import (
    OPEN_TASK_STATES,
    AttemptState,
    ComputeNode,
    FabricTask,
    FabricTaskState,
    TaskAttempt,
)
from apps.fabric.services import completion, dispatch
from apps.fabric.services.consumption import mark_consuming

MAX_ERROR_CHARS = 4000
LAST_TASK_AT_STEP = timedelta(seconds=1)


@dataclass(frozen=True)
class ResultIn:
    task_id: int
    attempt: int
    token: str
    ok: bool
    result: Any = None
    error: str = ""
    duration_seconds: float | None = None


@dataclass(frozen=True)
class ResultOutcome:
    task_id: int
    recorded: bool
    reason: str


def record_results(
    *, node: ComputeNode, results: list[ResultIn], now: datetime | None = None
) -> list[ResultOutcome]:
    """Record what `node` reports for its attempts; returns, per result, whether it was recorded
    or why it was ignored (unknown task, not this node's, an old attempt, already recorded).
    Then fills the slots it freed with pending work."""
    now = now or timezone.now()
    outcomes: list[ResultOutcome] = []
    recorded = 0
    with transaction.atomic():
        ids = sorted({r.task_id for r in results})
        # Locked in id order: two batches touching the same tasks can't deadlock. Read as plain
        # rows: a node reports hundreds of results a second.
        locked = (
            FabricTask.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "node_id", "attempts", "state", "started_at", "on_done")
        )
        tasks = {row[0]: _Task(*row) for row in locked}
        # Not locked themselves: whoever changes an attempt locks its task first (or, for a
        # heartbeat, only moves it from dispatched to running, which this overwrites).
        attempts = {
            (row[1], row[2]): _Attempt(*row)
            for row in TaskAttempt.objects.filter(task_id__in=ids, node=node).values_list(
                "pk", "task_id", "number", "token", "state", "note"
            )
        }
        changed_tasks: list[_Task] = []
        changed_attempts: dict[int, _Attempt] = {}
        for item in results:
            task = tasks.get(item.task_id)
            attempt = attempts.get((item.task_id, item.attempt))
            reason = _refusal(task, attempt, item, node)
            if reason:
                outcomes.append(ResultOutcome(item.task_id, False, reason))
                late = attempt is not None and attempt.token == item.token
                if (
                    late
                    and attempt.state == AttemptState.LOST
                    and "late result" not in attempt.note
                ):
                    attempt.note = f"{attempt.note}; late result ignored"[:300]
                    changed_attempts[attempt.pk] = attempt
                continue
            _apply(task, attempt, item, now)
            changed_tasks.append(task)
            if attempt is not None:
                changed_attempts[attempt.pk] = attempt
            outcomes.append(ResultOutcome(item.task_id, True, "recorded"))
            recorded += 1
        _save(changed_tasks, list(changed_attempts.values()))
        # Finished work whose result a domain acts on: its handler runs after commit.
        completion.handle_soon([t.pk for t in changed_tasks if t.on_done])
    if recorded:
        # After the task rows are released: a heartbeat locks the node's row, then its tasks'.
        # Coarse on purpose: "ran nothing for a while" is all it is read for, and a node
        # reporting many times a second needn't rewrite its row each time.
        if node.last_task_at is None or now - node.last_task_at >= LAST_TASK_AT_STEP:
            ComputeNode.objects.filter(pk=node.pk).update(last_task_at=now)
            node.last_task_at = now
        if node.not_consuming_since is not None:
            mark_consuming(node=node, now=now, why="it returned results")
        dispatch.place_pending(now=now)
    return outcomes


@dataclass(slots=True)
class _Task:
    pk: int
    node_id: int | None
    attempts: int
    state: str
    started_at: datetime | None
    on_done: str
    result_json: str | None = None
    error: str = ""
    finished_at: datetime | None = None


@dataclass(slots=True)
class _Attempt:
    pk: int
    task_id: int
    number: int
    token: str
    state: str
    note: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None


def _refusal(
    task: _Task | None, attempt: _Attempt | None, item: ResultIn, node: ComputeNode
) -> str:
    if task is None:
        return "unknown task"
    if attempt is None or attempt.token != item.token:
        return "unknown attempt: this node was not sent that work"
    if task.node_id != node.pk and task.attempts == item.attempt:
        return "this task's current attempt was sent to another node"
    if task.attempts != item.attempt:
        return f"attempt {item.attempt} is not the current one ({task.attempts}); ignored"
    if task.state not in OPEN_TASK_STATES:
        return f"already {task.state}; recorded once only"
    return ""


def _apply(task: _Task, attempt: _Attempt | None, item: ResultIn, now: datetime) -> None:
    duration = None
    if item.duration_seconds is not None and item.duration_seconds >= 0:
        duration = float(item.duration_seconds)
    # The node's clock may be off; its measured duration is not. Start = received - duration.
    started = now - timedelta(seconds=duration) if duration is not None else task.started_at
    if task.started_at is not None and started is not None:
        started = min(started, task.started_at)
    ok, value, error = item.ok, item.result, (item.error or "")[:MAX_ERROR_CHARS]
    encoded = json.dumps(value, default=str) if ok and value is not None else None
    if encoded is not None and len(encoded) > settings.ORCHCAP_FABRIC_RESULT_MAX_BYTES:
        ok, encoded = False, None
        error = f"the result is larger than {settings.ORCHCAP_FABRIC_RESULT_MAX_BYTES} bytes"
    task.result_json = encoded  # serialised once: checked above, written by _save
    task.state = FabricTaskState.DONE if ok else FabricTaskState.FAILED
    task.error = "" if ok else (error or "failed without a message")
    task.finished_at = now
    task.started_at = started or now
    if attempt is not None:
        attempt.state = AttemptState.DONE if ok else AttemptState.FAILED
        attempt.started_at = task.started_at
        attempt.finished_at = now
        attempt.duration_seconds = duration
        attempt.note = "" if ok else task.error[:300]


def _save(tasks: list[_Task], attempts: list[_Attempt]) -> None:
    """One UPDATE per table for the whole batch, its rows passed as arrays (one statement per
    row, or Django's bulk_update with its CASE per field and row, cost more)."""
    with dispatch.bound_cursor() as cursor:
        if tasks:
            cursor.execute(
                f"UPDATE {FabricTask._meta.db_table} AS t SET state = v.state, "  # noqa: S608 (our table)
                "result = v.result, error = v.error, finished_at = v.finished_at, "
                "started_at = v.started_at, lease_expires_at = NULL "
                "FROM unnest(%b::bigint[], %b::text[], %b::text[]::jsonb[], %b::text[], "
                "%b::timestamptz[], %b::timestamptz[]) "
                "AS v(id, state, result, error, finished_at, started_at) WHERE t.id = v.id",
                [
                    [t.pk for t in tasks],
                    [str(t.state) for t in tasks],
                    [t.result_json for t in tasks],
                    [t.error for t in tasks],
                    [t.finished_at for t in tasks],
                    [t.started_at for t in tasks],
                ],
            )
        if attempts:
            cursor.execute(
                f"UPDATE {TaskAttempt._meta.db_table} AS a SET state = v.state, "  # noqa: S608 (our table)
                "started_at = COALESCE(v.started_at, a.started_at), "
                "finished_at = COALESCE(v.finished_at, a.finished_at), "
                "duration_seconds = CASE WHEN v.finished_at IS NULL THEN a.duration_seconds "
                "ELSE v.duration END, note = v.note "
                "FROM unnest(%b::bigint[], %b::text[], %b::timestamptz[], %b::timestamptz[], "
                "%b::float8[], %b::text[]) "
                "AS v(id, state, started_at, finished_at, duration, note) WHERE a.id = v.id",
                [
                    [a.pk for a in attempts],
                    [str(a.state) for a in attempts],
                    [a.started_at for a in attempts],
                    [a.finished_at for a in attempts],
                    [a.duration_seconds for a in attempts],
                    [a.note for a in attempts],
                ],
            )
