import pytest

from apps.connectors.services.connectors import create_connector
from tests.connectors.receiver import Receiver


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    """The loopback receiver allow-listed; retries a minute apart (tests move them forward)."""
    settings.ORCHCAP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.ORCHCAP_WEBHOOK_RETRY_SCHEDULE = [60, 60, 60]
    settings.ORCHCAP_WEBHOOK_TIMEOUT_SECONDS = 5
    return settings


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def connector(team, manager, receiver):
    manager.email = "maya@example.com"
    manager.save(update_fields=["email"])
    return create_connector(
        team=team,
        name="ERP",
        url=receiver.url,
        event_types=["item.decided", "item.routed"],
        owner=manager,
    )
