import pytest

from tests.factories import make_process


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def double_process(team):
    """Two independent experts label each case."""
    return make_process(team, slug="claims-check", overlap=2)
