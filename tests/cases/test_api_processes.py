"""The processes API: create, list, get, and versioned schema changes."""

import json

import pytest
from django.test import Client

from apps.cases.models import Case, Process
from apps.people import services
from tests.conftest import client_for
from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS, make_cases, make_process

ISSUE_BODY = {
    "team": "ap",
    "name": "Invoice exceptions",
    "slug": "invoice-exceptions",
    "minutes_per_case": 6,
    "overlap": 1,
    "fields": [
        {"name": "amount", "type": "money", "required": True},
        {"name": "status", "type": "category", "choices": ["a", "b"]},
        {"name": "note", "type": "text"},
    ],
    "decisions": [
        {"label": "approve", "reason_codes": ["ok"]},
        {"label": "reject", "reason_codes": ["dup", "fraud"]},
    ],
}


def token_client(user) -> Client:
    _, raw = services.create_api_token(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post_json(client: Client, url: str, body: object, method: str = "post"):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def test_manager_creates_a_process_with_the_issue_body_using_a_token(manager):
    response = post_json(token_client(manager), "/api/v1/processes", ISSUE_BODY)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "invoice-exceptions"
    assert body["team"] == "ap"
    assert body["schema_version"] == 1
    assert body["minutes_per_case"] == 6
    assert [f["name"] for f in body["fields"]] == ["amount", "status", "note"]
    assert body["fields"][1]["choices"] == ["a", "b"]
    assert [d["label"] for d in body["decisions"]] == ["approve", "reject"]
    process = Process.objects.get(slug="invoice-exceptions")
    assert process.team.slug == "ap"
    assert process.schema.created_by == manager


def test_admin_may_create_a_process_too(admin):
    response = post_json(client_for(admin), "/api/v1/processes", ISSUE_BODY)
    assert response.status_code == 201


def test_expert_cannot_create_a_process(expert):
    response = post_json(token_client(expert), "/api/v1/processes", ISSUE_BODY)
    assert response.status_code == 403
    assert "managers and admins" in response.json()["detail"]
    assert not Process.objects.exists()


def test_unknown_field_type_is_refused_naming_the_field(manager):
    body = {**ISSUE_BODY, "fields": [*ISSUE_BODY["fields"], {"name": "colour", "type": "rgb"}]}
    response = post_json(client_for(manager), "/api/v1/processes", body)
    assert response.status_code == 422
    assert "fields[3].type" in response.json()["detail"]
    assert "'rgb'" in response.json()["detail"]
    assert not Process.objects.exists()


def test_unknown_priority_field_is_refused(manager):
    body = {**ISSUE_BODY, "priority_field": "weight"}
    response = post_json(client_for(manager), "/api/v1/processes", body)
    assert response.status_code == 422
    assert "priority_field: 'weight' is not a field" in response.json()["detail"]


def test_duplicate_slug_is_refused(manager, process):
    response = post_json(
        client_for(manager), "/api/v1/processes", {**ISSUE_BODY, "slug": "invoices"}
    )
    assert response.status_code == 422
    assert "slug 'invoices' already exists" in response.json()["detail"]
    assert Process.objects.count() == 1


def test_malformed_slug_is_refused_naming_the_slug(manager):
    response = post_json(
        client_for(manager), "/api/v1/processes", {**ISSUE_BODY, "slug": "no way!"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("slug: ")
    assert not Process.objects.exists()


def test_team_the_caller_is_not_in_gets_404(outsider, team):
    response = post_json(client_for(outsider), "/api/v1/processes", ISSUE_BODY)
    assert response.status_code == 404
    assert not Process.objects.exists()


def test_missing_name_is_a_422_from_the_schema(manager):
    body = {k: v for k, v in ISSUE_BODY.items() if k != "name"}
    response = post_json(client_for(manager), "/api/v1/processes", body)
    assert response.status_code == 422
    assert not Process.objects.exists()


def test_list_shows_only_the_callers_teams_processes(expert, outsider, team, other_team):
    make_process(team)
    make_process(other_team, slug="claims-intake")
    response = token_client(expert).get("/api/v1/processes")
    assert response.status_code == 200
    assert [p["slug"] for p in response.json()] == ["invoices"]
    outsiders = client_for(outsider).get("/api/v1/processes").json()
    assert [p["slug"] for p in outsiders] == ["claims-intake"]


def test_get_process_shows_schema_version_fields_and_decisions(expert, process):
    response = client_for(expert).get("/api/v1/processes/invoices")
    assert response.status_code == 200
    body = response.json()
    assert body["schema_version"] == 1
    assert body["priority_field"] == "amount"
    assert [f["name"] for f in body["fields"]] == [f["name"] for f in INVOICE_FIELDS]
    assert body["decisions"][1]["reason_codes"] == ["duplicate", "fraud"]


def test_another_teams_process_is_404(outsider, process):
    assert client_for(outsider).get("/api/v1/processes/invoices").status_code == 404
    assert client_for(outsider).get("/api/v1/processes/nope").status_code == 404


def test_schema_update_makes_a_new_version_and_stored_cases_keep_theirs(manager, expert, process):
    (old_case,) = make_cases(process, 1)
    new_fields = [*INVOICE_FIELDS, {"name": "region", "type": "category", "choices": ["eu", "us"]}]
    response = post_json(
        token_client(manager),
        "/api/v1/processes/invoices/schema",
        {"fields": new_fields, "decisions": INVOICE_DECISIONS},
        method="put",
    )
    assert response.status_code == 200, response.content
    assert response.json()["schema_version"] == 2
    assert response.json()["fields"][-1]["name"] == "region"

    old_case.refresh_from_db()
    assert old_case.schema_version.version == 1
    detail = client_for(manager).get(f"/api/v1/cases/{old_case.pk}").json()
    assert detail["schema_version"] == 1
    sent = post_json(
        client_for(expert),
        "/api/v1/processes/invoices/cases",
        {"fields": {"vendor": "Beta", "amount": 5, "region": "eu"}},
    )
    assert sent.status_code == 201, sent.content
    new_case = Case.objects.get(pk=sent.json()["cases"][0]["id"])
    assert new_case.schema_version.version == 2
    assert new_case.fields["region"] == "eu"


def test_same_schema_sent_again_keeps_the_version(manager, process):
    response = post_json(
        client_for(manager),
        "/api/v1/processes/invoices/schema",
        {"fields": INVOICE_FIELDS, "decisions": INVOICE_DECISIONS},
        method="put",
    )
    assert response.status_code == 200
    assert response.json()["schema_version"] == 1


def test_expert_cannot_change_the_schema(expert, process):
    response = post_json(
        client_for(expert),
        "/api/v1/processes/invoices/schema",
        {"fields": INVOICE_FIELDS, "decisions": INVOICE_DECISIONS},
        method="put",
    )
    assert response.status_code == 403
    process.refresh_from_db()
    assert process.schema.version == 1


def test_schema_update_that_drops_the_priority_field_is_refused(manager, process):
    fields = [f for f in INVOICE_FIELDS if f["name"] != "amount"]
    response = post_json(
        client_for(manager),
        "/api/v1/processes/invoices/schema",
        {"fields": fields, "decisions": INVOICE_DECISIONS},
        method="put",
    )
    assert response.status_code == 422
    assert "priority_field: 'amount' is not a field" in response.json()["detail"]
    process.refresh_from_db()
    assert process.schema.version == 1


def test_openapi_lists_the_cases_paths_with_summaries(expert):
    response = client_for(expert).get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/api/v1/processes": {"get", "post"},
        "/api/v1/processes/{slug}": {"get"},
        "/api/v1/processes/{slug}/schema": {"put"},
        "/api/v1/processes/{slug}/cases": {"get", "post"},
        "/api/v1/processes/{slug}/decisions": {"post"},
        "/api/v1/processes/{slug}/export": {"get"},
        "/api/v1/cases/{case_id}": {"get"},
        "/api/v1/cases/{case_id}/decisions": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            assert paths[path][method]["summary"], (path, method)
    intake = paths["/api/v1/processes/{slug}/cases"]["post"]
    assert intake["requestBody"]["content"]["application/json"]["schema"]["oneOf"]


def _with_field(**extra) -> dict:
    body = json.loads(json.dumps(ISSUE_BODY))
    body["fields"][0].update(extra)
    return body


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"help_text": "x" * 501}, "fields[0].help_text: is 501 characters long; at most 500"),
        ({"label": "L" * 121}, "fields[0].label: is 121 characters long; at most 120"),
        ({"currency": "EURO"}, "fields[0].currency: is 4 characters long; at most 3"),
        ({"currency": "E1"}, "fields[0].currency: must be a 3-letter code"),
        ({"group": "g" * 61}, "fields[0].group: is 61 characters long; at most 60"),
    ],
)
def test_schema_settings_that_are_too_long_are_refused_not_cut(manager, extra, message):
    response = post_json(client_for(manager), "/api/v1/processes", _with_field(**extra))
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert not Process.objects.filter(slug="invoice-exceptions").exists()


def test_a_three_letter_currency_is_kept_upper_cased(manager):
    response = post_json(client_for(manager), "/api/v1/processes", _with_field(currency="eur"))
    assert response.status_code == 201, response.content
    assert response.json()["fields"][0]["currency"] == "EUR"
