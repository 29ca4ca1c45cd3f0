"""The upload preview: every row shown the same way (stored values, the invalid cell with the
file's value and its error), the rows to fix counted, and the all-or-nothing import held back
until none are left."""

import re

from apps.cases.models import Case
from apps.cases.services.upload import mapping as upload_mapping
from tests.cases.test_upload import mapping_url, uploaded_job
from tests.conftest import client_for

HEADER = b"external_id,vendor,amount,po_status\n"


def _import_button(body: str) -> str:
    return re.search(r'<button type="submit" name="action" value="import"[^>]*>', body).group(0)


def test_valid_cells_of_an_invalid_row_show_their_stored_value_too(manager, process):
    client = client_for(manager)
    content = HEADER + b'INV-1,Acme,"1,200.50",missing\nINV-2,Beta,"2,000.00",lost\n'
    job = uploaded_job(client, process, content)

    response = client.get(mapping_url(process, job))

    headers = response.context["headers"]
    valid, invalid = response.context["preview"]
    amount, status = headers.index("Amount"), headers.index("Po status")
    assert valid.valid
    assert not invalid.valid
    assert (valid.cells[amount].value, invalid.cells[amount].value) == (1200.5, 2000.0)
    assert invalid.cells[status].value == "lost"
    assert invalid.cells[status].error.startswith("expected one of matched, missing, mismatch")
    body = response.content.decode()
    assert "<td>2000.0</td>" in body
    assert '<td class="cell-error">lost<br><small class="error">' in body


def test_any_invalid_row_disables_the_import_and_says_how_many_to_fix(manager, process):
    client = client_for(manager)
    rows = [f"INV-{n},Vendor {n},{n}0,matched\n".encode() for n in range(1, 26)]
    # Line 4 has a bad amount, line 25 (beyond the 20 previewed) a bad status.
    rows[2] = b"INV-3,Vendor 3,ten,matched\n"
    rows[23] = b"INV-24,Vendor 24,5,unknown\n"
    job = uploaded_job(client, process, HEADER + b"".join(rows))

    response = client.get(mapping_url(process, job))

    check = response.context["check"]
    assert (check.invalid_rows, check.checked_rows, check.whole_file) == (2, 25, True)
    assert [error["line"] for error in check.errors] == [4, 25]
    body = response.content.decode()
    assert "disabled" in _import_button(body)
    assert "2 rows to fix of 25." in body
    assert "The import is all or nothing" in body
    # The row beyond the preview is listed with its line, column and problem.
    assert re.search(r"<td>25</td><td>po_status</td><td>po_status</td><td>expected one of", body)
    assert Case.objects.count() == 0


def test_a_valid_file_can_be_imported_and_a_mapping_that_fixes_it_enables_the_button(
    manager, process
):
    client = client_for(manager)
    content = b"vendor,amount,note\nAcme,5,n/a\nBeta,6,7\n"
    job = uploaded_job(client, process, content)
    page = client.get(mapping_url(process, job))
    assert "disabled" not in _import_button(page.content.decode())
    assert "All 2 rows are valid." in page.content.decode()

    # Mapping the text column onto the money field makes line 2 invalid, then fixing it enables.
    broken = client.post(
        mapping_url(process, job),
        {"col_0": "vendor", "col_1": "", "col_2": "amount", "action": "preview"},
        HTTP_HX_REQUEST="true",
    )
    body = broken.content.decode()
    assert body.lstrip().startswith('<section id="preview">')
    assert "disabled" in _import_button(body)
    assert "1 row to fix of 2." in body
    fixed = client.post(
        mapping_url(process, job),
        {"col_0": "vendor", "col_1": "amount", "col_2": "", "action": "preview"},
        HTTP_HX_REQUEST="true",
    )
    assert "disabled" not in _import_button(fixed.content.decode())


def test_a_long_file_is_judged_by_its_first_rows_and_the_import_checks_the_rest(
    manager, process, monkeypatch
):
    monkeypatch.setattr(upload_mapping, "CHECKED_ROWS", 3)
    client = client_for(manager)
    rows = b"INV-1,Acme,x,matched\nINV-2,Beta,5,matched\nINV-3,Gamma,6,matched\nINV-4,D,y,matched\n"
    job = uploaded_job(client, process, HEADER + rows)

    response = client.get(mapping_url(process, job))

    check = response.context["check"]
    assert (check.invalid_rows, check.checked_rows, check.whole_file) == (1, 3, False)
    body = response.content.decode()
    assert "1 row to fix in the first 3 rows." in body
    assert "The rest of the file is checked when you import." in body
    assert "disabled" in _import_button(body)
