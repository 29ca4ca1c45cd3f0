"""What flows back out of a run, to a real receiver on loopback: item.decided (by rule, model or
expert), item.routed, audit.overturned, to the version's connectors and the item's callback;
shadow versions and standard items send nothing; expert decisions, undos, adjudications and
audits in the trace; the audit draw's rate; the deliveries listed in the run's API and page."""

import json
import time

import pytest

from apps.autonomy.models import AuditSample, ProcessAutonomy
from apps.cases.models import Case
from apps.connectors.models import Delivery
from apps.connectors.services.connectors import create_connector
from apps.connectors.services.deliveries import drain_connector
from apps.orchestrations.events import audit_draw
from apps.orchestrations.inbound import receive_items
from apps.orchestrations.models import Run
from apps.orchestrations.people import catch_up_decisions
from apps.orchestrations.services import change_stage, create_version
from apps.rules.models import Rule
from apps.rules.services.authoring import create_rule
from tests.autonomy.conftest import fitted_model, store_promoted_model  # noqa: F401
from tests.conftest import client_for
from tests.connectors.receiver import Receiver, verify_signature
from tests.factories import make_invoice_rows
from tests.processes import child_database_url, start_worker, stop_process

API = "/api/v1/orchestrations/invoice-flow"
MISSING = {"vendor": "Acme GmbH", "amount": 120, "po_status": "missing"}
MATCHED = {"vendor": "Acme GmbH", "amount": 40, "po_status": "matched"}
ALL_EVENTS = ["item.decided", "item.routed", "sla.breached", "audit.overturned"]


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.ORCHCAP_WEBHOOK_RETRY_SCHEDULE = [60, 60, 60]
    settings.ORCHCAP_WEBHOOK_TIMEOUT_SECONDS = 5
    return settings


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def erp(team, manager, receiver):
    return create_connector(
        team=team, name="ERP", url=receiver.url, event_types=ALL_EVENTS, owner=manager
    )


@pytest.fixture
def enabled_rule(rule):
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    return rule


def live(orchestration, manager, **values):
    version = create_version(orchestration=orchestration, actor=manager, values=values)
    return change_stage(version=version, stage="live", actor=manager)


def send(client, body):
    return client.post(
        f"{API}/items?wait_ms=3000", json.dumps(body), content_type="application/json"
    )


def decide(client, case_id, label, reason_code="", rationale=""):
    body = {"label": label, "reason_code": reason_code, "rationale": rationale}
    return client.post(
        f"/api/v1/cases/{case_id}/decisions", json.dumps(body), content_type="application/json"
    )


def messages(receiver, connector):
    """The POSTs received, each checked against the connector's secret, as (type, data)."""
    out = []
    for request in receiver.posts:
        assert verify_signature(secret=connector.secret, headers=request.headers, body=request.body)
        body = json.loads(request.body)
        out.append((body["type"], body["data"]))
    return out


def route_rule(process, manager, expert):
    rule = create_rule(
        process=process, owner=manager, name="Matched ones to an expert",
        action={"route": f"expert:{expert.username}"},
        condition={"field": "po_status", "op": "eq", "value": "matched"},
    )  # fmt: skip
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    return rule


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_a_rule_decision_a_route_and_the_experts_decision_once_each(
    manager, expert, process, orchestration, enabled_rule, erp, receiver
):
    to_expert = route_rule(process, manager, expert)
    live(
        orchestration, manager, rules=[{"rule": enabled_rule.pk}, {"rule": to_expert.pk}],
        connectors=[erp.pk],
    )  # fmt: skip
    worker = start_worker(
        DATABASE_URL=child_database_url(), ORCHCAP_WEBHOOK_ALLOWED_HOSTS="127.0.0.1"
    )
    try:
        decided, routed = send(client_for(manager), [
            {"external_id": "INV-1", "fields": MISSING},
            {"external_id": "INV-2", "fields": MATCHED},
        ]).json()["runs"]  # fmt: skip
        case_id = Run.objects.get(pk=routed["id"]).case_id
        assert decide(client_for(expert), case_id, "approve", "ok").status_code == 201
        deadline = time.monotonic() + 60
        while len(receiver.posts) < 3 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        time.sleep(1.5)  # a duplicate, if any, would arrive now
    finally:
        output = stop_process(worker)

    sent = messages(receiver, erp)
    assert [(t, d["external_id"]) for t, d in sent] == [
        ("item.decided", "INV-1"), ("item.routed", "INV-2"), ("item.decided", "INV-2"),
    ], output  # fmt: skip
    assert sent[0][1]["by"]["kind"] == "rule"
    assert sent[2][1]["decided_by"] == f"expert:{expert.username}"
    assert len({r.headers["webhook-id"] for r in receiver.posts}) == 3
    trace = client_for(manager).get(f"{API}/runs/{routed['id']}").json()
    assert "expert_decision" in [step["kind"] for step in trace["steps"]]
    assert [(d["event_type"], d["state"], d["attempts"]) for d in trace["deliveries"]] == [
        ("item.routed", "delivered", 1), ("item.decided", "delivered", 1),
    ]  # fmt: skip
    assert decided["outcome"] == "decided"


def test_a_shadow_version_and_a_standard_item_send_nothing(
    manager, team, orchestration, enabled_rule, erp, receiver, django_capture_on_commit_callbacks
):
    shadow_only = create_connector(
        team=team, name="Shadow's", url=receiver.url, event_types=ALL_EVENTS, owner=manager
    )
    live(
        orchestration, manager, rules=[{"rule": enabled_rule.pk}], connectors=[erp.pk],
        exception_filter={"field": "amount", "op": "gt", "value": 100},
    )  # fmt: skip
    # The shadow decides every item by the same rule and would tell its own connector.
    shadow = create_version(
        orchestration=orchestration, actor=manager,
        values={"rules": [{"rule": enabled_rule.pk}], "connectors": [shadow_only.pk]},
    )  # fmt: skip
    change_stage(version=shadow, stage="shadow", actor=manager)
    client = client_for(manager)

    with django_capture_on_commit_callbacks(execute=True):
        runs = send(client, [
            {"external_id": "INV-1", "fields": MISSING},
            {"external_id": "INV-2", "fields": {**MISSING, "amount": 50}},  # not an exception
        ]).json()["runs"]  # fmt: skip

    assert [r["outcome"] for r in runs] == ["decided", "standard"]
    assert list(Delivery.objects.values_list("connector_id", "event_type", "run_id")) == [
        (erp.pk, "item.decided", runs[0]["id"])
    ]
    drain_connector(connector_id=erp.pk)
    drain_connector(connector_id=shadow_only.pk)
    assert [t for t, _ in messages(receiver, erp)] == ["item.decided"]


def test_a_rule_decision_and_a_route_are_sent_with_their_payloads_and_listed_in_the_trace(
    manager, expert, process, orchestration, enabled_rule, erp, receiver,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    to_expert = route_rule(process, manager, expert)
    live(
        orchestration, manager, rules=[{"rule": enabled_rule.pk}, {"rule": to_expert.pk}],
        connectors=[erp.pk], sla_minutes=60,
    )  # fmt: skip
    client = client_for(manager)
    with django_capture_on_commit_callbacks(execute=True):
        decided, routed = send(client, [
            {"external_id": "INV-1", "fields": MISSING},
            {"external_id": "INV-2", "fields": MATCHED},
        ]).json()["runs"]  # fmt: skip
    result = drain_connector(connector_id=erp.pk)

    assert routed["outcome"] == "routed"
    assert result.delivered == 2
    [(t1, d1), (t2, d2)] = messages(receiver, erp)
    assert t1 == "item.decided"
    assert d1["run_id"] == decided["id"]
    assert d1["external_id"] == "INV-1"
    assert d1["orchestration"] == "invoice-flow"
    assert d1["version"] == 1
    assert d1["label"] == "request_info"
    assert d1["decided_by"] == f"rule:{enabled_rule.pk}@1"
    assert d1["by"] == {"kind": "rule", "rule": enabled_rule.pk, "rule_version": 1}
    assert t2 == "item.routed"
    assert d2["routed_to"] == f"expert:{expert.username}"
    assert d2["due_by"] is not None
    assert d2["routed_by"] == f"rule:{to_expert.pk}@1"

    trace = client.get(f"{API}/runs/{decided['id']}").json()
    [delivery] = trace["deliveries"]
    assert delivery["event_type"] == "item.decided"
    assert delivery["connector"] == erp.pk
    assert delivery["state"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["latency_ms"] is not None
    assert delivery["recent_attempts"][0]["status_code"] == 200
    page = client.get(f"/orchestrations/invoice-flow/runs/{decided['id']}/").content.decode()
    assert 'id="run-deliveries"' in page
    assert "item.decided" in page
    assert f"/connectors/{erp.pk}/" in page  # the manager may open the connector


def test_an_expert_decision_on_a_routed_item_decides_the_run_and_is_sent(
    manager, expert, process, orchestration, erp, receiver, django_capture_on_commit_callbacks
):
    to_expert = route_rule(process, manager, expert)
    live(orchestration, manager, rules=[{"rule": to_expert.pk}], connectors=[erp.pk])
    with django_capture_on_commit_callbacks(execute=True):
        [routed] = send(client_for(manager), {"external_id": "INV-2", "fields": MATCHED}).json()[
            "runs"
        ]
    run = Run.objects.get(pk=routed["id"])

    with django_capture_on_commit_callbacks(execute=True):
        answer = decide(
            client_for(expert), run.case_id, "approve", "ok", rationale="PO matched, price ok."
        )
    drain_connector(connector_id=erp.pk)

    assert answer.status_code == 201, answer.content
    run.refresh_from_db()
    assert (run.outcome, run.label, run.reason_code) == ("decided", "approve", "ok")
    assert run.decided_by == f"expert:{expert.username}"
    assert run.routed_to == f"expert:{expert.username}"  # kept
    assert [t for t, _ in messages(receiver, erp)] == ["item.routed", "item.decided"]
    data = messages(receiver, erp)[1][1]
    assert data["by"] == {"kind": "expert", "username": expert.username}
    assert data["label"] == "approve"
    assert "corrects" not in data
    trace = client_for(manager).get(f"{API}/runs/{run.pk}").json()
    step = trace["steps"][-1]
    assert step["kind"] == "expert_decision"
    assert step["data"]["by"] == expert.username
    assert step["data"]["rationale"] == "PO matched, price ok."
    assert step["data"]["final"] == {"label": "approve", "reason_code": "ok"}
    assert [d["event_type"] for d in trace["deliveries"]] == ["item.routed", "item.decided"]
    page = client_for(expert).get(f"/orchestrations/invoice-flow/runs/{run.pk}/").content.decode()
    assert f"{expert.username} decided approve (ok)" in page
    assert "/connectors/" not in page  # experts don't manage connectors: no link


def test_an_undo_then_another_label_sends_a_correction_and_the_same_label_sends_nothing(
    manager, expert, process, orchestration, erp, receiver, django_capture_on_commit_callbacks
):
    to_expert = route_rule(process, manager, expert)
    live(orchestration, manager, rules=[{"rule": to_expert.pk}], connectors=[erp.pk])
    with django_capture_on_commit_callbacks(execute=True):
        receive_items(orchestration=orchestration, items=[{"external_id": "I", "fields": MATCHED}])
    run = Run.objects.get()
    reviewer = client_for(expert)

    with django_capture_on_commit_callbacks(execute=True):
        decide(reviewer, run.case_id, "approve", "ok")
    with django_capture_on_commit_callbacks(execute=True):
        undo = reviewer.post(f"/processes/{process.slug}/review/undo")
    assert undo.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        assert decide(reviewer, run.case_id, "reject", "fraud").status_code == 201
    drain_connector(connector_id=erp.pk)

    sent = messages(receiver, erp)
    assert [t for t, _ in sent] == ["item.routed", "item.decided", "item.decided"]
    assert sent[2][1]["label"] == "reject"
    assert sent[2][1]["corrects"] == {
        "label": "approve", "reason_code": "ok", "decided_by": f"expert:{expert.username}",
    }  # fmt: skip
    kinds = list(run.steps.values_list("kind", flat=True))
    assert kinds[-3:] == ["expert_decision", "decision_retracted", "expert_decision"]

    # Undone and decided the same way again: a step, nothing sent.
    with django_capture_on_commit_callbacks(execute=True):
        reviewer.post(f"/processes/{process.slug}/review/undo")
    with django_capture_on_commit_callbacks(execute=True):
        decide(reviewer, run.case_id, "reject", "fraud")
    assert Delivery.objects.filter(run_id=run.pk).count() == 3
    assert run.steps.filter(kind="expert_decision").count() == 3


def test_two_experts_disagree_then_the_adjudication_decides_the_run(
    team, manager, expert, second_expert, orchestration, erp, receiver,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    process = orchestration.process
    process.overlap = 2
    process.save(update_fields=["overlap"])
    live(orchestration, manager, connectors=[erp.pk])  # no rules, no model: all routed
    with django_capture_on_commit_callbacks(execute=True):
        receive_items(orchestration=orchestration, items=[{"external_id": "I", "fields": MATCHED}])
    run = Run.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        decide(client_for(expert), run.case_id, "approve", "ok")
    with django_capture_on_commit_callbacks(execute=True):
        decide(client_for(second_expert), run.case_id, "reject", "duplicate")
    run.refresh_from_db()
    assert run.outcome == "routed"  # two labels that disagree decide nothing yet
    assert Delivery.objects.filter(run_id=run.pk).count() == 1  # item.routed
    with django_capture_on_commit_callbacks(execute=True):
        settled = client_for(manager).post(
            f"/processes/{process.slug}/adjudication/{run.case_id}/settle",
            {"label": "reject", "reason_code": "duplicate", "rationale": "Paid twice."},
        )
    drain_connector(connector_id=erp.pk)

    assert settled.status_code in (200, 302), settled.content[:300]
    run.refresh_from_db()
    assert (run.outcome, run.label, run.decided_by) == (
        "decided", "reject", f"expert:{manager.username}",
    )  # fmt: skip
    steps = list(run.steps.filter(kind="expert_decision").values_list("data", flat=True))
    assert [s["case_status"] for s in steps] == ["open", "adjudication", "decided"]
    assert [s["source"] for s in steps] == ["api", "api", "adjudication"]
    assert [t for t, _ in messages(receiver, erp)] == ["item.routed", "item.decided"]


def test_a_callback_connector_gets_the_items_events_and_another_teams_is_422(
    manager, team, other_team, outsider, orchestration, enabled_rule, erp, receiver,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    own_receiver = Receiver().start()
    try:
        callback = create_connector(
            team=team, name="Item callback", url=own_receiver.url, event_types=["item.decided"],
            owner=manager,
        )  # fmt: skip
        foreign = create_connector(
            team=other_team, name="Theirs", url=receiver.url, event_types=ALL_EVENTS,
            owner=outsider,
        )  # fmt: skip
        live(orchestration, manager, rules=[{"rule": enabled_rule.pk}], connectors=[erp.pk])
        client = client_for(manager)

        refused = send(client, [
            {"external_id": "A", "fields": MISSING, "callback": callback.pk},
            {"external_id": "B", "fields": MISSING, "callback": foreign.pk},
            {"external_id": "C", "fields": MISSING, "callback": "ERP"},
            {"external_id": "D", "fields": MISSING, "callback": 10**15},
        ])  # fmt: skip
        assert refused.status_code == 422
        rows = {row["row"]: row["errors"] for row in refused.json()["rows"]}
        assert set(rows) == {1, 2, 3}
        assert "no connector" in rows[1]["callback"]
        assert "Theirs" not in json.dumps(rows)  # another team's connector: as if missing
        assert "connector id" in rows[2]["callback"]
        assert not Run.objects.exists()

        with django_capture_on_commit_callbacks(execute=True):
            [run] = send(client, [
                {"external_id": "A", "fields": MISSING, "callback": callback.pk},
            ]).json()["runs"]  # fmt: skip
            # Named both as the version's connector and as the callback: one delivery.
            [both] = send(client, [
                {"external_id": "E", "fields": MISSING, "callback": erp.pk},
            ]).json()["runs"]  # fmt: skip
        drain_connector(connector_id=callback.pk)
        drain_connector(connector_id=erp.pk)

        assert run["callback"] == callback.pk
        assert [d["external_id"] for _, d in messages(own_receiver, callback)] == ["A"]
        assert [d["external_id"] for _, d in messages(receiver, erp)] == ["A", "E"]
        assert Delivery.objects.filter(run_id=both["id"]).count() == 1
    finally:
        own_receiver.stop()


# --- the model's decisions and their audits -----------------------------------------------------


@pytest.fixture
def model_at_level_3(process, fitted_model):  # noqa: F811
    model = store_promoted_model(process, fitted_model)
    ProcessAutonomy.objects.create(
        process=process, level=3, threshold=0.3, audit_rate=0.01, model_version=model
    )
    return model


def test_the_audit_draw_takes_the_audit_rate_within_tolerance_and_is_stable(
    manager, orchestration, model_at_level_3, django_capture_on_commit_callbacks
):
    live(
        orchestration, manager, model_version=model_at_level_3.version, autonomy_level=3,
        threshold=0.3, audit_rate=0.2,
    )  # fmt: skip
    rows = make_invoice_rows(1000, seed=11)
    items = [{"external_id": f"INV-{i}", "fields": r["fields"]} for i, r in enumerate(rows)]
    with django_capture_on_commit_callbacks(execute=True):
        for start in (0, 500):
            receive_items(orchestration=orchestration, items=items[start : start + 500])

    runs = list(Run.objects.filter(decided_by__startswith="model@").prefetch_related("steps"))
    assert len(runs) == 1000  # everything above the threshold: the model decides
    drawn = []
    for run in runs:
        autonomy = next(s.data for s in run.steps.all() if s.kind == "autonomy")
        assert autonomy["audit_rate"] == 0.2
        assert autonomy["audit_draw"] == round(audit_draw(orchestration, run.external_id), 4)
        assert autonomy["audited"] is (autonomy["audit_draw"] < 0.2)
        if autonomy["audited"]:
            drawn.append(run)
    share = len(drawn) / len(runs)
    assert 0.16 <= share <= 0.24, share
    # Each audited item keeps its decision and becomes an audit case for experts.
    assert all(run.outcome == "decided" and run.case_id for run in drawn)
    samples = AuditSample.objects.filter(case_id__in=[run.case_id for run in drawn])
    assert samples.count() == len(drawn)
    assert {s.model_version_id for s in samples} == {model_at_level_3.pk}
    assert not Run.objects.filter(case__isnull=False).exclude(pk__in=[r.pk for r in drawn])
    assert Case.objects.count() == len(drawn)


def test_an_audit_that_overturns_the_model_sends_a_correction_and_one_that_agrees_does_not(
    manager, expert, orchestration, model_at_level_3, erp, receiver,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    live(
        orchestration, manager, model_version=model_at_level_3.version, autonomy_level=3,
        threshold=0.3, audit_rate=1.0, connectors=[erp.pk],
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        receive_items(orchestration=orchestration, items=[
            {"external_id": "A", "fields": MISSING}, {"external_id": "B", "fields": MISSING},
        ])  # fmt: skip
    overturned, confirmed = Run.objects.order_by("external_id")
    model_label = overturned.label
    other = "approve" if model_label != "approve" else "reject"
    code = {"approve": "ok", "reject": "fraud", "request_info": ""}
    reviewer = client_for(expert)

    with django_capture_on_commit_callbacks(execute=True):
        assert decide(reviewer, overturned.case_id, other, code[other]).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        decide(reviewer, confirmed.case_id, model_label, code[model_label])
    drain_connector(connector_id=erp.pk)

    sent = messages(receiver, erp)
    assert [t for t, _ in sent] == ["item.decided", "item.decided", "audit.overturned"]
    data = sent[2][1]
    assert data["external_id"] == "A"
    assert (data["old_label"], data["new_label"]) == (model_label, other)
    assert data["model_label"] == model_label
    assert data["overturned_by"] == expert.username
    assert data["model_version"] == model_at_level_3.version
    overturned.refresh_from_db()
    assert (overturned.label, overturned.decided_by) == (other, f"expert:{expert.username}")
    audit = overturned.steps.filter(kind="audit").order_by("number").last().data
    assert audit["agrees"] is False
    assert audit["expert_label"] == other
    confirmed.refresh_from_db()
    assert confirmed.label == model_label
    assert confirmed.decided_by.startswith("model@")
    assert confirmed.steps.filter(kind="audit", data__agrees=True).exists()
    # The process's audits judged the model as well (autonomy's sliding window).
    assert AuditSample.objects.get(case_id=overturned.case_id).correct is False
    assert AuditSample.objects.get(case_id=confirmed.case_id).correct is True
    page = client_for(manager).get(f"/orchestrations/invoice-flow/runs/{overturned.pk}/")
    assert f"overturns the model&#x27;s {model_label}" in page.content.decode()


def test_a_decision_whose_signal_was_lost_is_caught_up_once(
    manager, expert, process, orchestration, erp, receiver, django_capture_on_commit_callbacks
):
    to_expert = route_rule(process, manager, expert)
    live(orchestration, manager, rules=[{"rule": to_expert.pk}], connectors=[erp.pk])
    with django_capture_on_commit_callbacks(execute=True):
        receive_items(orchestration=orchestration, items=[{"external_id": "I", "fields": MATCHED}])
    run = Run.objects.get()
    # Decided, but its on-commit signal never runs here: as if the process died after the commit.
    assert decide(client_for(expert), run.case_id, "approve", "ok").status_code == 201
    run.refresh_from_db()
    assert run.outcome == "routed"

    with django_capture_on_commit_callbacks(execute=True):
        assert catch_up_decisions() == 1
    assert catch_up_decisions() == 0
    drain_connector(connector_id=erp.pk)

    run.refresh_from_db()
    assert (run.outcome, run.decided_by) == ("decided", f"expert:{expert.username}")
    assert [t for t, _ in messages(receiver, erp)] == ["item.routed", "item.decided"]


def test_the_trace_lists_a_failing_delivery_with_its_attempts(
    manager, orchestration, enabled_rule, erp, receiver, django_capture_on_commit_callbacks
):
    live(orchestration, manager, rules=[{"rule": enabled_rule.pk}], connectors=[erp.pk])
    with django_capture_on_commit_callbacks(execute=True):
        [run] = send(client_for(manager), {"external_id": "I", "fields": MISSING}).json()["runs"]
    receiver.answer = lambda request: 503
    drain_connector(connector_id=erp.pk)

    [delivery] = client_for(manager).get(f"{API}/runs/{run['id']}").json()["deliveries"]
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("failed", 1, 503)
    [attempt] = delivery["recent_attempts"]
    assert attempt["status_code"] == 503
    assert attempt["error"] == "HTTP 503"
    assert delivery["delivered_at"] is None
    page = client_for(manager).get(f"/orchestrations/invoice-flow/runs/{run['id']}/")
    assert "Failed, will retry" in page.content.decode()
