"""The connectors API: a team's managers and admins configure endpoints, read the delivery log,
redeliver and replay; everyone else gets 404; bad input is a 4xx with the reason."""

from datetime import timedelta

from django.utils import timezone

from apps.connectors.models import Connector, Delivery
from apps.connectors.services.deliveries import drain_connector, enqueue_event
from tests.conftest import client_for

API = "/api/v1"


def post(client, path, body=None):
    return client.post(path, body or {}, content_type="application/json")


def test_a_manager_adds_a_connector_and_sees_its_secret_once(team, manager, receiver):
    client = client_for(manager)
    response = post(
        client,
        f"{API}/connectors",
        {"team": team.slug, "name": "ERP", "url": receiver.url, "event_types": ["item.decided"]},
    )

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert (created["team"], created["owner"], created["enabled"]) == ("ap", "maya", True)
    listed = client.get(f"{API}/connectors").json()
    assert [c["name"] for c in listed] == ["ERP"]
    assert "secret" not in listed[0]
    one = client.get(f"{API}/connectors/{created['id']}").json()
    assert (one["backlog"], one["dead"]) == (0, 0)
    assert "secret" not in one


def test_bad_input_is_a_422_with_the_reason(team, manager, receiver, settings):
    client = client_for(manager)
    body = {"team": team.slug, "name": "ERP", "url": receiver.url, "event_types": ["item.decided"]}
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = []

    refused = post(client, f"{API}/connectors", body)
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    unknown = post(client, f"{API}/connectors", {**body, "event_types": ["item.exploded"]})
    scheme = post(client, f"{API}/connectors", {**body, "url": "ftp://example.com/"})
    missing = post(client, f"{API}/connectors", {"team": team.slug})

    assert refused.status_code == 422
    assert "loopback" in refused.json()["detail"]
    assert unknown.status_code == 422
    assert "item.exploded" in unknown.json()["detail"]
    assert scheme.status_code == 422
    assert "http://" in scheme.json()["detail"]
    assert missing.status_code == 422
    assert post(client, f"{API}/connectors", body).status_code == 201
    duplicate = post(client, f"{API}/connectors", {**body, "name": "erp"})
    assert duplicate.status_code == 422
    assert "already has a connector" in duplicate.json()["detail"]


def test_experts_staff_and_outsiders_get_404(team, connector, expert, staff, outsider, receiver):
    for user in (expert, staff, outsider):
        client = client_for(user)
        assert client.get(f"{API}/connectors").json() == []
        assert client.get(f"{API}/connectors/{connector.pk}").status_code == 404
        assert client.get(f"{API}/connectors/{connector.pk}/deliveries").status_code == 404
        created = post(
            client,
            f"{API}/connectors",
            {"team": team.slug, "name": "X", "url": receiver.url, "event_types": ["sla.breached"]},
        )
        assert created.status_code == 404
    assert Connector.objects.count() == 1


def test_patch_changes_settings_and_disables(team, connector, manager):
    client = client_for(manager)
    path = f"{API}/connectors/{connector.pk}"

    renamed = client.patch(
        path, {"name": "ERP v2", "event_types": ["sla.breached"]}, content_type="application/json"
    )
    disabled = client.patch(path, {"enabled": False}, content_type="application/json")
    bad_url = client.patch(path, {"url": "http://10.0.0.1/"}, content_type="application/json")

    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["event_types"]) == ("ERP v2", ["sla.breached"])
    assert disabled.json()["enabled"] is False
    assert disabled.json()["disabled_reason"] == "Disabled by hand."
    assert bad_url.status_code == 422
    assert "private" in bad_url.json()["detail"]


def test_rotating_the_secret_returns_the_new_one_and_the_overlap(connector, manager):
    response = post(client_for(manager), f"{API}/connectors/{connector.pk}/rotate-secret")

    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != connector.secret
    assert body["previous_secret_expires_at"] is not None


def test_the_delivery_log_redeliver_and_replay(team, connector, manager, receiver):
    receiver.answer = lambda request: 500
    enqueue_event(team=team, event_type="item.decided", payload={"n": 1})
    drain_connector(connector_id=connector.pk)
    client = client_for(manager)

    log = client.get(f"{API}/connectors/{connector.pk}/deliveries").json()
    (item,) = log["items"]
    assert (log["count"], item["state"], item["attempts"]) == (1, "failed", 1)
    (attempt,) = item["recent_attempts"]
    assert (attempt["status_code"], attempt["response_snippet"]) == (500, "nope")
    assert client.get(f"{API}/connectors/{connector.pk}/deliveries?state=dead").json()["count"] == 0
    assert client.get(f"{API}/connectors/{connector.pk}/deliveries?limit=0").status_code == 422
    assert client.get(f"{API}/connectors/{connector.pk}/deliveries?state=x").status_code == 422

    receiver.answer = lambda request: 200
    redelivered = post(client, f"{API}/deliveries/{item['id']}/redeliver")
    assert redelivered.status_code == 202
    assert redelivered.json()["state"] == "queued"
    assert post(client, f"{API}/deliveries/{item['id']}/redeliver").status_code == 409
    drain_connector(connector_id=connector.pk)
    assert Delivery.objects.get().state == "delivered"

    now = timezone.now()
    replayed = post(
        client,
        f"{API}/connectors/{connector.pk}/replay",
        {"since": (now - timedelta(hours=1)).isoformat(), "until": now.isoformat()},
    )
    assert replayed.status_code == 202
    assert replayed.json() == {"requeued": 1}
    backwards = post(
        client,
        f"{API}/connectors/{connector.pk}/replay",
        {"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()},
    )
    assert backwards.status_code == 422
    assert "before" in backwards.json()["detail"]


def test_outsiders_cannot_redeliver(team, connector, outsider, expert, receiver):
    (delivery,) = enqueue_event(team=team, event_type="item.decided", payload={})
    drain_connector(connector_id=connector.pk)
    for user in (outsider, expert):
        assert (
            post(client_for(user), f"{API}/deliveries/{delivery.pk}/redeliver").status_code == 404
        )
