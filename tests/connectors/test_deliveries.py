"""Deliveries to a real receiver on loopback: signed per Standard Webhooks, retried, in order per
endpoint, delivered exactly once when the receiver returns, dead-lettered, redelivered."""

import json
from datetime import timedelta

from django.core import mail
from django.db import transaction
from django.utils import timezone

from apps.connectors.models import Connector, Delivery, DeliveryAttempt
from apps.connectors.services import connectors as connector_services
from apps.connectors.services.deliveries import (
    drain_connector,
    enqueue_event,
    probe_connector,
    redeliver,
    replay,
    sweep,
)
from tests.connectors.receiver import verify_signature


def time_passes(connector: Connector) -> None:
    """The retry times come (instead of waiting for them)."""
    Delivery.objects.filter(connector=connector, state="failed").update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def drain(connector: Connector):
    return drain_connector(connector_id=connector.pk)


def test_a_delivery_arrives_signed_and_verifies_with_the_spec_algorithm(team, connector, receiver):
    (delivery,) = enqueue_event(team=team, event_type="item.decided", payload={"label": "ok"})

    assert drain(connector).delivered == 1

    (request,) = receiver.posts
    assert request.headers["webhook-id"] == delivery.webhook_id
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.body)
    assert body["type"] == "item.decided"
    assert body["data"] == {"label": "ok"}
    assert verify_signature(secret=connector.secret, headers=request.headers, body=request.body)
    tampered = request.body.replace(b'"ok"', b'"no"')
    assert not verify_signature(secret=connector.secret, headers=request.headers, body=tampered)
    other = connector_services.rotate_secret(connector=Connector.objects.get(pk=connector.pk))
    other.previous_secret = ""
    assert not verify_signature(secret=other.secret, headers=request.headers, body=request.body)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)
    (attempt,) = DeliveryAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code == 200
    assert attempt.response_snippet == "ok"
    assert attempt.latency_ms is not None


def test_only_enabled_connectors_subscribed_to_the_event_get_it(team, connector, manager, receiver):
    connector_services.create_connector(
        team=team, name="Paused", url=receiver.url, event_types=["item.decided"], owner=manager
    )
    Connector.objects.filter(name="Paused").update(enabled=False)

    assert enqueue_event(team=team, event_type="sla.breached", payload={}) == []
    assert len(enqueue_event(team=team, event_type="item.decided", payload={})) == 1


def test_an_event_of_a_rolled_back_transaction_is_never_sent(team, connector, receiver):
    try:
        with transaction.atomic():
            enqueue_event(team=team, event_type="item.decided", payload={"n": 1})
            raise RuntimeError("the caller fails")
    except RuntimeError:
        pass

    assert Delivery.objects.count() == 0
    assert drain(connector).delivered == 0
    assert receiver.posts == []


def test_receiver_down_then_retries_then_delivered_exactly_once_when_it_returns(
    team, connector, receiver
):
    receiver.stop()
    sent = [
        enqueue_event(team=team, event_type="item.decided", payload={"n": n})[0] for n in range(3)
    ]

    assert drain(connector).failed == 1
    time_passes(connector)
    assert drain(connector).failed == 1
    assert not probe_connector(connector_id=connector.pk)
    head = Delivery.objects.get(pk=sent[0].pk)
    assert (head.state, head.attempts, head.retry_step) == ("failed", 2, 2)
    assert head.next_attempt_at > timezone.now()  # waits for its retry: the backlog waits too
    assert Delivery.objects.filter(state="queued").count() == 2
    connector.refresh_from_db()
    assert connector.failing_since is not None

    receiver.start()
    assert probe_connector(connector_id=connector.pk)  # answers: the backlog goes at once

    assert [r.headers["webhook-id"] for r in receiver.posts] == [d.webhook_id for d in sent]
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}
    errors = list(DeliveryAttempt.objects.filter(delivery=sent[0]).order_by("started_at", "id"))
    assert [bool(a.error) for a in errors] == [True, True, False]
    connector.refresh_from_db()
    assert connector.failing_since is None
    # Nothing is sent twice: another drain, probe and sweep later, still one each.
    time_passes(connector)
    drain(connector)
    sweep()
    assert len(receiver.posts) == 3


def test_deliveries_to_one_endpoint_go_out_in_order_behind_a_failing_one(team, connector, receiver):
    status = {"now": 503}
    receiver.answer = lambda request: status["now"]
    first, second, third = (
        enqueue_event(team=team, event_type="item.decided", payload={"n": n})[0] for n in range(3)
    )

    drain(connector)
    assert [r.headers["webhook-id"] for r in receiver.posts] == [first.webhook_id]
    fourth = enqueue_event(team=team, event_type="item.routed", payload={"n": 3})[0]
    assert drain(connector).delivered == 0  # the new one waits behind the oldest

    status["now"] = 200
    time_passes(connector)
    assert drain(connector).delivered == 4
    order = [r.headers["webhook-id"] for r in receiver.posts]
    assert order == [d.webhook_id for d in (first, first, second, third, fourth)]
    first.refresh_from_db()
    assert (first.attempts, first.last_status) == (2, 200)


def test_410_gone_disables_the_endpoint_and_tells_its_owner(
    team, connector, receiver, django_capture_on_commit_callbacks
):
    receiver.answer = lambda request: 410
    enqueue_event(team=team, event_type="item.decided", payload={})
    enqueue_event(team=team, event_type="item.decided", payload={})

    with django_capture_on_commit_callbacks(execute=True):
        result = drain(connector)

    assert result.dead == 1
    assert len(receiver.posts) == 1
    connector.refresh_from_db()
    assert not connector.enabled
    assert "410 Gone" in connector.disabled_reason
    assert Delivery.objects.filter(state="dead").count() == 1
    assert Delivery.objects.filter(state="queued").count() == 1  # waits for the endpoint
    assert enqueue_event(team=team, event_type="item.decided", payload={}) == []
    (notice,) = mail.outbox
    assert notice.to == ["maya@example.com"]
    assert "410 Gone" in notice.body


def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
    team, connector, receiver
):
    old = connector.secret
    rotated = connector_services.rotate_secret(connector=connector)
    enqueue_event(team=team, event_type="item.decided", payload={"n": 1})
    drain(connector)

    (request,) = receiver.posts
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    assert verify_signature(secret=rotated.secret, headers=request.headers, body=request.body)
    assert verify_signature(secret=old, headers=request.headers, body=request.body)

    Connector.objects.filter(pk=connector.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    enqueue_event(team=team, event_type="item.decided", payload={"n": 2})
    drain(connector)
    later = receiver.posts[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    assert not verify_signature(secret=old, headers=later.headers, body=later.body)
    assert verify_signature(secret=rotated.secret, headers=later.headers, body=later.body)


def test_retries_run_out_then_the_delivery_is_dead_and_the_next_one_goes(
    team, connector, receiver, settings
):
    settings.ORCHCAP_WEBHOOK_RETRY_SCHEDULE = [60]
    answers = iter([500, 500])
    receiver.answer = lambda request: next(answers, 200)
    doomed = enqueue_event(team=team, event_type="item.decided", payload={"n": 1})[0]
    after = enqueue_event(team=team, event_type="item.decided", payload={"n": 2})[0]

    drain(connector)
    time_passes(connector)
    result = drain(connector)

    assert (result.dead, result.delivered) == (1, 1)
    doomed.refresh_from_db()
    assert (doomed.state, doomed.attempts, doomed.last_status) == ("dead", 2, 500)
    after.refresh_from_db()
    assert after.state == "delivered"

    # Redelivered by hand: same webhook-id, sent at once.
    redeliver(delivery=doomed)
    assert drain(connector).delivered == 1
    assert receiver.posts[-1].headers["webhook-id"] == doomed.webhook_id
    doomed.refresh_from_db()
    assert (doomed.state, doomed.attempts) == ("delivered", 3)


def test_replay_sends_a_time_range_again_in_order(team, connector, receiver):
    now = timezone.now()
    old = enqueue_event(
        team=team, event_type="item.decided", payload={"n": 0}, now=now - timedelta(days=2)
    )[0]
    recent = [
        enqueue_event(team=team, event_type="item.decided", payload={"n": n}, now=now)[0]
        for n in (1, 2)
    ]
    drain(connector)
    assert len(receiver.posts) == 3

    count = replay(
        connector=connector, since=now - timedelta(hours=1), until=now + timedelta(seconds=1)
    )
    drain(connector)

    assert count == 2
    assert [r.headers["webhook-id"] for r in receiver.posts[3:]] == [d.webhook_id for d in recent]
    assert old.webhook_id not in [r.headers["webhook-id"] for r in receiver.posts[3:]]


def test_an_endpoint_failing_too_long_is_disabled_and_its_owner_told(
    team, connector, receiver, settings, django_capture_on_commit_callbacks
):
    receiver.stop()
    enqueue_event(team=team, event_type="item.decided", payload={})
    drain(connector)
    hours = settings.ORCHCAP_WEBHOOK_DISABLE_AFTER_HOURS
    Connector.objects.filter(pk=connector.pk).update(
        failing_since=timezone.now() - timedelta(hours=hours, minutes=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert sweep()["disabled"] == 1

    connector.refresh_from_db()
    assert not connector.enabled
    assert f"more than {hours} h" in connector.disabled_reason
    (notice,) = mail.outbox
    assert notice.to == ["maya@example.com"]
    assert connector.name in notice.subject
    # Enabled again by hand: the backlog is owed still and goes once the receiver is back.
    receiver.start()
    connector_services.update_connector(connector=connector, values={"enabled": True})
    connector.refresh_from_db()
    assert connector.failing_since is None
    time_passes(connector)
    assert drain(connector).delivered == 1


def test_the_sweeper_sends_a_drain_for_a_lost_message_and_probes_a_waiting_backlog(
    team, connector, receiver
):
    enqueue_event(team=team, event_type="item.decided", payload={})
    # Sent just now: a worker will take it.
    assert sweep()["drains"] == 0
    # Its message was lost: a minute later the sweeper sends it again.
    Connector.objects.filter(pk=connector.pk).update(
        nudged_at=timezone.now() - timedelta(minutes=2)
    )
    assert sweep()["drains"] == 1
    assert sweep()["drains"] == 0

    receiver.answer = lambda request: 500
    drain(connector)
    assert Delivery.objects.get().state == "failed"
    assert sweep()["probes"] == 1  # waits for its retry: probed
    assert sweep()["probes"] == 0  # not again before ORCHCAP_WEBHOOK_PROBE_SECONDS


def test_a_new_event_probes_a_waiting_endpoint_and_its_backlog_goes_at_once(
    team, connector, receiver
):
    status = {"now": 500}
    receiver.answer = lambda request: status["now"]
    first = enqueue_event(team=team, event_type="item.decided", payload={"n": 1})[0]
    drain(connector)
    assert Delivery.objects.get(pk=first.pk).state == "failed"  # its retry is a minute away

    status["now"] = 200  # the endpoint is back; nobody told orchcap
    second = enqueue_event(team=team, event_type="item.decided", payload={"n": 2})[0]
    result = drain(connector)  # the drain sent for the new event

    assert result.delivered == 2
    assert [r.method for r in receiver.received] == ["POST", "HEAD", "POST", "POST"]
    assert [r.headers["webhook-id"] for r in receiver.posts[1:]] == [
        first.webhook_id,
        second.webhook_id,
    ]
    # At most one probe per few seconds: a drain right after a failed one doesn't probe again.
    status["now"] = 500
    enqueue_event(team=team, event_type="item.decided", payload={"n": 3})
    drain(connector)
    enqueue_event(team=team, event_type="item.decided", payload={"n": 4})
    drain(connector)
    assert [r.method for r in receiver.received[4:]] == ["POST"]


def test_a_transaction_of_many_events_sends_one_drain_per_connector(
    team, connector, manager, receiver, django_capture_on_commit_callbacks
):
    other = connector_services.create_connector(
        team=team, name="CRM", url=receiver.url, event_types=["item.decided"], owner=manager
    )
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for n in range(5):
            enqueue_event(team=team, event_type="item.decided", payload={"n": n})
        try:
            with transaction.atomic():  # a savepoint rolled back keeps the pending publish
                enqueue_event(team=team, event_type="item.decided", payload={"n": 99})
                raise RuntimeError
        except RuntimeError:
            pass

    (publish,) = callbacks
    assert publish.connector_ids == {connector.pk, other.pk}
    assert Delivery.objects.count() == 10
