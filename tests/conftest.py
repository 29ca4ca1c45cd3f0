"""Personas: one user per role in team `ap`, plus a second expert and an outsider in another team."""

import pytest
from django.test import Client

from apps.people.models import Role
from tests.factories import make_member, make_team


@pytest.fixture
def team(db):
    return make_team("ap", "Accounts Payable")


@pytest.fixture
def other_team(db):
    return make_team("claims", "Claims")


@pytest.fixture
def expert(team):
    return make_member(team, Role.EXPERT, "erin")


@pytest.fixture
def second_expert(team):
    return make_member(team, Role.EXPERT, "eli")


@pytest.fixture
def manager(team):
    return make_member(team, Role.MANAGER, "maya")


@pytest.fixture
def staff(team):
    return make_member(team, Role.STAFF, "sam")


@pytest.fixture
def admin(team):
    return make_member(team, Role.ADMIN, "ada")


@pytest.fixture
def outsider(other_team):
    return make_member(other_team, Role.MANAGER, "otto")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
