"""End to end: cases sent by API to a process with a promoted model get their uncertainty from a
real Celery worker (cases_created → receiver → score_cases task)."""

import re
import time

import pytest

from apps.cases.models import Case
from tests.conftest import client_for
from tests.factories import make_invoice_rows
from tests.processes import child_database_url, start_worker, stop_process


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cases_sent_by_api_are_scored_by_the_worker(trained_process, expert):
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        response = client_for(expert).post(
            f"/api/v1/processes/{trained_process.slug}/cases",
            make_invoice_rows(5, seed=21),
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        ids = [row["id"] for row in response.json()["cases"]]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            scored = Case.objects.filter(pk__in=ids, uncertainty__isnull=False).count()
            if scored == len(ids):
                break
            time.sleep(0.5)
        assert Case.objects.filter(pk__in=ids, uncertainty__isnull=False).count() == 5, (
            worker.poll()
        )
    finally:
        output = stop_process(worker)
    # (Other tasks, e.g. the fixture's training message redelivered, are not this test's business.)
    assert not re.search(r"tasks\.score_cases\[[^]]+\] raised", output), output
