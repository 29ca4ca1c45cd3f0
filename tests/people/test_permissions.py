"""The role x page matrix: who reaches which page, and outsiders learn nothing (404)."""

import pytest
from django.urls import reverse

from tests.conftest import client_for

PERSONAS = ["expert", "manager", "staff", "admin", "outsider"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_role_reaches_its_home_page(request, persona):
    user = request.getfixturevalue(persona)
    response = client_for(user).get(reverse("home"))
    assert response.status_code == 200
    assert user.username.encode() in response.content


@pytest.mark.parametrize(
    ("persona", "status"),
    [("expert", 200), ("manager", 200), ("staff", 200), ("admin", 200), ("outsider", 404)],
)
def test_team_page_is_for_team_members_only(request, team, persona, status):
    user = request.getfixturevalue(persona)
    assert client_for(user).get(reverse("team_detail", args=[team.slug])).status_code == status


def test_unknown_team_is_404_like_someone_elses(expert):
    assert client_for(expert).get(reverse("team_detail", args=["nope"])).status_code == 404


@pytest.mark.parametrize(
    ("persona", "status"),
    [("expert", 403), ("staff", 403), ("manager", 302), ("admin", 302), ("outsider", 404)],
)
def test_only_managers_and_admins_add_members(request, team, second_expert, persona, status):
    user = request.getfixturevalue(persona)
    response = client_for(user).post(
        reverse("team_member_add", args=[team.slug]), {"identifier": "eli", "role": "staff"}
    )
    assert response.status_code == status
    has_staff_role = second_expert.memberships.filter(team=team, role="staff").exists()
    assert has_staff_role == (status == 302)


@pytest.mark.parametrize(
    ("persona", "status"),
    [("expert", 403), ("staff", 403), ("manager", 200), ("admin", 200), ("outsider", 404)],
)
def test_only_managers_and_admins_create_invitations(request, team, persona, status):
    user = request.getfixturevalue(persona)
    response = client_for(user).post(
        reverse("team_invite", args=[team.slug]), {"role": "expert", "days": 7}
    )
    # Allowed: created, then redirected to the team page that shows the link once.
    assert response.status_code == (302 if status == 200 else status)
    assert team.invitations.exists() == (status == 200)


@pytest.mark.parametrize(
    ("persona", "status"),
    [("expert", 302), ("manager", 302), ("staff", 302), ("admin", 200), ("outsider", 302)],
)
def test_django_admin_is_for_admins(request, persona, status):
    user = request.getfixturevalue(persona)
    response = client_for(user).get("/admin/")
    assert response.status_code == status


def test_admin_role_can_change_teams_in_django_admin(admin, team):
    response = client_for(admin).get(f"/admin/people/team/{team.pk}/change/")
    assert response.status_code == 200


def test_admin_link_in_navigation_only_for_admins(expert, admin):
    assert b'href="/admin/"' not in client_for(expert).get(reverse("home")).content
    assert b'href="/admin/"' in client_for(admin).get(reverse("home")).content


def test_manager_home_shows_managed_teams_with_counts(manager, expert, second_expert, team):
    response = client_for(manager).get(reverse("home"))
    assert b"Teams you manage" in response.content
    assert response.context["managed_teams"][0].role_counts["expert"] == 2


def test_home_for_user_without_team_says_so(db):
    from tests.factories import make_user

    response = client_for(make_user("newbie")).get(reverse("home"))
    assert b"not in any team yet" in response.content
