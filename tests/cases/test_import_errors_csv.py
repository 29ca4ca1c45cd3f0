"""The import's "Download all errors (CSV)": its cells quote uploaded text, so they go through the
spreadsheet-safe CSV helper like every CSV orchcap writes."""

import csv
import io

from django.urls import reverse

from tests.cases.test_upload import confirm, uploaded_job
from tests.conftest import client_for


def test_the_errors_csv_neutralises_a_formula_in_an_uploaded_column_name(manager, process):
    client = client_for(manager)
    content = (
        b'external_id,vendor,"=HYPERLINK(""x"")"\nINV-1,Acme GmbH,10\nINV-2,Beta AG,-5+ten euros\n'
    )
    job = uploaded_job(client, process, content)
    response = confirm(client, process, job, targets={'=HYPERLINK("x")': "amount"})
    assert response.status_code == 422
    errors_csv = client.get(reverse("import_job_errors", args=[process.slug, job.pk]))
    assert errors_csv["Content-Type"].startswith("text/csv")
    [header, row] = list(csv.reader(io.StringIO(errors_csv.content.decode(), newline="")))
    assert header == ["line", "column", "field", "message"]
    assert row[:3] == ["3", '\'=HYPERLINK("x")', "amount"]
