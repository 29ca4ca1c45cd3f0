"""The design system's promises in a real browser (docs/ui.md): a focus ring one can see on every
control, toasts that leave the navigation alone and can be dismissed, a print style for reports."""

from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.factories import make_cases, make_process

FOCUS_RING = """(element) => {
  const style = getComputedStyle(element);
  return { style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: style.outlineColor };
}"""


def _tab_to(page: Page, selector: str, presses: int = 60) -> None:
    """Press Tab until `selector` has the focus, as a keyboard user would reach it."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_skip_and_undo_show_a_solid_focus_ring_when_reached_by_keyboard(logged_in, expert, team):
    process = make_process(team)
    make_cases(process, 2)
    page = logged_in(expert, reverse("review", args=[process.slug]))
    expect(page.locator("#skip-form button")).to_be_visible()

    for selector in ("#skip-form button", "#undo-form button"):
        _tab_to(page, selector)
        ring = page.locator(selector).evaluate(FOCUS_RING)
        # Pico's own focus is a 2 px shadow at half opacity; ours is a 3 px solid outline.
        assert ring["style"] == "solid", (selector, ring)
        assert ring["width"] >= 2, (selector, ring)
        assert ring["color"] == "rgb(29, 78, 216)", (selector, ring)


def test_a_toast_leaves_the_navigation_free_and_can_be_dismissed(logged_in, expert, viewport):
    page = logged_in(expert, "/", viewport)
    page.evaluate("() => toast('Saved: a message that takes a few words to say.', 'success')")
    toast = page.locator(".toast")
    expect(toast).to_be_visible()

    header = page.locator(".site-header").bounding_box()
    box = toast.bounding_box()
    assert box["y"] >= header["y"] + header["height"], (box, header)
    # The menu button (phone) or the links (desktop) are clickable while the toast shows.
    if viewport == "phone":
        page.locator("summary.nav-menu-button").click()
    page.get_by_role("link", name="API tokens").click()
    expect(page).to_have_title("API tokens · orchcap")

    page.goto("/")
    page.evaluate("() => toast('Something failed.', 'error')")
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator(".toast")).to_have_count(0)


def test_printing_a_page_leaves_out_navigation_toasts_and_buttons(logged_in, expert, team):
    process = make_process(team)
    page = logged_in(expert, reverse("process_detail", args=[process.slug]))
    page.evaluate("() => toast('Saved.', 'success')")
    chrome = [page.locator(s) for s in (".site-header", ".site-footer", ".toast")]
    for part in chrome:
        expect(part).to_be_visible()

    page.emulate_media(media="print")

    for part in chrome:
        expect(part).to_be_hidden()
    expect(page.locator("main h1")).to_be_visible()
