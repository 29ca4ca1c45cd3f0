"""The schema validator reports every problem at once, each with the path of the part at fault,
and the API answers with all of them too."""

import json

from django.test import Client

from apps.cases.models import Process
from apps.cases.schema import SchemaInvalid, clean_schema
from tests.conftest import client_for
from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS

BROKEN_FIELDS = [
    {"name": "Amount", "type": "money"},
    {"name": "status", "type": "category"},
    {"name": "colour", "type": "rgb"},
    {"name": "status", "type": "text", "label": "x" * 121},
    {"name": "cost", "type": "money", "currency": "EURO"},
]
BROKEN_DECISIONS = [
    {"label": "approve", "reason_codes": ["ok", "ok"]},
    {"label": "approve"},
    {"label": "", "reason_codes": "ok"},
]
# The API's types already refuse reason codes that are not a list.
API_DECISIONS = [*BROKEN_DECISIONS[:2], {"label": ""}]


def _problems(**schema: object) -> list[tuple[str, str]]:
    try:
        clean_schema(**schema)
    except SchemaInvalid as exc:
        return [(problem.path, problem.message) for problem in exc.problems]
    raise AssertionError("the schema was accepted")


def test_every_problem_is_reported_with_its_path_not_only_the_first():
    problems = _problems(fields=BROKEN_FIELDS, decisions=BROKEN_DECISIONS, priority_field="weight")
    assert [path for path, _ in problems] == [
        "fields[0].name",
        "fields[1].choices",
        "fields[2].type",
        "fields[3].name",
        "fields[3].label",
        "fields[4].currency",
        "decisions[0].reason_codes",
        "decisions[1].label",
        "decisions[2].label",
        "decisions[2].reason_codes",
        "priority_field",
    ]
    messages = dict(problems)
    assert "got 'Amount'" in messages["fields[0].name"]
    assert "'rgb'" in messages["fields[2].type"]
    assert "'status' is used by another field" in messages["fields[3].name"]
    assert "duplicates: ok" in messages["decisions[0].reason_codes"]
    assert messages["priority_field"] == "'weight' is not a field of the schema"


def test_a_priority_field_of_the_wrong_type_is_named_with_its_type():
    problems = _problems(fields=INVOICE_FIELDS, decisions=INVOICE_DECISIONS, priority_field="note")
    assert problems == [
        (
            "priority_field",
            "'note' is a text field; the priority must be a number, money, date, datetime or "
            "boolean field",
        )
    ]


def test_empty_lists_and_too_many_decisions_are_reported_together():
    ten = [{"label": f"option {n}"} for n in range(10)]
    problems = _problems(fields=[], decisions=ten)
    assert [path for path, _ in problems] == ["fields", "decisions"]
    assert "has 10 options; at most 9" in problems[1][1]


def test_a_valid_schema_is_normalised():
    specs, options = clean_schema(
        fields=INVOICE_FIELDS, decisions=INVOICE_DECISIONS, priority_field="amount"
    )
    assert specs[1] == {
        "name": "amount",
        "type": "money",
        "label": "Amount",
        "help_text": "",
        "required": True,
        "currency": "EUR",
    }
    assert options[2] == {"label": "request_info", "description": "", "reason_codes": []}


def _post(client: Client, url: str, body: object, method: str = "post"):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def test_the_api_reports_every_schema_problem_with_its_path(manager):
    body = {
        "team": "ap",
        "name": "Broken",
        "fields": BROKEN_FIELDS,
        "decisions": API_DECISIONS,
        "priority_field": "weight",
    }
    response = _post(client_for(manager), "/api/v1/processes", body)
    assert response.status_code == 422
    answer = response.json()
    assert len(answer["errors"]) == 10
    assert answer["errors"][0] == {
        "path": "fields[0].name",
        "message": "must be lower_snake_case (a letter, then letters, digits, _), got 'Amount'",
    }
    # The one-line detail lists them all, each after its path.
    assert "fields[2].type: must be one of" in answer["detail"]
    assert "priority_field: 'weight' is not a field of the schema" in answer["detail"]
    assert not Process.objects.exists()


def test_a_schema_update_through_the_api_reports_every_problem(manager, process):
    response = _post(
        client_for(manager),
        f"/api/v1/processes/{process.slug}/schema",
        {"fields": [{"name": "note", "type": "text"}], "decisions": API_DECISIONS},
        method="put",
    )
    assert response.status_code == 422
    paths = [error["path"] for error in response.json()["errors"]]
    # The process's priority field (amount) is gone from the new fields: reported with the rest.
    assert paths == [
        "decisions[0].reason_codes",
        "decisions[1].label",
        "decisions[2].label",
        "priority_field",
    ]
    process.refresh_from_db()
    assert process.schema.version == 1
