"""Decision labels and reason codes read as words on every page that shows them; exports keep the
codes (they are for machines)."""

import re

import pytest
from django.urls import reverse

from apps.cases.services.decisions import record_decision
from tests.conftest import client_for
from tests.factories import INVOICE_FIELDS, make_cases, make_process

DECISIONS = [
    {"label": "approve", "reason_codes": ["po_confirmed"]},
    {"label": "route_to_procurement", "reason_codes": ["no_po_over_limit", "new_vendor"]},
]


def _text(html: str) -> str:
    """What a reader sees: the page without its tags and attributes (tooltips keep the codes)."""
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture
def decided_case(team, expert):
    process = make_process(team, slug="procure", fields=INVOICE_FIELDS, decisions=DECISIONS)
    (case,) = make_cases(process, 1)
    record_decision(
        case=case, expert=expert, label="route_to_procurement", reason_code="no_po_over_limit"
    )
    return case


def test_the_case_page_and_the_process_page_show_labels_and_codes_as_words(decided_case, expert):
    client = client_for(expert)
    case_page = _text(client.get(reverse("case_detail", args=[decided_case.pk])).content.decode())
    assert "Route to procurement" in case_page
    assert "No po over limit" in case_page
    assert "route_to_procurement" not in case_page
    assert "no_po_over_limit" not in case_page
    process_page = client.get(reverse("process_detail", args=[decided_case.process.slug]))
    assert "Route to procurement" in _text(process_page.content.decode())


def test_the_review_form_offers_reason_codes_as_words_and_posts_the_codes(decided_case, expert):
    make_cases(decided_case.process, 1)
    html = client_for(expert).get(reverse("review", args=[decided_case.process.slug])).text
    assert '<option value="new_vendor"' in html
    assert "New vendor (⇧2)" in html
    assert "new_vendor" not in _text(html)


def test_the_export_keeps_the_codes(decided_case, expert):
    url = reverse("process_export", args=[decided_case.process.slug])
    body = b"".join(client_for(expert).get(f"{url}?format=csv").streaming_content).decode()
    assert "route_to_procurement,no_po_over_limit" in body
    assert "Route to procurement" not in body
