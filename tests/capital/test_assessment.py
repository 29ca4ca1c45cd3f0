"""Assessment figures counted by hand, the gap questions, recorded versions and their diff, the
inventory the metrics read, and the demo seeding."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.capital import services_roadmap as services
from apps.capital.assessment_sources import listed
from apps.capital.demo_roadmap import seed_roadmap_demo
from apps.capital.models import Assessment, BattleChoice, PhaseEntry
from apps.capital.selectors_assessment import assessment_figures
from apps.capital.selectors_gaps import diff_assessments, gap_questions
from apps.cases.models import Case, Decision
from apps.fabric.models import NodeEvent, TaskAttempt
from apps.fabric.services.enrollment import create_enrollment_token
from tests.fabric.conftest import enroll
from tests.factories import make_cases, make_decided_cases, make_process

NOW = timezone.now().replace(microsecond=0)


def test_minutes_per_case_are_the_median_of_timed_reviews_times_overlap(team, expert):
    process = make_process(team, minutes_per_case=5)
    cases = make_decided_cases(process, expert, 10)
    decisions = Decision.objects.filter(case__in=cases).order_by("pk")
    for index, decision in enumerate(decisions, start=1):
        # 30, 60, ..., 300 seconds: the median is (150 + 180) / 2 = 165 s = 2.75 minutes.
        decision.source = "review"
        decision.seconds_spent = 30 * index
        decision.decided_at = NOW - timedelta(days=1)
        decision.save()
    [row] = assessment_figures(team=team, now=NOW)["process"]["processes"]
    assert row["minutes_measured"] == 2.75
    assert row["timed_reviews"] == 10
    assert row["minutes_configured"] == 5


def test_backlog_volume_and_completeness(team, expert):
    process = make_process(team)
    old = make_cases(process, 2)
    Case.objects.filter(pk__in=[c.pk for c in old]).update(created_at=NOW - timedelta(days=40))
    young = make_cases(process, 2)
    Case.objects.filter(pk__in=[c.pk for c in young]).update(created_at=NOW - timedelta(days=2))
    [row] = assessment_figures(team=team, now=NOW)["process"]["processes"]
    assert row["cases_per_week"] == 0.5  # 2 cases in the last 28 days
    assert row["backlog"] == 4
    assert row["backlog_age_days"] == 21  # (40 + 40 + 2 + 2) / 4
    assert row["oldest_open_days"] == 40
    assert row["field_completeness"] == 0.6  # vendor, amount, po_status of 5 fields
    assert row["minutes_measured"] is None


def test_node_hours_offered_and_used_from_the_fabric_history(team, admin, manager):
    _, raw = create_enrollment_token(created_by=admin, team=team, auto_approve=True)
    node = enroll(raw, name="srv-1").node
    # Online from 10 days ago, offline 4 days ago for a day, online since: 6 + 3 = 9 days.
    NodeEvent.objects.filter(node=node).delete()
    for days, state in ((10, "online"), (4, "offline"), (3, "online")):
        NodeEvent.objects.create(
            node=node, kind="state", to_state=state, at=NOW - timedelta(days=days)
        )
    services.add_asset(team=team, name="SRV-1", asset_class="server", by=manager)
    services.add_asset(team=team, name="old-box", asset_class="workstation", by=manager)
    infra = assessment_figures(team=team, now=NOW)["infrastructure"]
    assert infra["node_hours_offered"] == 9 * 24
    assert infra["node_hours_used"] == 0
    assert infra["nodes_enrolled"] == 1
    assert infra["assets_listed"] == 2
    assert infra["assets_not_enrolled"] == 1  # srv-1 was linked to its node
    assert listed(team_id=team.pk, end=timezone.now())[0] == 1
    assert TaskAttempt.objects.count() == 0


def test_data_sources_are_reachable_when_a_node_hosts_them(team, admin, manager):
    services.add_data_source(team=team, name="erp-branch-3", system="SAP", by=manager)
    services.add_data_source(team=team, name="sharepoint", by=manager)
    data = assessment_figures(team=team, now=NOW)["data"]
    assert (data["reachable"], data["listed"]) == (0, 2)
    _, raw = create_enrollment_token(created_by=admin, team=team, auto_approve=True)
    enroll(raw, name="branch-3", data_sources=["erp-branch-3"])
    data = assessment_figures(team=team, now=NOW)["data"]
    assert (data["reachable"], data["listed"]) == (1, 2)
    assert data["sources"][0]["via"] == ["branch-3"]
    assert listed(team_id=team.pk, end=timezone.now())[1] == ["erp-branch-3", "sharepoint"]


def test_people_activity_and_knowledge(team, expert, second_expert):
    process = make_process(team)
    make_decided_cases(process, expert, 4)
    people = assessment_figures(team=team, now=NOW)["people"]
    by_name = {row["username"]: row for row in people["experts"]}
    assert by_name["erin"]["decisions"] == 4
    assert by_name["erin"]["decisions_30d"] == 0  # imported with 2026-01-05
    assert by_name["eli"]["decisions"] == 0
    assert sum(sum(row["by_expert"].values()) for row in people["knowledge"]) == 4
    keys = {q.key for q in gap_questions(team=team, figures=assessment_figures(team=team))}
    assert {"people.idle", "infrastructure.assets", "data.sources", "process.named"} <= keys
    assert f"process.owner.{process.slug}" in keys


def test_recorded_versions_freeze_and_diff(team, expert, manager):
    process = make_process(team)
    make_decided_cases(process, expert, 3)
    services.save_answers(team=team, answers={"data.sources": "The ERP"}, by=manager)
    first = services.record_assessment(team=team, by=manager)
    make_decided_cases(process, expert, 2, seed=4)
    services.save_answers(team=team, answers={"data.sources": ""}, by=manager)  # removed
    second = services.record_assessment(team=team, by=manager)
    assert (first.version, second.version) == (1, 2)
    first.refresh_from_db()
    [row] = first.figures["process"]["processes"]
    assert row["decisions"] == 3  # frozen: the later decisions are not in v1
    assert next(q for q in first.questions if q["key"] == "data.sources")["answer"] == "The ERP"
    changes = {c["path"]: c for c in diff_assessments(first.figures, second.figures)}
    assert changes["process.processes[invoices].decisions"]["before"] == 3
    assert changes["process.processes[invoices].decisions"]["after"] == 5
    assert "measured_at" not in changes


def test_diff_of_rows_added_and_removed():
    old = {"data": {"sources": [{"name": "erp", "reachable": False}]}}
    new = {"data": {"sources": [{"name": "erp", "reachable": True}, {"name": "crm"}]}}
    assert diff_assessments(old, new) == [
        {"path": "data.sources[crm].name", "change": "added", "before": None, "after": "crm"},
        {"path": "data.sources[erp].reachable", "change": "changed", "before": False,
         "after": True},
    ]  # fmt: skip


def test_answers_must_be_current_questions(team, manager):
    with pytest.raises(ValidationError, match="Not a current question"):
        services.save_answers(team=team, answers={"made.up": "x"}, by=manager)


def test_the_demo_records_an_assessment_and_ap_picks_its_battle(team, other_team, expert, manager):
    from apps.people.services import add_member

    add_member(team=other_team, user=manager, role="manager")
    process = make_process(team, is_synthetic=True)
    make_decided_cases(process, expert, 30)
    summary = seed_roadmap_demo()
    assert "Demo roadmap of ap: assessment v1 recorded, first battle Invoices" in summary
    assert "Demo roadmap of claims: assessment v1 recorded, phase 1" in summary
    choice = BattleChoice.objects.get(team=team)
    assert choice.chosen_by == manager
    assert choice.scores["rank"] == 1
    assert PhaseEntry.objects.filter(team=team, phase=1).exists()
    assert "already present" in seed_roadmap_demo()
    assert Assessment.objects.count() == 2
