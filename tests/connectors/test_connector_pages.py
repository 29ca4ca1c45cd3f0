"""Connector pages: the list per team with the add form, a connector's page with its delivery log
(htmx-filtered) and dead letters, the redeliver button; managers and admins only."""

from django.urls import reverse

from apps.connectors.models import Connector, Delivery
from apps.connectors.services.deliveries import drain_connector, enqueue_event
from tests.conftest import client_for


def test_a_manager_adds_a_connector_on_the_list_page(team, manager, receiver):
    client = client_for(manager)
    assert client.get(reverse("connector_list")).status_code == 200

    response = client.post(
        reverse("connector_list"),
        {"team": team.slug, "name": "ERP", "url": receiver.url, "event_types": ["item.decided"]},
        follow=True,
    )

    connector = Connector.objects.get()
    assert response.redirect_chain[-1][0] == reverse("connector_detail", args=[connector.pk])
    assert connector.secret in response.content.decode()  # shown once, after creation
    assert "ERP" in client.get(reverse("connector_list")).content.decode()


def test_a_refused_url_re_renders_the_form_with_the_reason(team, manager, settings):
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = []
    response = client_for(manager).post(
        reverse("connector_list"),
        {"team": team.slug, "name": "Meta", "url": "http://169.254.169.254/", "event_types": ["item.decided"]},
    )  # fmt: skip
    assert response.status_code == 422
    assert "link-local" in response.content.decode()
    assert Connector.objects.count() == 0


def test_experts_get_403_on_the_list_and_404_on_a_connector(connector, expert, outsider):
    assert client_for(expert).get(reverse("connector_list")).status_code == 403
    for user in (expert, outsider):
        page = client_for(user).get(reverse("connector_detail", args=[connector.pk]))
        assert page.status_code == 404


def test_the_connector_page_shows_the_log_and_dead_letters_and_redelivers(
    team, connector, manager, receiver, settings
):
    settings.ORCHCAP_WEBHOOK_RETRY_SCHEDULE = []
    receiver.answer = lambda request: 500
    (delivery,) = enqueue_event(team=team, event_type="item.decided", payload={"n": 1})
    drain_connector(connector_id=connector.pk)
    client = client_for(manager)
    url = reverse("connector_detail", args=[connector.pk])

    page = client.get(url).content.decode()
    fragment = client.get(
        f"{url}?state=dead", headers={"HX-Request": "true", "HX-Target": "delivery-log"}
    )

    assert delivery.webhook_id in page
    assert "Dead letters" in page
    assert "HTTP 500" in page
    assert "<html" not in fragment.content.decode()
    assert delivery.webhook_id in fragment.content.decode()
    response = client.post(reverse("delivery_redeliver", args=[delivery.pk]))
    assert response.status_code == 302
    assert Delivery.objects.get().state == "queued"
    receiver.answer = lambda request: 200
    drain_connector(connector_id=connector.pk)
    assert Delivery.objects.get().state == "delivered"


def test_rotate_and_disable_from_the_page(connector, manager):
    client = client_for(manager)
    client.post(reverse("connector_rotate_secret", args=[connector.pk]))
    client.post(reverse("connector_enabled", args=[connector.pk]), {"enabled": "false"})
    after = Connector.objects.get()
    assert after.secret != connector.secret
    assert after.previous_secret == connector.secret
    assert not after.enabled
