"""The review queue's keyboard in a real browser: keys act only on the case, focus comes back to
the case after each decision, reason codes have keys, `a` takes the suggested reason code."""

import time

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.cases.models import Case, Decision
from tests.factories import make_cases, make_decided_cases, make_process


@pytest.fixture
def process(team):
    return make_process(team)


def _review(logged_in, expert, process) -> Page:
    page = logged_in(expert, reverse("review", args=[process.slug]))
    expect(page.locator("#decision-form")).to_be_visible()
    return page


# Records focus moves and htmx swaps, to say what took focus should it not come back.
FOCUS_LOG = """() => {
  window.focusLog = [];
  const name = (el) => el ? el.tagName + (el.id ? "#" + el.id : "") : "none";
  const note = (...what) => window.focusLog.push([Math.round(performance.now()), ...what]);
  document.addEventListener("focusin", (e) => note("focusin", name(e.target)), true);
  document.addEventListener("focusout", (e) => note("focusout", name(e.target)), true);
  for (const kind of ["htmx:afterSwap", "htmx:afterSettle", "htmx:responseError"]) {
    document.addEventListener(kind, (e) => note(kind, name(document.activeElement)));
  }
}"""


def _case_focused(page: Page) -> bool:
    """Whether the case has focus within 5 s. Polled from here: `wait_for_function` polls a
    string predicate through eval, which the page's Content Security Policy refuses (an error,
    not a wait, whenever the first look finds the focus elsewhere)."""
    deadline = time.monotonic() + 5
    while True:
        if page.evaluate(
            "!!document.activeElement && document.activeElement.matches('#review-pane .case-view')"
        ):
            return True
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(50)


def _shown_case(page: Page) -> str:
    return page.locator("#review-pane .case-head strong").inner_text()


def test_enter_on_a_focused_skip_button_skips_instead_of_submitting(logged_in, expert, process):
    make_cases(process, 2)
    page = _review(logged_in, expert, process)
    first = _shown_case(page)
    page.keyboard.press("3")
    page.focus("#skip-form button")

    page.keyboard.press("Enter")

    expect(page.locator("#review-pane .case-head strong")).not_to_have_text(first)
    assert not Decision.objects.exists()


def test_keys_do_nothing_behind_the_open_help_dialog(logged_in, expert, process):
    make_cases(process, 2)
    page = _review(logged_in, expert, process)
    page.keyboard.press("?")
    expect(page.locator("#review-help")).to_be_visible()

    page.keyboard.press("2")
    page.keyboard.press("s")
    page.keyboard.press("Enter")  # presses the dialog's Close button

    expect(page.locator("#review-help")).to_be_hidden()
    assert page.locator("#decision-form input[name=label]:checked").count() == 0
    page.wait_for_timeout(300)
    assert not Decision.objects.exists()
    page.keyboard.press("?")
    expect(page.locator("#review-help")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator("#review-help")).to_be_hidden()


def test_after_ctrl_enter_the_next_keys_decide_the_next_case(logged_in, expert, process):
    make_cases(process, 4)
    page = _review(logged_in, expert, process)
    page.evaluate(FOCUS_LOG)
    page.keyboard.press("3")
    page.keyboard.press("r")
    page.keyboard.type("asked the vendor for the PO", delay=20)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#review-pane .notice")).to_contain_text("Recorded Request info")

    for _ in range(2):  # decide the next cases with keys alone
        shown = _shown_case(page)
        page.keyboard.press("1")
        page.keyboard.press("Shift+Digit1")
        page.keyboard.press("Enter")
        expect(page.locator("#review-pane .case-head strong")).not_to_have_text(shown)

    labels = list(Decision.objects.order_by("pk").values_list("label", "reason_code", "rationale"))
    assert labels == [
        ("request_info", "", "asked the vendor for the PO"),
        ("approve", "ok", ""),
        ("approve", "ok", ""),
    ]
    # Focus is back on the case now shown (with what moved it, should it not be).
    if not _case_focused(page):
        active = page.evaluate("document.activeElement && document.activeElement.outerHTML")
        log = page.evaluate("window.focusLog")
        pytest.fail(f"focus is on {str(active)[:80]}; focus and swap events: {log}")
    # The next keys are keys again on the case now shown: not text in its rationale box.
    page.keyboard.press("2")
    expect(page.locator("#decision-form input[name=label][data-key='2']")).to_be_checked()
    assert page.input_value("#rationale") == ""


def test_shift_and_a_number_chooses_a_reason_code_of_the_chosen_decision(
    logged_in, expert, process
):
    make_cases(process, 2)
    page = _review(logged_in, expert, process)
    expect(page.locator("#reason-code option[value=fraud]")).to_contain_text("⇧2")
    page.keyboard.press("2")  # reject: duplicate (⇧1), fraud (⇧2)
    page.keyboard.press("Shift+Digit2")
    assert page.input_value("#reason-code") == "fraud"

    page.keyboard.press("Enter")

    expect(page.locator("#review-pane .notice")).to_contain_text("Recorded Reject")
    assert list(Decision.objects.values_list("label", "reason_code")) == [("reject", "fraud")]


# What an AZERTY keyboard sends for its number row: the key alone types a symbol, Shift the digit.
AZERTY_KEYDOWN = """(init) => document.activeElement.dispatchEvent(
  new KeyboardEvent('keydown', { ...init, bubbles: true, cancelable: true }))"""


def test_on_an_azerty_keyboard_the_number_row_decides_and_shift_picks_a_reason_code(
    logged_in, expert, process
):
    make_cases(process, 2)
    page = _review(logged_in, expert, process)
    page.evaluate(AZERTY_KEYDOWN, {"key": "\u00e9", "code": "Digit2"})  # the "é 2" key: reject
    page.evaluate(AZERTY_KEYDOWN, {"key": "2", "code": "Digit2", "shiftKey": True})  # fraud

    assert page.locator("#decision-form input[name=label]:checked").input_value() == "reject"
    assert page.input_value("#reason-code") == "fraud"
    page.keyboard.press("Enter")
    expect(page.locator("#review-pane .notice")).to_contain_text("Recorded Reject")
    assert list(Decision.objects.values_list("label", "reason_code")) == [("reject", "fraud")]


def test_a_takes_the_suggested_decision_and_its_usual_reason_code(
    logged_in, expert, second_expert, process
):
    from apps.autonomy.models import Level, ProcessAutonomy
    from apps.classifiers import services

    make_decided_cases(process, second_expert, 150, seed=3)
    # Rejections in this process are usually for fraud.
    Case.objects.filter(process=process, final_label="reject").update(final_reason_code="fraud")
    job = services.run_training_job(
        services.start_training(process=process, requested_by=second_expert).pk
    )
    services.promote(version=job.model_version, actor=second_expert)
    ProcessAutonomy.objects.update_or_create(process=process, defaults={"level": Level.SUGGEST})
    make_cases(process, 1, po_status="mismatch", amount=120)
    page = _review(logged_in, expert, process)
    expect(page.locator("[data-suggested-key]")).to_have_attribute("data-suggested-reason", "fraud")

    page.keyboard.press("a")

    assert page.locator("#decision-form input[name=label]:checked").get_attribute("value") == (
        "reject"
    )
    assert page.input_value("#reason-code") == "fraud"
