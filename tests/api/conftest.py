import pytest
from django.test import Client

from apps.people import services
from tests.factories import make_process


@pytest.fixture
def process(team):
    return make_process(team)


def token_client(user) -> Client:
    _, raw = services.create_api_token(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
