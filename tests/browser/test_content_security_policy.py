"""Under the Content-Security-Policy (self only, nothing inline) the pages that run scripts work in
a real browser: no refused script, style or eval in the console, no script error."""

import pytest
from django.urls import reverse

from tests.factories import make_cases, make_process


@pytest.fixture
def process(team):
    process = make_process(team)
    make_cases(process, 3)
    return process


def test_pages_load_without_a_content_security_policy_refusal(logged_in, admin, expert, process):
    pages = [
        (expert, reverse("review", args=[process.slug])),
        (admin, reverse("rule_builder", args=[process.slug])),
        (admin, reverse("team_detail", args=[process.team.slug])),
        (admin, reverse("autonomy_process", args=[process.slug])),
        (admin, reverse("fabric_fleet")),
        (admin, "/api/v1/docs"),
    ]
    for user, path in pages:
        page = logged_in(user, path)
        page.wait_for_load_state("networkidle")
        assert page.errors == [], path
        # (A 404 for /favicon.ico is a console error too, so only refusals are looked for.)
        refused = [m for m in page.console_errors if "Refused" in m or "Security Policy" in m]
        assert refused == [], path
        if path.startswith("/api/"):
            continue
        # htmx loaded and configured by orchcap.js, both from static files.
        assert page.evaluate("() => window.htmx && htmx.config.allowEval") is False, path
