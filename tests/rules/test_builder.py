"""The htmx rule builder: the server re-renders the condition tree from the posted form fields."""

import re

import pytest
from django.http import QueryDict
from django.urls import reverse

from apps.rules import builder
from apps.rules.models import Rule
from tests.conftest import client_for
from tests.factories import INVOICE_FIELDS, make_process

HTMX = {"HTTP_HX_REQUEST": "true"}


def _words(html: str) -> str:
    """The page's text without tags: rule sentences carry field names and codes as tooltips."""
    return re.sub(r"<[^>]+>", "", html)


def url(process):
    return reverse("rule_builder", args=[process.slug])


def post(client, process, data, htmx=True):
    return client.post(url(process), data, **(HTMX if htmx else {}))


def comparison(path, field, op, value=None, **extra):
    data = {f"c.{path}.kind": "cmp", f"c.{path}.field": field, f"c.{path}.op": op}
    if value is not None:
        data[f"c.{path}.value"] = value
    data.update({f"c.{path}.{key}": item for key, item in extra.items()})
    return data


def state(*parts, action=None, **fields):
    data = {"c.0.kind": "all", "action.kind": "decide", "action.decide": "request_info"}
    for part in parts:
        data.update(part)
    data.update(action or {})
    data.update(fields)
    return data


def values_of(html, name):
    """The selected option values or the input value of the field `name` in `html`."""
    return re.findall(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', html)


def test_the_rules_page_holds_the_builder_next_to_the_json_form(process, expert):
    page = client_for(expert).get(reverse("rule_list", args=[process.slug])).content.decode()
    assert 'id="rule-builder"' in page
    assert "pick a field…" in page
    assert "Write a rule (JSON)" in page


def test_adding_a_condition_re_renders_only_the_builder(process, expert):
    response = post(client_for(expert), process, state(comparison("0.0", "", ""), do="add:0"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.lstrip().startswith('<form id="rule-builder"')
    assert 'name="c.0.1.field"' in html
    assert "condition.all[0].field: pick a field" in html


def test_picking_a_field_offers_the_operators_and_value_input_of_its_type(process, expert):
    client = client_for(expert)
    money = post(client, process, state(comparison("0.0", "amount", ""))).content.decode()
    assert '<option value="gt">&gt;</option>' in money
    assert '<option value="contains">' not in money
    assert 'type="number"' in money
    category = post(client, process, state(comparison("0.0", "po_status", "eq"))).content.decode()
    assert '<option value="mismatch">mismatch</option>' in category
    assert '<option value="gt">' not in category
    date = post(client, process, state(comparison("0.0", "due_date", "eq"))).content.decode()
    assert 'type="date"' in date
    assert "is before" in date
    between = post(client, process, state(comparison("0.0", "amount", "between")))
    assert 'name="c.0.0.high"' in between.content.decode()
    listed = post(client, process, state(comparison("0.0", "po_status", "in"))).content.decode()
    assert 'name="c.0.0.values"' in listed
    assert "multiple" in listed


def test_a_boolean_field_gets_true_or_false(team, expert):
    process = make_process(
        team, slug="flags", fields=[*INVOICE_FIELDS, {"name": "urgent", "type": "boolean"}]
    )
    html = post(client_for(expert), process, state(comparison("0.0", "urgent", "eq", "true")))
    html = html.content.decode()
    assert '<option value="true" selected>true</option>' in html
    assert "Urgent is true" in _words(html)


def test_the_sentence_updates_from_the_server_as_values_are_typed(process, expert):
    data = state(
        comparison("0.0", "amount", "gt", "10,000"),
        comparison("0.1", "po_status", "eq", "missing"),
        do="preview",
    )
    response = post(client_for(expert), process, data)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="rule-preview"')
    assert "Amount &gt; 10,000 and Po status is missing" in _words(html)
    assert "decide Request info" in _words(html)
    assert '<span class="rule-field" title="po_status">Po status</span>' in html


def test_errors_name_the_part_and_mark_its_row(process, expert):
    data = state(
        comparison("0.0", "po_status", "eq", "missing"),
        comparison("0.1", "amount", "gt", "lots"),
    )
    html = post(client_for(expert), process, data).content.decode()
    assert "condition.all[1].value: expected a number for Amount (money)" in html
    rows = re.findall(r'<div class="rb-row rb-cmp( rb-error)?"', html)
    assert rows == ["", " rb-error"]


def test_groups_and_not_build_the_tree_the_language_expects(process, expert):
    client = client_for(expert)
    html = post(
        client, process, state(comparison("0.0", "po_status", "eq", "missing"), do="add-any:0")
    ).content.decode()
    assert 'name="c.0.1.kind"' in html  # the new group
    assert 'name="c.0.1.0.field"' in html  # with one comparison in it
    data = state(
        comparison("0.0", "po_status", "eq", "missing"),
        {"c.0.1.kind": "any", "c.0.1.not": "on"},
        comparison("0.1.0", "amount", "gt", "5000"),
        comparison("0.1.1", "vendor", "startswith", "Acme"),
        name="Small unknown vendors",
        do="save",
    )
    response = post(client, process, data)
    assert response.status_code == 200, response.content
    assert response["HX-Redirect"] == reverse("rule_list", args=[process.slug])
    rule = Rule.objects.get()
    assert rule.current.condition == {
        "all": [
            {"field": "po_status", "op": "eq", "value": "missing"},
            {
                "not": {
                    "any": [
                        {"field": "amount", "op": "gt", "value": 5000},
                        {"field": "vendor", "op": "startswith", "value": "Acme"},
                    ]
                }
            },
        ]
    }
    assert rule.current.action == {"decide": "request_info"}
    assert rule.enabled is False


def test_removing_a_node_drops_it_and_renumbers(process, expert):
    data = state(
        comparison("0.0", "po_status", "eq", "missing"),
        comparison("0.1", "amount", "gt", "5"),
        do="remove:0.0",
    )
    html = post(client_for(expert), process, data).content.decode()
    assert values_of(html, "c.0.0.value") == ["5"]
    assert 'name="c.0.1.field"' not in html


def test_actions_route_and_flag_and_reason_codes_follow_the_decision(process, expert):
    client = client_for(expert)
    html = post(
        client, process, state(action={"action.kind": "decide", "action.decide": "reject"})
    ).content.decode()
    assert '<option value="fraud">Fraud</option>' in html
    html = post(
        client, process, state(action={"action.kind": "route", "action.route": "team:ap"})
    ).content.decode()
    assert '<option value="team:ap" selected>team Accounts Payable</option>' in html
    assert 'value="expert:erin"' in html
    data = state(
        comparison("0.0", "amount", "ge", "1000"),
        action={"action.kind": "flag", "action.flag": "look at the vendor"},
        name="Big",
        priority="5",
        do="save",
    )
    assert post(client, process, data).status_code == 200
    rule = Rule.objects.get()
    assert (rule.priority, rule.current.action) == (5, {"flag": "look at the vendor"})
    assert rule.current.condition == {"field": "amount", "op": "ge", "value": 1000}


def test_an_invalid_rule_is_not_saved_and_says_why(process, expert):
    data = state(comparison("0.0", "amount", "gt", ""), name="Nope", do="save")
    response = post(client_for(expert), process, data)
    assert response.status_code == 422
    assert "Not saved: fix the rule first" in response.content.decode()
    assert not Rule.objects.exists()
    data = state(comparison("0.0", "amount", "gt", "1"), name="", do="save")
    response = post(client_for(expert), process, data)
    assert "name: give the rule a name" in response.content.decode()


def test_an_existing_rule_opens_in_the_builder_and_saves_as_a_new_version(process, expert):
    client = client_for(expert)
    data = state(
        comparison("0.0", "amount", "between", "10", high="20.5"),
        comparison("0.1", "po_status", "in", values=["missing", "mismatch"]),
        name="Range",
        do="save",
    )
    post(client, process, data)
    rule = Rule.objects.get()
    assert rule.current.condition["all"][1]["value"] == ["missing", "mismatch"]
    page = client.get(f"{url(process)}?rule={rule.pk}").content.decode()
    assert values_of(page, "c.0.0.value") == ["10"]
    assert values_of(page, "c.0.0.high") == ["20.5"]
    assert '<option value="mismatch" selected>' in page
    assert f'<option value="{rule.pk}" selected>a new version of “Range” (now v1)' in page
    data.update(target=str(rule.pk))
    post(client, process, data)
    assert rule.versions.count() == 1  # nothing changed
    data["c.0.0.high"] = "30"
    response = post(client, process, data, htmx=False)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.current.version == 2
    assert rule.current.condition["all"][0]["value"] == [10, 30]


def test_the_builder_works_without_javascript(process, expert):
    data = state(comparison("0.0", "", ""), do="add:0")
    response = post(client_for(expert), process, data, htmx=False)
    html = response.content.decode()
    assert "<html" in html
    assert 'name="c.0.1.field"' in html


def test_a_forged_provenance_is_ignored(process, expert):
    data = state(
        comparison("0.0", "amount", "gt", "1"),
        name="Mine",
        provenance='{"source": "induced"}',
        do="save",
    )
    post(client_for(expert), process, data)
    assert Rule.objects.get().provenance == {"source": "hand-written"}


def test_staff_cannot_use_the_builder_and_outsiders_get_404(process, staff, outsider):
    assert client_for(staff).get(url(process)).status_code == 403
    assert post(client_for(staff), process, state(do="add:0")).status_code == 403
    assert client_for(outsider).get(url(process)).status_code == 404
    page = client_for(staff).get(reverse("rule_list", args=[process.slug])).content.decode()
    assert 'id="rule-builder"' not in page


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "amount", "op": "le", "value": 1000.5},
        {"not": {"field": "note", "op": "is_null"}},
        {"any": [{"field": "due_date", "op": "lt", "value": "2026-01-31"},
                 {"field": "exception.fields", "op": "contains", "value": "amount"}]},
        {"all": [{"field": "vendor", "op": "in", "value": ["Acme", "Globex, Inc"]},
                 {"not": {"all": [{"field": "exception.reason", "op": "matches", "value": "^PO"}]}}]},
    ],
)  # fmt: skip
def test_conditions_survive_a_trip_through_the_form(process, condition):
    schema = process.schema
    loaded = builder.state_from_rule(condition, {"decide": "approve"}, schema)
    data = QueryDict(mutable=True)
    for row in builder.rows(loaded, schema):
        if row["type"] == "add":
            continue
        node, path = row["node"], row["path"]
        data[f"c.{path}.kind"] = node.kind
        if node.negated:
            data[f"c.{path}.not"] = "on"
        if node.kind == "cmp":
            data.update({f"c.{path}.field": node.field, f"c.{path}.op": node.op})
            data.update({f"c.{path}.value": node.value, f"c.{path}.high": node.high})
            data.setlist(f"c.{path}.values", node.values)
    again = builder.state_from_post(data)
    check = builder.check(again, schema)
    assert check.condition_error == ""
    assert check.condition == condition


def test_changing_a_field_clears_the_value_it_had(process, expert):
    data = state(comparison("0.0", "amount", "eq", "missing", was="po_status"))
    html = post(client_for(expert), process, data).content.decode()
    assert values_of(html, "c.0.0.value") == [""]
    assert '<option value="eq" selected>=</option>' in html


def test_a_bad_target_or_priority_is_refused_clearly(process, expert):
    client = client_for(expert)
    data = state(comparison("0.0", "amount", "gt", "1"), name="X", target="abc", priority="1e99")
    response = post(client, process, {**data, "do": "save"})
    assert response.status_code == 422
    assert "priority: a whole number" in response.content.decode()
    assert not Rule.objects.exists()
