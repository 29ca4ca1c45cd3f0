"""How a drain sends a backlog: chunk after chunk over one kept-alive connection, in order, its
successes recorded as it goes (one attempt row each), a request never split or injectable."""

import http.client

import pytest
from django import db

from apps.connectors.models import Connector, Delivery, DeliveryAttempt
from apps.connectors.services import deliveries
from apps.connectors.services.deliveries import drain_connector, enqueue_event
from apps.connectors.targets import check_target
from apps.connectors.transport import Session
from tests.connectors.receiver import verify_signature


def test_a_backlog_longer_than_a_chunk_goes_in_order_over_one_connection(
    team, connector, receiver, monkeypatch
):
    monkeypatch.setattr(deliveries, "BATCH", 4)
    monkeypatch.setattr(deliveries, "RECORD_EVERY", 3)
    sent = [
        enqueue_event(team=team, event_type="item.decided", payload={"n": n})[0] for n in range(10)
    ]

    result = drain_connector(connector_id=connector.pk)

    assert (result.delivered, result.failed) == (10, 0)
    assert [r.headers["webhook-id"] for r in receiver.posts] == [d.webhook_id for d in sent]
    assert len({r.client_port for r in receiver.posts}) == 1  # one kept-alive connection
    assert all(
        verify_signature(secret=connector.secret, headers=r.headers, body=r.body)
        for r in receiver.posts
    )
    assert set(Delivery.objects.values_list("state", "attempts", "last_status")) == {
        ("delivered", 1, 200)
    }
    attempts = list(
        DeliveryAttempt.objects.order_by("id").values_list("delivery_id", "status_code")
    )
    assert attempts == [(d.pk, 200) for d in sent]
    after = Connector.objects.get(pk=connector.pk)
    assert after.last_success_at is not None
    assert after.failing_since is None
    assert (after.drain_token, after.drain_lease_until) == ("", None)  # the lease released


@pytest.mark.django_db(transaction=True)
def test_what_was_sent_is_recorded_as_the_drain_goes_not_at_its_end(
    team, connector, receiver, monkeypatch
):
    monkeypatch.setattr(deliveries, "RECORD_EVERY", 3)
    for n in range(8):
        enqueue_event(team=team, event_type="item.decided", payload={"n": n})
    seen: list[int] = []

    def answer(request) -> int:
        # The receiver's thread reads what the drainer committed so far (on a connection of
        # its own, closed each time so none outlives the test).
        try:
            seen.append(Delivery.objects.filter(state="delivered").count())
        finally:
            db.connection.close()
        return 200

    receiver.answer = answer
    drain_connector(connector_id=connector.pk)

    assert seen == [0, 0, 0, 3, 3, 3, 6, 6]
    assert DeliveryAttempt.objects.count() == 8


def test_a_failure_mid_chunk_records_the_successes_before_it_and_requeues_the_rest(
    team, connector, receiver
):
    sent = [
        enqueue_event(team=team, event_type="item.decided", payload={"n": n})[0] for n in range(5)
    ]
    receiver.answer = lambda request: 503 if b'"n":2' in request.body else 200

    result = drain_connector(connector_id=connector.pk)

    assert (result.delivered, result.failed) == (2, 1)
    states = dict(Delivery.objects.values_list("pk", "state"))
    assert [states[d.pk] for d in sent] == ["delivered", "delivered", "failed", "queued", "queued"]
    log = list(DeliveryAttempt.objects.order_by("id").values_list("delivery_id", "status_code"))
    assert log == [(sent[0].pk, 200), (sent[1].pk, 200), (sent[2].pk, 503)]


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(receiver, settings):
    session = Session(check_target(receiver.url), timeout=5)
    with pytest.raises(http.client.InvalidURL):
        session.request("POST", {"webhook-id": "msg_1\r\nX-Evil: 1"}, b"{}")
    session.close()
    assert receiver.received == []
