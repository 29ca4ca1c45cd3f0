import os
import signal
import time

import pytest
from django.test import Client

from orchcap.runtime.broker import EmbeddedBroker
from orchcap.runtime.supervisor import Backoff, Child, Supervisor, state_path
from tests.conftest import client_for
from tests.factories import make_user
from tests.processes import child_database_url, start_worker, stop_process

TOKEN = "s3cret-health"


@pytest.fixture
def fast_health(settings):
    settings.ORCHCAP_HEALTH_WORKER_TIMEOUT = 1
    settings.ORCHCAP_METRICS_TOKEN = TOKEN


@pytest.fixture
def operator(db):
    return client_for(make_user("opal", is_staff=True))


def healthz_when_ok(client: Client, worker, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/healthz")
        if response.status_code == 200 or time.monotonic() > deadline or worker.poll() is not None:
            return response


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_when_database_pgvector_broker_and_a_worker_are_up(fast_health, operator):
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        response = healthz_when_ok(operator, worker)
        body = response.json()
        assert response.status_code == 200, (body, worker.poll())
        assert body["status"] == "ok"
        assert body["down"] == []
        assert body["degraded"] == []
        assert body["checks"]["pgvector"]["ok"]
        assert body["checks"]["database"]["detail"].startswith("PostgreSQL 18")
        assert "test-worker@" in body["checks"]["worker"]["detail"]
        assert Client().get("/healthz").json() == {"status": "ok"}
    finally:
        stop_process(worker)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_healthz_is_degraded_while_a_supervised_child_restarts_and_until_it_is_stable(
    fast_health, operator, settings, tmp_path
):
    worker = start_worker(DATABASE_URL=child_database_url())
    sleeper = Child("sleeper", ["sleep", "600"], tmp_path / "sleeper.log")
    supervisor = Supervisor(
        [sleeper],
        backoff=Backoff(initial=1, maximum=1, stable=2),
        state_file=state_path(settings.DATA_DIR),
    )
    try:
        supervisor.start(dict(os.environ))
        assert healthz_when_ok(operator, worker).json()["status"] == "ok"

        os.kill(sleeper.pid(), signal.SIGKILL)
        sleeper.process.wait(5)
        supervisor.supervise()  # notices the death; the restart is due in 1 s
        restarting = operator.get("/healthz")
        assert restarting.status_code == 200
        assert restarting.json()["status"] == "degraded"
        assert restarting.json()["degraded"] == ["sleeper"]
        details = restarting.json()["supervisor"]["sleeper"]
        assert details["state"] == "restarting"
        assert details["last_death"]["reason"] == "killed by SIGKILL"
        assert Client().get("/healthz").json() == {"status": "degraded"}

        time.sleep(1.1)
        supervisor.supervise()  # restarts it: degraded until it has run for 2 s
        assert sleeper.exit_code() is None
        running = operator.get("/healthz").json()
        assert running["status"] == "degraded"
        assert running["supervisor"]["sleeper"]["state"] == "running"
        assert running["supervisor"]["sleeper"]["restarts"] == 1

        time.sleep(2.1)
        assert operator.get("/healthz").json()["status"] == "ok"
    finally:
        supervisor.stop_all()
        stop_process(worker)
    assert not state_path(settings.DATA_DIR).exists()


@pytest.mark.django_db
def test_anonymous_callers_learn_only_the_status(fast_health):
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "down"}


@pytest.mark.django_db
def test_a_member_without_staff_rights_learns_only_the_status(fast_health, expert):
    response = client_for(expert).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "down"}


@pytest.mark.django_db
def test_healthz_is_503_naming_the_worker_when_none_runs(fast_health, operator):
    response = operator.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["worker"]
    assert body["checks"]["broker"]["ok"]
    assert "no Celery worker" in body["checks"]["worker"]["detail"]


@pytest.mark.django_db
def test_the_metrics_token_shows_the_details_and_a_wrong_one_does_not(fast_health):
    with_token = Client(headers={"Authorization": f"Bearer {TOKEN}"}).get("/healthz")
    assert with_token.status_code == 503
    assert with_token.json()["down"] == ["worker"]
    wrong = Client(headers={"Authorization": "Bearer not-the-token"}).get("/healthz")
    assert wrong.json() == {"status": "down"}


@pytest.mark.django_db
def test_healthz_is_503_naming_the_broker_when_it_is_down(fast_health, settings):
    broker = EmbeddedBroker(settings.DATA_DIR)
    broker.stop()
    try:
        response = Client(headers={"Authorization": f"Bearer {TOKEN}"}).get("/healthz")
        assert response.status_code == 503
        assert response.json()["down"] == ["broker", "worker"]
        assert response.json()["checks"]["database"]["ok"]
    finally:
        broker.ensure_running()


def test_healthz_needs_no_login_and_is_not_cached(db, fast_health):
    response = Client().get("/healthz")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
