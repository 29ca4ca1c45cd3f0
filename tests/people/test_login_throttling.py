"""Failed logins are throttled per account and per address (django-axes), with a clear message,
a cool-off, and an unlock for organisation admins."""

from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.people import services
from tests.conftest import client_for
from tests.factories import PASSWORD
from tests.processes import run_manage

LIMIT = settings.AXES_FAILURE_LIMIT


def _login(username: str, password: str, address: str = "127.0.0.1") -> object:
    return Client().post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def _fail(username: str, times: int, address: str = "127.0.0.1") -> None:
    """`times` wrong passwords; the one that reaches the limit already answers 429."""
    for _ in range(times):
        assert _login(username, "not-the-password", address).status_code in (200, 429)


def test_after_the_failure_limit_even_the_right_password_is_refused_with_a_clear_message(expert):
    _fail("erin", LIMIT - 1)
    assert _login("erin", "not-the-password").status_code == 429
    response = _login("erin", PASSWORD)
    assert response.status_code == 429
    minutes = settings.ORCHCAP_LOGIN_COOLOFF_MINUTES
    assert f"Too many failed attempts; try again in {minutes} minutes".encode() in response.content
    assert b"ask an administrator" in response.content
    assert b'name="username"' in response.content  # still the login page
    assert "_auth_user_id" not in response.wsgi_request.session


def test_one_failure_short_of_the_limit_the_right_password_still_works(expert):
    _fail("erin", LIMIT - 1)
    assert _login("erin", PASSWORD).status_code == 302


def test_a_locked_account_stays_locked_from_another_address(expert):
    _fail("erin", LIMIT, address="192.0.2.10")
    assert _login("erin", PASSWORD, address="192.0.2.99").status_code == 429


def test_another_account_from_another_address_is_not_locked(expert, second_expert):
    _fail("erin", LIMIT, address="192.0.2.10")
    assert _login("eli", PASSWORD, address="192.0.2.20").status_code == 302


def test_an_address_trying_many_accounts_is_locked_for_every_account(expert, second_expert):
    for number in range(LIMIT):
        _fail(f"guess{number}", 1, address="192.0.2.30")
    assert _login("eli", PASSWORD, address="192.0.2.30").status_code == 429
    assert _login("eli", PASSWORD, address="192.0.2.31").status_code == 302


def test_the_lock_ends_after_the_cool_off(expert):
    _fail("erin", LIMIT)
    assert _login("erin", PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time
        - settings.AXES_COOLOFF_TIME
        - timedelta(seconds=1)
    )
    assert _login("erin", PASSWORD).status_code == 302


def test_an_organisation_admin_unlocks_an_account_in_the_django_admin(admin, expert):
    _fail("erin", LIMIT)
    attempt = AccessAttempt.objects.get(username="erin")
    response = client_for(admin).post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert _login("erin", PASSWORD).status_code == 302


def test_the_axes_reset_username_command_unlocks_an_account(expert):
    _fail("erin", LIMIT)
    call_command("axes_reset_username", "erin")
    assert _login("erin", PASSWORD).status_code == 302


def test_a_locked_out_users_api_token_still_works(expert):
    _, raw = services.create_api_token(user=expert, name="script")
    _fail("erin", LIMIT)
    response = Client().get("/api/v1/teams", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_a_session_started_before_the_lock_keeps_working(expert):
    client = client_for(expert)
    _fail("erin", LIMIT)
    assert client.get(reverse("home")).status_code == 200


def test_throttling_limits_come_from_the_environment():
    code = (
        "from django.conf import settings; "
        "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())"
    )
    result = run_manage(
        "shell",
        "-v",
        "0",
        "-c",
        code,
        ORCHCAP_LOGIN_FAILURE_LIMIT="4",
        ORCHCAP_LOGIN_COOLOFF_MINUTES="2",
    )
    assert result.stdout.split() == ["4", "120.0"]
    result = run_manage("check", ORCHCAP_LOGIN_FAILURE_LIMIT="0")
    assert result.returncode == 2
    assert "ORCHCAP_LOGIN_FAILURE_LIMIT must be at least 1" in result.stderr
