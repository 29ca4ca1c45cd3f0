"""SSRF: webhook targets are checked when configured and again right before connecting, and the
connection goes to the address that was checked. No traffic leaves 127.0.0.0/8: refusals are
checked without connecting (literal addresses and /etc/hosts need no DNS)."""

import pytest
from django.core.exceptions import ValidationError

from apps.connectors import targets
from apps.connectors.models import Delivery, DeliveryAttempt
from apps.connectors.services.connectors import create_connector
from apps.connectors.services.deliveries import drain_connector, enqueue_event
from apps.connectors.targets import TargetRefused, check_target


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/hook", "a private address"),
        ("http://192.168.0.10:8080/hook", "a private address"),
        ("http://172.16.5.5/", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://127.0.0.2:9000/", "a loopback address"),
        ("http://localhost:8000/", "a loopback address"),
        ("http://[::1]:8000/", "a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "a private address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://0.0.0.0:80/", "an unspecified address"),
        ("http://100.64.0.1/", "a non-public address"),
    ],
)
def test_private_and_special_addresses_are_refused(url, reason, settings):
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(TargetRefused, match=reason):
        check_target(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:70/", "http:// or https://"),
        ("http://user:pw@93.184.216.34/", "user name or password"),
        ("http://93.184.216.34:99999/", "not valid"),
        ("https:///nohost", "no host"),
    ],
)
def test_other_schemes_credentials_and_bad_urls_are_refused(url, message):
    with pytest.raises(TargetRefused, match=message):
        check_target(url)


def test_a_name_that_does_not_resolve_is_refused(monkeypatch):
    # No real lookup: a DNS query could leave the machine.
    def no_answer(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    monkeypatch.setattr(targets, "resolve_host", no_answer)
    with pytest.raises(TargetRefused, match="does not resolve"):
        check_target("https://hooks.example.com/")


def test_a_public_address_and_an_allow_listed_host_pass(settings):
    target = check_target("https://93.184.216.34/hooks?x=1")
    assert (target.address, target.port, target.path) == ("93.184.216.34", 443, "/hooks?x=1")
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["10.1.0.0/16", "localhost"]
    assert check_target("http://10.1.2.3:8080/").address == "10.1.2.3"
    assert check_target("http://localhost:8080/").port == 8080
    with pytest.raises(TargetRefused):
        check_target("http://10.2.0.1/")


def test_configuring_a_refused_target_is_a_validation_error(team, manager, settings):
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(ValidationError) as refused:
        create_connector(
            team=team, name="Meta", url="http://169.254.169.254/", event_types=["item.decided"],
            owner=manager,
        )  # fmt: skip
    assert "link-local" in str(refused.value.message_dict["url"])


def test_the_target_is_checked_again_right_before_connecting(team, connector, receiver, settings):
    enqueue_event(team=team, event_type="item.decided", payload={})
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = []  # the admin withdrew the allow-listing

    result = drain_connector(connector_id=connector.pk)

    assert result.failed == 1
    assert receiver.received == []  # refused before any connection
    (attempt,) = DeliveryAttempt.objects.all()
    assert "a loopback address" in attempt.error
    assert attempt.status_code is None
    assert Delivery.objects.get().state == "failed"


def test_a_name_that_rebinds_to_a_private_address_is_refused_at_sending(
    team, manager, receiver, monkeypatch
):
    answers = {"hooks.example.com": ["93.184.216.34"]}
    monkeypatch.setattr(targets, "resolve_host", lambda host, port: answers[host])
    connector = create_connector(
        team=team, name="Rebinding", url="http://hooks.example.com/x", event_types=["item.decided"],
        owner=manager,
    )  # fmt: skip
    enqueue_event(team=team, event_type="item.decided", payload={})
    answers["hooks.example.com"] = ["10.0.0.7"]  # the DNS answer changed after configuration

    assert drain_connector(connector_id=connector.pk).failed == 1
    assert "10.0.0.7, a private address" in DeliveryAttempt.objects.get().error


def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(
    team, manager, receiver, monkeypatch, settings
):
    # An allow-listed name resolved once, by the check: the session connects to that address.
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["receiver.test"]
    monkeypatch.setattr(targets, "resolve_host", lambda host, port: ["127.0.0.1"])
    connector = create_connector(
        team=team, name="Named", url=f"http://receiver.test:{receiver.port}/in",
        event_types=["item.decided"], owner=manager,
    )  # fmt: skip
    enqueue_event(team=team, event_type="item.decided", payload={})

    assert drain_connector(connector_id=connector.pk).delivered == 1
    (request,) = receiver.posts
    assert request.headers["host"] == f"receiver.test:{receiver.port}"
    assert request.path == "/in"
