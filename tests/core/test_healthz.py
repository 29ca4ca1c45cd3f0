import time

import pytest
from django.test import Client

from orchcap.runtime.broker import EmbeddedBroker
from tests.processes import child_database_url, start_worker, stop_process


@pytest.fixture
def fast_health(settings):
    settings.ORCHCAP_HEALTH_WORKER_TIMEOUT = 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_when_database_pgvector_broker_and_a_worker_are_up(fast_health):
    worker = start_worker(DATABASE_URL=child_database_url())
    try:
        deadline = time.monotonic() + 60
        while True:
            response = Client().get("/healthz")
            if (
                response.status_code == 200
                or time.monotonic() > deadline
                or worker.poll() is not None
            ):
                break
        body = response.json()
        assert response.status_code == 200, (body, worker.poll())
        assert body["status"] == "ok"
        assert body["down"] == []
        assert body["checks"]["pgvector"]["ok"]
        assert body["checks"]["database"]["detail"].startswith("PostgreSQL 18")
        assert "test-worker@" in body["checks"]["worker"]["detail"]
    finally:
        stop_process(worker)


@pytest.mark.django_db
def test_healthz_is_503_naming_the_worker_when_none_runs(fast_health):
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["worker"]
    assert body["checks"]["broker"]["ok"]
    assert "no Celery worker" in body["checks"]["worker"]["detail"]


@pytest.mark.django_db
def test_healthz_is_503_naming_the_broker_when_it_is_down(fast_health, settings):
    broker = EmbeddedBroker(settings.DATA_DIR)
    broker.stop()
    try:
        response = Client().get("/healthz")
        assert response.status_code == 503
        assert response.json()["down"] == ["broker", "worker"]
        assert response.json()["checks"]["database"]["ok"]
    finally:
        broker.ensure_running()


def test_healthz_needs_no_login_and_is_not_cached(db, fast_health):
    response = Client().get("/healthz")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
