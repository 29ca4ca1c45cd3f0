"""Background jobs as a transactional outbox.

A job row (training, import, any later kind) is the record that work is owed; the Celery message is
only a nudge. Each app registers its job kind from its AppConfig.ready() (core imports no upper
app). The rules every kind follows:

- A service that makes a job ready calls `enqueue()` in the same transaction: the row records
  when it was sent (`enqueued_at`, `dispatch_attempts`) and the task is published on commit. A
  broker error then is logged, never raised: the request succeeds and the job stays queued.
- The task claims the job with a conditional UPDATE (… WHERE state = queued), so a message sent
  twice (a re-send after all, a redelivery) runs the job once.
- The sweeper (`sweep()`, a beat task every ORCHCAP_JOB_SWEEP_SECONDS) sends again every queued job
  not picked up within ORCHCAP_JOB_PICKUP_SECONDS, and deals with claimed jobs silent for
  ORCHCAP_JOB_STALE_SECONDS (their worker died): sent again when the kind may redo them (up to
  ORCHCAP_JOB_MAX_LOST_RUNS times), else failed with the reason.
- A stale job never blocks a new one: `release_stale()` fails it, with the reason, for a service
  that refuses a second active job (the 409 "already training").
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

log = logging.getLogger(__name__)
SWEEP_BATCH = 500


@dataclass(frozen=True)
class JobKind:
    """How the outbox finds, sends and fails one kind of job (a model built on core's OutboxJob)."""

    name: str
    model: type[models.Model]
    # Publishes the job's task (called after commit with the job's id); may raise on a broker error.
    send: Callable[[int], object]
    queued: Q  # jobs waiting for a worker
    queued_state: str
    running: Q  # jobs a worker claimed
    # Marks the given jobs failed with the reason (a conditional update); returns how many.
    fail: Callable[[QuerySet, str], int]
    # Narrows which silent running jobs are stale (e.g. not while the compute fabric has them).
    running_stale: Q = field(default_factory=Q)
    # Whether a job whose worker died may simply run again (its writes commit all at once).
    redo_lost_runs: bool = False
    created_field: str = "created_at"


_kinds: dict[str, JobKind] = {}


def register_job_kind(kind: JobKind) -> None:
    _kinds[kind.name] = kind


def job_kind(name: str) -> JobKind:
    return _kinds[name]


def job_kinds() -> list[JobKind]:
    return list(_kinds.values())


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=getattr(settings, name))


def _publish(kind: JobKind, ids: list[int]) -> None:
    for index, pk in enumerate(ids):
        try:
            kind.send(pk)
        except Exception as exc:
            # The rows say they are owed; the sweeper sends them once the broker answers. The rest
            # of the batch would only wait for the same dead broker.
            log.warning(
                "%s job %s not sent (%s: %s); %d job(s) left for the sweeper",
                kind.name,
                pk,
                type(exc).__name__,
                exc,
                len(ids) - index,
            )
            return


def enqueue(*, kind: str, job_id: int) -> None:
    """Record job `job_id` of `kind` as sent now and publish its task once the surrounding
    transaction commits. Never raises on a broker error (the sweeper sends the job later)."""
    job = job_kind(kind)
    job.model.objects.filter(pk=job_id).update(
        enqueued_at=timezone.now(), dispatch_attempts=F("dispatch_attempts") + 1
    )
    transaction.on_commit(lambda: _publish(job, [job_id]))


def _silent(kind: JobKind, now: datetime) -> Q:
    cutoff = now - _seconds("ORCHCAP_JOB_STALE_SECONDS")
    return (
        kind.running
        & kind.running_stale
        & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff))
    )


def _never_picked_up(kind: JobKind, now: datetime) -> Q:
    cutoff = now - _seconds("ORCHCAP_JOB_STALE_SECONDS")
    return kind.queued & Q(**{f"{kind.created_field}__lt": cutoff})


def _reasons() -> tuple[str, str]:
    seconds = settings.ORCHCAP_JOB_STALE_SECONDS
    return (
        f"no worker picked it up in {seconds} s; superseded by a new request",
        f"its worker stopped: no sign of life for {seconds} s",
    )


def release_stale(*, kind: str, job_id: int, now: datetime | None = None) -> str | None:
    """Fail job `job_id` if it is stale: queued longer than ORCHCAP_JOB_STALE_SECONDS, or claimed
    and silent that long. Returns the reason it was failed, None when it is alive (still blocks)."""
    job = job_kind(kind)
    now = now or timezone.now()
    never_picked, worker_stopped = _reasons()
    rows = job.model.objects.filter(pk=job_id)
    if job.fail(rows.filter(_never_picked_up(job, now)), never_picked):
        return never_picked
    if job.fail(rows.filter(_silent(job, now)), worker_stopped):
        return worker_stopped
    return None


def _resend_queued(kind: JobKind, now: datetime) -> int:
    cutoff = now - _seconds("ORCHCAP_JOB_PICKUP_SECONDS")
    with transaction.atomic():
        # Locked and skipped: two sweepers at once send each job once.
        ids = list(
            kind.model.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(kind.queued & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=cutoff)))
            .order_by("pk")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        if ids:
            kind.model.objects.filter(pk__in=ids).update(
                enqueued_at=now, dispatch_attempts=F("dispatch_attempts") + 1
            )
            transaction.on_commit(lambda: _publish(kind, ids))
    return len(ids)


def _recover_running(kind: JobKind, now: datetime) -> int:
    """Lost runs: redone (queued again and sent) or failed. Returns the jobs sent again."""
    _, worker_stopped = _reasons()
    silent = kind.model.objects.filter(_silent(kind, now))
    if not kind.redo_lost_runs:
        if failed := kind.fail(silent, worker_stopped):
            log.warning("%s: %d job(s) failed: %s", kind.name, failed, worker_stopped)
        return 0
    limit = settings.ORCHCAP_JOB_MAX_LOST_RUNS
    given_up = kind.fail(
        silent.filter(lost_runs__gte=limit), f"{worker_stopped}, {limit + 1} times; not sent again"
    )
    if given_up:
        log.warning("%s: %d job(s) lost with their worker too often, failed", kind.name, given_up)
    with transaction.atomic():
        ids = list(
            silent.filter(lost_runs__lt=limit)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        if ids:
            # A new dispatch_attempts fences the lost run: if it still lives, its last write
            # (conditional on the attempt it claimed) finds the job taken over and rolls back.
            kind.model.objects.filter(pk__in=ids).filter(kind.running).update(
                state=kind.queued_state,
                enqueued_at=now,
                dispatch_attempts=F("dispatch_attempts") + 1,
                lost_runs=F("lost_runs") + 1,
                heartbeat_at=None,
            )
            log.warning("%s: %d job(s) lost with their worker, sent again", kind.name, len(ids))
            transaction.on_commit(lambda: _publish(kind, ids))
    return len(ids)


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Send again what no worker picked up in time, recover or fail runs lost with their worker.
    Returns {kind: jobs sent} for the kinds that sent any."""
    now = now or timezone.now()
    sent: dict[str, int] = {}
    for kind in job_kinds():
        count = _recover_running(kind, now) + _resend_queued(kind, now)
        if count:
            sent[kind.name] = count
    return sent
