"""My machines: a machine's owner reclaims, releases and schedules their own nodes, and only
theirs; the node itself can reclaim and release through its credential."""

from datetime import timedelta

import pytest
from django.urls import reverse

from apps.fabric import ownership
from apps.fabric.models import (
    ComputeNode,
    FabricTaskState,
    NodeEvent,
    NodeEventKind,
    NodeState,
    TaskAttempt,
)
from apps.fabric.services import dispatch
from apps.fabric.services import nodes as node_services
from tests.conftest import client_for
from tests.fabric.conftest import node_client
from tests.fabric.test_dispatch import finish

MINE = "/fabric/mine/"


@pytest.fixture
def lent(ready_node, staff):
    """A workstation staff member `sam` lends to the fabric: online, consuming, any time."""
    node, credential = ready_node("sams-desk", node_class="workstation")
    node_services.update_availability(
        node=node, actor=None, windows=[], idle_minutes=0, node_timezone="UTC"
    )
    ComputeNode.objects.filter(pk=node.pk).update(owner=staff)
    node.refresh_from_db()
    return node, credential


@pytest.fixture
def admins_node(ready_node):
    node, _ = ready_node("server-9")
    return node


def action(node: ComputeNode, name: str) -> str:
    return reverse("fabric_my_node_action", args=[node.pk, name])


def test_the_page_answers_at_its_name():
    assert reverse("fabric_my_nodes") == MINE


def test_owner_sees_their_machine_and_not_anyone_elses(lent, admins_node, staff):
    node, _ = lent
    page = client_for(staff).get(MINE)
    assert page.status_code == 200
    body = page.text
    assert "sams-desk" in body
    assert "Online" in body
    assert "Accepted now" in body
    assert "Any time" in body
    assert "Reclaim now" in body
    assert "Nothing runs here now." in body
    assert "server-9" not in body
    # Admin-only controls and links aren't offered to an owner.
    for admin_only in ("Drain", "Retire", "Revoke", "Send a probe", f"/fabric/nodes/{node.pk}/"):
        assert admin_only not in body, admin_only


def test_another_users_machine_answers_404_to_an_owner(lent, admins_node, staff):
    client = client_for(staff)
    assert client.post(action(admins_node, "reclaim")).status_code == 404
    response = client.post(
        reverse("fabric_my_node_availability", args=[admins_node.pk]),
        {"mode": "any", "timezone": "UTC", "idle_minutes": "0"},
    )
    assert response.status_code == 404
    admins_node.refresh_from_db()
    assert not admins_node.availability.get("reclaim")
    assert not NodeEvent.objects.filter(node=admins_node, actor=staff).exists()


def test_a_user_who_owns_nothing_sees_no_machines_and_gets_404_for_one(lent, manager):
    node, _ = lent
    client = client_for(manager)
    page = client.get(MINE)
    assert page.status_code == 200
    assert "You lend no machines" in page.text
    assert "sams-desk" not in page.text
    assert client.post(action(node, "reclaim")).status_code == 404
    assert client.post(action(node, "release")).status_code == 404
    node.refresh_from_db()
    assert not node.availability.get("reclaim")


def test_a_retired_machine_is_gone_from_its_owners_page(lent, staff, admin):
    node, _ = lent
    node_services.retire_node(node=node, actor=admin)
    client = client_for(staff)
    assert "sams-desk" not in client.get(MINE).text
    assert client.post(action(node, "reclaim")).status_code == 404


def test_anonymous_users_are_sent_to_login(lent):
    from django.test import Client

    node, _ = lent
    for response in (Client().get(MINE), Client().post(action(node, "reclaim"))):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_an_unknown_owner_action_is_404(lent, staff):
    node, _ = lent
    for name in ("drain", "retire", "revoke", "approve"):
        assert client_for(staff).post(action(node, name)).status_code == 404, name
    node.refresh_from_db()
    assert (node.state, node.drain_requested) == (NodeState.ONLINE, False)


def test_owner_may_not_drain_retire_or_use_the_admin_pages(lent, staff):
    node, _ = lent
    client = client_for(staff)
    for name in ("drain", "retire", "revoke", "reclaim"):
        url = reverse("fabric_node_action", args=[node.pk, name])
        assert client.post(url).status_code == 403, name
    for url in (
        reverse("fabric_node", args=[node.pk]),
        reverse("fabric_fleet"),
        reverse("fabric_tasks"),
    ):
        assert client.get(url).status_code == 403, url
    for url in (
        reverse("fabric_node_settings", args=[node.pk]),
        reverse("fabric_node_probe", args=[node.pk]),
        reverse("fabric_node_availability", args=[node.pk]),
    ):
        assert client.post(url).status_code == 403, url
    node.refresh_from_db()
    assert (node.state, node.drain_requested) == (NodeState.ONLINE, False)
    assert not node.availability.get("reclaim")


def test_reclaim_stops_new_work_at_once_and_release_gives_the_machine_back(lent, staff):
    node, _ = lent
    client = client_for(staff)

    response = client.post(action(node, "reclaim"))
    assert response.status_code == 302
    assert response["Location"] == f"{MINE}#node-{node.pk}"
    node.refresh_from_db()
    assert node.availability["reclaim"] is True
    event = node.events.get(kind=NodeEventKind.RECLAIMED)
    assert (event.actor, event.message) == (staff, "no new work until released")

    # The scheduler passes the machine over and says why.
    waiting = dispatch.submit_task(kind="probe", payload={"seconds": 0})
    waiting.refresh_from_db()
    assert waiting.state == FabricTaskState.PENDING
    assert "sams-desk: reclaimed by its owner" in waiting.placement["reason"]

    page = client.get(MINE).text
    assert "Not now" in page
    assert "Reclaimed by its owner: no new work until released" in page
    assert "Release to its usual hours" in page

    assert client.post(action(node, "release")).status_code == 302
    node.refresh_from_db()
    assert node.availability["reclaim"] is False
    assert node.events.get(kind=NodeEventKind.RELEASED).actor == staff
    assert dispatch.place_pending() == 1
    waiting.refresh_from_db()
    assert (waiting.state, waiting.node_id) == (FabricTaskState.PLACED, node.pk)


def test_reclaiming_twice_is_a_conflict_with_the_reason(lent, staff):
    node, _ = lent
    client = client_for(staff)
    client.post(action(node, "reclaim"))
    again = client.post(action(node, "reclaim"))
    assert again.status_code == 409
    assert "sams-desk is already reclaimed." in again.text
    assert client.post(action(node, "release")).status_code == 302
    not_reclaimed = client.post(action(node, "release"))
    assert not_reclaimed.status_code == 409
    assert "sams-desk is not reclaimed." in not_reclaimed.text
    assert node.events.filter(kind=NodeEventKind.RECLAIMED).count() == 1


def test_htmx_reclaim_returns_only_the_machines_card(lent, staff):
    node, _ = lent
    response = client_for(staff).post(action(node, "reclaim"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.text
    assert body.lstrip().startswith(f'<article id="node-{node.pk}"')
    assert "<html" not in body
    assert "no new work from now on" in body
    assert "Release to its usual hours" in body
    assert f'hx-post="{action(node, "release")}"' in body

    conflict = client_for(staff).post(action(node, "reclaim"), HTTP_HX_REQUEST="true")
    assert conflict.status_code == 409
    assert conflict.text.lstrip().startswith(f'<article id="node-{node.pk}"')
    assert "already reclaimed" in conflict.text


def test_owner_sets_the_hours_in_plain_words(lent, staff):
    node, _ = lent
    url = reverse("fabric_my_node_availability", args=[node.pk])
    response = client_for(staff).post(
        url,
        {
            "mode": "windows",
            "timezone": "Europe/Berlin",
            "idle_minutes": "15",
            "days_0": ["0", "1", "2", "3", "4"],
            "start_0": "19:00",
            "end_0": "07:00",
            "days_1": ["5", "6"],
            "start_1": "00:00",
            "end_1": "00:00",
        },
    )
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.timezone == "Europe/Berlin"
    assert node.availability["idle_minutes"] == 15
    assert node.availability["windows"][0] == {"days": [0, 1, 2, 3, 4], "start": "19:00",
                                               "end": "07:00"}  # fmt: skip
    assert node.events.filter(kind=NodeEventKind.POLICY).first().actor == staff  # newest first
    page = client_for(staff).get(MINE).text
    expected = "Mon–Fri 19:00–07:00 and all weekend (Europe/Berlin), only after 15 minutes idle"  # noqa: RUF001
    assert expected in page
    # The form's ids are the node's own (several machines share the page).
    assert f'id="id_node{node.pk}_idle_minutes"' in page


def test_a_bad_window_comes_back_with_its_error_and_changes_nothing(lent, staff):
    node, _ = lent
    url = reverse("fabric_my_node_availability", args=[node.pk])
    bad = {"mode": "windows", "timezone": "UTC", "idle_minutes": "0", "days_0": ["0"],
           "start_0": "7pm", "end_0": ""}  # fmt: skip
    response = client_for(staff).post(url, bad)
    assert response.status_code == 422
    assert "Row 1: give both times as HH:MM." in response.text
    assert "<html" in response.text
    fragment = client_for(staff).post(url, bad, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 422
    assert fragment.text.lstrip().startswith(f'<article id="node-{node.pk}"')
    assert "Row 1: give both times as HH:MM." in fragment.text
    node.refresh_from_db()
    assert node.availability["windows"] == []


def test_the_page_shows_what_runs_there_and_the_hours_it_worked(lent, staff):
    node, _ = lent
    done = dispatch.submit_task(kind="probe", payload={"seconds": 0})
    done.refresh_from_db()
    assert finish(done, node).recorded
    attempt = TaskAttempt.objects.get(task=done)
    TaskAttempt.objects.filter(pk=attempt.pk).update(
        started_at=attempt.finished_at - timedelta(minutes=90)
    )
    running = dispatch.submit_task(kind="probe", payload={"seconds": 5})
    running.refresh_from_db()
    assert running.node_id == node.pk

    page = client_for(staff).get(MINE).text
    assert "1.5 h in the last 30 days" in page
    assert "1.5 h in all, 1 task" in page
    assert f"#{running.pk} <code>probe</code>" in page
    assert f"#{done.pk} <code>" not in page
    assert ownership.hours_by_node(nodes=[node])[node.pk] == {"hours": 1.5, "tasks": 1}


def test_an_admin_keeps_the_fleet_and_may_open_their_own_machines(lent, admins_node, admin):
    node, _ = lent
    client = client_for(admin)
    page = client.get(MINE).text
    assert "server-9" in page
    assert "sams-desk" not in page
    assert f'href="/fabric/nodes/{admins_node.pk}/"' in page
    # Not theirs on this page, but the fleet pages still let them switch it.
    assert client.post(action(node, "reclaim")).status_code == 404
    admin_page = client.post(reverse("fabric_node_action", args=[node.pk, "reclaim"]))
    assert admin_page.status_code == 302
    node.refresh_from_db()
    assert node.availability["reclaim"] is True


# --- navigation ------------------------------------------------------------------------------


def test_my_machines_is_in_the_navigation_of_owners_only(lent, staff, manager, admin):
    link = f'href="{MINE}"'
    assert link in client_for(staff).get("/").text
    assert link not in client_for(manager).get("/").text
    # Admins (who own the nodes they enrolled) have "Fabric" instead.
    assert link not in client_for(admin).get("/").text
    assert 'href="/fabric/"' in client_for(admin).get("/").text


def test_a_retired_machine_takes_my_machines_off_the_navigation(lent, staff, admin):
    node, _ = lent
    node_services.retire_node(node=node, actor=admin)
    assert f'href="{MINE}"' not in client_for(staff).get("/").text


def test_the_navigation_check_is_one_query(
    lent, staff, manager, admin, django_assert_max_num_queries
):
    for user, shown in ((staff, True), (manager, False), (admin, False)):
        with django_assert_max_num_queries(1):
            assert ownership.shows_my_machines(user=user) is shown


# --- at the machine: the node credential ---------------------------------------------------


def test_the_machine_reclaims_and_releases_itself_with_its_credential(lent):
    node, credential = lent
    client = node_client(node, credential)

    reply = client.post("/api/v1/fabric/node/reclaim")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert (body["node_id"], body["accept_work"]) == (node.pk, False)
    assert body["reason"] == "reclaimed by its owner: no new work until released"
    event = node.events.get(kind=NodeEventKind.RECLAIMED)
    assert event.actor is None
    assert event.message == "no new work until released, by the owner at the machine"

    again = client.post("/api/v1/fabric/node/reclaim")
    assert again.status_code == 409
    assert again.json() == {"detail": "sams-desk is already reclaimed."}

    released = client.post("/api/v1/fabric/node/release")
    assert released.status_code == 200
    assert released.json()["accept_work"] is True
    event = node.events.get(kind=NodeEventKind.RELEASED)
    assert (event.actor, event.message) == (None, "back to its usual hours, by the owner at the machine")  # fmt: skip
    not_reclaimed = client.post("/api/v1/fabric/node/release")
    assert not_reclaimed.status_code == 409
    assert not_reclaimed.json() == {"detail": "sams-desk is not reclaimed."}


def test_the_switch_needs_the_nodes_own_credential(lent, admin):
    from django.test import Client

    node, _ = lent
    assert node_client(node, "wrong").post("/api/v1/fabric/node/reclaim").status_code == 401
    assert client_for(admin).post("/api/v1/fabric/node/reclaim").status_code == 401
    assert Client().post("/api/v1/fabric/node/release").status_code == 401
    node.refresh_from_db()
    assert not node.availability.get("reclaim")
