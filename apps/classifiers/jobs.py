"""Training jobs in the job outbox (apps/core/outbox.py): how they are sent, found and failed."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.classifiers.models import TRAINING_KIND, TrainingJob
from apps.core.outbox import JobKind


def _send(job_id: int) -> object:
    from apps.classifiers.tasks import train_model

    return train_model.delay(job_id)


def _fail(jobs: QuerySet, reason: str) -> int:
    return jobs.update(
        state=TrainingJob.State.FAILED, error=reason, stage="failed", finished_at=timezone.now()
    )


TRAINING_JOBS = JobKind(
    name=TRAINING_KIND,
    model=TrainingJob,
    send=_send,
    queued=Q(state=TrainingJob.State.QUEUED),
    queued_state=TrainingJob.State.QUEUED,
    running=Q(state=TrainingJob.State.RUNNING),
    fail=_fail,
    # A job out on the compute fabric is the fabric's to watch (its sweeper re-runs a lost
    # node's work; a failed task fails the job). Stale here: the worker died before sending it,
    # or the fabric task was handled and the job was never filed.
    running_stale=Q(fabric_task__isnull=True) | Q(fabric_task__handled_at__isnull=False),
)
