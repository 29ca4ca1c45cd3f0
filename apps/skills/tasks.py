"""Celery: the periodic recompute of everyone's evidence and levels (CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from apps.skills import services


@shared_task(acks_late=True)
def refresh_skills() -> int:
    """Measure every evidence rule for every team member; returns the level changes made."""
    return sum(r.granted + r.lost for r in services.refresh_everyone())
