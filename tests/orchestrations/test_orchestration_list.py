"""The orchestrations list (page and `GET /api/v1/orchestrations`): per orchestration its stage,
live version, items today, straight-through share, items waiting for people, SLA breaches and
failing deliveries, in a fixed number of queries whatever the number of orchestrations."""

import uuid
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.cases.models import Case
from apps.cases.services.decisions import record_decision
from apps.connectors.models import Delivery
from apps.orchestrations.inbound import receive_items
from apps.orchestrations.models import Run
from apps.orchestrations.selectors_overview import orchestration_figures, start_of_today
from apps.orchestrations.services import change_stage, create_orchestration, create_version
from apps.rules.models import Rule
from tests.conftest import client_for
from tests.factories import make_process

LIST_URL = reverse("orchestration_list")
API_URL = "/api/v1/orchestrations"


def go_live(orchestration, manager, **values):
    version = create_version(orchestration=orchestration, actor=manager, values=values)
    return change_stage(version=version, stage="live", actor=manager)


def item(external_id, amount, po_status="matched"):
    fields = {"vendor": "Acme GmbH", "amount": amount, "po_status": po_status}
    return {"external_id": external_id, "fields": fields}


def delivery(connector, run, state):
    now = timezone.now()
    return Delivery.objects.create(
        connector=connector, event_type="item.decided", payload={}, run_id=run.pk, state=state,
        webhook_id=f"msg_{uuid.uuid4().hex}", created_at=now, next_attempt_at=now,
    )  # fmt: skip


def test_the_figures_count_today_people_breaches_and_failing_deliveries(
    manager, expert, orchestration, rule, connector, django_capture_on_commit_callbacks
):
    # Invoices up to 1,000 are standard; a missing PO is decided by the rule; the rest are routed
    # to people (no model). Worked by hand: 5 items today, 2 straight through (standard, rule),
    # 1 decided by an expert (not straight through), 2 still waiting, 1 of them breached.
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    go_live(
        orchestration, manager, rules=[{"rule": rule.pk}], sla_minutes=60,
        exception_filter={"field": "amount", "op": "gt", "value": 1000},
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        received, _ = receive_items(
            orchestration=orchestration,
            items=[
                item("small", 50), item("no-po", 5000, "missing"), item("routed-1", 5000),
                item("routed-2", 5000), item("routed-3", 5000), item("yesterday", 50),
            ],
        )  # fmt: skip
    runs = {run.external_id: run for run in received.runs}
    assert [runs[k].outcome for k in ("small", "no-po", "routed-1")] == [
        "standard", "decided", "routed",
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        record_decision(
            case=Case.objects.get(pk=runs["routed-1"].case_id), expert=expert, label="approve",
            reason_code="ok",
        )  # fmt: skip
    assert Run.objects.get(pk=runs["routed-1"].pk).decided_by == f"expert:{expert.username}"
    Case.objects.filter(pk=runs["routed-2"].case_id).update(
        sla_breached_at=timezone.now() - timedelta(days=1)
    )
    # A breach older than the window, and a run received before today, count nowhere.
    Case.objects.filter(pk=runs["routed-3"].case_id).update(
        sla_breached_at=timezone.now() - timedelta(days=30)
    )
    Run.objects.filter(pk=runs["yesterday"].pk).update(
        received_at=start_of_today() - timedelta(minutes=1)
    )
    delivery(connector, runs["small"], "failed")
    delivery(connector, runs["no-po"], "dead")
    delivery(connector, runs["no-po"], "delivered")
    delivery(connector, runs["routed-2"], "queued")

    figures = orchestration_figures(orchestrations=[orchestration])[orchestration.pk]

    assert figures.items_today == 5
    assert figures.finished_today == 5
    assert figures.straight_through_today == 2
    assert figures.straight_through_share == 0.4
    assert figures.waiting_for_people == 2
    assert figures.sla_breaches == 1
    assert (figures.failing_deliveries, figures.dead_deliveries) == (2, 1)

    page = client_for(manager).get(LIST_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Waiting for people" in html
    assert "Failing deliveries" in html
    assert '<td class="num">5</td>' in html
    assert "40 %" in html
    assert '<strong class="figure-alert">2</strong> <span class="small">(1 dead)</span>' in html

    api = client_for(expert).get(API_URL)
    assert api.status_code == 200
    (listed,) = api.json()
    assert listed["slug"] == orchestration.slug
    assert listed["stages"] == ["v1 live"]
    assert listed["live_version"] == 1
    assert listed["site"] == ""
    assert listed["figures"] == {
        "items_today": 5, "finished_today": 5, "straight_through_share": 0.4,
        "waiting_for_people": 2, "sla_breaches": 1, "failing_deliveries": 2,
        "dead_deliveries": 1,
    }  # fmt: skip


def test_an_orchestration_without_runs_shows_zeros_and_no_share(manager, orchestration):
    figures = orchestration_figures(orchestrations=[orchestration])[orchestration.pk]

    assert figures.items_today == 0
    assert figures.straight_through_share is None
    listed = client_for(manager).get(API_URL).json()
    assert listed[0]["figures"]["straight_through_share"] is None
    assert listed[0]["stages"] == []


def _add_orchestrations(team, manager, start, count):
    """`count` more orchestrations, each on its own process, live, with a routed item and a
    failing delivery: every figure has something to count."""
    from apps.connectors.services.connectors import create_connector

    connector = create_connector(
        team=team, name=f"ERP {start}", url="https://93.184.216.34/hooks",
        event_types=["item.decided"], owner=manager,
    )  # fmt: skip
    for n in range(start, start + count):
        process = make_process(team, slug=f"invoices-{n}")
        orchestration = create_orchestration(
            process=process, slug=f"flow-{n}", name=f"Flow {n}", owner=manager
        )
        go_live(orchestration, manager, sla_minutes=30)
        (run,) = receive_items(orchestration=orchestration, items=[item(f"A-{n}", 5000)])[0].runs
        delivery(connector, run, "failed")


def _queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(url)
    assert answer.status_code == 200
    return len(queries), answer


def test_the_list_costs_the_same_queries_for_two_or_eight_orchestrations(
    team, manager, django_assert_max_num_queries
):
    _add_orchestrations(team, manager, 1, 2)
    page = client_for(manager)
    api = client_for(manager)
    page_few, _ = _queries(page, LIST_URL)
    api_few, _ = _queries(api, API_URL)

    _add_orchestrations(team, manager, 3, 6)
    page_many, answer = _queries(page, LIST_URL)
    api_many, listed = _queries(api, API_URL)

    assert answer.content.decode().count('<th scope="row"><a href="/orchestrations/flow-') == 8
    assert len(listed.json()) == 8
    assert all(o["figures"]["waiting_for_people"] == 1 for o in listed.json())
    assert all(o["figures"]["failing_deliveries"] == 1 for o in listed.json())
    assert page_many == page_few
    assert api_many == api_few
    # The orchestrations with their versions (3), the figures (3), the session, user and role
    # checks around them.
    with django_assert_max_num_queries(16):
        page.get(LIST_URL)
    with django_assert_max_num_queries(12):
        api.get(API_URL)


def test_the_list_fits_a_narrow_screen_in_a_scroll_container(manager, orchestration):
    html = client_for(manager).get(LIST_URL).content.decode()

    table_at = html.index('<table class="figures-table">')
    assert html[:table_at].rstrip().endswith('<div class="table-scroll">')
    assert '<meta name="viewport"' in html


def test_another_teams_manager_sees_none_of_its_figures(outsider, orchestration):
    assert client_for(outsider).get(API_URL).json() == []
    page = client_for(outsider).get(LIST_URL)
    assert page.status_code == 200
    assert orchestration.slug not in page.content.decode()
