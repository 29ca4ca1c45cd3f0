"""Training runs as a Celery task on a real worker, with progress the API reports."""

import time

import pytest

from tests.conftest import client_for
from tests.factories import make_decided_cases
from tests.processes import child_database_url, start_worker, stop_process


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_trains_the_model_the_api_asked_for(process, expert, second_expert):
    make_decided_cases(process, second_expert, 120, seed=12)
    client = client_for(expert)
    job = client.post(f"/api/v1/processes/{process.slug}/models").json()
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            state = client.get(f"/api/v1/processes/{process.slug}/models/jobs/{job['id']}").json()
            if state["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.3)
        assert state["state"] == "succeeded", (state, worker.poll())
        assert state["progress"] == 100
        assert state["model_version"] == 1
        versions = client.get(f"/api/v1/processes/{process.slug}/models").json()["versions"]
        assert versions[0]["snapshot_size"] == 120
    finally:
        stop_process(worker)
