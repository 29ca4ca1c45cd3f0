"""Data for the chart component (templates/components/chart.html, static/js/chart.js).

`chart(...)` returns what the template needs: the JSON payload the script draws from (read with
json_script, so the page needs no inline script under CSP 'self') and the same numbers as table
rows, so the chart never holds a number the table lacks.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html, format_html_join

KINDS = ("line", "bar")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _cell(value: float | None, decimals: int) -> str:
    if value is None:
        return "—"
    return f"{value:,.{decimals}f}"


def chart(
    *,
    element_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    kind: str = "line",
    unit: str = "",
    decimals: int = 1,
    sparkline: bool = False,
    table_open: bool = False,
    label_heading: str = "Day",
) -> dict[str, Any]:
    """A chart of `series` over `labels` (x axis), e.g. one value per day.

    Precondition: each series has one value per label (None: no data that day). `element_id`
    must be unique on the page; the JSON lands in `<script id="{element_id}-data">`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    for one in series:
        if len(one.values) != len(labels):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values for {len(labels)}")
    rounded = [[None if v is None else round(float(v), decimals) for v in s.values] for s in series]
    rows = [
        {"label": label, "cells": [_cell(values[i], decimals) for values in rounded]}
        for i, label in enumerate(labels)
    ]
    # Built here rather than by template loops: a dashboard has a score of charts, and Django's
    # template engine spends most of such a page's time on their table cells.
    body = format_html_join(
        "",
        '<tr><th scope="row">{}</th>{}</tr>',
        (
            (
                row["label"],
                format_html_join("", '<td class="num">{}</td>', ((c,) for c in row["cells"])),
            )
            for row in rows
        ),
    )
    head = format_html_join(
        "", '<th scope="col">{}</th>', ((f"{s.name} ({unit})" if unit else s.name,) for s in series)
    )
    return {
        "id": element_id,
        "data_id": f"{element_id}-data",
        "title": title,
        "unit": unit,
        "sparkline": sparkline,
        "table_open": table_open,
        "label_heading": label_heading,
        "series_names": [s.name for s in series],
        "rows": rows,
        "table_head": format_html('<th scope="col">{}</th>{}', label_heading, head),
        "table_body": body,
        "payload": {
            "kind": kind,
            "title": title,
            "unit": unit,
            "decimals": decimals,
            "sparkline": sparkline,
            "labels": list(labels),
            "series": [{"name": s.name, "values": v} for s, v in zip(series, rounded, strict=True)],
        },
    }
