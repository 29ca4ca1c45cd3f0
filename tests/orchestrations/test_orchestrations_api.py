"""The orchestrations API: versions, stages (one live at a time, canary share), rollback, diff,
the autonomy cap, who may read and write, and bad input as a 4xx with the reason."""

from apps.autonomy.models import ProcessAutonomy
from apps.orchestrations.models import ComponentReuse, OrchestrationVersion, StageChange
from apps.orchestrations.selectors import component_reuse_counts
from apps.orchestrations.services import create_orchestration
from tests.conftest import client_for
from tests.factories import make_process

API = "/api/v1/orchestrations"


def post(client, path, body=None):
    return client.post(path, body if body is not None else {}, content_type="application/json")


def new_version(client, body=None):
    response = post(client, f"{API}/invoice-flow/versions", body or {})
    assert response.status_code == 201, response.content
    return response.json()["number"]


def stage(client, number, to, **extra):
    return post(client, f"{API}/invoice-flow/versions/{number}/stage", {"stage": to, **extra})


def test_a_manager_creates_an_orchestration_and_a_version_pinning_its_components(
    team, manager, process, rule, connector
):
    client = client_for(manager)
    created = post(
        client, API, {"process": process.slug, "slug": "invoice-flow", "name": "Invoices"}
    )
    assert created.status_code == 201, created.content
    assert (created.json()["team"], created.json()["owner"]) == ("ap", "maya")

    version = post(
        client,
        f"{API}/invoice-flow/versions",
        {
            "exception_filter": {"field": "amount", "op": "gt", "value": 1000},
            "rules": [{"rule": rule.pk}],
            "routes": {"reject": "team:ap"},
            "connectors": [connector.pk],
            "sla_minutes": 240,
        },
    )

    assert version.status_code == 201, version.content
    body = version.json()
    assert (body["number"], body["stage"]) == (1, "draft")
    assert body["rules"] == [{"rule": rule.pk, "version": rule.current.version}]
    assert body["connectors"] == [connector.pk]
    listed = client.get(API).json()
    assert [(o["slug"], o["live_version"], o["versions"]) for o in listed] == [
        ("invoice-flow", None, 1)
    ]
    kinds = set(ComponentReuse.objects.values_list("kind", "component_id"))
    assert kinds == {("rule", rule.pk), ("connector", connector.pk)}


def test_promoting_to_live_retires_the_previous_live_version_and_logs_it(manager, orchestration):
    client = client_for(manager)
    first, second = new_version(client), new_version(client, {"sla_minutes": 60})

    assert stage(client, first, "live").status_code == 200
    promoted = stage(client, second, "live", reason="shorter SLA")

    assert promoted.status_code == 200, promoted.content
    stages = dict(OrchestrationVersion.objects.values_list("number", "stage"))
    assert stages == {first: "retired", second: "live"}
    log = client.get(f"{API}/invoice-flow").json()["stage_log"]
    assert [(c["version"], c["from_stage"], c["to_stage"]) for c in log[:2]] == [
        (second, "draft", "live"),
        (first, "live", "retired"),
    ]
    assert (log[0]["actor"], log[0]["reason"]) == ("maya", "shorter SLA")
    assert client.get(API).json()[0]["live_version"] == second


def test_canary_needs_a_share_strictly_between_0_and_1_and_a_live_version(manager, orchestration):
    client = client_for(manager)
    live, candidate = new_version(client), new_version(client)

    no_live = stage(client, candidate, "canary", canary_share=0.2)
    assert no_live.status_code == 409
    assert stage(client, live, "live").status_code == 200
    for share in (None, 0, 1, 1.5, -0.1):
        refused = stage(client, candidate, "canary", canary_share=share)
        assert refused.status_code == 422, (share, refused.content)
        assert "canary_share" in refused.json()["detail"]
    assert stage(client, live, "retired", canary_share=0.3).status_code == 422

    accepted = stage(client, candidate, "canary", canary_share=0.25)

    assert accepted.status_code == 200
    assert (accepted.json()["stage"], accepted.json()["canary_share"]) == ("canary", 0.25)
    assert stage(client, candidate, "live").json()["canary_share"] is None


def test_moves_the_stage_does_not_allow_are_409(manager, orchestration):
    client = client_for(manager)
    number = new_version(client)
    assert stage(client, number, "live").status_code == 200

    back_to_shadow = stage(client, number, "shadow")
    draft = stage(client, number, "draft")

    assert back_to_shadow.status_code == 409
    assert "live" in back_to_shadow.json()["detail"]
    assert draft.status_code == 422
    assert OrchestrationVersion.objects.get(number=number).stage == "live"


def test_rollback_makes_an_earlier_version_live_again_in_one_action(manager, orchestration):
    client = client_for(manager)
    first, second, third = new_version(client), new_version(client), new_version(client)
    stage(client, first, "live")
    stage(client, second, "live")
    stage(client, third, "live")

    rolled = post(client, f"{API}/invoice-flow/rollback", {"to": first, "reason": "v3 misroutes"})

    assert rolled.status_code == 200, rolled.content
    stages = dict(OrchestrationVersion.objects.values_list("number", "stage"))
    assert stages == {first: "live", second: "retired", third: "retired"}
    changes = StageChange.objects.filter(rollback=True).order_by("id")
    assert [(c.version.number, c.from_stage, c.to_stage) for c in changes] == [
        (third, "live", "retired"),
        (first, "retired", "live"),
    ]
    assert all(c.actor == manager for c in changes)
    assert changes.last().reason == "v3 misroutes"


def test_rollback_refuses_a_draft_a_later_version_and_no_reason(manager, orchestration):
    client = client_for(manager)
    first, second, draft = new_version(client), new_version(client), new_version(client)
    stage(client, first, "live")
    stage(client, second, "live")

    to_draft = post(client, f"{API}/invoice-flow/rollback", {"to": draft, "reason": "x"})
    to_live = post(client, f"{API}/invoice-flow/rollback", {"to": second, "reason": "x"})
    no_reason = post(client, f"{API}/invoice-flow/rollback", {"to": first, "reason": "  "})
    missing = post(client, f"{API}/invoice-flow/rollback", {"to": 99, "reason": "x"})

    assert (to_draft.status_code, to_live.status_code) == (409, 409)
    assert (no_reason.status_code, missing.status_code) == (422, 422)
    assert OrchestrationVersion.objects.get(number=second).stage == "live"


def test_the_diff_names_changed_components_and_settings(manager, orchestration, rule, connector):
    client = client_for(manager)
    first = new_version(client, {"rules": [{"rule": rule.pk}], "sla_minutes": 60})
    second = new_version(
        client,
        {"from_version": first, "rules": [], "connectors": [connector.pk],
         "routes": {"reject": "team:ap"}, "threshold": 0.95},
    )  # fmt: skip

    diff = client.get(f"{API}/invoice-flow/diff", {"from": first, "to": second})
    same = client.get(f"{API}/invoice-flow/diff", {"from": first, "to": first})

    assert diff.status_code == 200, diff.content
    data = diff.json()
    assert data["components"]["rules"]["removed"] == [
        {"rule": rule.pk, "version": rule.current.version}
    ]
    assert data["components"]["connectors"] == {"added": [connector.pk], "removed": []}
    assert data["settings"] == [{"name": "threshold", "from": 0.9, "to": 0.95}]
    assert data["routes"] == [{"label": "reject", "from": None, "to": "team:ap"}]
    assert data["same"] is False
    assert same.json()["same"] is True
    assert client.get(f"{API}/invoice-flow/diff", {"from": first}).status_code == 422
    assert client.get(f"{API}/invoice-flow/diff", {"from": first, "to": 42}).status_code == 404


def test_a_policy_above_the_earned_autonomy_is_refused(manager, process, orchestration):
    client = client_for(manager)
    refused = post(client, f"{API}/invoice-flow/versions", {"autonomy_level": 1})
    assert refused.status_code == 422
    assert "earned level 0" in refused.json()["detail"]

    ProcessAutonomy.objects.create(process=process, level=1, threshold=0.8)
    lower_threshold = post(
        client, f"{API}/invoice-flow/versions", {"autonomy_level": 1, "threshold": 0.7}
    )
    too_high = post(client, f"{API}/invoice-flow/versions", {"autonomy_level": 2})
    accepted = post(
        client, f"{API}/invoice-flow/versions", {"autonomy_level": 1, "threshold": 0.85}
    )

    assert lower_threshold.status_code == 422
    assert "threshold" in lower_threshold.json()["detail"]
    assert too_high.status_code == 422
    assert accepted.status_code == 201
    # Demoted since: the version can't go live any more.
    ProcessAutonomy.objects.filter(process=process).update(level=0)
    demoted = stage(client, accepted.json()["number"], "live")
    assert demoted.status_code == 422
    assert "earned level 0" in demoted.json()["detail"]


def test_experts_read_others_get_404_and_only_managers_write(
    expert, manager, staff, outsider, orchestration
):
    number = new_version(client_for(manager))
    reader = client_for(expert)

    assert reader.get(f"{API}/invoice-flow").status_code == 200
    assert reader.get(f"{API}/invoice-flow/versions/{number}").json()["stage"] == "draft"
    assert stage(reader, number, "live").status_code == 403
    assert post(reader, f"{API}/invoice-flow/versions").status_code == 403
    for user in (staff, outsider):
        client = client_for(user)
        assert client.get(API).json() == []
        assert client.get(f"{API}/invoice-flow").status_code == 404
        assert stage(client, number, "live").status_code == 404
        assert (
            post(client, f"{API}/invoice-flow/rollback", {"to": 1, "reason": "x"}).status_code
            == 404
        )
    assert OrchestrationVersion.objects.get(number=number).stage == "draft"


def test_bad_input_is_a_4xx_with_the_reason(manager, process, orchestration, other_team):
    client = client_for(manager)
    other = make_process(other_team, slug="claims-p")
    foreign = create_orchestration(process=other, slug="theirs", name="Theirs", owner=None)
    cases = {
        "exception_filter": {"exception_filter": {"field": "nope", "op": "eq", "value": 1}},
        "rules": {"rules": [{"rule": 999999}]},
        "model_version": {"model_version": 7},
        "routes": {"routes": {"unknown_label": "team:ap"}},
        "connectors": {"connectors": [123456]},
        "sla_minutes": {"sla_minutes": 0},
        "autonomy_level": {"autonomy_level": 9},
    }
    for name, body in cases.items():
        answer = post(client, f"{API}/invoice-flow/versions", body)
        assert answer.status_code == 422, (name, answer.content)
        assert answer.json()["detail"]
    assert post(client, f"{API}/invoice-flow/versions", {"threshold": "high"}).status_code == 422
    assert post(client, f"{API}/invoice-flow/versions", {"from_version": 5}).status_code == 404
    duplicate = post(client, API, {"process": process.slug, "slug": "invoice-flow", "name": "x"})
    assert duplicate.status_code == 422
    assert "already exists" in duplicate.json()["detail"]
    assert (
        post(client, API, {"process": process.slug, "slug": "bad slug!", "name": "x"}).status_code
        == 422
    )
    assert (
        post(client, API, {"process": other.slug, "slug": "mine", "name": "x"}).status_code == 404
    )
    assert client.get(f"{API}/{foreign.slug}").status_code == 404
    assert (
        client.post(
            f"{API}/invoice-flow/versions", "{", content_type="application/json"
        ).status_code
        == 400
    )
    huge = 10**20
    assert client.get(f"{API}/invoice-flow/versions/{huge}").status_code == 404
    assert client.get(f"{API}/invoice-flow/diff", {"from": huge, "to": 1}).status_code == 404
    assert (
        post(client, f"{API}/invoice-flow/rollback", {"to": huge, "reason": "x"}).status_code == 422
    )
    assert (
        post(client, f"{API}/invoice-flow/versions", {"rules": [{"rule": huge}]}).status_code == 422
    )
    assert OrchestrationVersion.objects.count() == 0


def test_reuse_counts_a_component_once_per_orchestration(manager, process, rule, connector):
    for slug in ("first-flow", "second-flow"):
        create_orchestration(process=process, slug=slug, name=slug, owner=manager)
    client = client_for(manager)
    for slug in ("first-flow", "first-flow", "second-flow"):
        answer = post(
            client,
            f"{API}/{slug}/versions",
            {"rules": [{"rule": rule.pk}], "connectors": [connector.pk]},
        )
        assert answer.status_code == 201

    counts = component_reuse_counts()

    assert counts == [
        {"kind": "connector", "component_id": connector.pk, "orchestrations": 2},
        {"kind": "rule", "component_id": rule.pk, "orchestrations": 2},
    ]
