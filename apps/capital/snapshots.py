"""Daily capital snapshots: one row per team and day (process null) and per process and day.

A day is [00:00, 24:00) in the project's time zone. Flows are measured over the day, states at
its end (at `now` for today, so today's row is provisional and is rewritten by the next run).
`take_snapshot` replaces the day's rows in place (INSERT … ON CONFLICT UPDATE), so running a day
again gives the same rows: the same ids and, unless something was recorded since, the same
figures. The backfill walks the days from the team's first recorded event.
"""

import logging
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

from apps.capital.metrics import Measurement, ProcessHistory, measure, process_history
from apps.capital.models import MetricSnapshot
from apps.people.models import Team

log = logging.getLogger(__name__)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def today() -> date:
    return timezone.localdate()


def measure_day(
    *,
    team: Team,
    day: date,
    now: datetime | None = None,
    history: dict[int, ProcessHistory] | None = None,
) -> Measurement:
    now = now or timezone.now()
    start, end = day_bounds(day)
    end = min(end, now)
    if end <= start:
        raise ValueError(f"{day} has not started yet")
    return measure(team_id=team.pk, start=start, end=end, history=history)


@transaction.atomic
def take_snapshot(
    *,
    team: Team,
    day: date,
    now: datetime | None = None,
    history: dict[int, ProcessHistory] | None = None,
) -> int:
    """Measure `team` on `day` and write its rows (team and each process); returns how many.

    Precondition: `day` is today or earlier. Idempotent: rows are keyed (team, process, day).
    `history` (metrics.process_history, read once) saves a pass per day in a backfill.
    """
    now = now or timezone.now()
    measurement = measure_day(team=team, day=day, now=now, history=history)
    rows = [
        MetricSnapshot(
            team=team,
            process_id=process_id,
            day=day,
            figures={key: raw.as_json() for key, raw in sorted(figures.items())},
            computed_at=now,
        )
        for process_id, figures in measurement.items()
    ]
    MetricSnapshot.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["team", "process", "day"],
        update_fields=["figures", "computed_at"],
    )
    return len(rows)


def first_day(*, team: Team) -> date | None:
    """The day of the team's first recorded event: a process, case, decision or node."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT LEAST(
                (SELECT MIN(p.created_at) FROM cases_process p WHERE p.team_id = %(team)s),
                (SELECT MIN(c.created_at) FROM cases_case c
                 JOIN cases_process p ON p.id = c.process_id WHERE p.team_id = %(team)s),
                (SELECT MIN(d.decided_at) FROM cases_decision d
                 JOIN cases_case c ON c.id = d.case_id
                 JOIN cases_process p ON p.id = c.process_id WHERE p.team_id = %(team)s),
                (SELECT MIN(n.created_at) FROM fabric_computenode n WHERE n.team_id = %(team)s)
            )
            """,
            {"team": team.pk},
        )
        (first,) = cursor.fetchone()
    if first is None:
        return None
    return timezone.localtime(first).date()


def backfill(
    *, team: Team, since: date | None = None, until: date | None = None, max_days: int = 400
) -> int:
    """Snapshots for each day from `since` (default: the team's first recorded event, at most
    `max_days` back) to `until` (default today); returns the number of days written."""
    until = until or today()
    if since is None:
        since = first_day(team=team)
        if since is None:
            return 0
    since = max(since, until - timedelta(days=max_days - 1))
    days = 0
    day = since
    history = process_history(team_id=team.pk)
    while day <= until:
        take_snapshot(team=team, day=day, history=history)
        day += timedelta(days=1)
        days += 1
    return days


def snapshot_all(*, day: date | None = None) -> dict[str, int]:
    """Today's (or `day`'s) snapshot of every team; {team slug: rows}. A team that fails is
    logged and the others still get theirs."""
    day = day or today()
    written: dict[str, int] = {}
    for team in Team.objects.order_by("pk"):
        try:
            written[team.slug] = take_snapshot(team=team, day=day)
        except Exception:
            log.exception("capital snapshot of team %s on %s failed", team.slug, day)
    return written


def refresh_recent() -> dict[str, int]:
    """What beat runs: today's provisional rows, and yesterday's made final for the teams whose
    row of yesterday was taken before yesterday ended (or not at all); then every team's roadmap
    phase entries and frozen battle estimates are brought up to date (the roadmap pages and API
    only read them). Returns {team slug: snapshot rows written}."""
    yesterday = today() - timedelta(days=1)
    _, yesterday_end = day_bounds(yesterday)
    final = set(
        MetricSnapshot.objects.filter(
            day=yesterday, process__isnull=True, computed_at__gte=yesterday_end
        ).values_list("team_id", flat=True)
    )
    written: dict[str, int] = {}
    for team in Team.objects.exclude(pk__in=final).order_by("pk"):
        try:
            written[team.slug] = take_snapshot(team=team, day=yesterday)
        except Exception:
            log.exception("capital snapshot of team %s on %s failed", team.slug, yesterday)
    for slug, count in snapshot_all(day=today()).items():
        written[slug] = written.get(slug, 0) + count
    from apps.capital.services_roadmap import advance_roadmaps  # it reads the metrics too

    advance_roadmaps()
    return written
