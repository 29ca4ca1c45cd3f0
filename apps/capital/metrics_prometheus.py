"""Capital's headline figures as Prometheus gauges on `GET /metrics` (registered with
apps.core.registry from CapitalConfig.ready): each team's last 28 days from its daily snapshots,
so a scrape costs one query whatever the size of the data behind them."""

from collections import defaultdict
from datetime import timedelta
from typing import Any

from apps.capital.metrics_definitions import BY_KEY, Kind
from apps.capital.metrics_summary import aggregate
from apps.capital.models import MetricSnapshot
from apps.capital.snapshots import today

WINDOW_DAYS = 28
# (metric key, gauge name, help). Shares are 0-1, as Prometheus ratios are.
GAUGES = (
    ("hours_saved", "orchcap_capital_hours_saved", "Hours saved in the last 28 days."),
    ("automatic_decisions", "orchcap_capital_automatic_decisions",
     "Items decided without a person (credited) in the last 28 days."),
    ("overturns", "orchcap_capital_overturns",
     "Automatic decisions overturned by an audit or a later expert label, last 28 days."),
    ("straight_through", "orchcap_capital_straight_through_ratio",
     "Share of items decided straight through in the last 28 days."),
    ("backlog", "orchcap_capital_backlog", "Cases waiting for a decision (latest snapshot)."),
    ("orchestrated_processes", "orchcap_capital_processes_orchestrated_ratio",
     "Share of the team's processes with a live or canary orchestration."),
    ("fabric_participation", "orchcap_capital_fabric_participation_ratio",
     "Share of the team's listed infrastructure taking part in the fabric."),
    ("component_reuse", "orchcap_capital_component_reuse_ratio",
     "Share of orchestration versions reusing another orchestration's component."),
    ("value_ratio", "orchcap_capital_value_ratio",
     "Hours saved per hour invested in the last 28 days."),
)  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition() -> str:
    last = today()
    rows = (
        MetricSnapshot.objects.filter(
            process__isnull=True, day__gt=last - timedelta(days=WINDOW_DAYS), day__lte=last
        )
        .order_by("team__slug", "day")
        .values_list("team__slug", "figures")
    )
    by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for slug, figures in rows:
        by_team[slug].append(figures)
    lines: list[str] = []
    for key, name, help_text in GAUGES:
        definition = BY_KEY[key]
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for slug, days in by_team.items():
            raw = aggregate(definition, days)
            if raw is None:
                continue
            value = raw.value(Kind(definition.kind))
            if value is None:
                continue
            lines.append(f'{name}{{team="{_label(slug)}"}} {round(value, 6)}')
    return "\n".join(lines) + "\n"
