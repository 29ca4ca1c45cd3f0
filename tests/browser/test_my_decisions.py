"""The "My decisions" page on a phone: reachable from the navigation, no sideways scroll (the
table scrolls in its own container), and the outcome filter narrows the list in place."""

from django.urls import reverse
from playwright.sync_api import expect

from apps.cases.services.decisions import adjudicate_case, record_decision
from tests.factories import make_cases, make_process

SIDEWAYS_SCROLL = "() => document.scrollingElement.scrollWidth"


def test_an_expert_finds_an_overturned_decision_on_a_phone(
    logged_in, team, expert, second_expert, manager
):
    process = make_process(team, slug="claims-check", overlap=2)
    agreed, overturned = make_cases(process, 2)
    for case in (agreed, overturned):
        record_decision(case=case, expert=expert, label="approve", reason_code="ok",
                        rationale="The purchase order matches the invoice line by line.")  # fmt: skip
    record_decision(case=agreed, expert=second_expert, label="approve", reason_code="ok")
    record_decision(case=overturned, expert=second_expert, label="reject", reason_code="fraud")
    adjudicate_case(case=overturned, adjudicator=manager, label="reject", reason_code="fraud",
                    rationale="The bank account changed by e-mail the day before.")  # fmt: skip

    page = logged_in(expert, reverse("home"), viewport="phone")
    link = page.locator(f'a[href="{reverse("my_decisions")}"]').first
    if not link.is_visible():  # the navigation folds into a menu on a phone
        page.locator("nav summary").first.click()
    link.click()
    expect(page.get_by_role("heading", name="My decisions")).to_be_visible()
    rows = page.locator("#decision-rows tbody tr")
    expect(rows).to_have_count(2)
    assert page.evaluate(SIDEWAYS_SCROLL) <= 390

    page.get_by_label("Outcome").select_option("overturned")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("by maya")
    expect(rows.first).to_contain_text("The bank account changed")
    assert "outcome=overturned" in page.url  # the filtered list can be shared and reloaded
    assert page.evaluate(SIDEWAYS_SCROLL) <= 390
