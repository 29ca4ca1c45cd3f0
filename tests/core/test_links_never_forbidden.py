"""Every link a person is shown leads somewhere they may go: for each persona, follow the
same-origin links of the pages they reach (a few levels deep) and expect no 403."""

import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from apps.rules.services.authoring import create_rule
from tests.conftest import client_for
from tests.factories import make_cases, make_decided_cases, make_process

MAX_DEPTH = 3
MAX_PAGES = 150
# Pages that differ only in an id (case 17, case 18…) are checked twice, not once per row.
PER_PATTERN = 2
# Django's admin is its own site with its own permissions; its index is enough to check the link.
NOT_FOLLOWED = ("/admin/", "/static/", "/media/", "/api/")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _links_on(page_url: str, html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    found = []
    for href in parser.hrefs:
        url, _ = urldefrag(urljoin(page_url, href))
        parts = urlsplit(url)
        if parts.scheme not in ("", "http") or parts.netloc not in ("", "testserver"):
            continue  # another site, mailto:, javascript:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if path:
            found.append(path)
    return found


def crawl(client) -> dict[str, tuple[int, str]]:
    """{url: (status, the page that links to it)} for every link reached breadth-first from /."""
    seen: dict[str, tuple[int, str]] = {}
    patterns: Counter[str] = Counter()
    frontier = [("/", "(start)")]
    for _depth in range(MAX_DEPTH + 1):
        following = []
        for url, source in frontier:
            pattern = re.sub(r"\d+", "N", url)
            if url in seen or len(seen) >= MAX_PAGES or patterns[pattern] >= PER_PATTERN:
                continue
            patterns[pattern] += 1
            response = client.get(url)
            seen[url] = (response.status_code, source)
            if response.status_code != 200 or url.startswith(NOT_FOLLOWED):
                continue
            if not response.get("Content-Type", "").startswith("text/html"):
                continue
            following.extend((link, url) for link in _links_on(url, response.content.decode()))
        frontier = following
    return seen


@pytest.fixture
def populated(team, expert, second_expert, manager, staff, admin):
    """A little of everything the pages link to: processes with open, decided and disputed
    cases, a rule, a second process with two labels per case, a machine staff lends and a task
    placed on it."""
    from apps.cases.services.decisions import record_decision
    from apps.fabric.models import ComputeNode
    from apps.fabric.services import dispatch, enrollment
    from tests.fabric.conftest import DETECTED, FINGERPRINT

    _, raw = enrollment.create_enrollment_token(created_by=admin, auto_approve=True)
    node = enrollment.enroll_node(
        raw_token=raw, name="desk-1", detected=DETECTED, fingerprint=FINGERPRINT
    ).node
    ComputeNode.objects.filter(pk=node.pk).update(owner=staff, worker_ready=True)
    dispatch.submit_task(kind="probe")

    invoices = make_process(team)
    make_decided_cases(invoices, second_expert, 12, seed=1)
    make_cases(invoices, 2)
    create_rule(
        process=invoices, owner=manager, name="No PO", action={"decide": "request_info"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
    )  # fmt: skip
    double = make_process(team, slug="double", overlap=2)
    (case,) = make_cases(double, 1)
    record_decision(case=case, expert=expert, label="approve", reason_code="ok", rationale="")
    record_decision(
        case=case, expert=second_expert, label="reject", reason_code="fraud", rationale=""
    )
    return invoices


PERSONAS = ["expert", "manager", "staff", "admin", "team_admin", "outsider"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_link_a_persona_is_shown_answers_403(populated, persona, request):
    user = request.getfixturevalue(persona)
    reached = crawl(client_for(user))
    assert len(reached) > 3, reached  # the crawl really went somewhere
    forbidden = {url: source for url, (status, source) in reached.items() if status == 403}
    assert forbidden == {}, f"{persona} is shown links that answer 403: {forbidden}"
    # /healthz says 503 while no worker runs (none does here): that is its answer, not a failure.
    errors = {url: code for url, (code, _) in reached.items() if code >= 500 and url != "/healthz"}
    assert errors == {}
