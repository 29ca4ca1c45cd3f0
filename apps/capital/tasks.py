from celery import shared_task

from apps.capital import snapshots


@shared_task(acks_late=True)
def refresh_capital_snapshots() -> dict[str, int]:
    """Beat: today's provisional capital snapshots of every team, yesterday's made final, and
    every team's roadmap phase entries brought up to date."""
    return snapshots.refresh_recent()
