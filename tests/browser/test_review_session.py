"""The review pane when the session ends or the CSRF token goes stale: nothing typed is lost."""

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.cases.models import Decision
from tests.factories import PASSWORD, make_cases, make_process


@pytest.fixture
def process(team):
    return make_process(team)


def _draft_a_decision(page: Page) -> None:
    page.keyboard.press("2")  # reject
    page.select_option("#reason-code", "duplicate")
    page.fill("#rationale", "same invoice twice, see INV-1")
    page.check("input[name=key_factors][value=vendor]")


def _assert_recorded(page: Page) -> None:
    expect(page.locator("#review-pane .notice")).to_contain_text("Recorded Reject")
    decision = Decision.objects.get()
    assert (decision.label, decision.reason_code, decision.rationale, decision.key_factors) == (
        "reject",
        "duplicate",
        "same invoice twice, see INV-1",
        ["vendor"],
    )


def test_a_decision_submitted_after_the_session_ended_is_sent_once_the_expert_logs_in_again(
    logged_in, expert, process, viewport
):
    make_cases(process, 2)
    page = logged_in(expert, reverse("review", args=[process.slug]), viewport=viewport)
    _draft_a_decision(page)
    Session.objects.all().delete()

    page.click("#decision-form button[type=submit]")

    dialog = page.locator("#session-dialog")
    expect(dialog).to_be_visible()
    # The pane still holds the case and the draft, not a login page.
    assert page.locator("#review-pane input[name=password]").count() == 0
    assert page.input_value("#rationale") == "same invoice twice, see INV-1"
    assert not Decision.objects.exists()

    page.fill("#session-password", "wrong password")
    page.click("#session-login button[type=submit]")
    expect(page.locator("#session-error")).to_be_visible()
    expect(dialog).to_be_visible()

    page.fill("#session-password", PASSWORD)
    page.click("#session-login button[type=submit]")
    expect(dialog).to_be_hidden()
    _assert_recorded(page)
    assert page.errors == []
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def test_a_decision_sent_with_a_stale_csrf_token_is_sent_again_with_a_fresh_one(
    logged_in, expert, process
):
    make_cases(process, 2)
    page = logged_in(expert, reverse("review", args=[process.slug]))
    _draft_a_decision(page)
    # Logging out and in again in another tab rotates the session and the CSRF cookie.
    other = page.context.new_page()
    other.goto(reverse("home"))
    other.click("summary:has-text('erin')")
    other.click("button:has-text('Log out')")
    other.goto(reverse("login"))
    other.fill("input[name=username]", "erin")
    other.fill("input[name=password]", PASSWORD)
    other.click("form button[type=submit]")
    other.wait_for_url("**/")
    other.close()

    page.click("#decision-form button[type=submit]")

    _assert_recorded(page)
    expect(page.locator("#session-dialog")).to_be_hidden()


def test_an_htmx_request_without_a_session_gets_401_not_the_login_page(client, process):
    response = client.post(
        reverse("review_decide", args=[process.slug, 1]),
        {"label": "approve"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 401
    assert response["HX-Login-Required"] == reverse("login")
    assert b"<html" not in response.content
    # Without htmx the browser is still sent to the login page.
    plain = client.get(reverse("review", args=[process.slug]))
    assert plain.status_code == 302
