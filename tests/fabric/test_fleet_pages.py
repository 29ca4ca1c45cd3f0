"""Fleet pages: admins see and run the fleet; everyone else gets 403."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.fabric.models import ComputeNode, EnrollmentToken, NodeState
from apps.fabric.services import enrollment
from tests.conftest import client_for
from tests.fabric.conftest import FINGERPRINT, enroll


@pytest.fixture
def node_pages(pending_node):
    node, _ = pending_node
    return [
        ("get", reverse("fabric_fleet")),
        ("get", reverse("fabric_node", args=[node.pk])),
        ("post", reverse("fabric_token_create")),
        ("post", reverse("fabric_node_action", args=[node.pk, "approve"])),
        ("post", reverse("fabric_node_availability", args=[node.pk])),
        ("post", reverse("fabric_node_settings", args=[node.pk])),
    ]


def test_only_admins_may_open_fleet_pages(node_pages, expert, manager, staff, outsider, admin):
    for user in (expert, manager, staff, outsider):
        client = client_for(user)
        for method, url in node_pages:
            assert getattr(client, method)(url).status_code == 403, (user, url)
    assert client_for(admin).get(node_pages[0][1]).status_code == 200
    assert ComputeNode.objects.get().state == NodeState.PENDING


def test_anonymous_users_are_sent_to_login():
    response = Client().get(reverse("fabric_fleet"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_fleet_lists_nodes_with_detected_and_declared_capabilities(make_token, admin):
    enroll(make_token(auto_approve=True), name="gpu-box", declared={"gpus": 2})
    page = client_for(admin).get(reverse("fabric_fleet")).content.decode()
    assert "gpu-box" in page
    assert "8 CPU" in page
    assert "<em>2 GPU</em> (declared)" in page
    assert "Online" in page
    assert "Waiting for approval" not in page


def test_htmx_refresh_returns_only_the_node_rows(online_node, admin):
    response = client_for(admin).get(reverse("fabric_fleet"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<tbody id="node-rows"')
    assert "build-1" in body
    assert "<html" not in body


def test_approval_queue_shows_fingerprint_and_capabilities_and_approves(pending_node, admin):
    node, _ = pending_node
    client = client_for(admin)
    page = client.get(reverse("fabric_fleet")).content.decode()
    assert "Waiting for approval" in page
    assert FINGERPRINT in page
    assert "CPU cores: 8" in page
    response = client.post(
        reverse("fabric_node_action", args=[node.pk, "approve"]), {"next": reverse("fabric_fleet")}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("fabric_fleet")
    node.refresh_from_db()
    assert node.state == NodeState.ONLINE  # it enrolled moments ago: that was contact
    assert node.approved_by == admin


def test_rejecting_kills_the_credential(pending_node, admin):
    node, _ = pending_node
    client_for(admin).post(reverse("fabric_node_action", args=[node.pk, "reject"]))
    node.refresh_from_db()
    assert node.state == NodeState.RETIRED
    assert node.revoked_at is not None


def test_approving_twice_is_a_409_conflict_with_the_reason(online_node, admin):
    node, _ = online_node
    response = client_for(admin).post(reverse("fabric_node_action", args=[node.pk, "approve"]))
    assert response.status_code == 409
    assert "is not waiting for approval" in response.content.decode()


def test_unknown_action_is_404(online_node, admin):
    node, _ = online_node
    response = client_for(admin).post(reverse("fabric_node_action", args=[node.pk, "explode"]))
    assert response.status_code == 404


def test_offsite_next_is_ignored(online_node, admin):
    node, _ = online_node
    response = client_for(admin).post(
        reverse("fabric_node_action", args=[node.pk, "drain"]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("fabric_node", args=[node.pk])


def test_creating_a_token_shows_it_once_with_the_command(admin, team):
    client = client_for(admin)
    response = client.post(
        reverse("fabric_token_create"),
        {"expires": "7d", "team": team.pk, "labels": "site=branch-3, room=2", "note": "render box"},
    )
    # POST-redirect-GET: a reload of the page that shows the token does not create another.
    assert response.status_code == 302
    assert response["Location"] == reverse("fabric_fleet")
    response = client.get(reverse("fabric_fleet"))
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    token = EnrollmentToken.objects.get()
    assert token.labels == {"site": "branch-3", "room": "2"}
    assert token.created_by == admin
    raw = page.split("--token ")[1].split("<")[0]
    assert token.token_hash == enrollment.hash_secret(raw)
    assert "orchcap-agent enroll --server http://testserver --token oce_" in page
    assert raw not in client.get(reverse("fabric_fleet")).content.decode()


def test_bad_token_form_is_422(admin):
    response = client_for(admin).post(
        reverse("fabric_token_create"), {"expires": "24h", "labels": "site"}
    )
    assert response.status_code == 422
    assert "must look like key=value" in response.content.decode()
    assert not EnrollmentToken.objects.exists()


def test_node_page_shows_history_and_availability_in_words(online_node, admin):
    node, _ = online_node
    page = client_for(admin).get(reverse("fabric_node", args=[node.pk])).content.decode()
    assert "Any time" in page
    assert "Enrolled" in page
    assert "Approved" in page
    assert "approved automatically by its enrolment token" in page
    assert FINGERPRINT in page


def test_editing_hours_in_plain_words(online_node, admin):
    node, _ = online_node
    client = client_for(admin)
    response = client.post(
        reverse("fabric_node_availability", args=[node.pk]),
        {
            "mode": "windows", "timezone": "Europe/Berlin", "idle_minutes": "15",
            "days_0": ["0", "1", "2", "3", "4"], "start_0": "19:00", "end_0": "07:00",
            "days_1": ["5", "6"], "start_1": "00:00", "end_1": "00:00",
        },
    )  # fmt: skip
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.timezone == "Europe/Berlin"
    assert node.availability["idle_minutes"] == 15
    page = client.get(reverse("fabric_node", args=[node.pk])).content.decode()
    expected = "Mon–Fri 19:00–07:00 and all weekend (Europe/Berlin), only after 15 minutes idle"  # noqa: RUF001
    assert expected in page
    # The form shows what is stored: the weekend row is ticked.
    assert re.search(r'name="days_1" value="6"[^>]*checked', page)
    assert not re.search(r'name="days_0" value="6"[^>]*checked', page)
    assert 'name="end_1" value="00:00"' in page


def test_incomplete_hours_row_is_422_and_keeps_the_policy(online_node, admin):
    node, _ = online_node
    response = client_for(admin).post(
        reverse("fabric_node_availability", args=[node.pk]),
        {"mode": "windows", "timezone": "UTC", "idle_minutes": "0", "start_0": "19:00",
         "end_0": "07:00"},
    )  # fmt: skip
    assert response.status_code == 422
    assert "Row 1: tick at least one day." in response.content.decode()
    node.refresh_from_db()
    assert node.availability["windows"] == []


def test_reclaim_now_and_release(online_node, admin):
    node, _ = online_node
    client = client_for(admin)
    client.post(reverse("fabric_node_action", args=[node.pk, "reclaim"]))
    page = client.get(reverse("fabric_node", args=[node.pk])).content.decode()
    assert "Reclaimed by its owner" in page
    assert "Release to its usual hours" in page
    client.post(reverse("fabric_node_action", args=[node.pk, "release"]))
    node.refresh_from_db()
    assert node.availability["reclaim"] is False


def test_drain_retire_and_revoke_from_the_node_page(online_node, admin):
    node, _ = online_node
    client = client_for(admin)
    client.post(reverse("fabric_node_action", args=[node.pk, "drain"]))
    node.refresh_from_db()
    assert (node.state, node.drain_requested) == (NodeState.DRAINING, True)
    client.post(reverse("fabric_node_action", args=[node.pk, "retire"]))
    node.refresh_from_db()
    assert node.state == NodeState.RETIRED
    client.post(reverse("fabric_node_action", args=[node.pk, "revoke"]))
    node.refresh_from_db()
    assert node.revoked_at is not None
    kinds = list(node.events.order_by("pk").values_list("kind", flat=True))
    assert kinds == ["enrolled", "approved", "drain", "retired", "revoked"]


def test_settings_change_is_recorded(online_node, admin):
    node, _ = online_node
    response = client_for(admin).post(
        reverse("fabric_node_settings", args=[node.pk]),
        {"name": "build-1", "purpose": "nightly builds", "node_class": "edge",
         "max_concurrent_tasks": "2"},
    )  # fmt: skip
    assert response.status_code == 302
    node.refresh_from_db()
    assert (node.node_class, node.max_concurrent_tasks) == ("edge", 2)
    assert "max concurrent tasks: 8 → 2" in node.events.first().message


def test_admin_home_page_shows_the_fabric_section_and_others_do_not(pending_node, admin, manager):
    home = client_for(admin).get(reverse("home")).content.decode()
    assert 'id="fabric"' in home
    assert "1 waiting for your approval" in home
    assert 'id="fabric"' not in client_for(manager).get(reverse("home")).content.decode()


def test_an_admin_hands_a_machine_to_its_owner_who_then_sees_it(online_node, admin, staff):
    node, _ = online_node
    response = client_for(admin).post(
        reverse("fabric_node_settings", args=[node.pk]),
        {"name": node.name, "owner": staff.pk, "purpose": "", "node_class": node.node_class,
         "max_concurrent_tasks": node.max_concurrent_tasks},
    )  # fmt: skip
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.owner_id == staff.pk
    assert f"owner: {admin.username} → {staff.username}" in node.events.first().message
    mine = client_for(staff).get(reverse("fabric_my_nodes"))
    assert node.name in mine.content.decode()


def _forms_posting_to(page: str, action: str) -> list[str]:
    return [tag for tag in re.findall(r"<form\b[^>]*>", page) if f'action="{action}"' in tag]


def test_retire_revoke_reject_and_token_revoke_ask_for_a_confirmation(
    admin, online_node, pending_node, make_token
):
    client = client_for(admin)
    node, _ = online_node
    page = client.get(reverse("fabric_node", args=[node.pk])).content.decode()
    for action in ("retire", "revoke"):
        (form,) = _forms_posting_to(page, reverse("fabric_node_action", args=[node.pk, action]))
        assert f'data-confirm="{action.capitalize()} {node.name}' in form
    waiting, _ = pending_node
    make_token()
    fleet = client.get(reverse("fabric_fleet")).content.decode()
    (reject,) = _forms_posting_to(fleet, reverse("fabric_node_action", args=[waiting.pk, "reject"]))
    assert "data-confirm=" in reject
    token = EnrollmentToken.objects.filter(used_at__isnull=True).latest("pk")
    (revoke,) = _forms_posting_to(fleet, reverse("fabric_token_revoke", args=[token.pk]))
    assert f'data-confirm="Revoke enrolment token {token.prefix}' in revoke
