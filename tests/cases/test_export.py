"""Exporting cases with their final decisions as streamed CSV and JSONL (API, page, service)."""

import csv
import io
import json

from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from apps.cases.services.decisions import record_decision
from apps.cases.services.export import TEXT_CHUNK, stream_export
from apps.cases.services.intake import create_cases
from apps.cases.services.processes import update_process_schema
from apps.people import services
from tests.conftest import client_for
from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS, make_cases, make_process

API_URL = "/api/v1/processes/invoices/export"


def token_client(user) -> Client:
    _, raw = services.create_api_token(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def body_of(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def two_versions(process, manager, expert):
    """A decided v1 case, an open v1 case, and a v2 case with the field added in v2."""
    decided, untouched = make_cases(process, 2)
    record_decision(
        case=decided, expert=expert, label="reject", reason_code="duplicate", rationale="seen"
    )
    update_process_schema(
        process=process,
        fields=[*INVOICE_FIELDS, {"name": "urgent", "type": "boolean"}],
        decisions=INVOICE_DECISIONS,
        changed_by=manager,
    )
    process.refresh_from_db()
    (newer,) = create_cases(
        process=process,
        rows=[{"external_id": "V2-1", "fields": {"vendor": 'Quote "Co", Ltd', "amount": "1,250.50",
               "urgent": True, "note": "line one\nline two"}}],
        embed=False,
    ).cases  # fmt: skip
    decided.refresh_from_db()
    return decided, untouched, newer


def test_csv_export_has_every_case_and_every_schema_versions_field(manager, expert, process):
    decided, untouched, newer = two_versions(process, manager, expert)
    response = token_client(expert).get(f"{API_URL}?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="invoices-cases-' in response["Content-Disposition"]
    assert response["Content-Disposition"].endswith('.csv"')
    reader = csv.DictReader(io.StringIO(body_of(response)))
    assert reader.fieldnames == [
        "id", "external_id", "status", "vendor", "amount", "po_status", "due_date", "note",
        "urgent", "exception_reason", "exception_fields", "final_label", "final_reason_code",
        "decided_at", "created_at", "is_synthetic",
    ]  # fmt: skip
    rows = {int(r["id"]): r for r in reader}
    assert list(rows) == [decided.pk, untouched.pk, newer.pk]  # oldest first
    first = rows[decided.pk]
    assert first["status"] == "decided"
    assert first["final_label"] == "reject"
    assert first["final_reason_code"] == "duplicate"
    assert first["decided_at"] == decided.decided_at.isoformat()
    assert first["exception_reason"] == "PO missing"
    assert first["exception_fields"] == "po_status"
    assert first["urgent"] == ""
    assert first["is_synthetic"] == "false"
    assert rows[untouched.pk]["final_label"] == ""
    assert rows[untouched.pk]["decided_at"] == ""
    last = rows[newer.pk]
    assert last["external_id"] == "V2-1"
    assert last["vendor"] == 'Quote "Co", Ltd'
    assert float(last["amount"]) == 1250.5
    assert last["urgent"] == "true"
    assert last["note"] == "line one\nline two"
    assert last["created_at"] == newer.created_at.isoformat()


def test_jsonl_export_parses_back_to_the_cases(manager, expert, process):
    decided, untouched, newer = two_versions(process, manager, expert)
    response = client_for(expert).get(f"{API_URL}?format=jsonl")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert response["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in body_of(response).splitlines()]
    assert [line["id"] for line in lines] == [decided.pk, untouched.pk, newer.pk]
    first = lines[0]
    assert first == {
        "id": decided.pk,
        "external_id": decided.external_id,
        "status": "decided",
        "fields": decided.fields,
        "exception_reason": "PO missing",
        "exception_fields": ["po_status"],
        "final_label": "reject",
        "final_reason_code": "duplicate",
        "decided_at": decided.decided_at.isoformat(),
        "created_at": decided.created_at.isoformat(),
        "is_synthetic": False,
    }
    assert lines[1]["decided_at"] is None
    assert lines[2]["fields"] == {
        "vendor": 'Quote "Co", Ltd', "amount": 1250.5, "urgent": True,
        "note": "line one\nline two",
    }  # fmt: skip


def test_a_field_named_like_a_case_column_gets_a_prefixed_header(team, expert):
    process = make_process(
        team,
        slug="statusy",
        priority_field="",
        fields=[{"name": "status", "type": "text"}, {"name": "id", "type": "number"}],
    )
    create_cases(process=process, rows=[{"fields": {"status": "late", "id": 7}}], embed=False)
    text = "".join(stream_export(process=process, fmt="csv"))
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames[:5] == ["id", "external_id", "status", "fields.status", "fields.id"]
    (row,) = reader
    assert row["status"] == "open"
    assert row["fields.status"] == "late"
    assert row["fields.id"] == "7"


def test_export_streams_in_several_chunks(expert, process):
    make_cases(process, TEXT_CHUNK + 5)
    chunks = list(stream_export(process=process, fmt="jsonl"))
    assert len(chunks) == 2
    assert sum(chunk.count("\n") for chunk in chunks) == TEXT_CHUNK + 5
    csv_chunks = list(stream_export(process=process, fmt="csv"))
    assert len(csv_chunks) == 2
    assert sum(chunk.count("\n") for chunk in csv_chunks) == TEXT_CHUNK + 6  # with the header


def test_empty_process_exports_a_header_only(expert, process):
    assert "".join(stream_export(process=process, fmt="csv")).startswith("id,external_id,status,")
    assert "".join(stream_export(process=process, fmt="jsonl")) == ""


def test_unknown_format_is_422(expert, process):
    response = client_for(expert).get(f"{API_URL}?format=xlsx")
    assert response.status_code == 422
    assert "csv or jsonl" in response.json()["detail"]
    page = client_for(expert).get(reverse("process_export", args=["invoices"]) + "?format=xml")
    assert page.status_code == 422
    assert "csv or jsonl" in page.content.decode()


def test_outsider_gets_404_from_api_and_page(outsider, process):
    make_cases(process, 1)
    assert client_for(outsider).get(f"{API_URL}?format=csv").status_code == 404
    url = reverse("process_export", args=["invoices"])
    assert client_for(outsider).get(url).status_code == 404


def test_export_page_streams_a_csv_download_for_team_members(staff, process):
    (case,) = make_cases(process, 1)
    response = client_for(staff).get(reverse("process_export", args=["invoices"]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="invoices-cases-')
    rows = list(csv.DictReader(io.StringIO(body_of(response))))
    assert [int(r["id"]) for r in rows] == [case.pk]
    jsonl = client_for(staff).get(reverse("process_export", args=["invoices"]) + "?format=jsonl")
    assert json.loads(body_of(jsonl))["external_id"] == case.external_id


def test_export_page_needs_a_login(process):
    url = reverse("process_export", args=["invoices"])
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_csv_export_neutralises_formulas_and_keeps_numbers_on_page_and_api(team, expert):
    numbers = make_process(
        team,
        slug="invoices",
        fields=[*INVOICE_FIELDS, {"name": "days", "type": "number"}],
    )
    create_cases(
        process=numbers,
        rows=[
            {"external_id": "@SUM(1+1)",
             "fields": {"vendor": "=cmd|' /C calc'!A0", "amount": -5, "days": -5,
                        "note": "-2+3 \r=1+1"},
             "exception": {"reason": "+HYPERLINK(\"http://x\")", "fields": []}},
            {"external_id": "\tTAB", "fields": {"vendor": "Acme", "amount": "1,250.50", "days": 3,
                                                "note": "\r=CR"}},
        ],
        embed=False,
    )  # fmt: skip
    for response in (
        token_client(expert).get(f"{API_URL}?format=csv"),
        client_for(expert).get(reverse("process_export", args=["invoices"])),
    ):
        assert response.status_code == 200
        first, second = csv.DictReader(io.StringIO(body_of(response)))
        assert first["external_id"] == "'@SUM(1+1)"
        assert first["vendor"] == "'=cmd|' /C calc'!A0"
        assert first["note"] == "'-2+3 \r=1+1"
        assert first["exception_reason"] == '\'+HYPERLINK("http://x")'
        # Numbers stay numbers: a spreadsheet reads -5 and runs nothing.
        assert float(first["amount"]) == -5
        assert first["days"] == "-5"
        assert second["external_id"] == "'\tTAB"
        assert second["note"] == "'\r=CR"
        assert second["amount"] == "1250.5"
    # JSONL is not read by spreadsheets: values stay exactly as stored.
    jsonl = json.loads(body_of(token_client(expert).get(f"{API_URL}?format=jsonl")).splitlines()[0])
    assert jsonl["fields"]["vendor"] == "=cmd|' /C calc'!A0"
