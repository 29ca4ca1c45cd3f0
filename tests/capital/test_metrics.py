"""Each capital formula on a small scenario whose answer is worked out by hand in the test.

Rows are recorded with the services where their timing does not matter and dated directly where
it does (a period is [start, end), states are read at `end`)."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.autonomy.models import AutonomyChange
from apps.capital.metrics import measure
from apps.capital.metrics_services import set_baseline
from apps.capital.metrics_summary import baselines
from apps.capital.models import MetricSnapshot
from apps.capital.snapshots import take_snapshot
from apps.cases.models import Case, Decision, Process
from apps.cases.services.automation import decide_automatically
from apps.cases.services.decisions import record_decision, undo_last_decision
from apps.cases.services.queue import claim_next_case
from apps.fabric.models import ComputeNode, NodeEvent
from tests.factories import make_cases, make_process

START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=7)
IN_PERIOD = START + timedelta(days=2)


def _figures(team, process=None, start=START, end=END):
    result = measure(team_id=team.pk, start=start, end=end)
    return result[process.pk if process else None]


def _date_decisions(case_ids, at):
    Decision.objects.filter(case_id__in=case_ids).update(decided_at=at)
    Case.objects.filter(pk__in=case_ids, status="decided").update(decided_at=at)


def test_hours_saved_credit_only_automatic_decisions_that_stood(team, expert):
    # 6 minutes per case configured, no timed review yet: that estimate is used (and said).
    process = make_process(team, minutes_per_case=6)
    cases = make_cases(process, 4)
    Case.objects.filter(pk__in=[c.pk for c in cases]).update(created_at=START)
    for case in cases[:3]:
        decide_automatically(case=case, label="approve", reason_code="ok")
    _date_decisions([c.pk for c in cases[:3]], IN_PERIOD)
    # An expert later corrects the third: it is an overturn, not a saving.
    Decision.objects.create(
        case=cases[2], expert=expert, label="reject", reason_code="fraud", source="adjudication",
        decided_at=IN_PERIOD + timedelta(hours=1),
    )  # fmt: skip
    Case.objects.filter(pk=cases[2].pk).update(final_label="reject")

    figures = _figures(team, process)
    assert figures["automatic_decisions"].num == 2
    assert figures["overturns"].num == 1
    # 2 credited x 6 min = 12 min = 0.2 h
    assert figures["hours_saved"].num == pytest.approx(0.2)
    assert "configured estimate" in figures["hours_saved"].details["minutes_source"]
    # Straight-through: 2 credited of the 3 cases decided in the period.
    assert figures["straight_through"].num == 2
    assert figures["straight_through"].den == 3
    # The fourth case was never decided: the backlog at the end of the period.
    assert figures["backlog"].num == 1
    team_figures = _figures(team)
    assert team_figures["hours_saved"].num == pytest.approx(0.2)


def test_a_process_with_no_decisions_has_empty_ratios_not_zero(team):
    make_process(team, slug="quiet")
    now = datetime.now(UTC)
    figures = _figures(team, start=now - timedelta(days=7), end=now + timedelta(minutes=1))
    assert figures["review_seconds"].value("ratio") is None
    assert figures["time_to_decision_hours"].den == 0
    assert figures["hours_saved"].num == 0
    assert figures["backlog"].num == 0
    assert figures["orchestrated_processes"].num == 0
    assert figures["orchestrated_processes"].den == 1  # it exists, it is not orchestrated


def test_an_undo_reopens_the_case_and_keeps_only_the_time_spent(team, expert, settings):
    settings.ORCHCAP_UNDO_SECONDS = 3600
    process = make_process(team)
    make_cases(process, 1)
    case = claim_next_case(process=process, expert=expert)
    record_decision(case=case, expert=expert, label="approve", reason_code="ok", seconds_spent=90)
    undo_last_decision(expert=expert, process_id=process.pk)
    now = datetime.now(UTC)
    figures = _figures(team, process, start=now - timedelta(days=1), end=now + timedelta(hours=1))
    # Open again: in the backlog, not decided, no review time per case (the label was undone)…
    assert figures["backlog"].num == 1
    assert figures["time_to_decision_hours"].den == 0
    assert figures["review_seconds"].den == 0
    # …but the 90 seconds were spent: 90 / 3600 h invested.
    assert figures["investment_hours"].num == pytest.approx(90 / 3600)


def _node(team, name, created, events):
    node = ComputeNode.objects.create(
        name=name, team=team, node_class="workstation", state="online",
        credential_hash=f"hash-{name}", fingerprint=name, approved_at=created,
    )  # fmt: skip
    ComputeNode.objects.filter(pk=node.pk).update(created_at=created)
    for at, state in events:
        NodeEvent.objects.create(node=node, kind="state", to_state=state, at=at)
    return node


def test_a_node_enrolled_mid_period_needs_only_its_share_of_the_hours(team, settings):
    settings.ORCHCAP_CAPITAL_ONLINE_HOURS = 10
    long_ago = END - timedelta(days=10)
    # Online all week: 168 h ≥ 10 h.
    _node(team, "always", long_ago, [(long_ago, "online")])
    # Enrolled 2 days before the end, online 8 h of them: needs 10 x 48/168 = 2.86 h → takes part.
    late = END - timedelta(days=2)
    _node(team, "newcomer", late, [(late, "online"), (late + timedelta(hours=8), "offline")])
    # Enrolled long ago, online 5 h this week: below 10 h → does not.
    _node(
        team, "rarely", long_ago,
        [(long_ago, "offline"), (END - timedelta(hours=6), "online"),
         (END - timedelta(hours=1), "offline")],
    )  # fmt: skip
    figures = _figures(team)
    assert figures["fabric_participation"].num == 2
    assert figures["fabric_participation"].den == 3


def test_a_demoted_level_counts_at_its_new_level_after_the_demotion(team):
    process = make_process(team)
    Process.objects.filter(pk=process.pk).update(created_at=START - timedelta(days=30))
    AutonomyChange.objects.create(
        process=process, kind="promote", from_level=0, to_level=3, at=START + timedelta(days=1)
    )
    AutonomyChange.objects.create(
        process=process, kind="demote", from_level=3, to_level=1, automatic=True,
        at=START + timedelta(days=4),
    )  # fmt: skip
    before = measure(team_id=team.pk, start=START, end=START + timedelta(days=3))
    after = measure(team_id=team.pk, start=START, end=END)
    assert before[None]["orchestrated_processes"].details["by_level"] == {"3": 1}
    assert after[None]["orchestrated_processes"].details["by_level"] == {"1": 1}


def test_a_manager_override_sets_the_minutes_per_case_and_says_so(team, manager):
    process = make_process(team, minutes_per_case=6)
    (case,) = make_cases(process, 1)
    decide_automatically(case=case, label="approve", reason_code="ok")
    _date_decisions([case.pk], IN_PERIOD)
    set_baseline(
        team=team, process=process, metric="review_seconds", value=120,
        reason="measured by stopwatch in the pilot", by=manager,
    )  # fmt: skip
    figures = _figures(team, process)
    # 1 credited x 120 s = 2 min = 1/30 h (not the configured 6 min).
    assert figures["hours_saved"].num == pytest.approx(1 / 30)
    assert figures["hours_saved"].details["minutes_source"] == "set by maya"
    shown = baselines(team=team, process_id=process.pk)["review_seconds"]
    assert shown.source == "override"
    assert shown.value == 120
    assert "maya" in shown.text


def test_measured_review_seconds_replace_the_configured_estimate(team, expert):
    process = make_process(team, minutes_per_case=6)
    make_cases(process, 3)
    for seconds in (30, 90):
        case = claim_next_case(process=process, expert=expert)
        record_decision(case=case, expert=expert, label="approve", reason_code="ok",
                        seconds_spent=seconds)  # fmt: skip
    (left,) = Case.objects.filter(process=process, status="open")
    decide_automatically(case=left, label="approve", reason_code="ok")
    now = datetime.now(UTC)
    figures = _figures(team, process, start=now - timedelta(days=1), end=now + timedelta(hours=1))
    # Mean of 30 and 90 s = 60 s per case: one automatic decision saves 1 min.
    assert figures["hours_saved"].num == pytest.approx(1 / 60)
    assert figures["review_seconds"].num == 120
    assert figures["review_seconds"].den == 2


def test_a_snapshot_taken_twice_is_the_same_row(team, expert):
    process = make_process(team)
    cases = make_cases(process, 2)
    decide_automatically(case=cases[0], label="approve", reason_code="ok")
    day = datetime.now(UTC).date()
    now = datetime.now(UTC)
    assert take_snapshot(team=team, day=day, now=now) == 2  # the team and its one process
    first = {(row.process_id, row.pk): row.figures for row in MetricSnapshot.objects.all()}
    # The same day measured at the same moment again (a past day's end is fixed the same way).
    assert take_snapshot(team=team, day=day, now=now) == 2
    second = {(row.process_id, row.pk): row.figures for row in MetricSnapshot.objects.all()}
    assert first == second
    assert MetricSnapshot.objects.filter(team=team, day=day).count() == 2


def test_runs_credit_rule_and_model_decisions_and_count_routed_items_as_cases(
    team, manager, expert
):
    from apps.orchestrations.models import Run
    from apps.orchestrations.services import change_stage, create_orchestration, create_version

    process = make_process(team, minutes_per_case=6)
    orchestration = create_orchestration(
        process=process, slug="invoice-flow", name="Invoice flow", owner=manager
    )
    version = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=version, stage="live", actor=manager, reason="go")
    now = datetime.now(UTC)
    (routed_case, late_case) = make_cases(process, 2)

    def run(external_id, **fields):
        return Run.objects.create(
            orchestration=orchestration, version=version, external_id=external_id,
            state=fields.pop("state", "finished"), finished_at=now, **fields,
        )  # fmt: skip

    run("r1", outcome="decided", decided_by="rule:1@1", label="request_info")
    run("r2", outcome="decided", decided_by="expert:erin", label="approve", case=routed_case)
    run("r3", outcome="standard")
    run("r4", state="running", outcome="")  # unfinished: nothing
    run("r5", outcome="decided", decided_by="model@1", label="approve", error="evaluation failed")
    # The routed case was decided 10 minutes before its due time; the other is past due, open.
    Case.objects.filter(pk=routed_case.pk).update(
        status="decided", final_label="approve", decided_at=now - timedelta(minutes=20),
        due_by=now - timedelta(minutes=10), created_at=now - timedelta(hours=1),
    )  # fmt: skip
    Case.objects.filter(pk=late_case.pk).update(due_by=now - timedelta(minutes=5))

    figures = _figures(team, process, start=now - timedelta(days=1), end=now + timedelta(hours=1))
    assert figures["automatic_decisions"].num == 1  # r1 only (r5 ended in an error)
    assert figures["hours_saved"].num == pytest.approx(0.1)  # 1 x 6 min
    # (r1 + r3) / (the routed case + r1 + r3)
    assert (figures["straight_through"].num, figures["straight_through"].den) == (2, 3)
    # One met, one missed (open past its due time): 50 %.
    assert (figures["sla_attainment"].num, figures["sla_attainment"].den) == (1, 2)
    assert figures["orchestrated_processes"].num == 1


def test_listed_machines_count_in_the_fabric_share_and_hosted_sources_are_reachable(team, manager):
    from apps.capital.services_roadmap import add_asset, add_data_source

    now = datetime.now(UTC)
    week_ago = now - timedelta(days=8)
    node = _node(team, "build-1", week_ago, [(week_ago, "online")])
    ComputeNode.objects.filter(pk=node.pk).update(data_sources=["erp"])
    # Listed in the assessment: the enrolled node (linked, not counted twice) and an old server
    # nobody has enrolled yet; two data sources, one hosted by the node.
    add_asset(team=team, name="build-1", asset_class="workstation", by=manager)
    add_asset(team=team, name="old-rack-server", asset_class="server", by=manager)
    add_data_source(team=team, name="erp", by=manager)
    add_data_source(team=team, name="crm", by=manager)
    figures = _figures(team, start=now - timedelta(days=1), end=now + timedelta(minutes=1))
    # 1 participating node of (1 enrolled + 1 listed not enrolled)
    assert (figures["fabric_participation"].num, figures["fabric_participation"].den) == (1, 2)
    # erp is hosted by a participating node, crm by none: 1 of 2.
    assert (figures["data_sources_reachable"].num, figures["data_sources_reachable"].den) == (1, 2)


def test_without_listed_data_sources_the_reachable_share_is_empty_not_zero(team):
    now = datetime.now(UTC)
    figures = _figures(team, start=now - timedelta(days=1), end=now)
    assert figures["data_sources_reachable"].value("state_ratio") is None


def test_component_reuse_counts_versions_using_a_component_another_orchestration_used_first(
    team, manager
):
    from apps.orchestrations.services import change_stage, create_orchestration, create_version
    from apps.rules.services.authoring import create_rule

    process = make_process(team)
    rule = create_rule(
        process=process, owner=manager, name="No PO", action={"decide": "request_info"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
    )  # fmt: skip
    first = create_orchestration(process=process, slug="first", name="first", owner=manager)
    version = create_version(
        orchestration=first, actor=manager, values={"rules": [{"rule": rule.pk}]}
    )
    change_stage(version=version, stage="live", actor=manager, reason="go")
    now = datetime.now(UTC)
    figures = _figures(team, start=now - timedelta(days=1), end=now + timedelta(minutes=1))
    # first v1 built the rule: it reuses nothing, 0 of 1.
    assert (figures["component_reuse"].num, figures["component_reuse"].den) == (0, 1)
    second = create_orchestration(process=process, slug="second", name="second", owner=manager)
    create_version(orchestration=second, actor=manager, values={"rules": [{"rule": rule.pk}]})
    create_version(orchestration=first, actor=manager, values={"rules": [{"rule": rule.pk}]})
    now = datetime.now(UTC)
    figures = _figures(team, start=now - timedelta(days=1), end=now + timedelta(minutes=1))
    # second v1 reuses first's rule; first v2 reuses its own orchestration's rule, which is not
    # reuse: 1 of 3 versions.
    assert (figures["component_reuse"].num, figures["component_reuse"].den) == (1, 3)


def test_hours_saved_credit_model_decisions_times_the_configured_minutes(team, expert):
    from tests.factories import make_decided_cases

    process = make_process(team, minutes_per_case=6)
    cases = make_decided_cases(process, expert, 10)  # imported: no timed reviews
    Decision.objects.filter(case__in=cases[:3]).update(source="model")
    figures = _figures(
        team, start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 2, 1, tzinfo=UTC)
    )
    # Three cases decided by the model at level 3: 3 x 6 minutes = 0.3 hours.
    assert figures["automatic_decisions"].num == 3
    assert figures["hours_saved"].num == pytest.approx(0.3)


def _model_version(process, person):
    import hashlib

    from apps.classifiers.models import ModelArtifact, ModelVersion

    content = f"model {process.pk}".encode()
    digest = hashlib.sha256(content).hexdigest()
    artifact = ModelArtifact.objects.create(sha256=digest, content=content, size=len(content))
    return ModelVersion.objects.create(
        process=process, version=1, algorithm="logistic_regression", labels=["approve", "reject"],
        schema_version=process.schema, snapshot_size=0, snapshot_hash="0" * 64, snapshot_ids=b"",
        metrics={}, artifact=artifact, artifact_sha256=digest, trained_by=person,
        trained_at=START - timedelta(days=10),
    )  # fmt: skip


def test_time_saved_by_suggestions_counts_only_suggestions_there_when_the_review_began(
    team, expert
):
    from apps.autonomy.models import ShadowPrediction

    process = make_process(team)
    Process.objects.filter(pk=process.pk).update(created_at=START - timedelta(days=30))
    version = _model_version(process, expert)
    AutonomyChange.objects.create(
        process=process, kind="promote", from_level=0, to_level=2, at=START + timedelta(days=3)
    )
    unassisted, seen, mid_review, backfilled = make_cases(process, 4)
    at = START + timedelta(days=4, hours=10)  # every assisted decision is taken then

    def decide(case, seconds, when):
        Decision.objects.create(
            case=case, expert=expert, label="approve", seconds_spent=seconds, source="review",
            decided_at=when,
        )  # fmt: skip

    def predict(case, created_at, **extra):
        ShadowPrediction.objects.create(
            process=process, case=case, model_version=version, label="approve", confidence=0.9,
            created_at=created_at, **extra,
        )  # fmt: skip

    # Level 0 on day 1: no suggestion shown, 300 s.
    decide(unassisted, 300, START + timedelta(days=1))
    # Suggested 10 minutes before the review began (10:08), followed: 120 s.
    predict(seen, at - timedelta(minutes=10))
    decide(seen, 120, at)
    # Recorded at 10:09:30, after the expert had opened the case at 10:08:30 (90 s): never seen.
    predict(mid_review, at - timedelta(seconds=30))
    decide(mid_review, 90, at)
    # Backfilled over history: never shown to anyone.
    predict(backfilled, at - timedelta(hours=1), backfilled=True)
    decide(backfilled, 60, at)

    figures = _figures(team, process)
    saved = figures["suggestion_hours_saved"]
    # One suggestion seen and followed: (300 s without - 120 s with) x 1 = 180 s = 0.05 h.
    # (Counting the prediction that arrived mid-review would give (300 - 105) x 2 s.)
    assert saved.details["accepted"] == 1
    assert saved.details["with_seconds"] == 120
    assert saved.details["without"] == "1 decisions without a suggestion"
    assert saved.num == pytest.approx(0.05)
    assert figures["hours_saved"].details["suggestion_hours"] == pytest.approx(0.05)
    # Every timed review still counts in the review time: (300 + 120 + 90 + 60) / 4.
    assert (figures["review_seconds"].num, figures["review_seconds"].den) == (570, 4)
