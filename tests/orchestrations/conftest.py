import pytest

from apps.connectors.services.connectors import create_connector
from apps.orchestrations.services import create_orchestration
from apps.rules.services.authoring import create_rule
from tests.factories import make_process


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def rule(process, manager):
    return create_rule(
        process=process, owner=manager, name="No PO", action={"decide": "request_info"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
    )  # fmt: skip


@pytest.fixture
def connector(team, manager):
    # A public address: checked against SSRF at configuration, never connected to here.
    return create_connector(
        team=team, name="ERP", url="https://93.184.216.34/hooks", event_types=["item.decided"],
        owner=manager,
    )  # fmt: skip


@pytest.fixture
def orchestration(process, manager):
    return create_orchestration(
        process=process, slug="invoice-flow", name="Invoice flow", owner=manager
    )
