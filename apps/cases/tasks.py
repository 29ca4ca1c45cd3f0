from celery import shared_task

EMBED_CHUNK = 500


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def embed_cases(case_ids: list[int]) -> int:
    from apps.cases.services.similarity import embed_cases as embed

    return embed(case_ids=case_ids)


def enqueue_embedding(case_ids: list[int]) -> None:
    """Embed new cases in the background, in chunks (called after the intake commits)."""
    for start in range(0, len(case_ids), EMBED_CHUNK):
        embed_cases.delay(case_ids[start : start + EMBED_CHUNK])
