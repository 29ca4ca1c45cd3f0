"""End to end with a real Celery worker: cases sent by API are handled by the autonomy task."""

import time

import pytest

from apps.autonomy.models import ShadowPrediction
from apps.cases.models import Case, CaseStatus, DecisionSource
from tests.autonomy.conftest import store_promoted_model
from tests.autonomy.helpers import set_autonomy
from tests.conftest import client_for
from tests.factories import make_invoice_rows, make_process
from tests.processes import child_database_url, start_worker, stop_process


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cases_sent_by_api_are_decided_by_the_worker_at_level_three(team, expert, fitted_model):
    process = make_process(team)
    store_promoted_model(process, fitted_model)
    set_autonomy(process, level=3, threshold=0.5, audit_rate=0.0)
    response = client_for(expert).post(
        f"/api/v1/processes/{process.slug}/cases",
        make_invoice_rows(6, seed=99),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            if ShadowPrediction.objects.filter(process=process).count() == 6:
                break
            time.sleep(0.5)
    finally:
        output = stop_process(worker)
    assert ShadowPrediction.objects.filter(process=process).count() == 6, output
    confident = set(
        ShadowPrediction.objects.filter(confidence__gte=0.5).values_list("case_id", flat=True)
    )
    decided = set(
        Case.objects.filter(
            process=process,
            status=CaseStatus.DECIDED,
            decisions__source=DecisionSource.MODEL,
        ).values_list("pk", flat=True)
    )
    assert decided == confident
    assert decided
