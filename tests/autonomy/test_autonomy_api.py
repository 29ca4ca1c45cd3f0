"""The autonomy API: read, start shadow, promote through the gate (422 with what is missing),
demote, settings; every change logged."""

from apps.autonomy.models import AutonomyChange, ProcessAutonomy
from apps.autonomy.selectors import level_of
from tests.autonomy.helpers import arrive, import_labels, set_autonomy
from tests.conftest import client_for
from tests.factories import make_team


def url(process, suffix=""):
    return f"/api/v1/processes/{process.slug}/autonomy{suffix}"


def post(client, path, body):
    return client.post(path, body, content_type="application/json")


def put(client, path, body):
    return client.put(path, body, content_type="application/json")


def test_expert_reads_the_level_and_what_is_missing(trained_process, expert):
    response = client_for(expert).get(url(trained_process))
    assert response.status_code == 200
    body = response.json()
    assert (body["level"], body["level_name"], body["target"]) == (0, "Manual", None)
    assert body["next_level"] == 1
    assert body["passed"] is False
    assert body["missing"][0] == (
        "needs 200 more shadow predictions decided by experts (0 waiting for a decision)"
    )
    assert body["settings"]["threshold"] == 0.9
    assert body["evidence"]["model_version"] == 1


def test_staff_get_403_and_outsiders_404(trained_process, staff, outsider):
    assert client_for(staff).get(url(trained_process)).status_code == 403
    assert client_for(outsider).get(url(trained_process)).status_code == 404
    assert (
        post(client_for(outsider), url(trained_process, "/promote"), {"level": 1}).status_code
        == 404
    )


def test_only_managers_and_admins_change_levels(trained_process, expert, staff):
    for user in (expert, staff):
        client = client_for(user)
        assert post(client, url(trained_process, "/promote"), {"level": 1}).status_code == 403
        assert post(client, url(trained_process, "/shadow"), {"target": 2}).status_code == 403
        assert put(client, url(trained_process, "/settings"), {"threshold": 0.8}).status_code == 403
    assert not AutonomyChange.objects.exists()


def test_promotion_without_evidence_is_422_with_what_is_missing(trained_process, manager):
    response = post(client_for(manager), url(trained_process, "/promote"), {"level": 2})
    assert response.status_code == 422
    body = response.json()
    assert body["missing"] == [
        "needs 200 more shadow predictions decided by experts (0 waiting for a decision)",
        "no decided shadow prediction reached the threshold 0.9",
    ]
    assert body["detail"].startswith("the gate for level 2 (suggest) is not passed: needs 200")
    assert body["evidence"]["decided"] == 0
    assert level_of(process=trained_process) == 0
    assert not AutonomyChange.objects.exists()


def test_bad_levels_are_422(trained_process, manager):
    client = client_for(manager)
    response = post(client, url(trained_process, "/promote"), {"level": 4})
    assert response.status_code == 422
    assert "level must be 1 (route), 2 (suggest) or 3 (decide), got 4" in response.json()["detail"]
    response = post(client, url(trained_process, "/promote"), {"level": "high"})
    assert response.status_code == 422
    assert "level" in response.json()["detail"]
    response = post(client, url(trained_process, "/demote"), {"level": 0, "reason": "x"})
    assert response.status_code == 422
    assert "a demotion goes down" in response.json()["detail"]


def test_shadow_then_promote_then_demote_all_logged(trained_process, manager, admin, expert):
    client = client_for(manager)
    response = post(client, url(trained_process, "/shadow"), {"target": 2})
    assert response.status_code == 200, response.content
    assert response.json()["target"] == 2
    body = put(client, url(trained_process, "/settings"), {
        "min_shadow": 30, "threshold": 0.6, "target_precision": 0.9,
    }).json()  # fmt: skip
    assert body["settings"]["min_shadow"] == 30
    cases, _ = arrive(trained_process, 35, seed=80)
    import_labels(trained_process, expert, cases)
    assert client.get(url(trained_process)).json()["passed"] is True
    response = post(client, url(trained_process, "/promote"), {"level": 2, "reason": "ready"})
    assert response.status_code == 200, response.content
    assert (response.json()["level"], response.json()["target"]) == (2, None)
    response = post(
        client_for(admin), url(trained_process, "/demote"), {"level": 0, "reason": "audit season"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["level"] == 0
    kinds = [(c["kind"], c["from_level"], c["to_level"], c["actor"]) for c in body["history"]]
    assert kinds == [
        ("demote", 2, 0, "ada"),
        ("promote", 0, 2, "maya"),
        ("settings", 0, 0, "maya"),
        ("shadow", 0, 0, "maya"),
    ]
    promotion = AutonomyChange.objects.get(kind="promote")
    assert promotion.evidence["decided"] == 35
    assert promotion.reason == "ready"
    settings = AutonomyChange.objects.get(kind="settings")
    assert settings.evidence["changed"]["min_shadow"] == [200, 30]


def test_demotion_needs_a_reason(trained_process, manager):
    set_autonomy(trained_process, level=2)
    response = post(
        client_for(manager), url(trained_process, "/demote"), {"level": 1, "reason": " "}
    )
    assert response.status_code == 422
    assert "say why" in response.json()["detail"]
    assert ProcessAutonomy.objects.get(process=trained_process).level == 2


def test_shadow_mode_needs_a_promoted_model(process, manager):
    response = post(client_for(manager), url(process, "/shadow"), {"target": 1})
    assert response.status_code == 422
    assert "no promoted model" in response.json()["detail"]


def test_invalid_settings_are_422_naming_the_setting(trained_process, manager):
    client = client_for(manager)
    cases = [
        ({"threshold": 1.5}, "threshold: must be above 0 and at most 1, got 1.5"),
        ({"audit_rate": -0.1}, "audit_rate: must be at least 0 and at most 1"),
        ({"min_audits": 150}, "min_audits: must be at most the audit window (100), got 150"),
        ({"routes": {"maybe": "team:x"}}, "routes: unknown decision 'maybe'"),
        ({"routes": {"approve": "queue:x"}}, "routes.approve: expected 'team:<slug>'"),
        ({"routes": {"approve": "team:nowhere"}}, "routes.approve: there is no team 'nowhere'"),
        ({"routes": {"approve": "expert:nobody"}}, "routes.approve: 'nobody' is not an expert"),
        ({"min_shadow": 0}, "min_shadow: must be between 1 and"),
        ({"threshold": "high"}, "threshold"),
    ]
    for body, message in cases:
        response = put(client, url(trained_process, "/settings"), body)
        assert response.status_code == 422, body
        assert message in response.json()["detail"], response.json()
    assert not AutonomyChange.objects.exists()


def test_routes_are_saved_and_shown(trained_process, manager):
    make_team("fraud", "Fraud")
    body = put(
        client_for(manager),
        url(trained_process, "/settings"),
        {"routes": {"reject": "team:fraud", "approve": ""}},
    ).json()
    assert body["settings"]["routes"] == {"reject": "team:fraud"}
