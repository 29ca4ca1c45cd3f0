import json

from django.urls import reverse

from apps.cases.services.decisions import record_decision
from apps.rules.models import Rule
from tests.conftest import client_for
from tests.factories import make_cases

CONDITION = json.dumps({"field": "po_status", "op": "eq", "value": "missing"})


def form(**overrides):
    return {
        "name": "Missing PO",
        "priority": "10",
        "condition": CONDITION,
        "action": json.dumps({"decide": "request_info"}),
        **overrides,
    }


def test_expert_writes_backtests_and_enables_a_rule_on_the_page(process, expert, second_expert):
    (case,) = make_cases(process, 1)
    record_decision(case=case, expert=second_expert, label="request_info")
    client = client_for(expert)
    assert client.post(reverse("rule_list", args=[process.slug]), form()).status_code == 302
    rule = Rule.objects.get()
    client.post(reverse("rule_toggle", args=[process.slug, rule.pk]))
    rule.refresh_from_db()
    assert rule.enabled is False  # not backtested yet
    client.post(reverse("rule_backtest", args=[process.slug, rule.pk]))
    client.post(reverse("rule_toggle", args=[process.slug, rule.pk]))
    rule.refresh_from_db()
    assert rule.enabled is True
    page = client.get(reverse("rule_list", args=[process.slug])).content.decode()
    assert "covers 1 of 1 decided" in page
    assert "precision 100%" in page


def test_invalid_json_and_invalid_condition_are_form_errors(process, expert):
    client = client_for(expert)
    response = client.post(reverse("rule_list", args=[process.slug]), form(condition="{oops"))
    assert response.status_code == 422
    assert b"not valid JSON" in response.content
    bad = json.dumps({"field": "nope", "op": "eq", "value": 1})
    response = client.post(reverse("rule_list", args=[process.slug]), form(condition=bad))
    assert response.status_code == 422
    assert b"nope" in response.content
    assert not Rule.objects.exists()


def test_staff_reads_rules_but_cannot_write_and_outsiders_get_404(process, staff, outsider):
    assert client_for(staff).get(reverse("rule_list", args=[process.slug])).status_code == 200
    assert (
        client_for(staff).post(reverse("rule_list", args=[process.slug]), form()).status_code == 403
    )
    assert client_for(outsider).get(reverse("rule_list", args=[process.slug])).status_code == 404


def test_proposed_rules_can_be_accepted_with_their_provenance(process, expert, second_expert):
    for case in make_cases(process, 15, po_status="missing"):
        record_decision(case=case, expert=second_expert, label="request_info")
    for case in make_cases(process, 15, po_status="matched"):
        record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    client = client_for(expert)
    response = client.post(reverse("rule_induce", args=[process.slug]))
    assert response.status_code == 200
    row = response.context["rows"][0]
    form = row["form"]
    posted = {name: form[name].value() for name in form.fields}
    posted = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in posted.items()}
    assert client.post(reverse("rule_list", args=[process.slug]), posted).status_code == 302
    rule = Rule.objects.get()
    assert rule.provenance["source"] == "induced"
    assert rule.current.condition == row["candidate"].condition


def test_proposing_with_too_few_decisions_says_why(process, expert):
    response = client_for(expert).post(reverse("rule_induce", args=[process.slug]), follow=True)
    assert b"at least 20 decided cases" in response.content
