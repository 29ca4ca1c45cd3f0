"""Pages: a Content-Security-Policy on every HTML answer with nothing inline in the templates,
oversized bodies refused with a clear 4xx, and an ordinary 403 logged without a traceback. (NUL
characters in page input: tests/core/test_page_nul_input.py.)"""

import logging
import re
from pathlib import Path

from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from apps.core.middleware import CONTENT_SECURITY_POLICY
from tests.conftest import client_for
from tests.factories import make_process

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I),
    "style element": re.compile(r"<style[\s>]", re.I),
    "style attribute": re.compile(r"\sstyle=", re.I),
    "event handler": re.compile(r"\son[a-z]+=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_every_html_page_has_a_content_security_policy_of_self_only(admin):
    for client, url in (
        (Client(), "/login/"),
        (client_for(admin), "/"),
        (client_for(admin), "/no/such/page/"),
        (client_for(admin), "/api/v1/docs"),
    ):
        response = client.get(url)
        assert response["Content-Type"].startswith("text/html"), url
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, url
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


def test_json_answers_carry_no_content_security_policy(admin):
    response = Client().get("/api/v1/teams")
    assert "Content-Security-Policy" not in response


def test_no_template_has_inline_scripts_styles_or_event_handlers():
    found = [
        f"{path.relative_to(TEMPLATES)}: {what}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for what, pattern in INLINE.items()
        if pattern.search(path.read_text())
    ]
    assert found == []


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_a_form_body_over_the_limit_is_a_413_page_without_a_traceback(manager, team):
    process = make_process(team)
    with override_settings(DEBUG=True):
        response = client_for(manager).post(
            reverse("process_edit", args=[process.slug]), {"name": "x" * 20_000}
        )
    assert response.status_code == 413
    body = response.content.decode()
    assert "larger than 10,000 bytes" in body
    assert "Traceback" not in body


def test_an_ordinary_403_is_logged_as_a_warning_without_a_traceback(staff, team, caplog):
    process = make_process(team)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client_for(staff).get(reverse("process_upload", args=[process.slug]))
    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "Traceback" not in caplog.text
