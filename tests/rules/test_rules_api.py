"""Rules through the API: author, version, backtest against decided cases, enable, first match."""

from django.test import Client

from apps.cases.services.decisions import record_decision
from apps.people import services as people_services
from apps.rules.models import Rule
from apps.rules.services.evaluation import first_match
from tests.conftest import client_for
from tests.factories import make_cases

MISSING_PO = {"field": "po_status", "op": "eq", "value": "missing"}
BIG = {"field": "amount", "op": "gt", "value": 1000}


def url(process, suffix=""):
    return f"/api/v1/processes/{process.slug}/rules{suffix}"


def post(client, path, body):
    return client.post(path, body, content_type="application/json")


def test_expert_writes_a_rule_and_reads_it_as_a_sentence(process, expert):
    response = post(client_for(expert), url(process), {
        "name": "Missing PO", "condition": MISSING_PO, "action": {"decide": "request_info"},
    })  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["enabled"] is False
    assert body["version"] == 1
    assert "missing" in body["sentence"]
    assert "decide Request info" in body["sentence"]
    assert [r["name"] for r in client_for(expert).get(url(process)).json()] == ["Missing PO"]


def test_bad_condition_is_422_naming_the_part(process, expert):
    bad = {"all": [MISSING_PO, {"field": "amount", "op": "gt", "value": "lots"}]}
    response = post(
        client_for(expert),
        url(process),
        {"name": "x", "condition": bad, "action": {"flag": "look"}},
    )
    assert response.status_code == 422
    assert "all[1]" in response.json()["detail"]
    assert not Rule.objects.exists()


def test_unknown_label_in_action_is_422(process, expert):
    response = post(
        client_for(expert),
        url(process),
        {"name": "x", "condition": MISSING_PO, "action": {"decide": "maybe"}},
    )
    assert response.status_code == 422
    assert not Rule.objects.exists()


def test_staff_cannot_write_rules_and_outsiders_see_nothing(process, staff, outsider):
    body = {"name": "x", "condition": MISSING_PO, "action": {"flag": "look"}}
    assert post(client_for(staff), url(process), body).status_code == 403
    assert post(client_for(outsider), url(process), body).status_code == 404
    assert client_for(outsider).get(url(process)).status_code == 404


def test_backtest_measures_coverage_precision_and_wrong_cases(process, expert, second_expert):
    missing = make_cases(process, 4)  # po_status missing
    matched = make_cases(process, 2, po_status="matched")
    for case in missing[:3]:
        record_decision(case=case, expert=second_expert, label="request_info")
    record_decision(case=missing[3], expert=second_expert, label="reject", reason_code="fraud")
    record_decision(case=matched[0], expert=second_expert, label="approve", reason_code="ok")
    client = client_for(expert)
    rule_id = post(
        client,
        url(process),
        {"name": "Missing PO", "condition": MISSING_PO, "action": {"decide": "request_info"}},
    ).json()["id"]
    body = post(client, url(process, f"/{rule_id}/backtest"), {}).json()
    stats = body["backtest"]
    assert stats["decided_cases"] == 5
    assert stats["covered"] == 4
    assert stats["coverage"] == 4 / 5
    assert stats["precision"] == 3 / 4
    assert stats["outcomes"] == {"request_info": 3, "reject": 1}
    assert stats["undecided_matches"] == 0
    assert [c["id"] for c in stats["wrong_cases"]] == [missing[3].pk]
    assert body["backtested_at"] is not None


def test_enabling_needs_a_backtest_and_a_new_version_disables(process, expert):
    client = client_for(expert)
    rule_id = post(
        client, url(process), {"name": "Big", "condition": BIG, "action": {"flag": "check"}}
    ).json()["id"]
    refused = post(client, url(process, f"/{rule_id}/enable"), {})
    assert refused.status_code == 422
    assert "backtest" in refused.json()["detail"]
    post(client, url(process, f"/{rule_id}/backtest"), {})
    assert post(client, url(process, f"/{rule_id}/enable"), {}).json()["enabled"] is True
    revised = client.put(
        url(process, f"/{rule_id}"),
        {"condition": MISSING_PO, "action": {"flag": "check"}},
        content_type="application/json",
    ).json()
    assert (revised["version"], revised["enabled"]) == (2, False)
    assert Rule.objects.get().versions.count() == 2


def test_overlaps_and_conflicts_with_enabled_rules_are_counted(process, expert, second_expert):
    cases = make_cases(process, 3, amount=5000)
    for case in cases:
        record_decision(case=case, expert=second_expert, label="request_info")
    client = client_for(expert)
    big = post(
        client,
        url(process),
        {"name": "Big", "condition": BIG, "action": {"decide": "reject", "reason_code": "fraud"}},
    ).json()["id"]
    post(client, url(process, f"/{big}/backtest"), {})
    post(client, url(process, f"/{big}/enable"), {})
    missing = post(
        client,
        url(process),
        {"name": "Missing PO", "condition": MISSING_PO, "action": {"decide": "request_info"}},
    ).json()["id"]
    stats = post(client, url(process, f"/{missing}/backtest"), {}).json()["backtest"]
    assert stats["overlaps"] == [{"rule": big, "name": "Big", "overlap": 3, "conflicts": 3}]
    assert stats["conflict_count"] == 3


def test_first_match_follows_priority_among_enabled_rules(process, expert):
    (case,) = make_cases(process, 1, amount=5000)
    client = client_for(expert)
    ids = []
    for name, priority, condition in (
        ("Second", 20, MISSING_PO),
        ("First", 10, BIG),
        ("Off", 1, BIG),
    ):
        rule_id = post(
            client,
            url(process),
            {"name": name, "priority": priority, "condition": condition, "action": {"flag": name}},
        ).json()["id"]
        ids.append(rule_id)
        if name != "Off":
            post(client, url(process, f"/{rule_id}/backtest"), {})
            post(client, url(process, f"/{rule_id}/enable"), {})
    hit = first_match(case=case)
    assert hit.rule.name == "First"
    assert hit.action == {"flag": "First"}


def test_rules_api_takes_a_bearer_token(process, manager):
    _, raw = people_services.create_api_token(user=manager, name="ci")
    response = Client().get(url(process), HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert response.json() == []
