"""The navigation is on every page: who sees which entry, and what it costs per page."""

import pytest
from django.test import RequestFactory

from apps.people.context_processors import navigation
from apps.people.models import Role
from tests.factories import make_member, make_process, make_team, make_user

pytestmark = pytest.mark.django_db


def labels_for(user) -> list[str]:
    request = RequestFactory().get("/")
    request.user = user
    return [label for label, _ in navigation(request)["nav_items"]]


def test_each_role_sees_the_entries_its_pages_let_in():
    team = make_team()
    make_process(team=team)
    expert = make_member(team, Role.EXPERT)
    manager = make_member(team, Role.MANAGER)
    staff = make_member(team, Role.STAFF)
    admin = make_user(is_superuser=True)

    assert {"My decisions", "Orchestrations", "Autonomy"} <= set(labels_for(expert))
    assert "Connectors" not in labels_for(expert)
    assert {"Orchestrations", "Connectors", "Autonomy"} <= set(labels_for(manager))
    assert "My decisions" not in labels_for(manager)
    assert set(labels_for(staff)) & {"My decisions", "Orchestrations", "Connectors", "Fabric",
                                     "Autonomy"} == set()  # fmt: skip
    assert {"Orchestrations", "Connectors", "Fabric"} <= set(labels_for(admin))
    assert "My decisions" not in labels_for(admin)


def test_roles_decide_most_entries_without_a_query_each(django_assert_max_num_queries):
    team = make_team()
    staff = make_member(team, Role.STAFF)
    # The roles (one query) and whether they own a machine (one): nothing per entry. Each entry
    # asking the database itself made seven.
    with django_assert_max_num_queries(2):
        labels_for(staff)
