"""End to end with a real Celery worker: events committed while the receiver is down are retried
by the worker and delivered exactly once, in order, when it returns."""

import time

import pytest
from django.db import transaction

from apps.connectors.models import Delivery, DeliveryAttempt
from apps.connectors.services.deliveries import enqueue_event
from tests.processes import child_database_url, start_worker, stop_process


def _wait(done, *, timeout: float, worker) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if done():
            return True
        time.sleep(0.2)
    return done()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_worker_retries_while_the_receiver_is_down_and_delivers_once_when_it_returns(
    team, connector, receiver
):
    receiver.stop()
    with transaction.atomic():
        sent = [
            enqueue_event(team=team, event_type="item.decided", payload={"n": n})[0]
            for n in range(3)
        ]
    worker = start_worker(
        DATABASE_URL=child_database_url(),
        ORCHCAP_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        ORCHCAP_WEBHOOK_RETRY_SCHEDULE=",".join(["1"] * 30),
    )
    try:
        retried = _wait(
            lambda: DeliveryAttempt.objects.filter(delivery=sent[0]).count() >= 2,
            timeout=90,
            worker=worker,
        )
        receiver.start()
        delivered = _wait(
            lambda: Delivery.objects.filter(state="delivered").count() == 3,
            timeout=30,
            worker=worker,
        )
        time.sleep(1.5)  # a duplicate, if any, would arrive now
    finally:
        output = stop_process(worker)
    assert retried, output
    assert delivered, output
    assert [r.headers["webhook-id"] for r in receiver.posts] == [d.webhook_id for d in sent]
    assert Delivery.objects.get(pk=sent[1].pk).attempts == 1  # waited behind the first
