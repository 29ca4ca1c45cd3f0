"""Flags on the rule set: overlaps, conflicts and shadowed rules among the enabled rules."""

from django.urls import reverse

from apps.cases.services.decisions import record_decision
from apps.rules.selectors import rule_set_flags
from tests.conftest import client_for
from tests.factories import make_cases


def rule(client, process, name, priority, condition, action, enable=True):
    base = f"/api/v1/processes/{process.slug}/rules"
    body = {"name": name, "priority": priority, "condition": condition, "action": action}
    rule_id = client.post(base, body, content_type="application/json").json()["id"]
    if enable:
        client.post(f"{base}/{rule_id}/backtest")
        client.post(f"{base}/{rule_id}/enable")
    return rule_id


def test_the_rules_page_flags_overlaps_conflicts_and_shadowed_rules(
    process, expert, second_expert, staff
):
    for case in make_cases(process, 3, amount=5000):
        record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")
    for case in make_cases(process, 2, amount=100):
        record_decision(case=case, expert=second_expert, label="request_info")
    make_cases(process, 4, amount=9000)  # not decided: not counted
    client = client_for(expert)
    big = rule(client, process, "Big", 10, {"field": "amount", "op": "gt", "value": 1000},
               {"decide": "reject", "reason_code": "fraud"})  # fmt: skip
    missing = rule(client, process, "Missing PO", 20,
                   {"field": "po_status", "op": "eq", "value": "missing"},
                   {"decide": "request_info"})  # fmt: skip
    also_big = rule(client, process, "Also big", 30, {"field": "amount", "op": "gt", "value": 2000},
                    {"flag": "look"})  # fmt: skip
    unused = rule(client, process, "Mismatch", 40,
                  {"field": "po_status", "op": "eq", "value": "mismatch"}, {"flag": "look"})  # fmt: skip
    rule(client, process, "Off", 1, {"field": "amount", "op": "gt", "value": 0}, {"flag": "x"},
         enable=False)  # fmt: skip

    flags = {
        rule_id: [(f.kind, f.other, f.text) for f in found]
        for rule_id, found in rule_set_flags(process=process).items()
    }
    assert flags[big] == [
        ("conflict", missing, "conflicts with “Missing PO” (3 cases decided differently)"),
        ("overlap", also_big, "overlaps with “Also big” (3 cases)"),
    ]
    assert flags[missing] == [
        ("conflict", big, "conflicts with “Big” (3 cases decided differently)"),
        ("overlap", also_big, "overlaps with “Also big” (3 cases)"),
    ]
    assert flags[also_big][0] == (
        "shadowed",
        None,
        "shadowed: never first under first-match (earlier rules take all 3 of its cases)",
    )
    assert flags[unused] == [("unused", None, "matches none of the decided cases")]
    assert len(flags) == 4  # disabled rules are not part of the rule set

    page = client_for(staff).get(reverse("rule_list", args=[process.slug])).content.decode()
    assert "shadowed: never first under first-match" in page
    assert (
        f'<a href="#rule-{missing}">conflicts with “Missing PO” (3 cases decided differently)'
        in page
    )
    assert "most recently decided cases" in page


def test_a_single_rule_that_takes_its_cases_has_no_flags(process, expert, second_expert):
    for case in make_cases(process, 2):
        record_decision(case=case, expert=second_expert, label="request_info")
    client = client_for(expert)
    only = rule(client, process, "Missing PO", 20,
                {"field": "po_status", "op": "eq", "value": "missing"}, {"decide": "request_info"})  # fmt: skip
    assert rule_set_flags(process=process) == {only: []}
    page = client.get(reverse("rule_list", args=[process.slug])).content.decode()
    assert 'class="rule-flags' not in page


def test_a_large_rule_set_is_counted_in_one_query(process, expert, second_expert):
    from apps.rules.models import Rule
    from apps.rules.selectors import MAX_FLAGGED_RULES
    from apps.rules.services.authoring import create_rule

    for case in make_cases(process, 2, amount=500):
        record_decision(case=case, expert=second_expert, label="request_info")
    for index in range(MAX_FLAGGED_RULES + 2):
        create_rule(process=process, owner=expert, name=f"R{index}", priority=index,
                    condition={"field": "amount", "op": "gt", "value": index},
                    action={"flag": "look"})  # fmt: skip
    Rule.objects.update(enabled=True)
    flags = rule_set_flags(process=process)
    assert len(flags) == MAX_FLAGGED_RULES
    first, second = Rule.objects.order_by("priority")[:2]
    assert flags[first.pk][0].text == "overlaps with “R1” (2 cases)"
    assert flags[second.pk][0].kind == "shadowed"
