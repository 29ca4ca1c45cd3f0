"""The chart component in a real browser, on the capital dashboard: Chart.js draws a canvas from
the page's json_script (no inline script, no CSP refusal), and the numbers it draws are the
numbers of the table that goes with it."""

import io
from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from playwright.sync_api import expect

from apps.cases.models import Case, Decision
from apps.cases.services.automation import decide_automatically
from tests.factories import make_cases, make_process


def _history(team):
    """Automatic decisions on three of the last days (1, 2, 3 of them), each 6 minutes saved."""
    process = make_process(team, minutes_per_case=6)
    cases = make_cases(process, 7)
    now = datetime.now(UTC)
    Case.objects.filter(process=process).update(created_at=now - timedelta(days=5))
    index = 0
    for days_ago, count in ((3, 1), (2, 2), (1, 3)):
        for case in cases[index : index + count]:
            decide_automatically(case=case, label="approve", reason_code="ok")
            at = now - timedelta(days=days_ago)
            Decision.objects.filter(case=case).update(decided_at=at)
            Case.objects.filter(pk=case.pk).update(decided_at=at)
        index += count
    call_command("capital_backfill", stdout=io.StringIO())


def test_the_hours_chart_draws_the_numbers_of_its_table(logged_in, manager, team):
    _history(team)
    page = logged_in(manager, f"/teams/{team.slug}/capital/")
    figure = page.locator("#capital-hours")
    # Web-first waits: wait_for_function polls through eval, which the page's CSP refuses.
    expect(figure).to_have_attribute("data-drawn", "true")
    box = figure.locator("canvas").bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert box["height"] > 100
    drawn = page.evaluate(
        "document.querySelector('#capital-hours').chart.data.datasets.map(d => d.data)"
    )
    # The table's cells, series by series ("—" for a day without a snapshot).
    figure.locator("summary").click()
    rows = figure.locator("tbody tr")
    table = [[], []]
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        for series, cell in enumerate(cells):
            table[series].append(None if cell == "—" else float(cell.replace(",", "")))
    assert drawn == table
    # 1, 2 and 3 automatic decisions x 6 minutes: 0.1, 0.2 and 0.3 hours on the last days.
    assert [v for v in drawn[0] if v][-3:] == [0.1, 0.2, 0.3]
    # Readable without colour: the two series differ by dash pattern and marker.
    styles = page.evaluate(
        "document.querySelector('#capital-hours').chart.data.datasets"
        ".map(d => [JSON.stringify(d.borderDash), d.pointStyle])"
    )
    assert styles[0] != styles[1]
    assert page.errors == []
    # No Content-Security-Policy refusal (a missing favicon is not this test's business).
    assert not [e for e in page.console_errors if "Refused" in e or "Content Security" in e]


def test_every_sparkline_is_drawn_on_a_phone(logged_in, manager, team):
    _history(team)
    page = logged_in(manager, f"/teams/{team.slug}/capital/", viewport="phone")
    expect(page.locator("figure[data-chart]").first).to_be_visible()
    expect(page.locator("figure[data-chart]:not([data-drawn])")).to_have_count(0)
    assert page.locator("figure.chart-sparkline canvas").count() >= 15
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
