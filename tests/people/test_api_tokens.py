import pytest
from django.test import Client
from django.urls import reverse

from apps.core import one_time
from apps.people import services
from apps.people.models import ApiToken
from tests.conftest import client_for
from tests.processes import child_database_url, run_manage


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_valid_token_lists_the_callers_teams_with_roles(expert, team, other_team):
    from apps.people.services import add_member

    add_member(team=team, user=expert, role="staff")
    _, raw = services.create_api_token(user=expert, name="script")
    response = Client().get("/api/v1/teams", **bearer(raw))
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "ap", "name": "Accounts Payable", "roles": ["expert", "staff"]}
    ]


def test_revoked_token_is_refused(expert):
    token, raw = services.create_api_token(user=expert, name="script")
    services.revoke_api_token(token=token)
    assert Client().get("/api/v1/teams", **bearer(raw)).status_code == 401


def test_wrong_or_missing_token_is_refused(expert):
    services.create_api_token(user=expert, name="script")
    assert Client().get("/api/v1/teams", **bearer("oc_not-a-real-token")).status_code == 401
    assert Client().get("/api/v1/teams").status_code == 401


def test_token_of_a_deactivated_user_is_refused(expert):
    _, raw = services.create_api_token(user=expert, name="script")
    expert.is_active = False
    expert.save()
    assert Client().get("/api/v1/teams", **bearer(raw)).status_code == 401


def test_tokens_are_stored_hashed_and_use_is_recorded(expert):
    token, raw = services.create_api_token(user=expert, name="script")
    assert raw not in token.token_hash
    assert not ApiToken.objects.filter(token_hash=raw).exists()
    Client().get("/api/v1/teams", **bearer(raw))
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_logged_in_browser_session_can_use_the_api(expert):
    response = client_for(expert).get("/api/v1/teams")
    assert response.status_code == 200
    assert [team["slug"] for team in response.json()] == ["ap"]


def test_tokens_page_shows_a_new_token_once_after_a_redirect_and_it_works(expert):
    client = client_for(expert)
    response = client.post(reverse("api_tokens"), {"name": "nightly import"})
    # POST-redirect-GET: reloading the page that shows the token creates no second one.
    assert response.status_code == 302
    assert response["Location"] == reverse("api_tokens")
    assert ApiToken.objects.filter(user=expert).count() == 1
    shown = client.get(reverse("api_tokens"))
    raw = shown.context["new_token"]
    assert ApiToken.objects.get(user=expert).prefix == raw[:10]
    assert raw.encode() in shown.content
    assert "no-store" in shown["Cache-Control"]
    assert Client().get("/api/v1/teams", **bearer(raw)).status_code == 200
    again = client.get(reverse("api_tokens"))
    assert again.context["new_token"] is None
    assert raw.encode() not in again.content
    assert b"nightly import" in again.content
    assert ApiToken.objects.filter(user=expert).count() == 1


def test_a_new_token_is_shown_to_its_session_only_and_never_logged(expert, caplog):
    creator = client_for(expert)
    with caplog.at_level("DEBUG"):
        creator.post(reverse("api_tokens"), {"name": "ci"})
        other_tab_elsewhere = client_for(expert)  # another session of the same person
        assert other_tab_elsewhere.get(reverse("api_tokens")).context["new_token"] is None
        raw = creator.get(reverse("api_tokens")).context["new_token"]
    assert raw
    assert raw not in caplog.text


def test_tokens_page_rejects_a_blank_name(expert):
    response = client_for(expert).post(reverse("api_tokens"), {"name": "  "})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_revoking_from_the_page_stops_the_token(expert):
    token, raw = services.create_api_token(user=expert, name="script")
    response = client_for(expert).post(reverse("api_token_revoke", args=[token.pk]))
    assert response.status_code == 302
    assert Client().get("/api/v1/teams", **bearer(raw)).status_code == 401


def test_nobody_revokes_someone_elses_token(expert, manager):
    token, raw = services.create_api_token(user=expert, name="script")
    assert client_for(manager).post(reverse("api_token_revoke", args=[token.pk])).status_code == 404
    assert Client().get("/api/v1/teams", **bearer(raw)).status_code == 200


def test_openapi_docs_are_served(expert):
    assert client_for(expert).get("/api/v1/docs").status_code == 200
    schema = client_for(expert).get("/api/v1/openapi.json").json()
    assert "/api/v1/teams" in schema["paths"]


@pytest.mark.django_db(transaction=True)
def test_create_api_token_command_prints_just_a_working_token(expert):
    result = run_manage("create_api_token", "erin", DATABASE_URL=child_database_url())
    assert result.returncode == 0, result.stderr
    raw = result.stdout.strip()
    assert raw.startswith("oc_")
    assert "\n" not in raw
    assert Client().get("/api/v1/teams", **bearer(raw)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_create_api_token_command_for_unknown_user_exits_2_with_one_line():
    result = run_manage("create_api_token", "ghost", DATABASE_URL=child_database_url())
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "ghost" in result.stderr


def test_a_new_token_not_fetched_within_minutes_is_dropped(expert):
    client = client_for(expert)
    client.post(reverse("api_tokens"), {"name": "forgotten"})
    session = client.session
    session["one_time_secrets"]["api_token"]["at"] -= one_time.MAX_AGE_SECONDS + 1
    session.save()
    assert client.get(reverse("api_tokens")).context["new_token"] is None
    assert "one_time_secrets" not in client.session
