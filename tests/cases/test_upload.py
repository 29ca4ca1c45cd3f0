"""Case intake from CSV/JSONL files: upload, column mapping, preview, import, background jobs."""

import codecs
import json
import uuid
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import override_settings
from django.urls import reverse

from apps.cases.models import Case, ImportJob
from apps.cases.services import upload as upload_services
from apps.cases.services.upload.importing import _Progress
from apps.cases.tasks import run_import_job
from tests.conftest import client_for

INVOICES_CSV = (
    b"external_id,vendor,amount,po_status,due_date\n"
    b"INV-1,Acme GmbH,1200.50,missing,2024-03-01\n"
    b"INV-2,Beta AG,80,matched,2024-03-02\n"
    b"INV-3,Gamma SA,15.25,mismatch,\n"
)


def upload(client, process, content: bytes, name: str = "cases.csv", file_format: str = "auto"):
    return client.post(
        reverse("process_upload", args=[process.slug]),
        {"file": SimpleUploadedFile(name, content), "file_format": file_format},
    )


def mapping_url(process, job) -> str:
    return reverse("upload_mapping", args=[process.slug, job.pk])


def confirm(client, process, job, targets: dict[str, str] | None = None, action: str = "import"):
    """Post the mapping step: the proposed target of each column unless `targets` names it."""
    form = client.get(mapping_url(process, job)).context["form"]
    data = {
        f"col_{index}": (targets or {}).get(column, form.fields[f"col_{index}"].initial)
        for index, column in enumerate(form.columns)
    }
    return client.post(mapping_url(process, job), {**data, "action": action})


def uploaded_job(client, process, content: bytes, **kwargs) -> ImportJob:
    response = upload(client, process, content, **kwargs)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get(pk=response.url.rstrip("/").rsplit("/", 1)[-1])
    assert response.url == mapping_url(process, job)
    return job


def test_semicolon_csv_with_a_bom_imports_every_row(manager, process):
    client = client_for(manager)
    assert (
        b"Upload and map columns"
        in client.get(reverse("process_upload", args=[process.slug])).content
    )
    content = (
        codecs.BOM_UTF8 + INVOICES_CSV.decode().replace(",", ";").replace("\n", "\r\n").encode()
    )
    job = uploaded_job(client, process, content)

    response = confirm(client, process, job)

    assert response.status_code == 302
    assert response.url == reverse("import_job", args=[process.slug, job.pk])
    cases = {case.external_id: case for case in Case.objects.filter(process=process)}
    assert set(cases) == {"INV-1", "INV-2", "INV-3"}
    assert cases["INV-1"].fields == {
        "vendor": "Acme GmbH",
        "amount": 1200.5,
        "po_status": "missing",
        "due_date": "2024-03-01",
    }
    assert "due_date" not in cases["INV-3"].fields
    job.refresh_from_db()
    assert (job.state, job.total_rows, job.created_cases) == ("done", 3, 3)
    page = client.get(response.url)
    assert b"Imported 3 rows" in page.content
    assert b'<span id="created-cases">3</span>' in page.content


def test_columns_named_like_field_labels_are_proposed_case_insensitively(manager, process):
    client = client_for(manager)
    job = uploaded_job(
        client, process, b"VENDOR,Amount,Po status,External ID,whatever\nA,1,missing,X1,z\n"
    )

    form = client.get(mapping_url(process, job)).context["form"]

    assert form.chosen() == {
        "VENDOR": "vendor",
        "Amount": "amount",
        "Po status": "po_status",
        "External ID": "external_id",
        "whatever": "",
    }


def test_renamed_columns_are_imported_through_the_chosen_mapping(expert, process):
    client = client_for(expert)
    content = (
        b"Invoice No|Supplier|Betrag|PO|Grund|Betroffen|Intern\n"
        b"R-100|Acme GmbH|99.90|mismatch|PO amount differs|amount;po_status|ignore me\n"
    )
    job = uploaded_job(client, process, content)

    response = confirm(
        client,
        process,
        job,
        {
            "Invoice No": "external_id",
            "Supplier": "vendor",
            "Betrag": "amount",
            "PO": "po_status",
            "Grund": "exception.reason",
            "Betroffen": "exception.fields",
            "Intern": "",
        },
    )

    assert response.status_code == 302
    case = Case.objects.get(process=process)
    assert case.external_id == "R-100"
    assert case.fields == {"vendor": "Acme GmbH", "amount": 99.9, "po_status": "mismatch"}
    assert case.exception_reason == "PO amount differs"
    assert case.exception_fields == ["amount", "po_status"]
    assert ImportJob.objects.get(pk=job.pk).mapping["Intern"] == ""


def test_preview_shows_values_as_they_would_be_stored(manager, process):
    client = client_for(manager)
    content = (
        b"external_id,vendor,amount,po_status,due_date\n"
        b'INV-9,Acme GmbH,"1,200.50", missing ,2024-03-01T10:00:00\n'
        b"INV-10,Beta AG,lots,matched,\n"
    )
    job = uploaded_job(client, process, content)

    response = client.get(mapping_url(process, job))

    assert response.status_code == 200
    headers = response.context["headers"]
    first, second = response.context["preview"]
    values = dict(zip(headers, (cell.value for cell in first.cells), strict=True))
    assert values["Amount"] == 1200.5
    assert values["Po status"] == "missing"
    assert values["Due date"] == "2024-03-01"
    assert first.valid
    assert second.line == 3
    assert not second.valid
    assert second.cells[headers.index("Amount")].error == "expected a number, got 'lots'"
    assert b"<td>1200.5</td>" in response.content
    assert Case.objects.count() == 0


def test_preview_follows_a_changed_mapping_as_an_htmx_fragment(manager, process):
    client = client_for(manager)
    job = uploaded_job(client, process, b"vendor,amount,other\nAcme,5,7\n")

    response = client.post(
        mapping_url(process, job),
        {"col_0": "vendor", "col_1": "", "col_2": "amount", "action": "preview"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<section id="preview">')
    assert b"<html" not in response.content
    # Line, External id (none), Vendor, then Amount: now the "other" column's 7 (money).
    assert (
        b'<td>2</td><td><spanclass="muted">\xe2\x80\x94</span></td><td>Acme</td><td>7.0</td>'
        in (b"".join(response.content.split()))
    )


def test_a_type_error_on_line_3_is_reported_there_and_nothing_is_written(manager, process):
    client = client_for(manager)
    content = (
        b"external_id,vendor,amount\n"
        b"INV-1,Acme GmbH,10\n"
        b"INV-2,Beta AG,ten euros\n"
        b"INV-3,Gamma SA,30\n"
    )
    job = uploaded_job(client, process, content)

    response = confirm(client, process, job)

    assert response.status_code == 422
    assert response.context["errors"] == [
        {
            "line": 3,
            "column": "amount",
            "field": "amount",
            "message": "expected a number, got 'ten euros'",
        }
    ]
    assert b"Nothing was imported" in response.content
    assert b"<td>3</td><td>amount</td><td>amount</td>" in response.content
    assert Case.objects.filter(process=process).count() == 0
    job.refresh_from_db()
    assert job.state == "failed"


def test_line_numbers_count_the_lines_of_multi_line_cells(manager, process):
    client = client_for(manager)
    content = b'vendor,amount,note\nAcme GmbH,10,"first line\nsecond line"\nBeta AG,,fine\n'
    job = uploaded_job(client, process, content)

    response = confirm(client, process, job)

    assert response.status_code == 422
    assert [(e["line"], e["field"], e["message"]) for e in response.context["errors"]] == [
        (4, "amount", "is required")
    ]


def test_an_external_id_repeated_in_the_file_names_the_first_line(manager, process):
    client = client_for(manager)
    job = uploaded_job(client, process, b"external_id,vendor,amount\nA,x,1\nB,y,2\nA,z,3\n")

    response = confirm(client, process, job)

    assert response.status_code == 422
    assert response.context["errors"] == [
        {"line": 4, "column": "external_id", "field": "external_id",
         "message": "repeats line 2 of this file"}
    ]  # fmt: skip
    assert Case.objects.count() == 0


def test_latin_1_bytes_are_reported_by_line_and_nothing_is_stored(manager, process):
    content = "vendor,amount\nAcme,1\nCafé Müller,2\n".encode("latin-1")

    response = upload(client_for(manager), process, content)

    assert response.status_code == 422
    assert "Line 3: not valid UTF-8 (byte 0xE9 at position 4)" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_a_ragged_csv_row_is_reported_by_line(manager, process):
    response = upload(client_for(manager), process, b"vendor;amount\nAcme;1\nBeta;2;3\nGamma;4\n")

    assert response.status_code == 422
    assert "Line 3: has 3 cell(s) but the header has 2" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_an_invalid_json_line_is_reported_by_line(manager, process):
    content = b'{"vendor": "Acme", "amount": 1}\n\n{"vendor": "Beta", "amount": 2,}\n'

    response = upload(client_for(manager), process, content, name="cases.jsonl")

    assert response.status_code == 422
    assert "Line 3: is not valid JSON" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_jsonl_lines_shaped_like_the_api_import_with_their_exception(manager, process):
    client = client_for(manager)
    rows = [
        {"external_id": "J-1", "fields": {"vendor": "Acme", "amount": 12.5},
         "exception": {"reason": "no PO", "fields": ["po_status"]}},
        {"external_id": 2, "fields": {"vendor": "Beta", "amount": "3"}},
    ]  # fmt: skip
    job = uploaded_job(
        client, process, "\n".join(json.dumps(r) for r in rows).encode(), name="cases.ndjson"
    )

    response = confirm(client, process, job)

    assert response.status_code == 302
    first = Case.objects.get(process=process, external_id="J-1")
    assert (first.fields["amount"], first.exception_reason, first.exception_fields) == (
        12.5,
        "no PO",
        ["po_status"],
    )
    assert Case.objects.get(process=process, external_id="2").fields["amount"] == 3


def test_a_required_field_left_unmapped_is_a_form_error(manager, process):
    client = client_for(manager)
    job = uploaded_job(client, process, INVOICES_CSV)

    response = confirm(client, process, job, {"amount": ""})

    assert response.status_code == 422
    assert "Required field(s) not mapped: Amount." in response.content.decode()
    assert Case.objects.count() == 0
    assert ImportJob.objects.get(pk=job.pk).state == "pending"


def test_an_oversize_upload_is_a_form_error_and_nothing_is_stored(manager, process):
    name = f"big-{uuid.uuid4().hex}.csv"

    with override_settings(ORCHCAP_UPLOAD_MAX_BYTES=2048):
        response = upload(client_for(manager), process, INVOICES_CSV * 40, name=name)

    assert response.status_code == 422
    assert "the upload limit is 2.0 KB" in response.content.decode()
    assert ImportJob.objects.count() == 0
    assert not list(Path(default_storage.location).rglob(f"{name[:-4]}*"))


@override_settings(ORCHCAP_UPLOAD_INLINE_BYTES=10)
def test_a_large_file_is_imported_by_the_task_with_a_progress_page(manager, process):
    client = client_for(manager)
    job = uploaded_job(client, process, INVOICES_CSV)
    mapping_page = client.get(mapping_url(process, job))
    assert b"imported in the background" in mapping_page.content

    response = confirm(client, process, job)

    job_url = reverse("import_job", args=[process.slug, job.pk])
    assert response.status_code == 302
    assert response.url == job_url
    assert Case.objects.count() == 0
    waiting = client.get(job_url)
    assert b"Waiting for a worker" in waiting.content
    assert b'hx-trigger="every 1s"' in waiting.content
    assert b'<meta http-equiv="refresh"' in waiting.content

    run_import_job.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.state, job.total_rows, job.processed_rows, job.created_cases) == ("done", 3, 3, 3)
    assert job.finished_at is not None
    assert Case.objects.filter(process=process).count() == 3
    done = client.get(job_url)
    assert b"Imported 3 rows" in done.content
    assert b"every 1s" not in done.content
    assert b'http-equiv="refresh"' not in done.content
    fragment = client.get(job_url, HTTP_HX_REQUEST="true")
    assert fragment.content.lstrip().startswith(b'<section id="job-status"')
    assert b"<html" not in fragment.content


@override_settings(ORCHCAP_UPLOAD_INLINE_BYTES=10)
def test_a_background_import_with_an_invalid_row_fails_and_lists_it(manager, process):
    client = client_for(manager)
    content = INVOICES_CSV.replace(b"INV-2,Beta AG,80,matched", b"INV-2,Beta AG,80,unknown")
    job = uploaded_job(client, process, content)
    confirm(client, process, job)

    run_import_job.apply(args=[job.pk])

    job.refresh_from_db()
    assert job.state == "failed"
    assert [(e["line"], e["field"]) for e in job.errors] == [(3, "po_status")]
    assert Case.objects.count() == 0
    page = client.get(reverse("import_job", args=[process.slug, job.pk]))
    assert b"Nothing was imported" in page.content
    assert b"expected one of matched, missing, mismatch, got &#x27;unknown&#x27;" in page.content
    errors_csv = client.get(reverse("import_job_errors", args=[process.slug, job.pk]))
    assert errors_csv.content.decode().splitlines()[1].startswith("3,po_status,po_status,")


def test_uploading_the_same_file_again_creates_no_duplicates(manager, process):
    client = client_for(manager)
    confirm(client, process, uploaded_job(client, process, INVOICES_CSV))
    second = uploaded_job(client, process, INVOICES_CSV)

    response = confirm(client, process, second)

    assert response.status_code == 302
    assert Case.objects.filter(process=process).count() == 3
    second.refresh_from_db()
    assert (second.state, second.processed_rows, second.created_cases) == ("done", 3, 0)
    page = client.get(response.url)
    assert b'<span id="already-present">3</span>' in page.content


def test_a_discarded_upload_leaves_no_job_and_no_file(manager, process):
    client = client_for(manager)
    job = uploaded_job(client, process, INVOICES_CSV)
    name = job.file.name

    response = client.post(reverse("upload_discard", args=[process.slug, job.pk]))

    assert response.status_code == 302
    assert not ImportJob.objects.filter(pk=job.pk).exists()
    assert not default_storage.exists(name)


def test_staff_get_403_with_the_reason(staff, process):
    response = client_for(staff).get(reverse("process_upload", args=[process.slug]))

    assert response.status_code == 403
    assert b"experts, managers and admins can import cases" in response.content


def test_outsider_gets_404(outsider, manager, process):
    job = uploaded_job(client_for(manager), process, INVOICES_CSV)
    client = client_for(outsider)

    assert client.get(reverse("process_upload", args=[process.slug])).status_code == 404
    assert client.get(mapping_url(process, job)).status_code == 404
    assert client.get(reverse("import_job", args=[process.slug, job.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_progress_written_inside_the_import_transaction_is_visible_outside_it(team):
    from tests.factories import make_process

    process = make_process(team)
    job = ImportJob.objects.create(process=process, file="imports/none.csv", file_format="csv")
    progress = _Progress(job.pk)
    try:
        with transaction.atomic():
            progress.set(force=True, processed_rows=42)
            ImportJob.objects.filter(pk=job.pk).update(total_rows=7)
            transaction.set_rollback(True)
    finally:
        progress.close()

    job.refresh_from_db()
    assert (job.processed_rows, job.total_rows) == (42, 0)


def many_rows(count: int) -> bytes:
    lines = ["external_id,vendor,amount"]
    lines += [f"M-{i},Vendor {i % 7},{i}.50" for i in range(count)]
    return ("\n".join(lines) + "\n").encode()


@override_settings(ORCHCAP_UPLOAD_INLINE_BYTES=10)
def test_a_file_of_several_chunks_imports_whole(manager, process):
    client = client_for(manager)
    job = uploaded_job(client, process, many_rows(4500))
    confirm(client, process, job)

    run_import_job.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.state, job.total_rows, job.created_cases) == ("done", 4500, 4500)
    assert Case.objects.filter(process=process).count() == 4500


def test_an_external_id_repeated_in_a_later_chunk_is_still_caught(manager, process):
    client = client_for(manager)
    content = many_rows(4500) + b"M-0,Late repeat,1\n"
    job = uploaded_job(client, process, content)

    response = confirm(client, process, job)

    assert response.status_code == 422
    assert [(e["line"], e["message"]) for e in response.context["errors"]] == [
        (4502, "repeats line 2 of this file")
    ]
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (1, "1 byte"),
        (43, "43 bytes"),
        (1900, "1.9 KB"),
        (150_000, "146 KB"),
        (5 * 1024 * 1024, "5.0 MB"),
        (3 * 1024**3, "3.0 GB"),
    ],
)
def test_file_sizes_read_as_people_write_them(size, shown):
    assert upload_services.file_size(size) == shown


def test_a_csv_whose_header_row_is_over_128_kb_is_a_form_error(manager, process):
    content = b"vendor," + b"a" * 200_000 + b"\nAcme,1\n"

    response = upload(client_for(manager), process, content)

    assert response.status_code == 422
    assert "Line 1: the header row can&#x27;t be read as CSV (field larger than field limit" in (
        response.content.decode()
    )
    assert ImportJob.objects.count() == 0
