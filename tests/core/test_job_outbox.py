"""Background jobs recorded in the database are an outbox: a job asked for while the broker is
down is sent again by the sweeper once it is back, runs exactly once, and a stale job never blocks
a new one."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from apps.cases.models import Case, ImportJob
from apps.classifiers.models import ModelVersion, TrainingJob
from apps.core.tasks import sweep_jobs
from apps.fabric.models import FabricTask
from orchcap.runtime.broker import EmbeddedBroker
from tests.cases.test_upload import INVOICES_CSV, confirm, uploaded_job
from tests.conftest import client_for
from tests.factories import make_decided_cases, make_process
from tests.processes import child_database_url, start_worker, stop_process


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def broker_down():
    """The session's own broker, stopped for the test and started again whatever happens."""
    broker = EmbeddedBroker(settings.DATA_DIR)
    assert broker.stop()
    try:
        yield broker
    finally:
        broker.ensure_running()
        assert broker.is_running()


def _wait_for(read, done, *, timeout: float, worker) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline or worker.poll() is not None:
            return value
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_training_asked_for_while_the_broker_is_down_runs_once_when_it_is_back(
    process, expert, second_expert, broker_down
):
    make_decided_cases(process, second_expert, 120, seed=12)
    client = client_for(expert)
    url = f"/api/v1/processes/{process.slug}/models"

    started = time.monotonic()
    response = client.post(url)
    assert response.status_code == 202, response.content
    assert time.monotonic() - started < 10  # a dead broker doesn't hold the request
    job = TrainingJob.objects.get(pk=response.json()["id"])
    assert (job.state, job.dispatch_attempts) == ("queued", 1)
    assert job.enqueued_at is not None

    broker_down.ensure_running()
    # Sent recently: the sweeper leaves it to a worker for ORCHCAP_JOB_PICKUP_SECONDS.
    assert sweep_jobs.apply().get() == {}
    assert client.post(url).status_code == 409  # not stale: it will still run
    with override_settings(ORCHCAP_JOB_PICKUP_SECONDS=0):
        # Twice: two messages for the same job reach the worker; it must run once.
        assert sweep_jobs.apply().get() == {"classifiers.training": 1}
        assert sweep_jobs.apply().get() == {"classifiers.training": 1}
    job.refresh_from_db()
    assert job.dispatch_attempts == 3

    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        job_url = f"{url}/jobs/{job.pk}"
        state = _wait_for(
            lambda: client.get(job_url).json(),
            lambda s: s["state"] in ("succeeded", "failed"),
            timeout=180,
            worker=worker,
        )
        assert state["state"] == "succeeded", (state, worker.poll())
        # Let the worker take the second message too before counting.
        time.sleep(2)
    finally:
        output = stop_process(worker)
    assert ModelVersion.objects.filter(process=process).count() == 1, output
    assert FabricTask.objects.filter(on_done="classifiers.training").count() == 1
    with override_settings(ORCHCAP_JOB_PICKUP_SECONDS=0):
        assert sweep_jobs.apply().get() == {}  # nothing left to send


@pytest.mark.django_db(transaction=True)
def test_a_training_never_picked_up_does_not_block_a_new_request(process, expert, second_expert):
    make_decided_cases(process, second_expert, 60, seed=4)
    client = client_for(expert)
    url = f"/api/v1/processes/{process.slug}/models"
    long_ago = timezone.now() - timedelta(seconds=settings.ORCHCAP_JOB_STALE_SECONDS + 60)
    lost = TrainingJob.objects.create(process=process, requested_by=expert, stage="queued")
    TrainingJob.objects.filter(pk=lost.pk).update(created_at=long_ago, enqueued_at=long_ago)

    response = client.post(url)

    assert response.status_code == 202, response.content
    assert response.json()["id"] != lost.pk
    lost.refresh_from_db()
    assert lost.state == "failed"
    assert "no worker picked it up" in lost.error


@pytest.mark.django_db(transaction=True)
def test_a_training_whose_worker_died_does_not_block_a_new_request(process, expert, second_expert):
    make_decided_cases(process, second_expert, 60, seed=4)
    long_ago = timezone.now() - timedelta(seconds=settings.ORCHCAP_JOB_STALE_SECONDS + 60)
    # Claimed by a worker that died before the training reached the compute fabric.
    dead = TrainingJob.objects.create(process=process, requested_by=expert, state="running")
    TrainingJob.objects.filter(pk=dead.pk).update(started_at=long_ago, heartbeat_at=long_ago)

    response = client_for(expert).post(f"/api/v1/processes/{process.slug}/models")

    assert response.status_code == 202, response.content
    dead.refresh_from_db()
    assert dead.state == "failed"
    assert "its worker stopped" in dead.error


@pytest.mark.django_db(transaction=True)
def test_a_recent_training_still_gets_409(process, expert, second_expert):
    make_decided_cases(process, second_expert, 60, seed=4)
    client = client_for(expert)
    url = f"/api/v1/processes/{process.slug}/models"
    first = TrainingJob.objects.create(process=process, requested_by=expert, state="running")
    TrainingJob.objects.filter(pk=first.pk).update(
        started_at=timezone.now(), heartbeat_at=timezone.now()
    )

    assert client.post(url).status_code == 409
    first.refresh_from_db()
    assert first.state == "running"


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_fails_a_training_whose_worker_died_with_the_reason(process, expert):
    long_ago = timezone.now() - timedelta(seconds=settings.ORCHCAP_JOB_STALE_SECONDS + 60)
    dead = TrainingJob.objects.create(process=process, requested_by=expert, state="running")
    TrainingJob.objects.filter(pk=dead.pk).update(started_at=long_ago, heartbeat_at=long_ago)

    sweep_jobs.apply()

    dead.refresh_from_db()
    assert dead.state == "failed"
    assert "its worker stopped" in dead.error


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(ORCHCAP_UPLOAD_INLINE_BYTES=10)
def test_an_import_confirmed_while_the_broker_is_down_runs_once_when_it_is_back(
    manager, process, broker_down
):
    client = client_for(manager)
    job = uploaded_job(client, process, INVOICES_CSV)

    response = confirm(client, process, job)

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.state, job.dispatch_attempts) == ("pending", 1)
    broker_down.ensure_running()
    with override_settings(ORCHCAP_JOB_PICKUP_SECONDS=0):
        assert sweep_jobs.apply().get() == {"cases.import": 1}
        assert sweep_jobs.apply().get() == {"cases.import": 1}
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        job = _wait_for(
            lambda: ImportJob.objects.get(pk=job.pk),
            lambda j: j.state in ("done", "failed"),
            timeout=120,
            worker=worker,
        )
        assert job.state == "done", (job.errors, worker.poll())
        time.sleep(2)
    finally:
        output = stop_process(worker)
    job.refresh_from_db()
    assert (job.state, job.created_cases) == ("done", 3), output
    assert Case.objects.filter(process=process).count() == 3
    page = client.get(reverse("import_job", args=[process.slug, job.pk]))
    assert b"Imported 3 rows" in page.content


@pytest.mark.django_db(transaction=True)
def test_an_import_whose_worker_died_is_sent_again_and_a_late_message_does_nothing(
    manager, process
):
    from apps.cases.tasks import run_import_job

    client = client_for(manager)
    with override_settings(ORCHCAP_UPLOAD_INLINE_BYTES=10):
        job = uploaded_job(client, process, INVOICES_CSV)
        confirm(client, process, job)
    long_ago = timezone.now() - timedelta(seconds=settings.ORCHCAP_JOB_STALE_SECONDS + 60)
    ImportJob.objects.filter(pk=job.pk).update(state="running", heartbeat_at=long_ago)

    # A message redelivered while the job counts as running elsewhere is a no-op.
    run_import_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.state == "running"
    assert Case.objects.count() == 0

    assert sweep_jobs.apply().get() == {"cases.import": 1}
    job.refresh_from_db()
    assert job.state == "pending"
    run_import_job.apply(args=[job.pk])
    run_import_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert (job.state, job.created_cases) == ("done", 3)
    assert Case.objects.filter(process=process).count() == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_import_whose_worker_is_killed_runs_again_and_imports_each_row_once(manager, process):
    import signal

    rows = 40_000
    content = b"external_id,vendor,amount,po_status,due_date\n" + b"".join(
        b"INV-%d,Acme GmbH,%d.50,matched,2024-03-01\n" % (i, i) for i in range(rows)
    )
    client = client_for(manager)
    with override_settings(ORCHCAP_UPLOAD_INLINE_BYTES=10):
        job = uploaded_job(client, process, content)
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        with override_settings(ORCHCAP_UPLOAD_INLINE_BYTES=10):
            assert confirm(client, process, job).status_code == 302
        job = _wait_for(
            lambda: ImportJob.objects.get(pk=job.pk),
            lambda j: j.state != "pending",
            timeout=60,
            worker=worker,
        )
        assert job.state == "running"
    finally:
        stop_process(worker, signal.SIGKILL)
    assert Case.objects.filter(process=process).count() == 0

    with override_settings(ORCHCAP_JOB_STALE_SECONDS=0):
        assert sweep_jobs.apply().get() == {"cases.import": 1}
    job.refresh_from_db()
    assert (job.state, job.lost_runs) == ("pending", 1)
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        job = _wait_for(
            lambda: ImportJob.objects.get(pk=job.pk),
            lambda j: j.state in ("done", "failed"),
            timeout=300,
            worker=worker,
        )
    finally:
        output = stop_process(worker)
    assert (job.state, job.created_cases) == ("done", rows), (job.errors, output[-2000:])
    assert Case.objects.filter(process=process).count() == rows
