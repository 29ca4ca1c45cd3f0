"""How codes and durations read on a page: one wording for every template, API schemas keep the raw
values (exports and the API are for machines, pages for people)."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

# Below these a duration is shown in the smaller unit; the bounds sit half a unit early so that
# 59.7 s reads "1 min", not "60 s".
_MINUTE_FROM = 59.5
_HOUR_FROM = 59.5 * 60
_UNITS = {"ms": 0.001, "s": 1, "min": 60, "h": 3600}


def readable_code(code: object) -> str:
    """A schema code as words: "route_to_procurement" → "Route to procurement". Text that already
    reads ("PO confirmed") keeps its own capitals; "" for an empty code."""
    words = " ".join(str(code or "").replace("_", " ").split())
    return words[:1].upper() + words[1:]


def _number(value: float) -> str:
    """One decimal below 10, none from 10 on ("2.5", "12", "1,240"); no trailing ".0"."""
    if round(value, 1) < 10:
        return f"{round(value, 1):g}"
    return f"{round(value):,}"


def format_duration(value: float | int | Decimal | timedelta | None, unit: str = "s") -> str:
    """A duration as people say it: "40 ms", "4.2 s", "42 s", "3 min", "2.5 h", "1,240 h".
    `value` is in `unit` ("ms", "s", "min" or "h") unless it is a timedelta; "—" for None."""
    if value is None or value == "":
        return "—"
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        seconds = float(value) * _UNITS[unit]
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds == 0:
        return "0 s"
    if seconds < 0.9995:
        return f"{sign}{max(1, round(seconds * 1000))} ms"
    if seconds < _MINUTE_FROM:
        return f"{sign}{_number(seconds)} s"
    if seconds < _HOUR_FROM:
        return f"{sign}{_number(seconds / 60)} min"
    return f"{sign}{_number(seconds / 3600)} h"


def format_due(due_by: datetime | None, now: datetime | None = None) -> tuple[str, bool]:
    """An SLA due time relative to now, as people say it, and whether it has passed:
    ("due in 2 h", False), ("overdue 15 min", True), ("due in 3 d", False); ("", False) for None.
    Whole minutes under 90 min, hours under 48 h, then days."""
    if due_by is None:
        return "", False
    left = (due_by - (now or timezone.now())).total_seconds()
    minutes = max(1, round(abs(left) / 60))
    if minutes < 90:
        amount = f"{minutes} min"
    elif minutes < 48 * 60:
        amount = f"{round(minutes / 60)} h"
    else:
        amount = f"{round(minutes / 1440)} d"
    return (f"overdue {amount}", True) if left < 0 else (f"due in {amount}", False)
