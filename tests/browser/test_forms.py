"""Forms people can't break, in a real browser at phone and desktop widths: a one-time secret
survives the redirect once and copies to the clipboard whole, a destructive button asks first
(Cancel and Escape keep things as they were), reason codes follow the chosen decision, and the
admin enrols a node from the fleet page with the agent's own enrolment call."""

import json
import urllib.request

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.fabric.models import ComputeNode, EnrollmentToken
from apps.fabric.services import enrollment
from apps.people import services as people
from apps.people.models import ApiToken
from tests.cases.test_adjudication_page import disagreement
from tests.fabric.conftest import DETECTED, FINGERPRINT
from tests.factories import make_process


def _allow_clipboard(page: Page, base_url: str) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)


def _clipboard(page: Page) -> str:
    return page.evaluate("() => navigator.clipboard.readText()")


def _fits(page: Page, selector: str) -> bool:
    """The field shows its whole value: nothing scrolled out of it, and it ends inside the page."""
    return page.eval_on_selector(
        selector,
        """(field) => field.scrollWidth <= field.clientWidth + 1
             && field.scrollHeight <= field.clientHeight + 1
             && field.getBoundingClientRect().right <= document.documentElement.clientWidth""",
    )


def test_copy_button_puts_the_new_api_token_in_the_clipboard(
    logged_in, live_server, expert, viewport
):
    page = logged_in(expert, reverse("api_tokens"), viewport)
    _allow_clipboard(page, live_server.url)
    page.get_by_label("Token name").fill("nightly import")
    page.get_by_role("button", name="Create token").click()

    field = page.locator("#new-token-value")
    expect(field).to_be_visible()
    raw = field.input_value()
    assert ApiToken.objects.get(user=expert).token_hash == people.hash_secret(raw)
    assert page.url.endswith(reverse("api_tokens"))  # redirected: a reload creates nothing
    assert _fits(page, "#new-token-value")

    page.get_by_role("button", name="Copy New API token").click()
    status = page.locator("[data-copy-status-for=new-token-value]")
    expect(status).to_have_text("Copied to the clipboard.")
    assert status.get_attribute("role") == "status"  # announced to screen readers
    expect(page.locator(".copy-button")).to_have_text("Copied New API token")
    assert _clipboard(page) == raw

    page.reload()
    expect(page.locator("#new-token-value")).to_have_count(0)
    assert ApiToken.objects.filter(user=expert).count() == 1
    assert page.errors == []


def test_revoking_a_token_asks_first_and_cancel_or_escape_keeps_it(logged_in, expert, viewport):
    token, _ = people.create_api_token(user=expert, name="ci runner")
    page = logged_in(expert, reverse("api_tokens"), viewport)
    revoke = page.get_by_role("button", name="Revoke ci runner")
    dialog = page.get_by_role("alertdialog")

    revoke.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Revoke the token “ci runner”?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(revoke).to_be_focused()  # focus returns to the button that asked

    page.keyboard.press("Enter")  # the focused Revoke again, this time refused with Escape
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    token.refresh_from_db()
    assert token.revoked_at is None
    expect(page.get_by_role("cell", name="ci runner", exact=True)).to_be_visible()

    revoke.click()
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("No active tokens.")).to_be_visible()
    token.refresh_from_db()
    assert token.revoked_at is not None


def _enroll_as_the_agent(base_url: str, token: str, name: str) -> dict[str, object]:
    """POST /api/v1/fabric/enroll over HTTP, with no session, as orchcap-agent does."""
    body = {
        "token": token,
        "name": name,
        "capabilities": {"detected": DETECTED, "declared": {}},
        "fingerprint": FINGERPRINT,
        "software_version": "0.1.0",
        "timezone": "Europe/Berlin",
    }
    request = urllib.request.Request(
        f"{base_url}/api/v1/fabric/enroll",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())


def test_the_admin_enrols_a_node(logged_in, live_server, admin, viewport):
    page = logged_in(admin, reverse("fabric_fleet"), viewport)
    _allow_clipboard(page, live_server.url)
    page.locator("#enrolment summary").click()
    page.get_by_label("Note").fill("render box 2")
    page.get_by_label("Labels").fill("site=branch-3")
    page.get_by_role("button", name="Create token").click()

    expect(page.locator("#new-token")).to_be_visible()
    assert page.url.endswith(reverse("fabric_fleet"))
    assert _fits(page, "#enrol-command")
    assert _fits(page, "#enrol-token")
    page.get_by_role("button", name="Copy Token only").click()
    token = _clipboard(page)
    assert EnrollmentToken.objects.get().token_hash == enrollment.hash_secret(token)
    page.get_by_role("button", name="Copy Enrol command").click()
    assert _clipboard(page).endswith(f"--token {token}")

    reply = _enroll_as_the_agent(live_server.url, token, name="render-2")
    assert reply["state"] == "pending"

    page.goto(reverse("fabric_fleet"))
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    approvals = page.locator("#approvals")
    expect(approvals).to_contain_text("render-2")
    expect(approvals).to_contain_text(FINGERPRINT)
    approvals.get_by_role("button", name="Approve").click()
    expect(page.locator("#node-rows")).to_contain_text("render-2")
    expect(page.locator("#approvals")).to_have_count(0)
    node = ComputeNode.objects.get(pk=reply["node_id"])
    assert node.state != "pending"
    assert node.approved_by == admin
    assert node.labels == {"site": "branch-3"}
    assert page.errors == []


@pytest.mark.parametrize("viewport", ["desktop"])
def test_adjudication_offers_only_the_reason_codes_of_the_chosen_label(
    logged_in, team, manager, expert, second_expert, viewport
):
    process = make_process(team, slug="claims-check", overlap=2)
    disagreement(process, expert, second_expert)
    page = logged_in(manager, reverse("adjudication_queue", args=[process.slug]), viewport)
    select = page.locator("#adjudication-reason-code")

    def offered() -> list[str]:
        """The codes a person can pick: not in a disabled (and hidden) group."""
        return select.evaluate(
            """(select) => [...select.options].filter((option) => option.value && !option.disabled
                 && !(option.parentElement.disabled || option.parentElement.hidden))
               .map((option) => option.value)"""
        )

    assert offered() == []
    page.get_by_label("Final decision").select_option("reject")
    assert offered() == ["duplicate", "fraud"]
    page.get_by_label("Reason code").select_option("fraud")
    page.get_by_label("Final decision").select_option("approve")
    assert offered() == ["ok", "within_tolerance"]
    assert page.get_by_label("Reason code").input_value() == ""  # fraud is not approve's
    page.get_by_label("Final decision").select_option("request_info")
    assert offered() == []
