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
from django.db import connection, transaction
from django.utils import timezone

from apps.fabric.models import (
    OPEN_TASK_STATES,
    AttemptState,
    ComputeNode,
    FabricTask,
    FabricTaskState,
    TaskAttempt,
)
from apps.fabric.services import dispatch
from apps.fabric.services.consumption import mark_consuming

MAX_ERROR_CHARS = 4000


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
        # Locked in id order: two batches touching the same tasks can't deadlock.
        locked = (
            FabricTask.objects.select_for_update()
            .filter(pk__in=ids)
            .only("pk", "node_id", "attempts", "state", "started_at")
            .order_by("pk")
        )
        tasks = {t.pk: t for t in locked}
        attempts = {
            (a.task_id, a.number): a
            for a in TaskAttempt.objects.filter(task_id__in=ids, node=node).select_for_update()
        }
        changed_tasks, changed_attempts = [], []
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
                    changed_attempts.append(attempt)
                continue
            _apply(task, attempt, item, now)
            changed_tasks.append(task)
            if attempt is not None:
                changed_attempts.append(attempt)
            outcomes.append(ResultOutcome(item.task_id, True, "recorded"))
            recorded += 1
        _save(changed_tasks, changed_attempts)
        if recorded:
            ComputeNode.objects.filter(pk=node.pk).update(last_task_at=now)
            if node.not_consuming_since is not None:
                mark_consuming(node=node, now=now, why="it returned results")
    if recorded:
        dispatch.place_pending(now=now)
    return outcomes


def _refusal(
    task: FabricTask | None, attempt: TaskAttempt | None, item: ResultIn, node: ComputeNode
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


def _apply(task: FabricTask, attempt: TaskAttempt | None, item: ResultIn, now: datetime) -> None:
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
        ok, value, encoded = False, None, None
        error = f"the result is larger than {settings.ORCHCAP_FABRIC_RESULT_MAX_BYTES} bytes"
    task.result_json = encoded  # serialised once: checked above, written by _save
    task.state = FabricTaskState.DONE if ok else FabricTaskState.FAILED
    task.result = value if ok else None
    task.error = "" if ok else (error or "failed without a message")
    task.finished_at = now
    task.started_at = started or now
    task.lease_expires_at = None
    if attempt is not None:
        attempt.state = AttemptState.DONE if ok else AttemptState.FAILED
        attempt.started_at = task.started_at
        attempt.finished_at = now
        attempt.duration_seconds = duration
        attempt.note = "" if ok else task.error[:300]


def _save(tasks: list[FabricTask], attempts: list[TaskAttempt]) -> None:
    """Pipelined UPDATEs, one per row (cheaper than bulk_update's CASE expressions)."""
    with connection.cursor() as cursor:
        if tasks:
            cursor.executemany(
                f"UPDATE {FabricTask._meta.db_table} SET state = %s, "  # noqa: S608 (our table)
                "result = %s::jsonb, error = %s, finished_at = %s, started_at = %s, "
                "lease_expires_at = %s WHERE id = %s",
                [
                    (t.state, getattr(t, "result_json", None), t.error,
                     t.finished_at, t.started_at, t.lease_expires_at, t.pk)
                    for t in tasks
                ],
            )  # fmt: skip
        if attempts:
            cursor.executemany(
                f"UPDATE {TaskAttempt._meta.db_table} SET state = %s, "  # noqa: S608 (our table)
                "started_at = %s, finished_at = %s, duration_seconds = %s, note = %s "
                "WHERE id = %s",
                [
                    (a.state, a.started_at, a.finished_at, a.duration_seconds, a.note, a.pk)
                    for a in attempts
                ],
            )
