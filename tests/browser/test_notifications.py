"""Notifications in a real browser: the list (with rows, long titles) and the preferences fit a
phone and pass axe-core; marking one read with htmx swaps its row and the bell's count without
a reload."""

from playwright.sync_api import expect

from apps.notifications.models import Kind
from apps.notifications.services import notify
from tests.browser.test_every_page import AXE_SCAN, PHONE_WIDTH, SIDEWAYS_SCROLL


def _seed(user) -> None:
    for n in range(3):
        notify(
            recipients=[user], kind=Kind.SLA_BREACHED,
            title=f"Invoice flow: INV-2026-000{n}-A-VERY-LONG-EXTERNAL-IDENTIFIER-WITHOUT-SPACES is overdue 15 min",
            body="Escalated to the next expert, then to the whole queue of Invoices.",
            url="/notifications/",
        )  # fmt: skip


def test_the_notification_pages_fit_a_phone_and_pass_axe(logged_in, expert):
    _seed(expert)
    for path in ("/notifications/", "/notifications/preferences/", "/"):
        phone = logged_in(expert, path, viewport="phone")
        sideways = phone.evaluate(SIDEWAYS_SCROLL)
        assert sideways["width"] <= PHONE_WIDTH, (path, sideways)
        desktop = logged_in(expert, path, viewport="desktop")
        desktop.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
        assert desktop.evaluate(AXE_SCAN) == [], path
        assert desktop.errors == [], path  # type: ignore[attr-defined]


def test_mark_read_swaps_the_row_and_the_bell_without_a_reload(logged_in, expert):
    _seed(expert)
    page = logged_in(expert, "/notifications/")
    bell = page.locator("#bell")
    expect(bell).to_have_attribute("aria-label", "Notifications, 3 unread")
    page.evaluate("window.notReloaded = true")

    page.get_by_role("button", name="Mark read").first.click()

    expect(bell).to_have_attribute("aria-label", "Notifications, 2 unread")
    expect(page.locator("tr.read")).to_have_count(1)
    assert page.evaluate("window.notReloaded") is True
    assert page.console_errors == []  # type: ignore[attr-defined]
