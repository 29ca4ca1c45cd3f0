"""Organisation admins (superusers) and team admins (the admin role in a team) are separate: a
team's admin manages that team's members and nodes only, and the Django admin is the
organisation admins'."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.fabric.models import EnrollmentToken
from apps.fabric.services import enrollment
from apps.people.demo import seed_demo_organisation
from apps.people.models import Membership, Role
from tests.conftest import client_for
from tests.fabric.conftest import enroll
from tests.factories import make_member

User = get_user_model()


@pytest.fixture
def other_member(other_team):
    return make_member(other_team, Role.EXPERT, "olga")


def _node(admin, team, name):
    _, raw = enrollment.create_enrollment_token(created_by=admin, team=team, auto_approve=True)
    return enroll(raw, name=name).node


@pytest.fixture
def nodes(admin, team, other_team):
    """One node enrolled for `ap` (team_admin's team) and one for `claims`."""
    return _node(admin, team, "ap-box"), _node(admin, other_team, "claims-box")


def test_team_admin_gets_404_on_another_teams_members(team_admin, other_team, other_member):
    client = client_for(team_admin)
    assert client.get(reverse("team_detail", args=[other_team.slug])).status_code == 404
    response = client.post(
        reverse("team_member_roles", args=[other_team.slug, other_member.pk]), {"roles": ["staff"]}
    )
    assert response.status_code == 404
    response = client.post(reverse("team_member_remove", args=[other_team.slug, other_member.pk]))
    assert response.status_code == 404
    assert Membership.objects.filter(user=other_member, team=other_team).exists()


def test_team_admin_manages_their_own_teams_members(team_admin, expert, team):
    response = client_for(team_admin).post(
        reverse("team_member_roles", args=[team.slug, expert.pk]), {"roles": ["expert", "staff"]}
    )
    assert response.status_code == 302
    assert Membership.objects.filter(user=expert, team=team, role="staff").exists()


def test_team_admin_is_refused_the_django_admin(team_admin):
    client = client_for(team_admin)
    assert client.get("/admin/", follow=True).status_code == 403
    assert client.get("/admin/auth/user/").status_code in (302, 403)
    assert client.get("/admin/auth/user/", follow=True).status_code == 403
    team_admin.refresh_from_db()
    assert not team_admin.is_staff


def test_team_admin_sees_only_their_teams_nodes(team_admin, nodes):
    ap_node, claims_node = nodes
    client = client_for(team_admin)
    response = client.get(reverse("fabric_fleet"))
    assert response.status_code == 200
    assert [row["node"].name for row in response.context["rows"]] == ["ap-box"]
    assert b"claims-box" not in response.content
    assert client.get(reverse("fabric_node", args=[ap_node.pk])).status_code == 200
    assert client.get(reverse("fabric_node", args=[claims_node.pk])).status_code == 404
    response = client.post(reverse("fabric_node_action", args=[claims_node.pk, "drain"]))
    assert response.status_code == 404
    claims_node.refresh_from_db()
    assert not claims_node.drain_requested
    assert client.get(reverse("fabric_tasks")).status_code == 403


def test_team_admin_drains_their_teams_node(team_admin, nodes):
    ap_node, _ = nodes
    response = client_for(team_admin).post(
        reverse("fabric_node_action", args=[ap_node.pk, "drain"])
    )
    assert response.status_code == 302
    ap_node.refresh_from_db()
    assert ap_node.drain_requested


def test_team_admin_enrols_machines_for_their_own_teams_only(team_admin, team, other_team, admin):
    client = client_for(team_admin)
    response = client.post(
        reverse("fabric_token_create"), {"expires": "24h", "team": other_team.pk}
    )
    assert response.status_code == 422
    response = client.post(reverse("fabric_token_create"), {"expires": "24h"})
    assert response.status_code == 422  # a team is required
    response = client.post(reverse("fabric_token_create"), {"expires": "24h", "team": team.pk})
    assert response.status_code == 302
    assert EnrollmentToken.objects.get().team == team
    foreign, _ = enrollment.create_enrollment_token(created_by=admin, team=other_team)
    response = client.post(reverse("fabric_token_revoke", args=[foreign.pk]))
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    tokens = client.get(reverse("fabric_fleet")).context["tokens"]
    assert [token.team for token in tokens] == [team]


def test_members_without_an_admin_role_see_no_fleet(manager, expert):
    for user in (manager, expert):
        assert client_for(user).get(reverse("fabric_fleet")).status_code == 403


def test_org_admin_sees_every_team_node_and_the_django_admin(admin, other_team, nodes):
    client = client_for(admin)
    assert client.get(reverse("team_detail", args=[other_team.slug])).status_code == 200
    response = client.get(reverse("fabric_fleet"))
    assert {row["node"].name for row in response.context["rows"]} == {"ap-box", "claims-box"}
    for node in nodes:
        assert client.get(reverse("fabric_node", args=[node.pk])).status_code == 200
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200


def test_team_admin_grants_the_admin_role_in_their_team_but_a_manager_cannot(
    team_admin, manager, expert, team
):
    response = client_for(manager).post(
        reverse("team_member_add", args=[team.slug]), {"identifier": "erin", "role": "admin"}
    )
    assert response.status_code == 422
    response = client_for(team_admin).post(
        reverse("team_member_add", args=[team.slug]), {"identifier": "erin", "role": "admin"}
    )
    assert response.status_code == 302
    expert.refresh_from_db()
    assert not expert.is_staff
    assert not expert.is_superuser


def test_the_demo_has_one_organisation_admin(db):
    seed_demo_organisation()
    assert list(User.objects.filter(is_superuser=True).values_list("username", flat=True)) == [
        "ada"
    ]
    assert list(User.objects.filter(is_staff=True).values_list("username", flat=True)) == ["ada"]
