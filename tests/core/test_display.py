"""Durations and schema codes as people read them, the same on every page."""

from datetime import timedelta

import pytest
from django.template import Context, Template

from apps.core.display import format_duration, readable_code


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0, "s", "0 s"),
        (0.04, "s", "40 ms"),
        (4.24, "s", "4.2 s"),
        (42, "s", "42 s"),
        (59.7, "s", "1 min"),  # not "60 s"
        (150, "s", "2.5 min"),
        (180, "s", "3 min"),
        (9000, "s", "2.5 h"),
        (0.0005, "h", "1.8 s"),  # a short task's node-hours: not "0.00 h"
        (1.5, "h", "1.5 h"),
        (1240, "h", "1,240 h"),
        (5, "min", "5 min"),
        (12.6, "ms", "13 ms"),
        (None, "s", "—"),
        (timedelta(minutes=90), "s", "1.5 h"),
    ],
)
def test_a_duration_reads_in_the_unit_that_fits(value, unit, shown):
    assert format_duration(value, unit) == shown


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("route_to_procurement", "Route to procurement"),
        ("approve", "Approve"),
        ("PO_confirmed", "PO confirmed"),  # its own capitals kept
        ("", ""),
    ],
)
def test_a_code_reads_as_words(code, shown):
    assert readable_code(code) == shown


def test_the_filters_are_builtins_of_every_template():
    html = Template(
        '{{ seconds|duration }} · {{ hours|duration:"h" }} · {{ code|label_text }} · '
        "{{ name|field_label:fields }}"
    ).render(
        Context(
            {
                "seconds": 42,
                "hours": 2.5,
                "code": "route_to_procurement",
                "name": "po_match",
                "fields": [{"name": "po_match", "label": "PO match"}],
            }
        )
    )
    assert html == "42 s · 2.5 h · Route to procurement · PO match"
