"""What an htmx request learns when its session ended or its CSRF token is stale (the page's
script logs in again and resends: tests/browser/test_review_session.py)."""

from django.test import Client
from django.urls import reverse

from tests.conftest import client_for
from tests.factories import make_process

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_an_htmx_post_with_a_stale_csrf_token_is_a_short_403_that_says_so_a_plain_one_is_not(
    expert, team
):
    process = make_process(team)
    client = Client(enforce_csrf_checks=True)
    client.force_login(expert)
    client.get(reverse("review", args=[process.slug]))  # sets the CSRF cookie
    response = client.post(
        reverse("review_skip", args=[process.slug, 1]),
        {"csrfmiddlewaretoken": "x" * 64},
        **HTMX,
    )
    assert response.status_code == 403
    assert response["HX-CSRF-Failed"] == "true"
    assert b"<html" not in response.content
    # Without htmx it is still Django's 403 page.
    plain = client.post(reverse("review_skip", args=[process.slug, 1]))
    assert plain.status_code == 403
    assert "HX-CSRF-Failed" not in plain


def test_the_session_token_endpoint_says_who_is_logged_in_and_gives_a_token(client, expert):
    anonymous = client.get(reverse("session_token"))
    assert anonymous.status_code == 200
    assert anonymous.json()["authenticated"] is False
    assert len(anonymous.json()["csrf_token"]) == 64
    assert "no-cache" in anonymous["Cache-Control"]
    mine = client_for(expert).get(reverse("session_token")).json()
    assert (mine["authenticated"], mine["username"]) == (True, "erin")


def test_an_htmx_get_without_a_session_gets_401_and_api_requests_keep_their_own_answer(
    client, team
):
    process = make_process(team)
    response = client.get(reverse("review", args=[process.slug]), **HTMX)
    assert response.status_code == 401
    assert response["HX-Login-Required"] == reverse("login")
    api = client.get("/api/v1/processes/", **HTMX)
    assert "HX-Login-Required" not in api
