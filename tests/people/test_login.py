import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD


@pytest.mark.django_db
def test_login_page_renders_for_anonymous_users():
    response = Client().get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_anonymous_user_is_sent_to_login_from_home(db):
    response = Client().get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_expert_logs_in_with_password_and_reaches_home(expert):
    client = Client()
    response = client.post(
        reverse("login"), {"username": "erin", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"As an expert" in response.content
    assert b"Accounts Payable" in response.content


def test_wrong_password_shows_an_error_and_stays_logged_out(expert):
    client = Client()
    response = client.post(reverse("login"), {"username": "erin", "password": "nope"})
    assert response.status_code == 200
    assert b"enter a correct username and password" in response.content
    assert client.get(reverse("home")).status_code == 302


def test_logout_ends_the_session(expert):
    client = Client()
    client.force_login(expert)
    assert client.get(reverse("home")).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_logout_by_get_is_refused(expert):
    client = Client()
    client.force_login(expert)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("home")).status_code == 200


def test_password_change_takes_effect(expert):
    client = Client()
    client.force_login(expert)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-newer-secret-42",
            "new_password2": "a-much-newer-secret-42",
        },
    )
    assert response.status_code == 302
    assert Client().login(username="erin", password="a-much-newer-secret-42")
    assert not Client().login(username="erin", password=PASSWORD)


def test_password_change_rejects_a_weak_password(expert):
    client = Client()
    client.force_login(expert)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert response.status_code == 200
    assert b"too short" in response.content or b"too common" in response.content
