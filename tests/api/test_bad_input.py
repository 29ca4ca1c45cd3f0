"""Bad input to the API is a clear 4xx with a JSON `detail`, never a 500 or a traceback: NUL
characters, absurdly nested JSON, bodies over the size limit, wrongly typed rows; and a 500 that
does happen is JSON with an id that is in the log."""

import json
import logging

import pytest
from django.test import override_settings

from apps.cases.models import Case, Decision, Process
from apps.core.api import MAX_JSON_DEPTH
from apps.fabric.models import FabricTask
from tests.api.conftest import token_client
from tests.factories import make_cases

NUL = "\u0000"
API = "/api/v1"

# One write per kind of stored string, each with a NUL inside the value named by the second item.
NUL_WRITES = [
    ("post", "/processes", "name", {
        "team": "ap", "name": f"Bad{NUL}name", "slug": "bad",
        "fields": [{"name": "amount", "type": "number"}],
        "decisions": [{"label": "approve"}],
    }),
    ("put", "/processes/invoices/schema", "fields.0.label", {
        "fields": [{"name": "amount", "type": "number", "label": f"A{NUL}"}],
        "decisions": [{"label": "approve"}],
    }),
    ("post", "/processes/invoices/cases", "fields.vendor", {
        "external_id": "N-1", "fields": {"vendor": f"Acme{NUL}", "amount": 1, "po_status": "missing"},
    }),
    ("post", "/processes/invoices/cases", "external_id", [
        {"external_id": f"N{NUL}2", "fields": {"vendor": "Acme", "amount": 1, "po_status": "missing"}},
    ]),
    ("post", "/processes/invoices/decisions", "0.rationale", [
        {"external_id": "X", "label": "approve", "expert": "ada",
         "decided_at": "2024-01-01T00:00:00Z", "rationale": f"fine{NUL}"},
    ]),
    ("post", "/processes/invoices/rules", "name", {
        "name": f"r{NUL}", "condition": {"field": "amount", "op": "gt", "value": 1},
        "action": {"label": "approve"},
    }),
    ("post", "/processes/invoices/rules/rejections", "reason", {
        "condition": {"field": "amount", "op": "gt", "value": 1},
        "action": {"label": "approve"}, "reason": f"no{NUL}",
    }),
    ("post", "/processes/invoices/autonomy/shadow", "reason", {"target": 1, "reason": f"x{NUL}"}),
    ("post", "/fabric/tasks", "kind", {"kind": f"probe{NUL}"}),
    ("post", "/fabric/enroll", "name", {"token": "t", "name": f"n{NUL}", "fingerprint": "ab"}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "field", "body"), NUL_WRITES)
def test_a_nul_character_in_a_stored_string_is_a_422_naming_the_field(
    admin, process, method, path, field, body
):
    response = getattr(token_client(admin), method)(
        API + path, json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert field in detail
    assert "NUL" in detail
    assert Process.objects.count() == 1
    assert not Case.objects.exists()
    assert not FabricTask.objects.exists()


def test_a_nul_character_in_a_case_decision_is_refused(expert, process):
    case = make_cases(process, 1)[0]
    response = token_client(expert).post(
        f"{API}/cases/{case.pk}/decisions",
        json.dumps({"label": "approve", "rationale": f"ok{NUL}"}),
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "rationale" in response.json()["detail"]
    assert not Decision.objects.exists()


def test_a_nul_character_in_a_query_parameter_is_a_422_naming_it(expert, process):
    response = token_client(expert).get(f"{API}/processes/invoices/cases?external_id=a%00b")
    assert response.status_code == 422
    assert "external_id" in response.json()["detail"]


def test_a_nul_character_in_a_path_is_a_json_404(expert, process):
    for path in ("/processes/invoi%00ces", "/processes/invoices/models/v%001"):
        response = token_client(expert).get(API + path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize("path", ["/processes/invoices/cases", "/processes/invoices/decisions"])
def test_deeply_nested_json_on_the_intake_endpoints_is_a_400(admin, process, path):
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        body = "[" * depth + "]" * depth
        response = token_client(admin).post(API + path, body, content_type="application/json")
        assert response.status_code == 400, (depth, response.content[:300])
        assert (
            response.json()["detail"] == f"the body is nested deeper than {MAX_JSON_DEPTH} levels"
        )
    assert not Case.objects.exists()


def test_deeply_nested_json_on_a_typed_endpoint_is_a_400(admin, process):
    body = '{"label": "approve", "key_factors": ' + "[" * 5000 + "]" * 5000 + "}"
    case = make_cases(process, 1)[0]
    response = token_client(admin).post(
        f"{API}/cases/{case.pk}/decisions", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


def test_a_body_that_is_not_json_is_a_400_saying_why(admin, process):
    for path in ("/processes", "/processes/invoices/cases"):
        response = token_client(admin).post(API + path, "{nope", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["detail"].startswith("the body is not valid JSON: Expecting")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_a_body_over_data_upload_max_memory_size_is_a_json_413(admin, process):
    rows = [
        {"external_id": f"B-{i}", "fields": {"vendor": "Acme", "amount": i, "po_status": "missing"}}
        for i in range(200)
    ]
    for path in ("/processes/invoices/cases", "/processes"):
        response = token_client(admin).post(
            API + path, json.dumps(rows), content_type="application/json"
        )
        assert response.status_code == 413, path
        assert response.json() == {
            "detail": "the body is larger than 10,000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
        }
    assert not Case.objects.exists()


def test_a_decision_row_whose_expert_is_an_object_is_a_row_error(admin, process):
    make_cases(process, 1, vendor="Acme")
    external_id = Case.objects.get().external_id
    row = {"external_id": external_id, "label": "approve", "decided_at": "2024-01-01T00:00:00Z"}
    response = token_client(admin).post(
        f"{API}/processes/invoices/decisions",
        json.dumps([{**row, "expert": {"username": "ada"}}, {**row, "expert": ["ada"]}]),
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert response.json()["rows"] == [
        {"row": 0, "errors": {"expert": "must be a username (text)"}},
        {"row": 1, "errors": {"expert": "must be a username (text)"}},
    ]
    assert not Decision.objects.exists()


@override_settings(DEBUG=True)
def test_an_unexpected_error_is_a_json_500_with_an_id_that_is_logged(admin, process, caplog):
    # A schema whose stored decisions are not a list: nothing orchcap writes, so it breaks.
    process.schema.__class__.objects.filter(pk=process.schema.pk).update(decisions={"x": 1})
    client = token_client(admin)
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="orchcap.api"):
        response = client.get(f"{API}/processes/invoices")
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"detail", "id"}
    assert body["detail"] == "internal error"
    assert "Traceback" not in response.content.decode()
    [record] = [r for r in caplog.records if body["id"] in r.getMessage()]
    assert record.exc_info is not None


def test_a_path_no_route_matches_is_a_json_404(admin, process):
    for path in ("/processes/invoices/models/abc", "/processes/invoices/models/jobs/x", "/nope"):
        response = token_client(admin).get(API + path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not Found"}


def test_a_path_parameter_of_the_wrong_type_is_a_422_naming_it(admin):
    for path in ("/fabric/tasks/abc", "/cases/abc"):
        response = token_client(admin).get(API + path)
        assert response.status_code == 422, path
        assert response.json()["detail"].split(":")[0] in ("task_id", "case_id")


@override_settings(DEBUG=True)
def test_every_404_has_the_same_body_whatever_debug_says(admin, outsider, process):
    case = make_cases(process, 1)[0]
    answers = [
        token_client(outsider).get(f"{API}/processes/invoices"),
        token_client(outsider).get(f"{API}/cases/{case.pk}"),
        token_client(admin).get(f"{API}/cases/999999"),
        token_client(admin).get(f"{API}/processes/invoices/models/jobs/999999"),
        token_client(admin).get(f"{API}/fabric/tasks/999999"),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(404, {"detail": "Not Found"})] * 5


def test_a_body_missing_its_keys_is_a_422_whose_items_name_path_and_message(admin, process):
    # The same item shape as a schema's own problems, so one client handles every 422.
    response = token_client(admin).put(
        f"{API}/processes/invoices/schema", "{}", content_type="application/json"
    )
    assert response.status_code == 422
    answer = response.json()
    assert answer["detail"] == "fields: Field required; decisions: Field required"
    assert [(e["path"], e["message"]) for e in answer["errors"]] == [
        ("fields", "Field required"),
        ("decisions", "Field required"),
    ]
