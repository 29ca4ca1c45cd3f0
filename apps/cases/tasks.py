from celery import Task, shared_task

EMBED_CHUNK = 500


# Cases a foreground transaction holds are skipped (see services.similarity.embed_cases) and tried
# again a little later, a few times; what is still left goes to the periodic catch-up below.
BUSY_RETRY_SECONDS = 2


@shared_task(
    bind=True, acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5
)
def embed_cases(self: Task, case_ids: list[int]) -> int:
    from apps.cases.services.similarity import embed_cases as embed

    result = embed(case_ids=case_ids)
    if result.busy and self.request.retries < self.max_retries:
        raise self.retry(
            args=[result.busy], countdown=BUSY_RETRY_SECONDS * (self.request.retries + 1)
        )
    return result.embedded


def enqueue_embedding(case_ids: list[int]) -> None:
    """Embed new cases in the background, in chunks (called after the intake commits)."""
    for start in range(0, len(case_ids), EMBED_CHUNK):
        embed_cases.delay(case_ids[start : start + EMBED_CHUNK])


# No autoretry: a failed import is recorded on the job with its reasons and wrote nothing; the
# uploader fixes the file or the mapping and starts it again.
@shared_task(acks_late=True)
def run_import_job(job_id: int) -> None:
    """Import an uploaded file in the background (see services.upload.run_import)."""
    from apps.cases.models import ImportJob
    from apps.cases.services.upload import run_import

    job = ImportJob.objects.filter(pk=job_id).select_related("process__schema").first()
    if job is not None:  # discarded meanwhile
        run_import(job=job)


@shared_task(acks_late=True)
def embed_missing_cases(limit: int = 5000) -> int:
    """Periodic catch-up: embed cases whose embedding task never ran (e.g. the broker was down)."""
    from apps.cases.models import Case

    ids = list(
        Case.objects.filter(embedding__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    enqueue_embedding(ids)
    return len(ids)


@shared_task(acks_late=True)
def discard_abandoned_uploads(hours: int = 24) -> int:
    """Uploads never confirmed (still waiting for their mapping) go, with their files, after a day."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.cases.models import ImportJob
    from apps.cases.services.upload import awaiting_mapping, discard_upload

    cutoff = timezone.now() - timedelta(hours=hours)
    stale = ImportJob.objects.filter(state=ImportJob.State.PENDING, created_at__lt=cutoff)
    discarded = 0
    for job in stale:
        if awaiting_mapping(job):
            discard_upload(job=job)
            discarded += 1
    return discarded
