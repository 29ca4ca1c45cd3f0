"""Champion and challenger: the challenger's answer recorded beside the live model's on the same
items (acting on nothing), the comparison counted by hand against experts' outcomes, promotion
to a draft, who may do what, and empty or bad periods."""

import json

import pytest

from apps.autonomy.models import ProcessAutonomy
from apps.cases.models import Case
from apps.cases.services.decisions import record_decision
from apps.classifiers.models import ModelArtifact
from apps.orchestrations.evidence import Share
from apps.orchestrations.inbound import receive_items
from apps.orchestrations.models import ChallengerEvent, OrchestrationVersion, Run, RunStep
from apps.orchestrations.services import change_stage, create_version
from apps.rules.models import Rule
from tests.conftest import client_for
from tests.orchestrations.table_model import note, store_table_model

API = "/api/v1/orchestrations/invoice-flow"
PAGE = "/orchestrations/invoice-flow/challenger/"
PROMOTE = f"{PAGE}promote"
SET_PAGE = f"{PAGE}set"
CODES = {"approve": "ok", "reject": "fraud", "request_info": ""}

# Ten items: what the champion (live model) and the challenger say, and what experts decided
# (None: not decided yet). The live version is at level 0, so every item is routed to experts.
TEN = [
    ("approve@0.95", "approve@0.97", "approve"),
    ("approve@0.95", "approve@0.6", "approve"),
    ("reject@0.92", "reject@0.95", "reject"),
    ("approve@0.7", "reject@0.93", "reject"),
    ("approve@0.8", "reject@0.91", "reject"),
    ("request_info@0.6", "approve@0.95", "request_info"),
    ("approve@0.95", "approve@0.95", None),
    ("reject@0.6", "approve@0.92", None),
    ("request_info@0.91", "request_info@0.99", None),
    ("approve@0.55", "reject@0.5", None),
]


def item(i: int, champ: str, chall: str, **fields) -> dict:
    return {
        "external_id": f"INV-{i}",
        "fields": {"vendor": "Acme GmbH", "amount": 100 + i, "po_status": "matched",
                   "note": note(champ, chall), **fields},
    }  # fmt: skip


@pytest.fixture
def models(process):
    return store_table_model(process, "champ"), store_table_model(process, "chall")


@pytest.fixture
def live(orchestration, manager, models):
    version = create_version(
        orchestration=orchestration, actor=manager, values={"model_version": models[0].version}
    )
    return change_stage(version=version, stage="live", actor=manager)


def set_challenger(client, number, reason="try it"):
    return client.post(
        f"{API}/challenger", json.dumps({"model_version": number, "reason": reason}),
        content_type="application/json",
    )  # fmt: skip


def decide(runs, expert, labels):
    for run, label in zip(runs, labels, strict=True):
        if label is not None:
            case = Case.objects.get(pk=run.case_id)
            record_decision(case=case, expert=expert, label=label, reason_code=CODES[label])


def test_the_challenger_answers_beside_the_live_model_on_the_same_items_and_acts_on_nothing(
    manager, orchestration, live, models, rule
):
    Rule.objects.filter(pk=rule.pk).update(enabled=True)  # decides items whose PO is missing
    ruled = create_version(
        orchestration=orchestration, actor=manager,
        values={"model_version": models[0].version, "rules": [{"rule": rule.pk}]},
    )  # fmt: skip
    live = change_stage(version=ruled, stage="live", actor=manager)
    client = client_for(manager)
    assert set_challenger(client, models[1].version).status_code == 200

    body = [item(1, "approve@0.95", "reject@0.97"), item(2, "approve@0.6", "reject@0.5",
                                                         po_status="missing")]  # fmt: skip
    runs = client.post(
        f"{API}/items?wait_ms=2000", json.dumps(body), content_type="application/json"
    ).json()["runs"]

    by_model, by_rule = runs
    # The live version acted alone: routed with its model's label; the rule decided the other.
    assert (by_model["outcome"], by_model["label"]) == ("routed", "approve")
    assert (by_rule["outcome"], by_rule["decided_by"]) == ("decided", f"rule:{rule.pk}@1")
    trace = client.get(f"{API}/runs/{by_model['id']}").json()["steps"]
    assert trace[-1]["kind"] == "challenger"
    assert trace[-1]["data"] == {
        "model_version": models[1].version, "label": "reject", "confidence": 0.97,
        "threshold": live.threshold, "level": 0, "confident": True, "would_decide": False,
        "champion": {"model_version": models[0].version, "label": "approve", "confidence": 0.95,
                     "decides": False},
    }  # fmt: skip
    page = client.get(f"/orchestrations/invoice-flow/runs/{by_model['id']}/").content.decode()
    assert f"Challenger model v{models[1].version} would have said reject" in page
    assert "the live model said approve. It acted on nothing." in page
    # An item a rule settled never reached a model: nothing to compare.
    ruled_kinds = [s["kind"] for s in client.get(f"{API}/runs/{by_rule['id']}").json()["steps"]]
    assert "challenger" not in ruled_kinds
    assert Case.objects.count() == 1  # the routed item's case only

    # Stopped: new items get no challenger step.
    assert set_challenger(client, None, "enough").status_code == 200
    [run] = receive_items(orchestration=orchestration, items=[item(3, "approve@0.9", "x@1")])[
        0
    ].runs
    assert not RunStep.objects.filter(run=run, kind="challenger").exists()
    actions = list(ChallengerEvent.objects.order_by("id").values_list("action", "reason"))
    assert actions == [("set", "try it"), ("cleared", "enough")]


def test_canary_runs_get_no_challenger_step(manager, orchestration, live, models):
    canary = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=canary, stage="canary", actor=manager, canary_share=0.5)
    set_challenger(client_for(manager), models[1].version)
    items = [item(i, "approve@0.95", "reject@0.95") for i in range(12)]

    runs = receive_items(orchestration=orchestration, items=items)[0].runs

    on_canary = {r.pk for r in runs if r.version_id == canary.pk}
    with_step = set(
        RunStep.objects.filter(kind="challenger", run__in=runs).values_list("run_id", flat=True)
    )
    assert on_canary
    assert len(on_canary) < len(runs)
    assert with_step == {r.pk for r in runs} - on_canary


def test_the_comparison_counts_agreement_precision_and_coverage_as_reasoned_by_hand(
    manager, expert, orchestration, live, models
):
    client = client_for(manager)
    set_challenger(client, models[1].version)
    runs = receive_items(
        orchestration=orchestration, items=[item(i, a, b) for i, (a, b, _) in enumerate(TEN)]
    )[0].runs
    decide(runs, expert, [outcome for *_, outcome in TEN])

    answer = client.get(f"{API}/challenger")

    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["challenger"] == models[1].version
    assert data["live_model_version"] == models[0].version
    c = data["comparison"]
    assert (c["items"], c["expert_outcomes"], c["both_predicted"]) == (10, 6, 10)
    assert c["champion_models"] == [models[0].version]

    def share(figure):
        return figure["count"], figure["of"]

    # Same label on items 0, 1, 2, 6 and 8.
    assert share(c["agreement"]) == (5, 10)
    # Of the six decided: the champion is wrong on 3 and 4 (approve, experts said reject); the
    # challenger only on 5 (approve, experts said request_info).
    assert share(c["champion"]["precision"]) == (4, 6)
    assert share(c["challenger"]["precision"]) == (5, 6)
    assert c["champion"]["precision"]["share"] == pytest.approx(0.6667, abs=1e-4)
    assert c["champion"]["precision"]["small_sample"] is True
    # At or above the threshold 0.9: champion 0, 1, 2, 6, 8; challenger all but 1 and 9.
    assert share(c["champion"]["coverage"]) == (5, 10)
    assert share(c["challenger"]["coverage"]) == (8, 10)
    # Decided by experts among those: champion 0, 1, 2 (all right); challenger 0, 2, 3, 4, 5
    # (wrong on 5).
    assert share(c["champion"]["precision_at_threshold"]) == (3, 3)
    assert share(c["challenger"]["precision_at_threshold"]) == (4, 5)
    labels = {row["label"]: row for row in c["labels"]}
    assert labels["approve"]["experts"] == 2
    assert labels["approve"]["champion_predicted"] == 6
    assert share(labels["approve"]["champion_precision"]) == (2, 4)
    assert share(labels["approve"]["challenger_precision"]) == (2, 3)
    assert share(labels["reject"]["challenger_precision"]) == (3, 3)
    assert share(labels["request_info"]["challenger_precision"]) == (0, 0)
    pairs = [(p["champion"], p["challenger"], p["count"], p["judged"], p["champion_right"],
              p["challenger_right"]) for p in c["disagreements"]]  # fmt: skip
    assert pairs == [
        ("approve", "reject", 3, 2, 0, 2),
        ("reject", "approve", 1, 0, 0, 0),
        ("request_info", "approve", 1, 1, 1, 0),
    ]
    ids = {r.external_id: r.pk for r in runs}
    assert set(c["disagreements"][0]["runs"]) == {ids["INV-3"], ids["INV-4"], ids["INV-9"]}

    page = client.get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200
    assert "5 of 6" in html
    assert "4 of 6" in html
    assert "small sample" in html
    assert f'href="/orchestrations/invoice-flow/runs/{ids["INV-3"]}/"' in html


def test_a_period_before_the_items_counts_nothing(manager, orchestration, live, models):
    client = client_for(manager)
    set_challenger(client, models[1].version)
    receive_items(orchestration=orchestration, items=[item(1, "approve@0.95", "reject@0.95")])

    old = client.get(f"{API}/challenger", {"since": "2020-01-01T00:00:00Z",
                                           "until": "2020-02-01T00:00:00Z"}).json()  # fmt: skip
    assert old["comparison"]["items"] == 0
    assert old["comparison"]["agreement"]["share"] is None
    page = client.get(PAGE, {"since": "2020-01-01", "until": "2020-01-31"})
    assert page.status_code == 200
    assert "No items in this period" in page.content.decode()
    assert client.get(PAGE).content.decode().count("1 of 1") >= 1


def test_without_a_challenger_or_items_the_pages_say_so_and_bad_periods_are_422(
    manager, orchestration, live, models
):
    client = client_for(manager)
    empty = client.get(PAGE)
    assert empty.status_code == 200
    assert "No challenger yet" in empty.content.decode()
    assert client.get(f"{API}/challenger").json()["comparison"] is None

    set_challenger(client, models[1].version)
    none_yet = client.get(PAGE)
    assert "No items in this period" in none_yet.content.decode()
    assert client.get(f"{API}/challenger").json()["comparison"]["items"] == 0

    backwards = client.get(PAGE, {"since": "2026-05-02", "until": "2026-05-01"})
    assert backwards.status_code == 422
    assert "until: must be after since" in backwards.content.decode()
    assert client.get(PAGE, {"since": "yesterday"}).status_code == 422
    api_backwards = client.get(f"{API}/challenger", {"since": "2026-05-02T00:00:00Z",
                                                     "until": "2026-05-01T00:00:00Z"})  # fmt: skip
    assert api_backwards.status_code == 422
    assert client.get(f"{API}/challenger", {"since": "2020-01-01T00:00:00Z"}).status_code == 422
    assert client.get(f"{API}/challenger", {"model_version": "x"}).status_code == 422


def test_the_challenger_must_be_another_model_of_the_process(manager, orchestration, live, models):
    client = client_for(manager)
    unknown = set_challenger(client, 99)
    assert unknown.status_code == 422
    assert "has no model version 99" in unknown.json()["detail"]
    same = set_challenger(client, models[0].version)
    assert same.status_code == 422
    assert "already uses" in same.json()["detail"]
    assert set_challenger(client, True).status_code == 422
    assert not ChallengerEvent.objects.exists()


def test_promote_makes_a_draft_pinning_the_challenger_logged_with_actor_and_reason(
    manager, orchestration, live, models
):
    client = client_for(manager)
    set_challenger(client, models[1].version)
    receive_items(orchestration=orchestration, items=[item(1, "approve@0.95", "reject@0.95")])

    answer = client.post(
        f"{API}/challenger/promote", json.dumps({"reason": "better on rejects"}),
        content_type="application/json",
    )  # fmt: skip

    assert answer.status_code == 201, answer.content
    draft = answer.json()
    assert (draft["stage"], draft["model_version"], draft["number"]) == (
        "draft", models[1].version, live.number + 1)  # fmt: skip
    # Everything else is the live version's.
    for name in ("rules", "routes", "threshold", "autonomy_level", "sla_minutes"):
        assert draft[name] == client.get(f"{API}/versions/{live.number}").json()[name]
    event = ChallengerEvent.objects.get(action="promoted")
    assert (event.actor, event.reason, event.draft.number) == (manager, "better on rejects", 2)
    assert event.evidence["items"] == 1
    # Then the normal stage flow.
    shadow = client.post(
        f"{API}/versions/{draft['number']}/stage", json.dumps({"stage": "shadow"}),
        content_type="application/json",
    )  # fmt: skip
    assert shadow.status_code == 200
    # Once it is live, the challenger is the champion: nothing more to record or promote.
    change_stage(version=OrchestrationVersion.objects.get(number=2), stage="live", actor=manager)
    receive_items(orchestration=orchestration, items=[item(2, "approve@0.95", "reject@0.95")])
    assert RunStep.objects.filter(kind="challenger").count() == 1
    again = client.post(
        f"{API}/challenger/promote",
        json.dumps({"reason": "again"}),
        content_type="application/json",
    )
    assert again.status_code == 409
    assert "already uses model" in again.json()["detail"]
    assert "it records nothing more" in client.get(PAGE).content.decode()
    assert client.post(f"{API}/challenger/promote", "{}", content_type="application/json").status_code == 422  # fmt: skip


def test_promote_through_the_page_redirects_to_the_new_draft(manager, orchestration, live, models):
    client = client_for(manager)
    set_challenger(client, models[1].version)
    answer = client.post(PROMOTE, {"reason": "looks better"}, follow=True)
    assert answer.status_code == 200
    assert "Draft version 2 pins the challenger" in answer.content.decode()
    assert OrchestrationVersion.objects.get(orchestration=orchestration, number=2).model_version == models[1]  # fmt: skip
    refused = client.post(PROMOTE, {"reason": ""}, follow=True)
    assert "Not promoted: say why." in refused.content.decode()


def test_a_level_earned_with_another_model_makes_the_draft_start_lower(
    manager, process, orchestration, models
):
    champ, chall = models
    ProcessAutonomy.objects.create(
        process=process, level=1, threshold=0.8, audit_rate=0.1, model_version=champ
    )
    version = create_version(
        orchestration=orchestration, actor=manager,
        values={"model_version": champ.version, "autonomy_level": 1, "threshold": 0.8},
    )  # fmt: skip
    change_stage(version=version, stage="live", actor=manager)
    client = client_for(manager)
    set_challenger(client, chall.version)

    draft = client.post(
        f"{API}/challenger/promote", json.dumps({"reason": "new model"}),
        content_type="application/json",
    ).json()  # fmt: skip

    assert (draft["autonomy_level"], draft["model_version"]) == (0, chall.version)
    reason = ChallengerEvent.objects.get(action="promoted").reason
    assert reason.startswith("new model (level 0 instead of 1")
    assert "earned with another model version" in reason


def test_promote_needs_a_challenger_and_a_live_version(manager, orchestration, models):
    client = client_for(manager)
    body = json.dumps({"reason": "why not"})
    nothing = client.post(f"{API}/challenger/promote", body, content_type="application/json")
    assert nothing.status_code == 409
    assert "no challenger" in nothing.json()["detail"]
    set_challenger(client, models[1].version)
    no_live = client.post(f"{API}/challenger/promote", body, content_type="application/json")
    assert no_live.status_code == 409
    assert "there is none" in no_live.json()["detail"]
    assert not OrchestrationVersion.objects.exists()


def test_only_the_teams_managers_set_and_promote_experts_read_others_get_404(
    manager, expert, staff, outsider, orchestration, live, models
):
    set_challenger(client_for(manager), models[1].version)
    body = json.dumps({"reason": "mine"})
    reader = client_for(expert)
    assert reader.get(PAGE).status_code == 200
    assert "Promote to a draft" not in reader.get(PAGE).content.decode()
    assert "Promote to a draft" in client_for(manager).get(PAGE).content.decode()
    assert reader.get(f"{API}/challenger").status_code == 200
    assert set_challenger(reader, None).status_code == 403
    assert reader.post(f"{API}/challenger/promote", body, content_type="application/json").status_code == 403  # fmt: skip
    assert reader.post(PROMOTE, {"reason": "x"}).status_code == 403
    assert reader.post(SET_PAGE, {"model_version": ""}).status_code == 403
    for user in (staff, outsider):
        client = client_for(user)
        assert client.get(PAGE).status_code in (403, 404)
        assert client.get(f"{API}/challenger").status_code == 404
        assert set_challenger(client, None).status_code == 404
        assert client.post(f"{API}/challenger/promote", body, content_type="application/json").status_code == 404  # fmt: skip
    assert OrchestrationVersion.objects.count() == 1
    assert ChallengerEvent.objects.count() == 1


def test_the_page_sets_and_stops_the_challenger(manager, orchestration, live, models):
    client = client_for(manager)
    answer = client.post(SET_PAGE, {"model_version": models[1].version,
                                                      "reason": "try"}, follow=True)  # fmt: skip
    assert f"Model version {models[1].version} now challenges" in answer.content.decode()
    orchestration.refresh_from_db()
    assert orchestration.challenger == models[1]
    refused = client.post(SET_PAGE, {"model_version": 42}, follow=True)
    assert "has no model version 42" in refused.content.decode()
    client.post(SET_PAGE, {"model_version": ""})
    orchestration.refresh_from_db()
    assert orchestration.challenger is None
    assert Run.objects.count() == 0


def test_a_challenger_that_cannot_load_costs_the_items_nothing(
    manager, process, orchestration, live, models
):
    broken = store_table_model(process, "broken")
    ModelArtifact.objects.filter(sha256=broken.artifact_sha256).update(content=b"tampered")
    set_challenger(client_for(manager), broken.version)

    runs = receive_items(
        orchestration=orchestration, items=[item(1, "approve@0.95", "reject@0.9")]
    )[0].runs

    assert [(r.outcome, r.label) for r in runs] == [("routed", "approve")]
    assert not RunStep.objects.filter(kind="challenger").exists()


@pytest.mark.parametrize(
    ("count", "total", "low", "high"),
    [(3, 4, 0.3006, 0.9544), (0, 10, 0.0, 0.2775), (50, 100, 0.4038, 0.5962)],
)
def test_shares_carry_the_wilson_interval_and_flag_small_samples(count, total, low, high):
    figure = Share(count, total).as_dict()
    assert (figure["low"], figure["high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))  # fmt: skip
    assert figure["small_sample"] is (total < 30)
    assert Share(0, 0).as_dict()["share"] is None


def test_an_earlier_challenger_keeps_its_own_comparison(
    manager, process, orchestration, live, models
):
    client = client_for(manager)
    third = store_table_model(process, "chall")
    set_challenger(client, models[1].version)
    receive_items(orchestration=orchestration, items=[item(i, "approve@0.95", "reject@0.95") for i in range(3)])  # fmt: skip
    set_challenger(client, third.version)
    receive_items(orchestration=orchestration, items=[item(i, "approve@0.95", "approve@0.95") for i in range(3, 5)])  # fmt: skip

    current = client.get(f"{API}/challenger").json()["comparison"]
    earlier = client.get(f"{API}/challenger", {"model_version": models[1].version}).json()["comparison"]  # fmt: skip

    assert (current["model_version"], current["items"], current["agreement"]["count"]) == (third.version, 2, 2)  # fmt: skip
    assert (earlier["model_version"], earlier["items"], earlier["agreement"]["count"]) == (models[1].version, 3, 0)  # fmt: skip
    assert earlier["is_current"] is False
    page = client.get(PAGE, {"model": models[1].version}).content.decode()
    assert "(an earlier challenger)" in page
    assert f'<option value="{models[1].version}" selected>' in page
