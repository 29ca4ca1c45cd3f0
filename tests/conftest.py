"""Personas: one user per role in team `ap` (`admin` is also the organisation admin, `team_admin` is
not), plus a second expert and an outsider in another team."""

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
    """The organisation admin (a superuser), also holding the admin role in `ap`."""
    user = make_member(team, Role.ADMIN, "ada")
    user.is_superuser = user.is_staff = True
    user.save(update_fields=["is_superuser", "is_staff"])
    return user


@pytest.fixture
def team_admin(team):
    """An admin of team `ap` only: not an organisation admin."""
    return make_member(team, Role.ADMIN, "tara")


@pytest.fixture
def outsider(other_team):
    return make_member(other_team, Role.MANAGER, "otto")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
