"""The capital dashboard, its drill-down, definitions, CSV and API: who may see them and what
they answer."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from apps.capital.models import MetricSnapshot
from apps.cases.services.automation import decide_automatically
from tests.conftest import client_for
from tests.factories import make_cases, make_process


@pytest.fixture
def history(team):
    """A process with one automatic decision today and yesterday's and today's snapshots."""
    process = make_process(team, minutes_per_case=6)
    (case, _) = make_cases(process, 2)
    decide_automatically(case=case, label="approve", reason_code="ok")
    today = datetime.now(UTC).date()
    call_command(
        "capital_backfill", "--since", str(today - timedelta(days=1)), stdout=io.StringIO()
    )
    return process


@pytest.mark.parametrize(
    ("persona", "status"), [("manager", 200), ("admin", 200), ("expert", 403), ("outsider", 404)]
)
def test_only_managers_and_admins_see_a_teams_capital(request, team, persona, status):
    user = request.getfixturevalue(persona)
    client = client_for(user)
    assert client.get(f"/teams/{team.slug}/capital/").status_code == status
    assert client.get(f"/api/v1/teams/{team.slug}/capital").status_code == status
    assert client.get(f"/teams/{team.slug}/capital/history.csv").status_code == status
    assert client.get(f"/teams/{team.slug}/capital/figures/backlog/").status_code == status


def test_the_dashboard_shows_hours_saved_with_its_chart_definition_and_rows(history, manager, team):
    page = client_for(manager).get(f"/teams/{team.slug}/capital/")
    html = page.content.decode()
    assert page.status_code == 200
    # One automatic decision x 6 minutes = 0.1 h, linked to its definition and rows.
    assert "0.1 h" in html
    assert "/capital/definitions/#metric-hours_saved" in html
    assert f"/teams/{team.slug}/capital/figures/hours_saved/" in html
    assert 'id="spark-hours_saved-data"' in html  # the chart's data, read by static/js/chart.js
    assert "<script>" not in html  # no inline script (CSP 'self')
    rows = client_for(manager).get(f"/teams/{team.slug}/capital/figures/hours_saved/")
    assert rows.status_code == 200
    assert "credited" in rows.content.decode()


def test_the_api_gives_each_figure_with_its_definition_and_baseline(history, manager, team):
    today = datetime.now(UTC).date()
    answer = (
        client_for(manager).get(f"/api/v1/teams/{team.slug}/capital?from={today}&to={today}").json()
    )
    figures = {figure["key"]: figure for figure in answer["figures"]}
    assert figures["hours_saved"]["value"] == pytest.approx(0.1)
    assert figures["automatic_decisions"]["value"] == 1
    assert figures["backlog"]["value"] == 1
    assert figures["hours_saved"]["definition"]["sources"]
    assert figures["hours_saved"]["baseline"]["source"] == "measured"


@pytest.mark.parametrize(
    "query", ["from=yesterday", "from=2026-05-02&to=2026-05-01", "to=2999-01-01", "from=2020-01-01"]
)
def test_a_bad_period_is_a_422_not_a_500(manager, team, query):
    answer = client_for(manager).get(f"/api/v1/teams/{team.slug}/capital?{query}")
    assert answer.status_code == 422
    assert answer.json()["detail"]


def test_the_csv_history_has_one_line_per_day_process_and_metric(history, manager, team):
    today = datetime.now(UTC).date()
    answer = client_for(manager).get(
        f"/teams/{team.slug}/capital/history.csv?from={today - timedelta(days=1)}&to={today}"
    )
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    saved = [r for r in rows if r["metric"] == "hours_saved" and r["day"] == str(today)]
    assert {r["process"] for r in saved} == {"", history.slug}
    assert all(float(r["value"]) == pytest.approx(0.1) for r in saved)
    # The team on both days; the process only today (it was created today, with nothing before).
    assert MetricSnapshot.objects.filter(team=team).count() == 3


def test_the_definitions_page_lists_every_metric(expert):
    from apps.capital.metrics_definitions import DEFINITIONS

    html = client_for(expert).get("/capital/definitions/").content.decode()
    for definition in DEFINITIONS:
        assert f'id="{definition.anchor}"' in html


def test_metrics_serves_the_capital_headline_gauges(history, team, client, settings):
    settings.ORCHCAP_METRICS_TOKEN = "scrape-me"
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()
    assert "# TYPE orchcap_capital_hours_saved gauge" in body
    assert f'orchcap_capital_hours_saved{{team="{team.slug}"}} 0.1' in body
    assert f'orchcap_capital_backlog{{team="{team.slug}"}} 1' in body
    assert "orchcap_fabric_nodes" in body  # the fabric's own figures are still there


def test_the_capital_menu_entry_leads_a_manager_to_the_dashboard(manager, expert, team):
    page = client_for(manager).get("/capital/")
    assert page.status_code == 302
    assert page["Location"] == f"/teams/{team.slug}/capital/"
    assert 'href="/capital/"' in client_for(manager).get("/").content.decode()
    assert 'href="/capital/"' not in client_for(expert).get("/").content.decode()
    assert client_for(expert).get("/capital/").status_code == 403


def test_an_overridden_baseline_says_who_set_it_on_the_dashboard(history, manager, team):
    from apps.capital.metrics_services import set_baseline

    set_baseline(
        team=team, metric="hours_saved", value=2.5, reason="last year's pilot, by stopwatch",
        by=manager,
    )  # fmt: skip
    html = client_for(manager).get(f"/teams/{team.slug}/capital/").content.decode()
    assert "set by maya on" in html
    assert "last year&#x27;s pilot, by stopwatch" in html
    api = client_for(manager).get(f"/api/v1/teams/{team.slug}/capital").json()
    saved = next(f for f in api["figures"] if f["key"] == "hours_saved")
    assert saved["baseline"] == {
        "value": 2.5, "source": "override", "text": saved["baseline"]["text"]
    }  # fmt: skip
    assert "maya" in saved["baseline"]["text"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "nope", "value": 1, "reason": "because"}, "unknown metric"),
        ({"metric": "hours_saved", "value": -1, "reason": "because"}, "0 or more"),
        ({"metric": "hours_saved", "value": 1, "reason": ""}, "say why"),
    ],
)
def test_a_baseline_override_needs_a_known_metric_a_number_and_a_reason(
    team, manager, kwargs, message
):
    from django.core.exceptions import ValidationError

    from apps.capital.metrics_services import set_baseline

    with pytest.raises(ValidationError, match=message):
        set_baseline(team=team, by=manager, **kwargs)


def test_a_manager_sets_and_clears_a_baseline_from_the_figure_page(history, manager, expert, team):
    path = f"/teams/{team.slug}/capital/figures/review_seconds/baseline"
    client = client_for(manager)
    refused = client.post(path, {"value": "abc", "reason": "stopwatch study"})
    assert refused.status_code == 422
    assert "must be a number" in refused.content.decode()
    assert client.post(path, {"value": "240", "reason": "stopwatch study"}).status_code == 302
    page = client.get(f"/teams/{team.slug}/capital/figures/review_seconds/").content.decode()
    assert "set by maya" in page
    assert "stopwatch study" in page
    assert client_for(expert).post(path, {"value": "1", "reason": "mine now"}).status_code == 403
    assert client.post(path, {"clear": "1"}).status_code == 302
    page = client.get(f"/teams/{team.slug}/capital/figures/review_seconds/").content.decode()
    assert "set by maya" not in page


def test_money_figures_say_no_value_is_set_until_a_manager_sets_one(history, manager, team):
    from apps.capital.models import MoneyRate

    reader = client_for(manager)
    today = datetime.now(UTC).date()
    api = f"/api/v1/teams/{team.slug}/capital?from={today}&to={today}"
    before = reader.get(api).json()
    money = {figure["key"]: figure for figure in before["figures"]}["money_value"]
    assert before["money_rates"] == []
    assert money["value"] is None
    assert money["details"]["note"].startswith("no value per hour or per case set")
    assert 'id="no-money-rate"' in reader.get(f"/teams/{team.slug}/capital/").content.decode()
    page = f"/teams/{team.slug}/capital/money/"
    assert 'id="no-money-rate"' in reader.get(page).content.decode()

    for body, reason in [
        ({"currency": "EUR"}, "Give a value per hour, per case, or both."),
        ({"per_hour": "-5", "currency": "EUR"}, "greater than or equal to 0"),
        ({"per_hour": "abc", "currency": "EUR"}, "Enter a number."),
        ({"per_case": "2", "currency": "E1X"}, "currency must be a three-letter code"),
        ({"per_case": "2", "currency": "EUR", "process": "nope"}, "Select a valid choice"),
    ]:
        refused = reader.post(page, body)
        assert refused.status_code == 422, body
        assert reason in refused.content.decode(), body
    assert not MoneyRate.objects.exists()

    saved = reader.post(page, {"per_hour": "50", "per_case": "2", "currency": "usd"})
    assert saved.status_code == 302
    after = reader.get(api).json()
    assert after["money_rates"] == [
        {"process": None, "per_hour": 50.0, "per_case": 2.0, "currency": "USD", "set_by": "maya",
         "set_at": after["money_rates"][0]["set_at"]}
    ]  # fmt: skip
    money = {figure["key"]: figure for figure in after["figures"]}["money_value"]
    # 0.1 h saved x 50 + 1 automatic decision x 2 = 7.
    assert money["value"] == pytest.approx(7.0)
    assert money["details"] == {"currency": "USD"}
    # The process's own value wins over the team's: 0.1 h x 100 (no value per case) = 10.
    assert reader.post(
        page, {"process": history.slug, "per_hour": "100", "currency": "USD"}
    ).status_code == 302  # fmt: skip
    money = {f["key"]: f for f in reader.get(api).json()["figures"]}["money_value"]
    assert money["value"] == pytest.approx(10.0)
    html = reader.get(page).content.decode()
    assert "The whole team" in html
    assert history.name in html
    assert 'id="no-money-rate"' not in html


def test_only_managers_set_money_values(team, expert, outsider):
    page = f"/teams/{team.slug}/capital/money/"
    assert client_for(expert).post(page, {"per_hour": "50", "currency": "EUR"}).status_code == 403
    assert client_for(outsider).get(page).status_code == 404
