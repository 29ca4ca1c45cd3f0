"""Background imports in the job outbox (apps/core/outbox.py): how they are sent, found and
failed."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.cases.models import IMPORT_KIND, ImportJob
from apps.core.outbox import JobKind


def _send(job_id: int) -> object:
    from apps.cases.tasks import run_import_job

    return run_import_job.delay(job_id)


def _fail(jobs: QuerySet, reason: str) -> int:
    error = {"line": None, "column": "", "field": "", "message": f"Nothing was written: {reason}."}
    return jobs.update(
        state=ImportJob.State.FAILED,
        processed_rows=0,
        created_cases=0,
        errors=[error],
        finished_at=timezone.now(),
    )


IMPORT_JOBS = JobKind(
    name=IMPORT_KIND,
    model=ImportJob,
    send=_send,
    # Pending without a mapping is an upload still waiting for its uploader, not for a worker.
    queued=Q(state=ImportJob.State.PENDING) & ~Q(mapping={}),
    queued_state=ImportJob.State.PENDING,
    running=Q(state=ImportJob.State.RUNNING),
    fail=_fail,
    # An import writes every case in one transaction together with "done": a lost run wrote
    # nothing, so it simply runs again.
    redo_lost_runs=True,
)
