"""The orchestrations list on a phone: its figure columns scroll inside their container, the page
itself never scrolls sideways, and the figures are readable (right-aligned numbers, in the row of
their orchestration)."""

from django.urls import reverse
from playwright.sync_api import expect

from apps.orchestrations.inbound import receive_items
from apps.orchestrations.services import change_stage, create_orchestration, create_version
from tests.factories import make_process

SIDEWAYS_SCROLL = "() => document.scrollingElement.scrollWidth"
TABLE_SCROLLS = "(el) => el.scrollWidth > el.clientWidth"


def test_the_list_scrolls_its_table_not_the_page_at_390_px(logged_in, team, manager):
    process = make_process(team)
    orchestration = create_orchestration(
        process=process, slug="invoice-exceptions-with-a-long-slug", name="Invoice exceptions",
        owner=manager,
    )  # fmt: skip
    version = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=version, stage="live", actor=manager)
    items = [
        {"external_id": f"A-{n}", "fields": {"vendor": "Acme", "amount": 5000}} for n in range(3)
    ]
    receive_items(orchestration=orchestration, items=items)

    page = logged_in(manager, reverse("orchestration_list"), viewport="phone")

    row = page.locator("table.figures-table tbody tr").first
    expect(row).to_contain_text("Invoice exceptions")
    cells = row.locator("td.num")
    expect(cells.nth(0)).to_have_text("3")  # items today
    expect(cells.nth(2)).to_have_text("3")  # waiting for people (routed: no rules, no model)
    assert cells.nth(0).evaluate("(el) => getComputedStyle(el).textAlign") == "right"
    assert page.evaluate(SIDEWAYS_SCROLL) <= 390
    container = page.locator(".table-scroll").first
    assert container.evaluate(TABLE_SCROLLS)  # the columns are reached by scrolling the table
