"""Inbound items and runs: idempotent receipt, all-or-nothing validation, canary share, rollback
affecting new items only, a trace that still explains an old run after its components changed,
routed items opening cases, and who may send and read."""

import json

import pytest

from apps.autonomy.models import ProcessAutonomy
from apps.cases.models import Case
from apps.orchestrations.inbound import pick_version, receive_items
from apps.orchestrations.models import InboundRequest, Run, RunStep
from apps.orchestrations.services import change_stage, create_version, rollback
from apps.rules.models import Rule
from apps.rules.services.authoring import create_rule, revise_rule
from tests.autonomy.conftest import fitted_model, store_promoted_model  # noqa: F401
from tests.conftest import client_for

API = "/api/v1/orchestrations/invoice-flow"
ITEM = {"external_id": "INV-1", "fields": {"vendor": "Acme GmbH", "amount": 120, "po_status": "missing"}}  # fmt: skip


def send(client, body, key=None, wait=True):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    path = f"{API}/items" + ("?wait_ms=1000" if wait else "")
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def live(orchestration, manager, **values):
    version = create_version(orchestration=orchestration, actor=manager, values=values)
    return change_stage(version=version, stage="live", actor=manager)


@pytest.fixture
def enabled_rule(rule):
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    rule.refresh_from_db()
    return rule


def test_a_resend_with_the_same_key_gets_the_first_answer_and_starts_no_second_run(
    manager, orchestration
):
    live(orchestration, manager)
    client = client_for(manager)

    first = send(client, ITEM, key="k-1")
    again = send(client, ITEM, key="k-1")
    other_body = send(client, {**ITEM, "external_id": "INV-2"}, key="k-1")

    assert first.status_code == 201, first.content
    assert again.status_code == 201
    assert again.json() == first.json()
    assert other_body.status_code == 422
    assert "another body" in other_body.json()["detail"]
    assert Run.objects.count() == 1
    # Without a key, the same external_id gives the existing run back.
    known = send(client, ITEM)
    assert known.status_code == 200
    assert known.json()["runs"][0]["id"] == first.json()["runs"][0]["id"]
    assert known.json()["runs"][0]["created"] is False
    assert Run.objects.count() == 1


def test_a_resend_while_the_first_is_in_flight_is_409(manager, orchestration):
    live(orchestration, manager)
    body = json.dumps(ITEM).encode()
    from apps.orchestrations.inbound import body_hash

    InboundRequest.objects.create(
        orchestration=orchestration, key="k-2", request_hash=body_hash(body)
    )
    response = client_for(manager).post(
        f"{API}/items", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert response.status_code == 409
    assert not Run.objects.exists()


def test_bad_rows_are_422_row_by_row_and_nothing_is_recorded(manager, orchestration):
    live(orchestration, manager)
    client = client_for(manager)
    body = [
        ITEM,
        {"external_id": "INV-2", "fields": {"vendor": "Acme", "amount": "lots"}},
        {"fields": {"vendor": "Acme", "amount": 1}},
        {**ITEM},
    ]
    response = send(client, body, key="k-3")

    assert response.status_code == 422
    rows = {row["row"]: row["errors"] for row in response.json()["rows"]}
    assert set(rows) == {1, 2, 3}
    assert "fields.amount" in rows[1]
    assert "external_id" in rows[2]
    assert "repeats row 0" in rows[3]["external_id"]
    assert not Run.objects.exists()
    assert not RunStep.objects.exists()
    # The key is free again for the corrected request.
    assert send(client, body[:1], key="k-3").status_code == 201
    for bad in ("[]", "{", "[1]"):
        answer = client.post(f"{API}/items", bad, content_type="application/json")
        assert 400 <= answer.status_code < 500, bad
    assert send(client, ITEM, wait=False).status_code in (200, 202)
    assert client.post(f"{API}/items?wait_ms=9000", "{}", content_type="application/json").status_code == 422  # fmt: skip


def test_without_a_live_version_items_are_refused(manager, orchestration):
    response = send(client_for(manager), ITEM)
    assert response.status_code == 422
    assert "no live version" in response.json()["detail"]


def test_the_canary_takes_its_share_within_tolerance_and_the_same_item_always_goes_the_same_way(
    manager, orchestration
):
    stable = live(orchestration, manager)
    canary = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=canary, stage="canary", actor=manager, canary_share=0.2)
    canary.refresh_from_db()
    stable.refresh_from_db()
    traffic = {"live": stable, "canary": canary}

    picks = [pick_version(orchestration, f"ITEM-{i}", traffic)[0] for i in range(2000)]
    share = sum(v.pk == canary.pk for v in picks) / len(picks)

    assert 0.17 <= share <= 0.23, share
    again = [pick_version(orchestration, f"ITEM-{i}", traffic)[0] for i in range(200)]
    assert [v.pk for v in again] == [v.pk for v in picks[:200]]


def test_rollback_changes_the_outcome_of_new_items_only(manager, orchestration, enabled_rule):
    live(orchestration, manager)  # v1: no rules, everything routed to experts
    live(orchestration, manager, rules=[{"rule": enabled_rule.pk}])  # v2: the rule decides
    before = receive_items(orchestration=orchestration, items=[ITEM])[0].runs[0]

    rollback(orchestration=orchestration, to_number=1, actor=manager, reason="rule misfires")
    after = receive_items(orchestration=orchestration, items=[{**ITEM, "external_id": "INV-9"}])[
        0
    ].runs[0]

    before.refresh_from_db()
    assert (before.version.number, before.outcome, before.label) == (2, "decided", "request_info")
    assert (after.version.number, after.outcome) == (1, "routed")
    assert after.case is not None
    assert after.case.fields == ITEM["fields"]
    assert Case.objects.filter(external_id="invoice-flow/INV-9").exists()


def test_items_the_exception_filter_does_not_match_are_standard(manager, orchestration):
    live(
        orchestration, manager,
        exception_filter={"field": "po_status", "op": "eq", "value": "mismatch"},
    )  # fmt: skip
    [run] = receive_items(orchestration=orchestration, items=[ITEM])[0].runs
    assert run.outcome == "standard"
    assert run.case is None
    steps = list(run.steps.all())
    assert [s.kind for s in steps] == ["received", "executed", "exception_check", "standard"]
    # Evaluated in the request (the caller waited, no placement forbids it), batch of one.
    assert steps[1].data["path"] == "in-request"
    assert steps[1].data["batch_size"] == 1


def test_the_trace_of_an_old_run_still_explains_it_after_the_rules_and_the_model_changed(
    manager,
    process,
    orchestration,
    enabled_rule,
    fitted_model,  # noqa: F811
):
    model = store_promoted_model(process, fitted_model)
    ProcessAutonomy.objects.create(
        process=process, level=3, threshold=0.5, audit_rate=0.1, model_version=model
    )
    live(
        orchestration, manager, rules=[{"rule": enabled_rule.pk}], model_version=model.version,
        autonomy_level=3, threshold=0.5,
    )  # fmt: skip
    shadow = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=shadow, stage="shadow", actor=manager)
    matched = {"vendor": "Acme GmbH", "amount": 40, "po_status": "matched"}
    client = client_for(manager)
    by_rule = send(client, ITEM).json()["runs"][0]
    by_model = send(client, {"external_id": "INV-2", "fields": matched}).json()["runs"][0]

    revise_rule(
        rule=enabled_rule, author=manager, action={"decide": "reject", "reason_code": "fraud"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
    )  # fmt: skip
    Rule.objects.filter(pk=enabled_rule.pk).update(enabled=False)
    store_promoted_model(process, fitted_model)

    trace = client.get(f"{API}/runs/{by_rule['id']}").json()
    kinds = [step["kind"] for step in trace["steps"]]
    assert kinds == [
        "received", "executed", "exception_check", "rules_evaluated", "decided", "shadow"
    ]  # fmt: skip
    rules = trace["steps"][3]["data"]["rules"]
    assert rules[0]["version"] == 1
    assert rules[0]["action"] == {"decide": "request_info"}
    assert trace["decided_by"] == f"rule:{enabled_rule.pk}@1"
    assert trace["steps"][5]["data"]["version"] == shadow.number
    assert trace["steps"][5]["data"]["outcome"] == "routed"  # the shadow acted on nothing
    # No case but, perhaps, the audit case of the model's decision (a stable draw per item).
    assert not Case.objects.filter(audit__isnull=True).exists()

    model_trace = client.get(f"{API}/runs/{by_model['id']}").json()
    steps = {step["kind"]: step["data"] for step in model_trace["steps"]}
    assert steps["model"]["model_version"] == model.version
    assert steps["model"]["label"] == model_trace["label"]
    assert steps["autonomy"]["decides"] is (steps["model"]["confidence"] >= 0.5)
    assert model_trace["outcome"] == ("decided" if steps["autonomy"]["decides"] else "routed")
    listed = client.get(f"{API}/runs", {"outcome": "decided", "version": 1}).json()
    assert by_rule["id"] in [run["id"] for run in listed["runs"]]


def test_runs_page_with_a_cursor_and_filters(manager, orchestration):
    live(orchestration, manager)
    items = [{**ITEM, "external_id": f"INV-{i}"} for i in range(5)]
    receive_items(orchestration=orchestration, items=items)
    client = client_for(manager)

    first = client.get(f"{API}/runs", {"limit": 3}).json()
    second = client.get(f"{API}/runs", {"limit": 3, "cursor": first["next_cursor"]}).json()

    assert len(first["runs"]) == 3
    assert second["next_cursor"] is None
    ids = [r["external_id"] for r in first["runs"] + second["runs"]]
    assert sorted(ids) == sorted(i["external_id"] for i in items)
    one = client.get(f"{API}/runs", {"external_id": "INV-3"}).json()["runs"]
    assert [r["external_id"] for r in one] == ["INV-3"]
    assert client.get(f"{API}/runs", {"cursor": "x"}).status_code == 422
    assert client.get(f"{API}/runs", {"outcome": "nope"}).status_code == 422


def test_team_members_send_and_read_runs_others_get_404(
    expert, manager, staff, outsider, orchestration
):
    live(orchestration, manager)
    run_id = send(client_for(expert), ITEM).json()["runs"][0]["id"]
    assert client_for(expert).get(f"{API}/runs/{run_id}").status_code == 200
    for user in (staff, outsider):
        client = client_for(user)
        assert send(client, {**ITEM, "external_id": "INV-X"}).status_code == 404
        assert client.get(f"{API}/runs").status_code == 404
        assert client.get(f"{API}/runs/{run_id}").status_code == 404
    assert Run.objects.count() == 1


def test_the_runs_explorer_filters_and_the_run_page_explains_the_outcome(
    manager, expert, outsider, orchestration, enabled_rule
):
    live(orchestration, manager, rules=[{"rule": enabled_rule.pk}], sla_minutes=30)
    matched = {"vendor": "Acme GmbH", "amount": 40, "po_status": "matched"}
    runs = receive_items(
        orchestration=orchestration,
        items=[ITEM, {"external_id": "INV-2", "fields": matched}],
    )[0].runs
    page = f"/orchestrations/{orchestration.slug}/"
    reader = client_for(expert)

    decided = reader.get(page, {"outcome": "decided"}).content.decode()
    routed = reader.get(page, {"outcome": "routed"}).content.decode()
    assert ">INV-1<" in decided
    assert ">INV-2<" not in decided
    assert ">INV-2<" in routed

    trace = reader.get(f"{page}runs/{runs[0].pk}/").content.decode()
    assert "Why was this decided?" in trace
    assert f"rule #{enabled_rule.pk} v1 acted" in trace
    assert 'class="table-scroll"' in trace
    routed_page = reader.get(f"{page}runs/{runs[1].pk}/").content.decode()
    assert "Routed to the review queue, due by" in routed_page
    assert f"/cases/{runs[1].case_id}/" in routed_page
    assert client_for(outsider).get(f"{page}runs/{runs[0].pk}/").status_code == 404
    assert reader.get(f"{page}runs/999999/").status_code == 404


def test_a_rule_routing_to_an_expert_puts_the_case_first_in_their_queue(
    manager, expert, process, orchestration
):
    to_expert = create_rule(
        process=process, owner=manager, name="Big ones", action={"route": f"expert:{expert.username}"},
        condition={"field": "amount", "op": "gt", "value": 100},
    )  # fmt: skip
    Rule.objects.filter(pk=to_expert.pk).update(enabled=True)
    live(orchestration, manager, rules=[{"rule": to_expert.pk}])
    items = [{**ITEM, "external_id": f"INV-{i}"} for i in range(2)]

    runs = receive_items(orchestration=orchestration, items=items)[0].runs

    assert [r.routed_to for r in runs] == [f"expert:{expert.username}"] * 2
    assert [r.decided_by for r in runs] == [f"rule:{to_expert.pk}@1"] * 2
    routed = Case.objects.filter(pk__in=[r.case_id for r in runs], routed_to=expert)
    assert routed.count() == 2
