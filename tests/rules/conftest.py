import pytest

from tests.factories import make_process


@pytest.fixture
def process(team):
    return make_process(team)
