"""POST /api/v1/fabric/enroll: a single-use token becomes a node and a credential."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from apps.fabric.models import ComputeNode, EnrollmentToken, NodeState
from apps.fabric.services import enrollment
from tests.fabric.conftest import DETECTED, FINGERPRINT

URL = "/api/v1/fabric/enroll"


def body(token: str, **fields: object) -> dict[str, object]:
    return {
        "token": token,
        "name": "render-2",
        "capabilities": {"detected": DETECTED, "declared": {"gpus": 1}},
        "labels": {"site": "branch-3"},
        "data_sources": ["erp-branch-3"],
        "fingerprint": FINGERPRINT,
        "software_version": "0.1.0",
        "timezone": "Europe/Berlin",
        **fields,
    }


def post(payload: dict[str, object]):
    return Client().post(URL, payload, content_type="application/json")


def test_enrolling_needs_no_login_and_returns_a_credential_stored_only_hashed(make_token, admin):
    response = post(body(make_token()))
    assert response.status_code == 201, response.content
    reply = response.json()
    node = ComputeNode.objects.get(pk=reply["node_id"])
    assert reply["state"] == "pending"
    assert reply["credential"].startswith("ocn_")
    assert node.credential_hash == enrollment.hash_secret(reply["credential"])
    assert reply["credential"] not in str(ComputeNode.objects.filter(pk=node.pk).values().get())
    assert node.owner == admin
    assert node.declared == {"gpus": 1}
    assert node.detected["cpu_cores"] == 8
    assert node.node_class == "gpu"
    assert node.timezone == "Europe/Berlin"
    assert node.data_sources == ["erp-branch-3"]
    assert [e.kind for e in node.events.all()] == ["enrolled"]


def test_a_token_works_once(make_token):
    raw = make_token()
    assert post(body(raw)).status_code == 201
    again = post(body(raw, name="second-machine"))
    assert again.status_code == 403
    assert again.json() == {"detail": "this enrolment token was already used; ask for a new one"}
    assert ComputeNode.objects.count() == 1


def test_an_expired_token_is_gone(make_token):
    raw = make_token()
    EnrollmentToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = post(body(raw))
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]
    assert not ComputeNode.objects.exists()


def test_unknown_and_revoked_tokens_are_refused(make_token):
    assert post(body("oce_made-up")).json() == {"detail": "unknown enrolment token"}
    raw = make_token()
    enrollment.revoke_enrollment_token(token=EnrollmentToken.objects.get())
    response = post(body(raw))
    assert response.status_code == 403
    assert "revoked" in response.json()["detail"]


def test_auto_approve_token_puts_the_node_online_at_once(make_token, admin):
    reply = post(body(make_token(auto_approve=True))).json()
    node = ComputeNode.objects.get(pk=reply["node_id"])
    assert reply["state"] == node.state == NodeState.ONLINE
    assert node.approved_by == admin
    assert [e.kind for e in node.events.order_by("pk")] == ["enrolled", "approved"]


def test_token_scope_sets_team_and_wins_over_the_agents_labels(make_token, other_team):
    raw = make_token(team=other_team, labels={"site": "hq"})
    reply = post(body(raw, labels={"site": "branch-3", "room": "2"})).json()
    node = ComputeNode.objects.get(pk=reply["node_id"])
    assert node.team == other_team
    assert node.labels == {"site": "hq", "room": "2"}


def test_bad_node_details_are_422_and_leave_the_token_unused(make_token):
    raw = make_token()
    response = post(body(raw, fingerprint="not hex"))
    assert response.status_code == 422
    assert "fingerprint" in response.json()["detail"]
    response = post(body(raw, labels={"Bad Key": "x"}))
    assert response.status_code == 422
    assert "Bad Key" in response.json()["detail"]
    assert EnrollmentToken.objects.get().used_at is None
    assert post(body(raw)).status_code == 201


def test_workstations_default_to_evenings_and_weekends(make_token):
    reply = post(body(make_token(), node_class="workstation")).json()
    node = ComputeNode.objects.get(pk=reply["node_id"])
    assert len(node.availability["windows"]) == 2
    server = post(body(make_token(), node_class="server")).json()
    assert ComputeNode.objects.get(pk=server["node_id"]).availability["windows"] == []
