"""The process form's schema editor: rows added, moved and removed by buttons (htmx or a plain
post), every schema problem shown next to its input at once, JSON import and download."""

import json
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.cases.models import Process
from apps.cases.schema_editor import field_row
from tests.conftest import client_for
from tests.factories import INVOICE_DECISIONS, INVOICE_FIELDS, schema_form_data


def _form(team, fields=INVOICE_FIELDS, decisions=INVOICE_DECISIONS, **overrides):
    return {
        "team": str(team.pk),
        "name": "Supplier onboarding",
        "minutes_per_case": "4",
        "overlap": "1",
        "priority_field": "amount",
        "priority_descending": "on",
        **schema_form_data(fields, decisions),
        **overrides,
    }


def _names(response):
    return [row["name"] for row in response.context["editor"].field_values()]


def test_the_new_process_page_starts_with_an_empty_row_of_each(manager):
    response = client_for(manager).get(reverse("process_create"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="fields-0-name"' in body
    assert 'name="decisions-0-label"' in body
    assert 'name="fields-1-name"' not in body


def test_the_edit_page_shows_the_schema_as_rows(manager, process):
    response = client_for(manager).get(reverse("process_edit", args=[process.slug]))
    body = response.content.decode()
    assert 'name="fields-4-name" value="note"' in body
    assert "matched\nmissing\nmismatch</textarea>" in body
    assert 'name="decisions-1-label" value="reject"' in body


def test_rows_are_added_moved_and_removed_by_plain_posts(manager, team):
    client = client_for(manager)
    url = reverse("process_create")
    added = client.post(url, {**_form(team), "editor": "add-field"})
    assert added.status_code == 200
    assert _names(added) == ["vendor", "amount", "po_status", "due_date", "note", ""]
    # What was typed elsewhere on the form comes back as typed, not judged yet.
    assert 'value="Supplier onboarding"' in added.content.decode()
    assert "This field is required" not in added.content.decode()
    moved = client.post(url, {**_form(team), "editor": "up-field-2"})
    assert _names(moved) == ["vendor", "po_status", "amount", "due_date", "note"]
    removed = client.post(url, {**_form(team), "editor": "remove-field-0"})
    assert _names(removed) == ["amount", "po_status", "due_date", "note"]
    moved_down = client.post(url, {**_form(team), "editor": "down-decision-0"})
    assert [r["label"] for r in moved_down.context["editor"].decision_values()] == [
        "reject",
        "approve",
        "request_info",
    ]
    assert not Process.objects.exists()


def test_an_htmx_row_edit_answers_only_the_editor_with_the_new_row_focused(manager, team):
    response = client_for(manager).post(
        reverse("process_create"), {**_form(team), "editor": "add-field"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="schema-editor"')
    assert "<html" not in body
    assert 'name="fields-5-name"' in body
    assert re.search(r'<input[^>]*name="fields-5-name"[^>]*autofocus', body)


def test_every_schema_problem_is_shown_next_to_its_input_at_once(manager, team):
    fields = [
        {"name": "Vendor", "type": "text"},
        {"name": "status", "type": "category"},
        {"name": "amount", "type": "money", "currency": "EURO"},
        {"name": "status", "type": "text"},
    ]
    decisions = [{"label": "approve", "reason_codes": ["ok", "ok"]}, {"label": "approve"}]
    response = client_for(manager).post(
        reverse("process_create"),
        _form(team, fields, decisions, name="", priority_field="weight"),
    )
    assert response.status_code == 422
    editor = response.context["editor"]
    rows = editor.field_rows.forms
    assert "got 'Vendor'" in rows[0].errors["name"][0]
    assert "needs a non-empty list of choices" in rows[1].errors["choices"][0]
    assert "at most 3" in rows[2].errors["currency"][0]
    assert "used by another field" in rows[3].errors["name"][0]
    decision_rows = editor.decision_rows.forms
    assert "duplicates: ok" in decision_rows[0].errors["reason_codes"][0]
    assert "used by another decision" in decision_rows[1].errors["label"][0]
    form = response.context["form"]
    assert editor.priority_errors == ["'weight' is not a field of the schema"]
    assert "name" in form.errors  # the rest of the form is judged in the same answer
    body = response.content.decode()
    assert re.search(r'name="fields-1-choices"[^>]*aria-describedby="[^"]*choices_error"', body)
    assert 'id="id_fields-1-choices_error"' in body
    assert re.search(r'name="priority_field"[^>]*aria-invalid="true"', body)
    assert not Process.objects.exists()


def test_blank_rows_are_left_out_and_a_schema_without_fields_is_refused(manager, team):
    client = client_for(manager)
    blank = {"name": "", "type": "text"}
    response = client.post(reverse("process_create"), _form(team, [*INVOICE_FIELDS, blank]))
    assert response.status_code == 302
    assert [f["name"] for f in Process.objects.get().schema.fields] == [
        f["name"] for f in INVOICE_FIELDS
    ]
    empty = client.post(
        reverse("process_create"), _form(team, [blank], name="Other", priority_field="")
    )
    assert empty.status_code == 422
    assert empty.context["editor"].field_list_errors == [
        "must be a non-empty list of field definitions"
    ]


def test_a_post_without_the_rows_is_refused_not_a_crash(manager, team):
    data = {k: v for k, v in _form(team).items() if not k.startswith("fields-")}
    response = client_for(manager).post(reverse("process_create"), data)
    assert response.status_code == 422
    assert "ManagementForm data is missing" in response.content.decode()
    assert not Process.objects.exists()


def test_a_field_renamed_with_the_priority_in_one_edit_is_saved(manager, process):
    fields = [{**f, "name": "total"} if f["name"] == "amount" else f for f in INVOICE_FIELDS]
    data = {
        "name": process.name,
        "minutes_per_case": "5",
        "overlap": "1",
        "priority_field": "total",
        "priority_descending": "on",
        **schema_form_data(fields, INVOICE_DECISIONS),
    }
    response = client_for(manager).post(reverse("process_edit", args=[process.slug]), data)
    assert response.status_code == 302
    process.refresh_from_db()
    assert (process.priority_field, process.schema.version) == ("total", 2)


def test_imported_json_replaces_the_rows_and_its_problems_show_at_once(manager, team):
    schema = {
        "fields": [{"name": "claim", "type": "money"}, {"name": "kind", "type": "category"}],
        "decisions": [{"label": "pay", "reason_codes": ["covered"]}],
    }
    response = client_for(manager).post(
        reverse("process_create"),
        {**_form(team), "editor": "import", "schema_json": json.dumps(schema)},
    )
    assert response.status_code == 200
    assert _names(response) == ["claim", "kind"]
    editor = response.context["editor"]
    assert [r["label"] for r in editor.decision_values()] == ["pay"]
    assert "needs a non-empty list of choices" in editor.field_rows.forms[1].errors["choices"][0]
    # The priority field of the form (amount) is not among the imported fields: said too.
    assert "'amount' is not a field" in editor.priority_errors[0]
    assert not Process.objects.exists()


def test_a_json_file_can_be_imported_and_bad_json_is_explained(manager, team):
    client = client_for(manager)
    upload = SimpleUploadedFile(
        "schema.json", json.dumps([{"name": "colour", "type": "text"}]).encode()
    )
    response = client.post(
        reverse("process_create"), {**_form(team), "editor": "import", "schema_file": upload}
    )
    assert _names(response) == ["colour"]
    # A list alone replaces the fields; the decisions stay.
    assert len(response.context["editor"].decision_values()) == len(INVOICE_DECISIONS)
    bad = client.post(
        reverse("process_create"), {**_form(team), "editor": "import", "schema_json": "[{oops"}
    )
    assert bad.status_code == 200
    assert "Not valid JSON" in bad.context["editor"].import_errors[0]
    assert _names(bad) == [f["name"] for f in INVOICE_FIELDS]  # the rows are kept
    not_objects = client.post(
        reverse("process_create"),
        {**_form(team), "editor": "import", "schema_json": '{"fields": [1]}'},
    )
    assert not_objects.context["editor"].import_errors == ["fields[0] must be an object, got 1."]


def test_the_rows_download_as_json_that_imports_back(manager, team, process):
    client = client_for(manager)
    response = client.post(
        reverse("process_edit", args=[process.slug]), {**_form(team), "editor": "export"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="invoices-schema.json"'
    downloaded = json.loads(response.content)
    assert [f["name"] for f in downloaded["fields"]] == [f["name"] for f in INVOICE_FIELDS]
    assert downloaded["fields"][2]["choices"] == ["matched", "missing", "mismatch"]
    assert downloaded["decisions"][0] == {
        "label": "approve",
        "reason_codes": ["ok", "within_tolerance"],
    }
    again = client.post(
        reverse("process_create"),
        {**_form(team, [], []), "editor": "import", "schema_json": response.content.decode()},
    )
    assert again.context["editor"].field_values() == [field_row(spec) for spec in INVOICE_FIELDS]
