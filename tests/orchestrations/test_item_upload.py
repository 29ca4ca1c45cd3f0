"""Items by file upload (the orchestration's upload page) and through the cases intake API with
`?orchestration=`: both check every row with the items API's validation, report bad rows by line
or row, and record nothing unless every row is good."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.cases.models import Case
from apps.orchestrations.models import Run
from apps.orchestrations.services import change_stage, create_version
from apps.rules.models import Rule
from tests.conftest import client_for


@pytest.fixture
def live(orchestration, manager, rule):
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    version = create_version(
        orchestration=orchestration, actor=manager,
        values={"rules": [{"rule": rule.pk}],
                "exception_filter": {"field": "amount", "op": "gt", "value": 100}},
    )  # fmt: skip
    return change_stage(version=version, stage="live", actor=manager)


def _file(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")


def check(client, orchestration, name, text, **extra):
    return client.post(
        reverse("orchestration_upload", args=[orchestration.slug]),
        {"action": "check", "file": _file(name, text), "file_format": "auto", **extra},
    )


GOOD_CSV = (
    "id,Vendor,amount,po_status,colour\n"
    "INV-1,Acme GmbH,50,matched,red\n"
    "INV-2,Acme GmbH,900,missing,blue\n"
    "INV-3,Beta AG,1200,matched,green\n"
)


def test_a_checked_csv_file_is_previewed_and_recorded_only_when_sent(expert, orchestration, live):
    client = client_for(expert)

    checked = check(client, orchestration, "items.csv", GOOD_CSV)

    assert checked.status_code == 200, checked.content
    page = checked.content.decode()
    assert "Every row is valid" in page
    assert "colour" in page  # the column no field takes, listed as ignored
    assert Run.objects.count() == 0  # a check records nothing
    signed = checked.context["signed"]

    sent = client.post(
        reverse("orchestration_upload", args=[orchestration.slug]),
        {"action": "send", "items": signed},
    )

    assert sent.status_code == 200, sent.content
    runs = {run.external_id: run for run in Run.objects.all()}
    assert set(runs) == {"INV-1", "INV-2", "INV-3"}
    assert runs["INV-1"].outcome == "standard"  # amount 50: not an exception
    assert runs["INV-2"].outcome == "decided"  # the rule: PO missing → request_info
    assert runs["INV-2"].label == "request_info"
    assert runs["INV-2"].fields["vendor"] == "Acme GmbH"
    assert "3 new runs" in sent.content.decode()
    # Sent twice (a double click): the external_ids give their runs back, nothing new.
    client.post(
        reverse("orchestration_upload", args=[orchestration.slug]),
        {"action": "send", "items": signed},
    )
    assert Run.objects.count() == 3


def test_bad_rows_are_reported_by_line_and_nothing_is_recorded(expert, orchestration, live):
    text = (
        "external_id,vendor,amount,po_status\n"
        "INV-1,Acme GmbH,50,matched\n"
        "INV-2,,900,missing\n"
        "INV-3,Beta AG,lots,maybe\n"
        "INV-1,Gamma,10,matched\n"
    )

    response = check(client_for(expert), orchestration, "items.csv", text)

    assert response.status_code == 422
    errors = response.context["checked"].errors
    by_line = {(e["line"], e["field"]) for e in errors}
    assert (3, "vendor") in by_line
    assert (4, "amount") in by_line
    assert (4, "po_status") in by_line
    assert (5, "external_id") in by_line  # repeats line 2's external id
    assert response.context["signed"] == ""  # no send button
    assert "3 rows must be fixed" in response.content.decode()
    assert Run.objects.count() == 0
    assert Case.objects.count() == 0


def test_a_json_file_takes_what_the_api_takes_with_its_row_errors(expert, orchestration, live):
    good = [{"external_id": "J-1", "fields": {"vendor": "Acme GmbH", "amount": 500}}]
    bad = [*good, {"external_id": "J-2", "fields": {"amount": 5}, "colour": "red"}]

    ok = check(client_for(expert), orchestration, "items.json", json.dumps(good))
    refused = check(client_for(expert), orchestration, "items.json", json.dumps(bad))

    assert ok.status_code == 200
    assert ok.context["checked"].valid
    assert refused.status_code == 422
    assert {(e["row"], e["field"]) for e in refused.context["checked"].errors} == {
        (2, "vendor"),
        (2, ""),  # unknown key(s): colour
    }
    assert Run.objects.count() == 0


def test_an_unreadable_or_oversized_file_is_a_form_error(expert, orchestration, live):
    client = client_for(expert)
    ragged = check(client, orchestration, "items.csv", "external_id,vendor\nA,b,c\n")
    unknown = check(client, orchestration, "items.xlsx", "whatever")
    too_many = check(
        client, orchestration, "items.jsonl",
        "".join(json.dumps({"external_id": f"N-{n}", "vendor": "V", "amount": 1}) + "\n"
                for n in range(501)),
    )  # fmt: skip

    assert ragged.status_code == 422
    assert "Line 2" in ragged.content.decode()
    assert unknown.status_code == 422
    assert "Can&#x27;t tell the format" in unknown.content.decode()
    assert too_many.status_code == 422
    assert "at most 500 items" in too_many.content.decode()
    assert Run.objects.count() == 0


def test_a_tampered_or_foreign_check_is_refused(expert, manager, orchestration, live):
    checked = check(client_for(expert), orchestration, "items.csv", GOOD_CSV)
    signed = checked.context["signed"]
    url = reverse("orchestration_upload", args=[orchestration.slug])

    tampered = client_for(expert).post(url, {"action": "send", "items": signed[:-3] + "xyz"})
    someone_else = client_for(manager).post(url, {"action": "send", "items": signed})

    assert tampered.status_code == 422
    assert someone_else.status_code == 422  # signed for the expert who checked it
    assert Run.objects.count() == 0


def test_who_may_send_a_file(staff, outsider, expert, orchestration, live):
    url = reverse("orchestration_upload", args=[orchestration.slug])
    assert client_for(expert).get(url).status_code == 200
    assert client_for(staff).get(url).status_code == 404
    assert client_for(outsider).get(url).status_code == 404


# --- the cases intake API with ?orchestration= ------------------------------------------------


def post_cases(client, process, body, orchestration=None):
    query = f"?orchestration={orchestration}" if orchestration else ""
    return client.post(
        f"/api/v1/processes/{process.slug}/cases{query}",
        json.dumps(body),
        content_type="application/json",
    )


def test_cases_sent_with_an_orchestration_go_through_it(expert, process, orchestration, live):
    rows = [
        {"external_id": "C-1", "fields": {"vendor": "Acme GmbH", "amount": 50}},
        {"external_id": "C-2", "fields": {"vendor": "Acme GmbH", "amount": 700,
                                          "po_status": "missing"}},
        {"external_id": "C-3", "fields": {"vendor": "Beta AG", "amount": 900,
                                          "po_status": "matched"}},
    ]  # fmt: skip

    response = post_cases(client_for(expert), process, rows, orchestration=orchestration.slug)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 3
    assert [r["outcome"] for r in body["runs"]] == ["standard", "decided", "routed"]
    # Only the routed item became a case (in the review queue), under the orchestration's name.
    assert [c["id"] is not None for c in body["cases"]] == [False, False, True]
    assert Case.objects.get(pk=body["cases"][2]["id"]).external_id == "invoice-flow/C-3"
    assert Case.objects.count() == 1


def test_bad_cases_through_an_orchestration_get_row_errors_and_nothing_is_recorded(
    expert, process, orchestration, live
):
    rows = [
        {"external_id": "C-1", "fields": {"vendor": "Acme GmbH", "amount": 50}},
        {"external_id": "C-2", "fields": {"amount": "many"},
         "exception": {"reason": "PO missing"}},
    ]  # fmt: skip

    response = post_cases(client_for(expert), process, rows, orchestration=orchestration.slug)

    assert response.status_code == 422
    [row] = response.json()["rows"]
    assert row["row"] == 1
    assert {"fields.vendor", "fields.amount", "row"} <= set(row["errors"])  # row: `exception`
    assert Run.objects.count() == 0
    assert Case.objects.count() == 0


def test_an_orchestration_of_another_process_or_unseen_is_a_422(
    expert, staff, team, process, orchestration, live
):
    from tests.factories import make_process

    other = make_process(team, slug="other-process")
    row = {"external_id": "C-1", "fields": {"vendor": "Acme GmbH", "amount": 50}}

    wrong_process = post_cases(client_for(expert), other, row, orchestration=orchestration.slug)
    unknown = post_cases(client_for(expert), process, row, orchestration="nope")
    unseen = post_cases(client_for(staff), process, row, orchestration=orchestration.slug)

    for response in (wrong_process, unknown, unseen):
        assert response.status_code == 422, response.content
        assert "has no orchestration" in response.json()["detail"]
    assert Run.objects.count() == 0
    # Without the parameter the intake is unchanged: the row becomes a case at once.
    plain = post_cases(client_for(staff), process, row)
    assert plain.status_code == 201
    assert "runs" not in plain.json()
    assert Case.objects.get().external_id == "C-1"
