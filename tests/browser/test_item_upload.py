"""The orchestration's upload page in its checked states (the sweep of every page sees only its
empty form): a file with bad rows (errors by line, the preview) and a valid one sent, at a phone's
width without sideways scrolling, every table in a .table-scroll, and axe-clean."""

import pytest

from apps.orchestrations.models import Run
from apps.orchestrations.services import change_stage, create_orchestration, create_version
from tests.browser.test_every_page import AXE_SCAN, PHONE_WIDTH, SIDEWAYS_SCROLL, UNWRAPPED_TABLES
from tests.factories import make_process

BAD = (
    "external_id,vendor,amount,po_status,due_date,note\n"
    "INV-1,Acme GmbH,50,matched,2026-12-01,Monthly invoice with a rather long note to wrap\n"
    "INV-2,,lots,maybe,tomorrow,\n"
)
GOOD = (
    "external_id,vendor,amount,po_status\nINV-1,Acme GmbH,50,matched\nINV-2,Beta AG,900,missing\n"
)


def _problems(page) -> list[str]:
    found = []
    if page.evaluate(UNWRAPPED_TABLES):
        found.append(f"tables outside a .table-scroll: {page.evaluate(UNWRAPPED_TABLES)}")
    sideways = page.evaluate(SIDEWAYS_SCROLL)
    if sideways["width"] > PHONE_WIDTH:
        found.append(f"scrolls sideways: {sideways}")
    page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
    return found + page.evaluate(AXE_SCAN)


@pytest.mark.django_db(transaction=True)
def test_the_checked_and_sent_states_fit_a_phone_and_pass_axe(logged_in, team, expert, manager):
    process = make_process(team)
    orchestration = create_orchestration(
        process=process, slug="invoice-flow", name="Invoice flow", owner=manager
    )
    version = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=version, stage="live", actor=manager)
    page = logged_in(expert, "/orchestrations/invoice-flow/upload/", viewport="phone")

    page.set_input_files("#id_file", files=[
        {"name": "items.csv", "mimeType": "text/csv", "buffer": BAD.encode()}])  # fmt: skip
    page.get_by_role("button", name="Check the rows").click()
    page.wait_for_selector("#row-errors")
    assert "1 row must be fixed" in page.content()
    assert _problems(page) == []

    page.set_input_files("#id_file", files=[
        {"name": "items.csv", "mimeType": "text/csv", "buffer": GOOD.encode()}])  # fmt: skip
    page.get_by_role("button", name="Check the rows").click()
    page.get_by_role("button", name="Send 2 items to version 1").click()
    page.wait_for_selector("#sent")
    assert _problems(page) == []
    assert Run.objects.count() == 2
