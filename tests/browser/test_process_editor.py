"""A manager creates a process with the visual schema editor (add, reorder, remove, save; every
problem shown at once next to its input), then uploads a CSV with errors and finds the import held
back with each invalid cell marked, at a phone's and a desktop's width."""

from django.urls import reverse
from playwright.sync_api import Page, expect

from apps.cases.models import Process
from tests.browser.conftest import slow_network

# What in the page's content sticks out on the right of the window (the navigation has its own
# tests in test_every_page.py); a table's overflow is taken by its .table-scroll.
STICKING_OUT = """(width) => [...document.querySelectorAll('main *')]
  .filter((el) => !el.closest('.table-scroll') || el.classList.contains('table-scroll'))
  .filter((el) => el.getBoundingClientRect().right > width + 1)
  .slice(0, 5).map((el) => el.outerHTML.slice(0, 120))"""
CLAIMS_CSV = (
    b"external_id,vendor,amount,status\nC-1,Acme,12.50,open\nC-2,Beta,lots,open\nC-3,,7,shut\n"
)


def _fits(page: Page) -> None:
    assert page.evaluate(STICKING_OUT, page.viewport_size["width"]) == []


def _add_field(page: Page, index: int) -> None:
    page.click("button[value=add-field]")
    # The new row arrives with its name focused, so typing goes straight into it.
    expect(page.locator(f"#id_fields-{index}-name")).to_be_focused()


def test_a_manager_builds_a_schema_row_by_row_then_meets_an_upload_with_errors(
    logged_in, manager, viewport
):
    page = logged_in(manager, reverse("process_create"), viewport=viewport)
    page.fill("#id_name", "Vendor claims")
    page.fill("#id_fields-0-name", "vendor")
    page.check("#id_fields-0-required")

    _add_field(page, 1)
    page.keyboard.type("amount")
    page.select_option("#id_fields-1-type", "money")
    expect(page.locator("#id_fields-1-currency")).to_be_visible()  # shown for money only
    page.fill("#id_fields-1-currency", "EUR")

    _add_field(page, 2)
    page.keyboard.type("status")
    page.select_option("#id_fields-2-type", "category")
    _add_field(page, 3)
    page.keyboard.type("scratch")
    page.click("button[value=remove-field-3]")
    expect(page.locator("#id_fields-3-name")).to_have_count(0)
    page.click("button[value=up-field-2]")
    expect(page.locator("#id_fields-1-name")).to_have_value("status")
    # The moved row keeps its button focused: pressing it again would move it further.
    expect(page.locator("button[value=up-field-1]")).to_be_focused()

    page.fill("#id_decisions-0-label", "pay")
    page.fill("#id_decisions-0-reason_codes", "covered")
    page.click("button[value=add-decision]")
    expect(page.locator("#id_decisions-1-label")).to_be_focused()
    page.keyboard.type("pay")
    page.fill("#id_priority_field", "weight")
    _fits(page)

    # Saved with three mistakes: all of them come back at once, each next to its input.
    page.get_by_role("button", name="Create process").click()
    expect(page.locator("#id_fields-1-choices_error")).to_contain_text("non-empty list of choices")
    expect(page.locator("#id_decisions-1-label_error")).to_contain_text("used by another decision")
    expect(page.locator("#id_priority_field_error")).to_contain_text("'weight' is not a field")
    _fits(page)

    page.fill("#id_fields-1-choices", "open\nclosed")
    page.fill("#id_decisions-1-label", "reject")
    page.fill("#id_priority_field", "amount")
    page.get_by_role("button", name="Create process").click()
    page.wait_for_url("**/processes/vendor-claims/")
    process = Process.objects.get(slug="vendor-claims")
    assert [(f["name"], f["type"]) for f in process.schema.fields] == [
        ("vendor", "text"),
        ("status", "category"),
        ("amount", "money"),
    ]
    assert process.schema.fields[2]["currency"] == "EUR"
    assert [d["label"] for d in process.schema.decisions] == ["pay", "reject"]

    page.goto(reverse("process_upload", args=[process.slug]))
    page.set_input_files(
        "input[name=file]", {"name": "claims.csv", "mimeType": "text/csv", "buffer": CLAIMS_CSV}
    )
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.locator("#import-blocked")).to_contain_text("2 rows to fix of 3.")
    expect(page.locator("#import-blocked")).to_contain_text("all or nothing")
    expect(page.locator("button[name=action][value=import]")).to_be_disabled()
    invalid = page.locator(".upload-preview td.cell-error")
    expect(invalid).to_have_count(3)  # lots; the missing vendor and shut on line 4
    expect(invalid.nth(0)).to_contain_text("expected a number, got 'lots'")
    # Valid cells read as they will be stored, in valid and invalid rows alike.
    expect(page.locator(".upload-preview tbody tr").nth(2)).to_contain_text("7.0")
    assert page.locator(".upload-preview").evaluate("(t) => !!t.closest('.table-scroll')")
    _fits(page)
    # No script error and nothing refused by the Content-Security-Policy (the 422 of the failed
    # save is logged as a failed resource, as expected).
    assert page.errors == []
    assert [error for error in page.console_errors if "Refused" in error] == []


def test_what_is_typed_while_a_row_edit_is_on_its_way_is_kept_in_its_row(logged_in, manager):
    page = logged_in(manager, reverse("process_create"))
    page.fill("#id_fields-0-name", "vendor")
    _add_field(page, 1)
    page.keyboard.type("amount")
    # A real network: the answer to each row edit takes a moment to come back.
    slow_network(page, 400)
    page.click("button[value=remove-field-0]")
    page.click("#id_fields-1-label")
    page.keyboard.type("Invoice amount", delay=40)
    page.wait_for_timeout(1200)  # the edit has landed

    # The removed row is gone; the label typed meanwhile moved up with its row, still focused.
    expect(page.locator("#id_fields-1-name")).to_have_count(0)
    expect(page.locator("#id_fields-0-name")).to_have_value("amount")
    expect(page.locator("#id_fields-0-label")).to_have_value("Invoice amount")
    expect(page.locator("#id_fields-0-label")).to_be_focused()
