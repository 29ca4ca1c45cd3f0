"""The first battle after go-live: the estimate frozen when its orchestration went live beside the
value measured since, in the same units (hours a week, items a week) and per the same length of
time (a week), so "estimated vs actual" reads straight across. docs/capital.md gives the rules.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.capital.metrics import measure, team_processes
from apps.capital.models import BattleChoice

MEASURED_DAYS = 28  # the measured side covers at most the last four weeks since go-live
WEEK_DAYS = 7


@dataclass(frozen=True)
class BattleOutcome:
    """Estimated vs measured for the current battle. `measured_*` are None until a whole day has
    passed since go-live (a week's figure from a few hours would be a guess)."""

    process: str  # slug
    live_since: datetime  # when the estimate was frozen (its orchestration first went live)
    period_start: datetime | None
    period_end: datetime
    days: int  # whole days measured (0: not yet)
    estimated_hours_per_week: float
    estimated_items_per_week: float
    estimate_source: str
    measured_hours_per_week: float | None
    measured_items_per_week: float | None
    measured_hours: float | None  # over the period, before scaling to a week
    measured_items: int | None
    overturns: int | None
    minutes_source: str

    @property
    def hours_share(self) -> float | None:
        """Measured hours as a share of the estimate (1.0: as estimated)."""
        if self.measured_hours_per_week is None or not self.estimated_hours_per_week:
            return None
        return self.measured_hours_per_week / self.estimated_hours_per_week

    def as_json(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "live_since": self.live_since,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "days": self.days,
            "estimated": {
                "hours_per_week": self.estimated_hours_per_week,
                "items_per_week": self.estimated_items_per_week,
                "source": self.estimate_source,
            },
            "measured": (
                {
                    "hours_per_week": self.measured_hours_per_week,
                    "items_per_week": self.measured_items_per_week,
                    "hours": self.measured_hours,
                    "items": self.measured_items,
                    "overturns": self.overturns,
                    "minutes_source": self.minutes_source,
                }
                if self.measured_hours_per_week is not None
                else None
            ),
            "hours_share": self.hours_share,
        }


def battle_outcome(
    *, choice: BattleChoice | None, now: datetime | None = None
) -> BattleOutcome | None:
    """Estimated vs measured for `choice`, or None while its estimate is not frozen (no
    orchestration of its process has gone live) or its process is unknown.

    The estimate is the one frozen at go-live: hours a week the process took by hand (cases a
    week x minutes per case) and the cases a week it was made from, i.e. the most automating it
    could save. The measured side is apps/capital/metrics.py's `hours_saved` and
    `automatic_decisions` (items decided without a person that stood: overturns, standard
    items and runs that failed are not credited) of the chosen process over the whole days since
    go-live, at most the last MEASURED_DAYS, scaled to a week: x 7 / days.
    """
    if choice is None or choice.estimate_frozen_at is None:
        return None
    process_id = choice.process_id or (choice.candidate.process_id if choice.candidate else None)
    if process_id is None:
        return None
    now = now or timezone.now()
    basis = choice.estimate_basis or {}
    days = min(
        MEASURED_DAYS, max(0, math.floor((now - choice.estimate_frozen_at) / timedelta(days=1)))
    )
    processes = [p for p in team_processes(team_id=choice.team_id, end=now) if p.id == process_id]
    slug = processes[0].slug if processes else (choice.process.slug if choice.process else "")
    estimated = {
        "process": slug,
        "live_since": choice.estimate_frozen_at,
        "period_end": now,
        "days": days,
        "estimated_hours_per_week": float(choice.estimated_hours_per_week),
        "estimated_items_per_week": float(basis.get("cases_per_week") or 0.0),
        "estimate_source": str(basis.get("minutes_source") or ""),
    }
    if days == 0 or not processes:
        return BattleOutcome(
            **estimated,
            period_start=None,
            measured_hours_per_week=None,
            measured_items_per_week=None,
            measured_hours=None,
            measured_items=None,
            overturns=None,
            minutes_source="",
        )
    start = now - timedelta(days=days)
    figures = measure(team_id=choice.team_id, start=start, end=now, processes=processes)[process_id]
    hours = figures["hours_saved"].num
    items = int(figures["automatic_decisions"].num)
    scale = WEEK_DAYS / days
    return BattleOutcome(
        **estimated,
        period_start=start,
        measured_hours_per_week=hours * scale,
        measured_items_per_week=items * scale,
        measured_hours=hours,
        measured_items=items,
        overturns=int(figures["overturns"].num),
        minutes_source=str(figures["hours_saved"].details.get("minutes_source", "")),
    )
