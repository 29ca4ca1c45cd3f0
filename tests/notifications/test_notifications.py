"""Notifications: the bell's unread count in the header, the list with mark read (htmx and
plain) and mark all read, preferences (page and API), emails per preference, and someone else's
notification answering 404."""

import json

import pytest
from django.core import mail
from django.urls import reverse

from apps.notifications.models import Kind, Notification, Preference
from apps.notifications.services import notify
from tests.conftest import client_for


def tell(user, n=1, kind=Kind.CASE_ROUTED, **kw):
    rows = []
    for i in range(n):
        rows += notify(recipients=[user], kind=kind, title=f"Item {i} routed to you", **kw)
    return rows


def bell_of(page: str) -> str:
    return page.split('id="bell"', 1)[1].split("</a>", 1)[0]


def test_the_bell_shows_the_unread_count_and_none_when_all_are_read(expert):
    client = client_for(expert)
    assert 'aria-label="Notifications, none unread"' in client.get(reverse("home")).content.decode()
    tell(expert, 3)

    page = client.get(reverse("home")).content.decode()

    assert 'aria-label="Notifications, 3 unread"' in page
    assert '<span class="bell-count">3</span>' in bell_of(page)
    client.post(reverse("notification_read_all"))
    assert "none unread" in bell_of(client.get(reverse("home")).content.decode())


def test_the_bell_stops_counting_at_99(expert):
    Notification.objects.bulk_create(
        Notification(recipient=expert, kind=Kind.CASE_ROUTED, title="x", created_at="2026-01-01T00:00Z")
        for _ in range(120)
    )  # fmt: skip
    page = client_for(expert).get(reverse("home")).content.decode()
    assert "99+ unread" in page


def test_the_bell_costs_one_query_whatever_the_count(expert):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(expert)
    client.get(reverse("home"))  # warm the session
    with CaptureQueriesContext(connection) as before:
        client.get(reverse("home"))
    tell(expert, 40)
    with CaptureQueriesContext(connection) as after:
        client.get(reverse("home"))
    bell_queries = [q for q in after.captured_queries if "notifications_notification" in q["sql"]]
    assert len(bell_queries) == 1
    assert "LIMIT" in bell_queries[0]["sql"]
    assert len(after.captured_queries) == len(before.captured_queries)


def test_mark_read_with_htmx_swaps_the_row_and_the_bell(expert):
    first, second = tell(expert, 2)
    client = client_for(expert)

    response = client.post(reverse("notification_read", args=[first.pk]), HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<tr id="notification-{first.pk}" class="read"')
    assert "<html" not in body
    assert 'hx-swap-oob="true"' in body
    assert "1 unread" in body
    first.refresh_from_db()
    assert first.read_at is not None
    second.refresh_from_db()
    assert second.read_at is None


def test_mark_read_without_javascript_redirects_to_the_list(expert):
    (row,) = tell(expert)
    response = client_for(expert).post(reverse("notification_read", args=[row.pk]))
    assert response.status_code == 302
    assert response.url == reverse("notification_list")
    row.refresh_from_db()
    assert row.read_at is not None


def test_the_list_shows_mine_newest_first_and_filters_unread(expert, second_expert):
    old, new = tell(expert, 2)
    tell(second_expert, 1, url="/secret/")
    client = client_for(expert)
    client.post(reverse("notification_read", args=[old.pk]))

    page = client.get(reverse("notification_list")).content.decode()
    unread = client.get(reverse("notification_list"), {"unread": "1"}).content.decode()

    assert page.index(f"notification-{new.pk}") < page.index(f"notification-{old.pk}")
    assert "/secret/" not in page
    assert f"notification-{new.pk}" in unread
    assert f"notification-{old.pk}" not in unread


def test_someone_elses_notification_is_404_on_the_page_and_the_api(expert, second_expert):
    (theirs,) = tell(second_expert)
    client = client_for(expert)

    assert client.post(reverse("notification_read", args=[theirs.pk])).status_code == 404
    api = client.post(f"/api/v1/notifications/{theirs.pk}/read")
    assert api.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_notify_emails_and_shows_in_the_app_by_default(expert, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        (row,) = notify(
            recipients=[expert, expert], kind=Kind.SLA_BREACHED, title="INV-1 passed its SLA",
            body="It went to eli.", url="/cases/1/",
        )  # fmt: skip
    (email,) = mail.outbox
    assert email.to == [expert.email]
    assert email.subject == "orchcap: INV-1 passed its SLA"
    assert "It went to eli." in email.body
    assert "http://127.0.0.1:8000/cases/1/" in email.body
    row.refresh_from_db()
    assert row.in_app
    assert row.emailed_at is not None


def test_preferences_choose_in_app_or_email_per_kind(expert, django_capture_on_commit_callbacks):
    client = client_for(expert)
    response = client.post(
        reverse("notification_preferences"),
        # case_routed: in the app only; sla_breached: by email only; connector_disabled: neither.
        {"case_routed-in_app": "on", "sla_breached-email": "on"},
    )
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        routed = notify(recipients=[expert], kind=Kind.CASE_ROUTED, title="routed")
        breached = notify(recipients=[expert], kind=Kind.SLA_BREACHED, title="breached")
        disabled = notify(recipients=[expert], kind=Kind.CONNECTOR_DISABLED, title="disabled")

    assert [r.in_app for r in routed] == [True]
    assert [r.in_app for r in breached] == [False]
    assert disabled == []
    assert [m.subject for m in mail.outbox] == ["orchcap: breached"]
    listed = client.get(reverse("notification_list")).content.decode()
    assert "routed" in listed
    assert ">breached<" not in listed
    page = client.get(reverse("notification_preferences")).content.decode()
    assert 'name="case_routed-in_app" id="id_case_routed-in_app" checked' in page


def test_api_lists_marks_read_and_sets_preferences(expert):
    rows = tell(expert, 3)
    client = client_for(expert)

    listed = client.get("/api/v1/notifications", {"limit": 2}).json()
    assert listed["unread"] == 3
    assert listed["count"] == 3
    assert [item["id"] for item in listed["items"]] == [rows[2].pk, rows[1].pk]
    read = client.post(f"/api/v1/notifications/{rows[0].pk}/read").json()
    assert read["read_at"] is not None
    assert client.get("/api/v1/notifications", {"unread": True}).json()["count"] == 2
    assert client.post("/api/v1/notifications/read-all").json() == {"marked": 2}

    put = client.put(
        "/api/v1/notifications/preferences",
        json.dumps([{"kind": "case_routed", "in_app": True, "email": False}]),
        content_type="application/json",
    )
    assert put.status_code == 200
    assert {p["kind"]: p["email"] for p in put.json()} == {
        "case_routed": False, "sla_breached": True, "connector_disabled": True,
    }  # fmt: skip
    assert Preference.objects.get(user=expert, kind="case_routed").email is False


@pytest.mark.parametrize(
    "body",
    [
        [{"kind": "weather", "in_app": True, "email": True}],
        [{"kind": "case_routed", "in_app": "maybe", "email": True}],
        {"kind": "case_routed"},
    ],
)
def test_bad_preferences_are_422_and_change_nothing(expert, body):
    response = client_for(expert).put(
        "/api/v1/notifications/preferences", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 422
    assert "detail" in response.json()
    assert not Preference.objects.exists()


def test_the_api_needs_a_login(db, client):
    assert client.get("/api/v1/notifications").status_code == 401


def test_pages_need_a_login(db, client):
    response = client.get(reverse("notification_list"))
    assert response.status_code == 302
    assert reverse("login") in response.url


def test_a_disabled_connector_tells_its_owner_in_the_app_even_without_an_email(team, manager):
    from apps.connectors.services.connectors import create_connector
    from apps.connectors.services.deliveries import disable_connector

    manager.email = ""
    manager.save(update_fields=["email"])
    connector = create_connector(
        team=team, name="ERP", url="https://93.184.216.34/hooks", event_types=["item.decided"],
        owner=manager,
    )  # fmt: skip

    assert disable_connector(connector=connector, reason="410 Gone from the endpoint")

    (row,) = Notification.objects.filter(recipient=manager)
    assert row.kind == Kind.CONNECTOR_DISABLED
    assert row.title == "Connector 'ERP' was disabled"
    assert "410 Gone from the endpoint" in row.body
    assert row.url == reverse("connector_detail", args=[connector.pk])
    assert row.emailed_at is None
    page = client_for(manager).get(reverse("notification_list")).content.decode()
    assert "Connector &#x27;ERP&#x27; was disabled" in page
