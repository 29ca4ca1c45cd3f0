"""Who may write to the API: anonymous callers get the documented 401, a logged-in browser needs
its CSRF token (403 saying so), a bearer token needs none."""

import json

import pytest
from django.test import Client

from apps.cases.models import Process
from tests.api.conftest import token_client

BODY = json.dumps(
    {"fields": [{"name": "amount", "type": "number"}], "decisions": [{"label": "ok"}]}
)
WRITES = [
    ("post", "/api/v1/processes"),
    ("put", "/api/v1/processes/invoices/schema"),
    ("post", "/api/v1/processes/invoices/cases"),
    ("post", "/api/v1/fabric/tasks"),
]


@pytest.mark.parametrize(("method", "url"), WRITES)
def test_an_anonymous_write_is_a_401(process, method, url):
    response = getattr(Client(enforce_csrf_checks=True), method)(
        url, BODY, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_a_wrong_token_is_a_401_even_with_a_session_cookie_and_no_csrf(process):
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION="Bearer oc_wrong")
    response = client.put(
        "/api/v1/processes/invoices/schema", BODY, content_type="application/json"
    )
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "url"), WRITES)
def test_a_session_write_without_the_csrf_token_is_a_403_saying_so(admin, process, method, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = getattr(client, method)(url, BODY, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF check failed")
    assert "X-CSRFToken" in response.json()["detail"]


def test_a_session_write_with_the_csrf_token_is_accepted(admin, process):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    client.get("/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.put(
        "/api/v1/processes/invoices/schema",
        BODY,
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200, response.content


def test_a_token_write_needs_no_csrf_token(admin, process):
    client = token_client(admin)
    client.handler.enforce_csrf_checks = True
    response = client.put(
        "/api/v1/processes/invoices/schema", BODY, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert Process.objects.get().schema.version == 2
