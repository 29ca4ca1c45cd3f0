"""SLA of routed items: the people an item is routed to are told (in the app and by email, as
they prefer), the case carries its due time (queue, case page, `due` queue order), and an overdue
item escalates next expert → team → managers, each step once, told, counted and traced, with
the `sla.breached` event to the version's connectors."""

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from apps.cases.models import Case, CaseEvent
from apps.cases.services.queue import update_queue_settings
from apps.cases.services.sla import set_due
from apps.connectors.models import Delivery
from apps.connectors.services.connectors import create_connector
from apps.notifications.models import Kind, Notification, Preference
from apps.orchestrations.inbound import receive_items
from apps.orchestrations.models import Run, RunStep
from apps.orchestrations.services import change_stage, create_version
from apps.orchestrations.sla import escalate_overdue
from apps.people.models import Role
from apps.rules.models import Rule
from apps.rules.services.authoring import create_rule
from tests.conftest import client_for
from tests.factories import make_cases, make_member
from tests.processes import child_database_url, start_worker, stop_process

FIELDS = {"vendor": "Acme GmbH", "amount": 120, "po_status": "missing"}


def route_rule(process, manager, to):
    rule = create_rule(
        process=process, owner=manager, name=f"To {to}", action={"route": to},
        condition={"field": "amount", "op": "gt", "value": 100},
    )  # fmt: skip
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    return rule


def go_live(orchestration, manager, **values):
    version = create_version(orchestration=orchestration, actor=manager, values=values)
    return change_stage(version=version, stage="live", actor=manager)


def receive(orchestration, *ids):
    items = [{"external_id": i, "fields": FIELDS} for i in ids]
    return receive_items(orchestration=orchestration, items=items)[0].runs


@pytest.fixture
def breach_connector(team, manager):
    # A public address: checked against SSRF at configuration, never connected to here.
    return create_connector(
        team=team, name="ERP SLA", url="https://93.184.216.34/sla", event_types=["sla.breached"],
        owner=manager,
    )  # fmt: skip


@pytest.fixture
def routed_to_erin(process, manager, expert, second_expert, orchestration, breach_connector):
    rule = route_rule(process, manager, f"expert:{expert.username}")
    go_live(
        orchestration, manager, rules=[{"rule": rule.pk}], sla_minutes=60,
        connectors=[breach_connector.pk],
    )  # fmt: skip
    return orchestration


def test_a_routed_item_tells_its_expert_in_the_app_and_by_email(
    routed_to_erin, expert, second_expert, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        (run,) = receive(routed_to_erin, "INV-1")

    assert run.outcome == "routed"
    assert run.due_by is not None
    (note,) = Notification.objects.filter(recipient=expert)
    assert note.kind == Kind.CASE_ROUTED
    assert note.title == "Invoice flow: INV-1 routed to you"
    assert note.body.startswith("In the review queue of Invoices; it is due in 60 min (")
    assert note.url == reverse("review", args=["invoices"])
    assert not Notification.objects.filter(recipient=second_expert).exists()
    (email,) = [m for m in mail.outbox if m.to == [expert.email]]
    assert "INV-1 routed to you" in email.subject
    case = Case.objects.get(pk=run.case_id)
    assert case.due_by == run.due_by
    assert case.escalate_at == run.due_by
    # The bell says so on the next page.
    page = client_for(expert).get(reverse("home")).content.decode()
    assert "Notifications, 1 unread" in page


def test_an_expert_who_turned_routed_cases_off_is_told_nothing(
    routed_to_erin, expert, django_capture_on_commit_callbacks
):
    Preference.objects.create(user=expert, kind=Kind.CASE_ROUTED, in_app=False, email=False)
    with django_capture_on_commit_callbacks(execute=True):
        receive(routed_to_erin, "INV-1")
    assert not Notification.objects.filter(recipient=expert).exists()
    assert mail.outbox == []


def test_a_batch_routed_to_a_team_tells_each_expert_once(
    process, manager, expert, second_expert, orchestration
):
    rule = route_rule(process, manager, "team:ap")
    go_live(orchestration, manager, rules=[{"rule": rule.pk}], sla_minutes=120)

    receive(orchestration, "INV-1", "INV-2", "INV-3")

    for person in (expert, second_expert):
        (note,) = Notification.objects.filter(recipient=person)
        assert note.title == "Invoice flow: 3 items routed to your team (ap)"
    assert not Notification.objects.filter(recipient=manager).exists()


def test_the_review_queue_and_the_case_page_show_the_due_time(routed_to_erin, expert):
    (run,) = receive(routed_to_erin, "INV-1")
    client = client_for(expert)

    review = client.get(reverse("review", args=["invoices"])).content.decode()
    assert "invoice-flow/INV-1" in review
    assert 'class="due"' in review
    assert "due in 60 min" in review

    Case.objects.filter(pk=run.case_id).update(due_by=timezone.now() - timedelta(minutes=15))
    case_page = client.get(reverse("case_detail", args=[run.case_id])).content.decode()
    assert 'class="due due-overdue"' in case_page
    assert "overdue 15 min" in case_page


def test_overdue_items_escalate_next_expert_then_team_then_managers_once_each(
    routed_to_erin, expert, second_expert, manager, breach_connector
):
    (run,) = receive(routed_to_erin, "INV-1")
    Notification.objects.all().delete()
    due = run.due_by

    assert escalate_overdue(now=due - timedelta(minutes=1)) == []

    # 1. The next expert (the only other one), at the due time: counted, told, traced, sent.
    (first,) = escalate_overdue(now=due + timedelta(minutes=1))
    assert (first.level, first.to) == (1, f"expert:{second_expert.username}")
    case = Case.objects.get(pk=run.case_id)
    assert case.routed_to == second_expert
    assert case.sla_breached_at is not None
    assert case.escalation_level == 1
    assert case.escalate_at == due + timedelta(minutes=60)
    assert Notification.objects.get(recipient=second_expert).kind == Kind.CASE_ROUTED
    assert Notification.objects.get(recipient=expert).kind == Kind.SLA_BREACHED
    (event,) = Delivery.objects.filter(event_type="sla.breached")
    assert event.connector_id == breach_connector.pk
    assert event.run_id == run.pk
    assert event.payload["external_id"] == "INV-1"
    assert event.payload["escalated_to"] == f"expert:{second_expert.username}"

    # Run again at the same moment: nothing more.
    assert escalate_overdue(now=due + timedelta(minutes=2)) == []
    assert Notification.objects.count() == 2

    # 2. The whole team's queue, one SLA period later: every reviewer told.
    (second,) = escalate_overdue(now=due + timedelta(minutes=61))
    assert (second.level, second.to) == (2, "team:ap")
    assert Case.objects.get(pk=run.case_id).routed_to is None
    assert Notification.objects.filter(recipient__in=[expert, second_expert]).count() == 4

    # 3. The managers, one more period later; no step is left after it.
    (third,) = escalate_overdue(now=due + timedelta(minutes=121))
    assert (third.level, third.to) == (3, "managers")
    (told,) = Notification.objects.filter(recipient=manager)
    assert told.kind == Kind.SLA_BREACHED
    assert "still open" in told.title
    assert escalate_overdue(now=due + timedelta(days=3)) == []

    case = Case.objects.get(pk=run.case_id)
    assert (case.escalation_level, case.escalate_at) == (3, None)
    steps = RunStep.objects.filter(run=run, kind="sla_breached").order_by("number")
    assert [s.data["step"] for s in steps] == ["next_expert", "team", "managers"]
    assert steps[2].data["notified"] == [manager.username]
    assert CaseEvent.objects.filter(case_id=run.case_id, kind="sla_escalated").count() == 3
    assert Delivery.objects.filter(event_type="sla.breached").count() == 1  # once per breach
    # The trace shows the steps (run page and API).
    trace = client_for(manager).get(f"/api/v1/orchestrations/invoice-flow/runs/{run.pk}").json()
    assert [s["kind"] for s in trace["steps"]][-3:] == ["sla_breached"] * 3
    run_page = client_for(manager).get(f"/orchestrations/invoice-flow/runs/{run.pk}/")
    assert "escalation step 1 of 3, to expert:eli. Told: eli, erin." in run_page.content.decode()
    assert "escalation step 3 of 3, to the team&#x27;s managers. Told: maya." in (
        run_page.content.decode()
    )


def test_the_next_expert_is_the_one_with_the_fewest_routed_cases(
    routed_to_erin, process, expert, second_expert, team
):
    third = make_member(team, Role.EXPERT, "ezra")
    busy = make_cases(process, 2)
    Case.objects.filter(pk__in=[c.pk for c in busy]).update(routed_to=second_expert)
    (run,) = receive(routed_to_erin, "INV-1")

    (step,) = escalate_overdue(now=run.due_by + timedelta(seconds=1))

    assert step.to == f"expert:{third.username}"
    assert Case.objects.get(pk=run.case_id).routed_to == third


def test_a_decided_item_does_not_escalate(routed_to_erin, expert):
    (run,) = receive(routed_to_erin, "INV-1")
    client = client_for(expert)
    client.get(reverse("review", args=["invoices"]))
    decided = client.post(
        reverse("review_decide", args=["invoices", run.case_id]),
        {"label": "approve", "reason_code": "ok", "rationale": "fine"},
    )
    assert decided.status_code in (200, 302), decided.content
    assert Case.objects.get(pk=run.case_id).status == "decided"

    assert escalate_overdue(now=run.due_by + timedelta(hours=5)) == []
    assert Case.objects.get(pk=run.case_id).sla_breached_at is None


def test_the_queue_serves_soonest_due_first_when_the_process_says_so(process, expert):
    later, sooner, undated = make_cases(process, 3)
    now = timezone.now()
    with transaction.atomic():
        set_due(due={later.pk: now + timedelta(hours=3), sooner.pk: now + timedelta(hours=1)})
    client = client_for(expert)

    def served() -> str:
        page = client.get(reverse("review", args=[process.slug])).content.decode()
        return page.split("<strong>Case ", 1)[1].split("</strong>", 1)[0]

    # By priority (the amount, highest first) while the process orders so.
    assert served() == undated.external_id
    client.post(reverse("review_skip", args=[process.slug, undated.pk]))
    update_queue_settings(process=process, queue_order="due", random_share=0.2)
    assert served() == sooner.external_id
    client.post(reverse("review_skip", args=[process.slug, sooner.pk]))
    assert served() == later.external_id


def test_a_process_created_by_api_can_order_its_queue_by_due_time(team, manager):
    from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS

    body = {
        "team": team.slug, "name": "Claims", "slug": "claims-sla", "fields": INVOICE_FIELDS,
        "decisions": INVOICE_DECISIONS, "queue_order": "due",
    }  # fmt: skip
    client = client_for(manager)
    response = client.post("/api/v1/processes", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["queue_order"] == "due"
    bad = client.post(
        "/api/v1/processes", {**body, "slug": "x", "queue_order": "soonest"},
        content_type="application/json",
    )  # fmt: skip
    assert bad.status_code == 422


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_take_each_step_once(routed_to_erin, second_expert):
    (run,) = receive(routed_to_erin, "INV-1")
    later = run.due_by + timedelta(minutes=5)
    start = threading.Barrier(2)
    taken: list[list] = []

    def sweep() -> None:
        try:
            start.wait(timeout=10)
            taken.append(escalate_overdue(now=later))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(len(steps) for steps in taken) == [0, 1]
    assert Case.objects.get(pk=run.case_id).escalation_level == 1
    assert RunStep.objects.filter(run=run, kind="sla_breached").count() == 1
    assert Notification.objects.filter(recipient=second_expert, kind=Kind.CASE_ROUTED).count() == 1
    assert Delivery.objects.filter(event_type="sla.breached").count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_escalates_an_overdue_item_once(
    process, manager, expert, second_expert, orchestration
):
    rule = route_rule(process, manager, f"expert:{expert.username}")
    go_live(orchestration, manager, rules=[{"rule": rule.pk}], sla_minutes=1)
    (run,) = receive(orchestration, "INV-1")
    past = timezone.now() - timedelta(seconds=5)
    Case.objects.filter(pk=run.case_id).update(due_by=past, escalate_at=past)
    from apps.orchestrations.tasks_sla import escalate_overdue_task

    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        escalate_overdue_task.delay()
        escalate_overdue_task.delay()  # a second sweep at once takes no second step
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            if Case.objects.get(pk=run.case_id).escalation_level >= 1:
                break
            time.sleep(0.3)
        time.sleep(2)  # the second sweep, if it were to escalate again, would have now
    finally:
        output = stop_process(worker)
    case = Case.objects.get(pk=run.case_id)
    assert case.escalation_level == 1, output
    assert case.routed_to_id == second_expert.pk
    assert Notification.objects.filter(recipient=second_expert, kind=Kind.CASE_ROUTED).count() == 1
    assert RunStep.objects.filter(run=run, kind="sla_breached").count() == 1
    assert Run.objects.get(pk=run.pk).case_id == case.pk
