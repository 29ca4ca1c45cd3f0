import re

from django.urls import reverse

from apps.people.models import Invitation, Membership
from apps.people.services import create_api_token, create_invitation
from tests.conftest import client_for
from tests.factories import make_user


def test_team_page_lists_members_with_their_roles(expert, manager, team):
    response = client_for(expert).get(reverse("team_detail", args=[team.slug]))
    assert response.status_code == 200
    members = {row["user"].username: row["roles"] for row in response.context["members"]}
    assert members == {"erin": ["expert"], "maya": ["manager"]}
    assert b"Add a member" not in response.content


def test_manager_sees_member_management(manager, team):
    response = client_for(manager).get(reverse("team_detail", args=[team.slug]))
    assert b"Add a member" in response.content
    assert b"Invite someone new" in response.content


def test_manager_adds_an_existing_user_by_email(manager, team):
    newcomer = make_user("nora")
    response = client_for(manager).post(
        reverse("team_member_add", args=[team.slug]),
        {"identifier": "NORA@example.test", "role": "expert"},
    )
    assert response.status_code == 302
    assert Membership.objects.filter(team=team, user=newcomer, role="expert").exists()


def test_adding_an_unknown_person_re_renders_with_a_clear_error(manager, team):
    response = client_for(manager).post(
        reverse("team_member_add", args=[team.slug]), {"identifier": "nobody", "role": "expert"}
    )
    assert response.status_code == 422
    assert b"No account has that username or email" in response.content


def test_role_change_by_htmx_returns_only_the_member_row(manager, expert, team):
    response = client_for(manager).post(
        reverse("team_member_roles", args=[team.slug, expert.pk]),
        {"roles": ["expert", "staff"]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<tr id="member-')
    assert b"<html" not in response.content
    assert set(
        Membership.objects.filter(team=team, user=expert).values_list("role", flat=True)
    ) == {
        "expert",
        "staff",
    }


def test_role_change_without_htmx_redirects_back(manager, expert, team):
    response = client_for(manager).post(
        reverse("team_member_roles", args=[team.slug, expert.pk]), {"roles": ["staff"]}
    )
    assert response.status_code == 302
    assert list(
        Membership.objects.filter(team=team, user=expert).values_list("role", flat=True)
    ) == ["staff"]


def test_last_manager_cannot_demote_themself(manager, team):
    response = client_for(manager).post(
        reverse("team_member_roles", args=[team.slug, manager.pk]),
        {"roles": ["expert"]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert b"needs at least one manager or admin" in response.content
    assert Membership.objects.filter(team=team, user=manager, role="manager").exists()


def test_last_manager_cannot_be_removed(manager, team):
    client = client_for(manager)
    client.post(reverse("team_member_remove", args=[team.slug, manager.pk]))
    assert Membership.objects.filter(team=team, user=manager).exists()


def test_manager_removes_a_member(manager, expert, team):
    response = client_for(manager).post(reverse("team_member_remove", args=[team.slug, expert.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(team=team, user=expert).exists()


def test_managing_a_non_member_is_404(manager, outsider, team):
    response = client_for(manager).post(
        reverse("team_member_roles", args=[team.slug, outsider.pk]), {"roles": ["expert"]}
    )
    assert response.status_code == 404


def test_invitation_link_is_shown_once_and_creates_an_account_in_the_team(manager, team, client):
    response = client_for(manager).post(
        reverse("team_invite", args=[team.slug]),
        {"role": "expert", "email": "", "days": 3},
        follow=True,
    )
    link = response.context["new_invite_link"]
    assert link.encode() in response.content
    path = link.split("testserver", 1)[1]
    assert client.get(path).status_code == 200
    response = client.post(
        path,
        {
            "username": "newbie",
            "email": "",
            "password1": "a-long-new-pass-77",
            "password2": "a-long-new-pass-77",
        },
    )
    assert response.status_code == 302
    assert Membership.objects.filter(team=team, user__username="newbie", role="expert").exists()
    assert client.get(reverse("home")).status_code == 200
    assert client.get(path).status_code == 404  # used up


def test_invitation_with_weak_password_keeps_the_form_and_the_invitation(manager, team, client):
    response = client_for(manager).post(
        reverse("team_invite", args=[team.slug]), {"role": "staff", "days": 3}, follow=True
    )
    path = response.context["new_invite_link"].split("testserver", 1)[1]
    response = client.post(path, {"username": "newbie", "password1": "123", "password2": "123"})
    assert response.status_code == 422
    assert b"too short" in response.content
    assert Invitation.objects.get().accepted_at is None


def test_revoked_invitation_no_longer_works(manager, team, client):
    response = client_for(manager).post(
        reverse("team_invite", args=[team.slug]), {"role": "staff", "days": 3}, follow=True
    )
    path = response.context["new_invite_link"].split("testserver", 1)[1]
    invitation = Invitation.objects.get()
    client_for(manager).post(reverse("team_invitation_revoke", args=[team.slug, invitation.pk]))
    assert client.get(path).status_code == 404


def test_manager_cannot_make_anyone_an_admin(manager, expert, team):
    client = client_for(manager)
    response = client.post(
        reverse("team_member_roles", args=[team.slug, manager.pk]),
        {"roles": ["manager", "admin"]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert b"Only an admin can grant" in response.content
    response = client.post(
        reverse("team_member_add", args=[team.slug]), {"identifier": "erin", "role": "admin"}
    )
    assert response.status_code == 422
    response = client.post(reverse("team_invite", args=[team.slug]), {"role": "admin", "days": 3})
    assert response.status_code == 422
    assert not Membership.objects.filter(team=team, role="admin").exists()
    assert not Invitation.objects.exists()


def test_manager_cannot_remove_an_admin_but_an_admin_can_grant_the_role(
    manager, team_admin, expert, team
):
    client_for(manager).post(reverse("team_member_remove", args=[team.slug, team_admin.pk]))
    assert Membership.objects.filter(team=team, user=team_admin, role="admin").exists()
    response = client_for(team_admin).post(
        reverse("team_member_roles", args=[team.slug, expert.pk]), {"roles": ["expert", "admin"]}
    )
    assert response.status_code == 302
    assert Membership.objects.filter(team=team, user=expert, role="admin").exists()
    expert.refresh_from_db()
    assert not expert.is_staff  # a team's admin role doesn't open the Django admin
    assert client_for(expert).get("/admin/").status_code in (302, 403)


def test_member_holding_two_roles_can_have_their_roles_changed(manager, expert, team):
    from apps.people import services

    services.add_member(team=team, user=expert, role="staff")
    client = client_for(manager)
    response = client.post(
        reverse("team_member_roles", args=[team.slug, expert.pk]),
        {"roles": ["expert"]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert list(
        Membership.objects.filter(team=team, user=expert).values_list("role", flat=True)
    ) == ["expert"]
    response = client.post(
        reverse("team_member_roles", args=[team.slug, expert.pk]), {"roles": ["staff", "expert"]}
    )
    assert response.status_code == 302


def test_member_holding_two_roles_can_be_removed(manager, expert, team):
    from apps.people import services

    services.add_member(team=team, user=expert, role="staff")
    response = client_for(manager).post(reverse("team_member_remove", args=[team.slug, expert.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(team=team, user=expert).exists()


def test_creating_an_invitation_redirects_and_the_link_is_shown_once(manager, team):
    client = client_for(manager)
    response = client.post(reverse("team_invite", args=[team.slug]), {"role": "staff", "days": 3})
    # POST-redirect-GET: a reload shows the team page, it does not create a second invitation.
    assert response.status_code == 302
    assert response["Location"] == reverse("team_detail", args=[team.slug]) + "#invite"
    shown = client.get(reverse("team_detail", args=[team.slug]))
    link = shown.context["new_invite_link"]
    assert link.startswith("http://testserver/invite/")
    assert link.encode() in shown.content
    assert b'class="copyable"' in shown.content
    again = client.get(reverse("team_detail", args=[team.slug]))
    assert again.context["new_invite_link"] is None
    assert link.encode() not in again.content
    assert Invitation.objects.filter(team=team).count() == 1


def test_an_invitation_link_shows_only_on_its_own_teams_page(admin, team, other_team):
    client = client_for(admin)
    client.post(reverse("team_invite", args=[team.slug]), {"role": "staff", "days": 3})
    other = client.get(reverse("team_detail", args=[other_team.slug]))
    assert other.context["new_invite_link"] is None
    assert client.get(reverse("team_detail", args=[team.slug])).context["new_invite_link"]


def _form_posting_to(page: str, action: str) -> str:
    (form,) = [tag for tag in re.findall(r"<form\b[^>]*>", page) if f'action="{action}"' in tag]
    return form


def test_revoking_an_invitation_or_a_token_and_removing_a_member_ask_first(manager, expert, team):
    client = client_for(manager)
    invitation, _ = create_invitation(team=team, role="staff", created_by=manager, days=3)
    page = client.get(reverse("team_detail", args=[team.slug])).content.decode()
    revoke = reverse("team_invitation_revoke", args=[team.slug, invitation.pk])
    assert 'data-confirm="Revoke this invitation (Staff)?' in _form_posting_to(page, revoke)
    remove = reverse("team_member_remove", args=[team.slug, expert.pk])
    assert 'data-confirm="Remove erin from' in _form_posting_to(page, remove)
    token, _ = create_api_token(user=manager, name="ci")
    page = client.get(reverse("api_tokens")).content.decode()
    revoke = reverse("api_token_revoke", args=[token.pk])
    assert 'data-confirm="Revoke the token “ci”?' in _form_posting_to(page, revoke)
