"""Reading the capital metrics: who may, periods, baselines, and the figures of a period from the
daily snapshots (the dashboard, CSV) or measured live (the API)."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from apps.capital.metrics import Raw, measure
from apps.capital.metrics_definitions import (
    BASELINE_DAYS,
    DEFINITIONS,
    Definition,
    Family,
    Kind,
)
from apps.capital.models import BaselineOverride, MetricSnapshot, MoneyRate
from apps.capital.snapshots import day_bounds, today
from apps.people.models import TEAM_MANAGER_ROLES, Team
from apps.people.selectors import is_org_admin, roles_of, team_for_member

AnyUser = AbstractBaseUser | AnonymousUser
DEFAULT_DAYS = 28
MAX_DAYS = 366


def can_view_capital(*, user: AnyUser, team: Team) -> bool:
    """The team's managers and admins, and organisation admins."""
    return is_org_admin(user=user) or bool(roles_of(user=user, team=team) & TEAM_MANAGER_ROLES)


def capital_team(*, user: AnyUser, slug: str) -> Team:
    """The team `slug` for someone who may read its capital: Http404 for outsiders (they learn
    nothing), PermissionDenied for its other members."""
    team = team_for_member(user=user, slug=slug)
    if not can_view_capital(user=user, team=team):
        raise PermissionDenied("Only the team's managers and admins see its capital metrics.")
    return team


def capital_dashboard_teams(*, user: AnyUser) -> QuerySet[Team]:
    """The teams whose capital `user` may read, by name."""
    if is_org_admin(user=user):
        return Team.objects.order_by("name")
    if not user.is_authenticated:
        return Team.objects.none()
    return (
        Team.objects.filter(memberships__user=user, memberships__role__in=TEAM_MANAGER_ROLES)
        .distinct()
        .order_by("name")
    )


@dataclass(frozen=True)
class Period:
    start: date  # first day
    end: date  # last day, included

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> "Period":
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def parse_period(*, start: str | None, end: str | None) -> Period:
    """`from`/`to` (YYYY-MM-DD, both included); default: the last 28 days up to today."""
    try:
        last = date.fromisoformat(end) if end else today()
        first = date.fromisoformat(start) if start else last - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError as error:
        raise ValidationError("from and to must be dates written YYYY-MM-DD") from error
    if first > last:
        raise ValidationError("from must not be after to")
    if last > today():
        raise ValidationError("to must not be in the future")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationError(f"a period is at most {MAX_DAYS} days")
    return Period(first, last)


# --- aggregation of daily rows ------------------------------------------------------------------


def aggregate(definition: Definition, rows: list[dict[str, Any]]) -> Raw | None:
    """The figure of a period from its days' stored figures (oldest first); None without data."""
    present = [row[definition.key] for row in rows if definition.key in row]
    if not present:
        return None
    if definition.kind in (Kind.STATE, Kind.STATE_RATIO):
        last = present[-1]
        return Raw(last["num"], last.get("den"), last.get("details") or {})
    num = sum(item["num"] for item in present)
    den = None
    if definition.kind == Kind.RATIO:
        den = sum(item.get("den") or 0 for item in present)
    return Raw(num, den)


def display(definition: Definition, raw: Raw | None) -> float | None:
    if raw is None:
        return None
    value = raw.value(definition.kind)
    return None if value is None else value * definition.scale


@dataclass
class Baseline:
    value: float | None
    source: str  # "measured" or "override"
    text: str
    override: BaselineOverride | None = None


@dataclass
class FigureView:
    definition: Definition
    value: float | None
    previous: float | None
    baseline: Baseline
    series: list[tuple[date, float | None]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def delta(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def trend(self) -> str:
        """ "better", "worse" or "same" against the previous period (by the metric's direction)."""
        delta = self.delta
        if delta is None or abs(delta) < 1e-9:
            return "same"
        up = delta > 0
        return "better" if up == self.definition.higher_is_better else "worse"


def snapshot_rows(
    *, team: Team, first: date, last: date, process_id: int | None = None
) -> QuerySet[MetricSnapshot]:
    rows = MetricSnapshot.objects.filter(team=team, day__gte=first, day__lte=last)
    if process_id is None:
        rows = rows.filter(process__isnull=True)
    else:
        rows = rows.filter(process_id=process_id)
    return rows.order_by("day")


def active_overrides(*, team: Team, process_id: int | None = None) -> dict[str, BaselineOverride]:
    overrides = BaselineOverride.objects.filter(
        team=team, process_id=process_id, cleared_at__isnull=True
    ).select_related("set_by")
    latest: dict[str, BaselineOverride] = {}
    for override in overrides.order_by("set_at", "pk"):
        latest[override.metric] = override
    return latest


def baselines(*, team: Team, process_id: int | None = None) -> dict[str, Baseline]:
    """Each metric's baseline: the figure over the first BASELINE_DAYS days of snapshots, or a
    manager's override (which says who set it and why)."""
    first = (
        MetricSnapshot.objects.filter(team=team, process_id=process_id)
        .order_by("day")
        .values_list("day", flat=True)
        .first()
    )
    rows: list[dict[str, Any]] = []
    if first is not None:
        rows = list(
            snapshot_rows(
                team=team,
                first=first,
                last=first + timedelta(days=BASELINE_DAYS - 1),
                process_id=process_id,
            ).values_list("figures", flat=True)
        )
    overrides = active_overrides(team=team, process_id=process_id)
    result: dict[str, Baseline] = {}
    for definition in DEFINITIONS:
        override = overrides.get(definition.key)
        if override is not None:
            who = override.set_by.get_username() if override.set_by else "a manager"
            result[definition.key] = Baseline(
                override.value,
                "override",
                f"set by {who} on {override.set_at:%Y-%m-%d}: {override.reason}",
                override,
            )
            continue
        value = display(definition, aggregate(definition, rows))
        text = (
            f"measured {first:%Y-%m-%d} - {first + timedelta(days=BASELINE_DAYS - 1):%Y-%m-%d}"
            if first is not None and value is not None
            else "not measured yet"
        )
        result[definition.key] = Baseline(value, "measured", text)
    return result


def figures_from_snapshots(
    *, team: Team, period: Period, process_id: int | None = None
) -> list[FigureView]:
    """Every metric of `period` and of the one before it, with daily series, from snapshots."""
    rows = list(
        snapshot_rows(
            team=team, first=period.previous.start, last=period.end, process_id=process_id
        ).values_list("day", "figures")
    )
    current = [figures for day, figures in rows if day >= period.start]
    before = [figures for day, figures in rows if day < period.start]
    by_day = {day: figures for day, figures in rows if day >= period.start}
    base = baselines(team=team, process_id=process_id)
    views = []
    for definition in DEFINITIONS:
        if process_id is not None and not definition.per_process:
            continue
        raw = aggregate(definition, current)
        series = []
        for offset in range(period.days):
            day = period.start + timedelta(days=offset)
            figures = by_day.get(day)
            series.append((day, display(definition, aggregate(definition, [figures]))
                           if figures else None))  # fmt: skip
        views.append(
            FigureView(
                definition=definition,
                value=display(definition, raw),
                previous=display(definition, aggregate(definition, before)),
                baseline=base[definition.key],
                series=series,
                details=raw.details if raw else {},
            )
        )
    return views


def figures_live(*, team: Team, period: Period) -> list[FigureView]:
    """Every metric of `period` measured now from the source tables (states at its end), beside
    the previous period's, with the baselines of the snapshots."""
    start, _ = day_bounds(period.start)
    _, end = day_bounds(period.end)
    previous_start, _ = day_bounds(period.previous.start)
    end = min(end, timezone.now())
    current = measure(team_id=team.pk, start=start, end=end)[None]
    before = measure(team_id=team.pk, start=previous_start, end=start)[None]
    base = baselines(team=team)
    views = []
    for definition in DEFINITIONS:
        raw = current.get(definition.key)
        details = raw.details if raw else {}
        if raw is None and definition.key == "money_value":
            details = {"note": NO_MONEY_RATE}  # absent, not zero: say why
        views.append(
            FigureView(
                definition=definition,
                value=display(definition, raw),
                previous=display(definition, before.get(definition.key)),
                baseline=base[definition.key],
                details=details,
            )
        )
    return views


def by_family(views: list[FigureView]) -> list[tuple[Family, list[FigureView]]]:
    return [(family, [v for v in views if v.definition.family == family]) for family in Family]


def history(*, team: Team, period: Period) -> QuerySet[MetricSnapshot]:
    """The snapshot rows of `period` (team and processes), for the CSV export."""
    return (
        MetricSnapshot.objects.filter(team=team, day__gte=period.start, day__lte=period.end)
        .select_related("process")
        .order_by("day", "process_id")
    )


# --- money -----------------------------------------------------------------------------------

NO_MONEY_RATE = "no value per hour or per case set: a manager sets one on the money page"


def current_money_rates(*, team: Team) -> list[MoneyRate]:
    """The rates in force: the latest per process and the team's default (process None) first;
    an empty list when no manager set one (money figures are then absent)."""
    latest: dict[int | None, MoneyRate] = {}
    rows = MoneyRate.objects.filter(team=team).select_related("process", "set_by")
    for rate in rows.order_by("set_at", "pk"):  # oldest first: the latest wins
        latest[rate.process_id] = rate
    return sorted(
        latest.values(),
        key=lambda r: (r.process_id is not None, r.process.name if r.process else ""),
    )


def money_rate_history(*, team: Team, limit: int = 50) -> list[MoneyRate]:
    return list(
        MoneyRate.objects.filter(team=team)
        .select_related("process", "set_by")
        .order_by("-set_at", "-pk")[:limit]
    )
