"""The receiver snippet of docs/orchestrations.md ("Connecting a source system") verifies a real
delivery from orchcap and refuses the same delivery altered: its `verify` directly, and its
handler served on loopback as the connector's endpoint."""

import re
import threading
import urllib.error
import urllib.request
from http.server import HTTPServer
from pathlib import Path

import pytest

from apps.connectors.models import Delivery
from apps.connectors.services.connectors import create_connector
from apps.connectors.services.deliveries import drain_connector, enqueue_event
from tests.connectors.receiver import Receiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "orchestrations.md"
_SNIPPET = re.compile(r"<!-- snippet: verify-receiver -->\n```python\n(.*?)^```", re.M | re.S)


def snippet() -> dict:
    """The snippet's code, run as a module that is imported (its server does not start)."""
    found = _SNIPPET.search(DOC.read_text())
    assert found, "docs/orchestrations.md lost its verify-receiver snippet"
    namespace: dict = {"__name__": "receiver_snippet"}
    exec(compile(found.group(1), str(DOC), "exec"), namespace)  # noqa: S102 (our own doc)
    return namespace


@pytest.fixture
def loopback(settings):
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


def test_the_snippets_verify_accepts_a_real_delivery_and_refuses_it_altered(
    team, manager, loopback
):
    receiver = Receiver().start()
    try:
        connector = create_connector(
            team=team, name="ERP", url=receiver.url, event_types=["item.decided"], owner=manager
        )
        enqueue_event(team=team, event_type="item.decided",
                      payload={"external_id": "INV-7731", "label": "approve"})  # fmt: skip
        assert drain_connector(connector_id=connector.pk).delivered == 1
    finally:
        receiver.stop()
    [message] = receiver.posts
    verify = snippet()["verify"]

    assert verify(connector.secret, message.headers, message.body)
    assert not verify(
        connector.secret, message.headers, message.body.replace(b"approve", b"reject")
    )
    assert not verify(
        connector.secret, {**message.headers, "webhook-id": "msg_other"}, message.body
    )
    assert not verify(
        connector.secret, {**message.headers, "webhook-timestamp": "1700000000"}, message.body
    )


def test_the_snippets_handler_answers_orchcap_200_and_an_altered_message_401(
    team, manager, loopback
):
    code = snippet()
    server = HTTPServer(("127.0.0.1", 0), code["Callbacks"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        connector = create_connector(
            team=team, name="ERP", url=url, event_types=["item.decided"], owner=manager
        )
        code["SECRET"] = connector.secret
        [delivery] = enqueue_event(team=team, event_type="item.decided",
                                   payload={"external_id": "INV-1", "label": "approve"})  # fmt: skip
        drain_connector(connector_id=connector.pk)
        headers = {"webhook-id": delivery.webhook_id, "webhook-timestamp": "1796280000",
                   "webhook-signature": "v1,AAAA", "Content-Type": "application/json"}  # fmt: skip
        forged = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
    finally:
        server.shutdown()
        server.server_close()

    assert Delivery.objects.get(pk=delivery.pk).state == "delivered"
    assert refused.value.code == 401
