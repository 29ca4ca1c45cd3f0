"""A rule on a field the schema later dropped: skipped in evaluation, flagged on the rules page."""

from apps.cases.services.processes import update_process_schema
from apps.rules.services.authoring import create_rule, enable_rule
from apps.rules.services.backtest import backtest_rule
from apps.rules.services.evaluation import first_match
from tests.conftest import client_for
from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS, make_cases


def _enabled(process, owner, name, condition, action, priority):
    rule = create_rule(
        process=process, owner=owner, name=name, condition=condition, action=action,
        priority=priority,
    )  # fmt: skip
    backtest_rule(rule=rule)
    rule.refresh_from_db()
    return enable_rule(rule=rule)


def test_a_rule_on_a_dropped_field_is_skipped_and_flagged(process, expert):
    _enabled(process, expert, "Notes", {"field": "note", "op": "contains", "value": "x"},
             {"flag": "has a note"}, 10)  # fmt: skip
    _enabled(process, expert, "Missing PO", {"field": "po_status", "op": "eq", "value": "missing"},
             {"decide": "request_info"}, 20)  # fmt: skip
    without_note = [spec for spec in INVOICE_FIELDS if spec["name"] != "note"]
    update_process_schema(
        process=process, fields=without_note, decisions=INVOICE_DECISIONS, changed_by=expert
    )
    process.refresh_from_db()
    [case] = make_cases(process, 1)
    hit = first_match(case=case)
    assert hit is not None
    assert hit.rule.name == "Missing PO"
    page = client_for(expert).get(f"/processes/{process.slug}/rules/")
    assert page.status_code == 200
    assert "no longer fits the schema" in page.text
    assert "unknown field &#x27;note&#x27;" in page.text or "unknown field 'note'" in page.text
