"""Roadmap phases, criteria and pitfalls on scenarios counted by hand, and the roadmap API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.capital import criteria
from apps.capital import services_roadmap as services
from apps.capital.metrics import measure
from apps.capital.models import PhaseEntry
from apps.capital.selectors_roadmap import current_phase, pitfalls, roadmap_state
from apps.cases.models import Case, Decision
from apps.fabric.services.enrollment import create_enrollment_token
from apps.orchestrations.models import OrchestrationVersion, StageChange
from apps.orchestrations.services import change_stage, create_orchestration, create_version
from apps.people.models import Membership
from apps.rules.services.authoring import create_rule
from tests.conftest import client_for
from tests.fabric.conftest import enroll
from tests.factories import make_decided_cases, make_process


def _phase(team) -> int:
    services.advance_roadmap(team=team)
    return current_phase(roadmap_state(team=team)).spec.number


def _criterion(team, phase: int, kind: str):
    state = roadmap_state(team=team)[phase - 1]
    return next(c for c in state.criteria if c.kind == kind)


def _live(process, manager, slug: str, values: dict | None = None):
    orchestration = create_orchestration(process=process, slug=slug, name=slug, owner=manager)
    version = create_version(orchestration=orchestration, actor=manager, values=values or {})
    change_stage(version=version, stage="live", actor=manager, reason="go")
    return orchestration


def test_phase_one_ends_when_its_four_criteria_are_met(team, expert, manager, admin):
    process = make_process(team)
    make_decided_cases(process, expert, 199)  # all decided on 2026-01-05
    assert _phase(team) == 1
    decisions = _criterion(team, 1, "process_decisions")
    assert (decisions.value, decisions.met) == (199, False)
    assert decisions.missing == "1 more expert decisions in one process"
    assert not _criterion(team, 1, "nodes_enrolled").met

    make_decided_cases(process, expert, 1, seed=9)
    assessment = services.record_assessment(team=team, by=manager)
    choice = services.choose_battle(
        team=team, candidate_key=f"process:{process.slug}", reason="It hurts", by=manager
    )
    assert _phase(team) == 1  # still no machine of the team
    _, raw = create_enrollment_token(created_by=admin, team=team, auto_approve=True)
    node = enroll(raw, name="branch-3").node
    assert _phase(team) == 2
    # Entered when the last of the four was met: the machine, enrolled after the others.
    entry = PhaseEntry.objects.get(team=team, phase=2)
    assert entry.entered_at == max(assessment.recorded_at, choice.chosen_at, node.approved_at)
    assert entry.entered_at == node.approved_at
    assert {e["kind"] for e in entry.evidence} == {
        "assessment_recorded", "battle_chosen", "nodes_enrolled", "process_decisions"
    }  # fmt: skip
    assert _criterion(team, 1, "process_decisions").met_at.date().isoformat() == "2026-01-05"


def test_phases_never_go_back(team, expert, manager, admin):
    process = make_process(team)
    make_decided_cases(process, expert, 200)
    services.record_assessment(team=team, by=manager)
    services.choose_battle(team=team, candidate_key="process:invoices", reason="x", by=manager)
    _, raw = create_enrollment_token(created_by=admin, team=team, auto_approve=True)
    enroll(raw, name="n1")
    assert _phase(team) == 2
    Decision.objects.update(retracted_at=timezone.now())  # the figure dips
    assert _phase(team) == 2
    assert not _criterion(team, 1, "process_decisions").met


def test_criteria_are_data_that_admins_edit(team, expert, manager, admin):
    """With phase 1 down to one criterion and phase 2 without hours saved, a live orchestration
    takes the team to phase 3."""
    process = make_process(team)
    make_decided_cases(process, expert, 5)
    for row in ("battle_chosen", "nodes_enrolled", "process_decisions"):
        services.remove_criterion(criterion_id=_criterion(team, 1, row).id)
    services.remove_criterion(criterion_id=_criterion(team, 2, "hours_saved").id)
    services.set_criterion(phase=1, kind="assessment_recorded", threshold=2, by=admin)
    services.record_assessment(team=team, by=manager)
    assert _phase(team) == 1  # one of two assessments
    services.record_assessment(team=team, by=manager)
    assert _phase(team) == 2
    _live(process, manager, "flow")
    assert _phase(team) == 3
    live = _criterion(team, 3, "orchestrations_live")
    assert (live.value, live.met, live.missing) == (1, False, "2 more orchestration(s) live")


def test_the_reuse_and_hours_criteria_read_the_metrics_figures(team, expert, manager):
    """One definition per figure: the roadmap's criteria show what apps/capital/metrics.py
    measures (its own hand counts are in tests/capital/test_metrics.py)."""
    process = make_process(team, minutes_per_case=6)
    cases = make_decided_cases(process, expert, 10)
    Decision.objects.filter(case__in=cases[:3]).update(source="model")
    rule = create_rule(
        process=process, owner=manager, name="No PO", action={"decide": "request_info"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
    )  # fmt: skip
    _live(process, manager, "first", {"rules": [{"rule": rule.pk}]})
    second = create_orchestration(process=process, slug="second", name="second", owner=manager)
    create_version(orchestration=second, actor=manager, values={"rules": [{"rule": rule.pk}]})
    now = timezone.now()
    figures = measure(team_id=team.pk, start=criteria.EPOCH, end=now)[None]
    hours = criteria.measure("hours_saved", team=team, threshold=1, now=now)
    # 3 model decisions x 6 configured minutes = 0.3 h, below the 1 h threshold.
    assert hours.value == pytest.approx(figures["hours_saved"].num) == pytest.approx(0.3)
    assert (hours.met, hours.source) == (False, "metrics: hours saved")
    reuse = criteria.measure("reuse_share", team=team, threshold=0.3, now=now)
    # second v1 reuses the rule first used by first v1: 1 of 2 versions.
    assert (figures["component_reuse"].num, figures["component_reuse"].den) == (1, 2)
    assert (reuse.value, reuse.met) == (0.5, True)
    assert reuse.source == "metrics: 1 of 2 versions reuse a component"


def test_perfection_trap_after_90_days_in_phase_one(team, expert):
    process = make_process(team)
    (case,) = make_decided_cases(process, expert, 1)
    Case.objects.filter(pk=case.pk).update(created_at=timezone.now() - timedelta(days=91))
    services.advance_roadmap(team=team)
    phases = roadmap_state(team=team)
    [trap] = pitfalls(team=team, phases=phases)
    assert trap.key == "perfection_trap"
    assert "In phase 1 for 91 days" in trap.message


def test_no_perfection_trap_at_89_days(team, expert):
    process = make_process(team)
    (case,) = make_decided_cases(process, expert, 1)
    Case.objects.filter(pk=case.pk).update(created_at=timezone.now() - timedelta(days=89))
    services.advance_roadmap(team=team)
    assert pitfalls(team=team, phases=roadmap_state(team=team)) == []


def test_complexity_cascade_when_three_processes_started_and_none_live(team, manager):
    processes = [make_process(team, slug=f"p{i}") for i in range(3)]
    for process in processes[:2]:
        orchestration = create_orchestration(
            process=process, slug=f"o-{process.slug}", name=process.slug, owner=manager
        )
        create_version(orchestration=orchestration, actor=manager, values={})
    services.advance_roadmap(team=team)
    assert pitfalls(team=team, phases=roadmap_state(team=team)) == []  # two started
    third = create_orchestration(process=processes[2], slug="o-p2", name="p2", owner=manager)
    version = create_version(orchestration=third, actor=manager, values={})
    [cascade] = pitfalls(team=team, phases=roadmap_state(team=team))
    assert cascade.key == "complexity_cascade"
    assert cascade.evidence == ["P0, P1, P2"]
    change_stage(version=version, stage="live", actor=manager, reason="go")
    assert pitfalls(team=team, phases=roadmap_state(team=team)) == []


def test_isolation_island_owner_left_or_untouched_for_30_days(team, manager, expert):
    process = make_process(team)
    orchestration = _live(process, manager, "flow")
    services.advance_roadmap(team=team)
    assert pitfalls(team=team, phases=roadmap_state(team=team)) == []
    long_ago = timezone.now() - timedelta(days=31)
    StageChange.objects.update(created_at=long_ago)
    OrchestrationVersion.objects.update(created_at=long_ago)
    [island] = pitfalls(team=team, phases=roadmap_state(team=team))
    assert island.key == "isolation_island"
    assert island.evidence == [f"flow: no person touched it since {long_ago:%Y-%m-%d}"]
    make_decided_cases(process, expert, 1)  # imported with a 2026-01-05 decision: still old
    Decision.objects.update(decided_at=timezone.now())  # an expert decided today
    assert pitfalls(team=team, phases=roadmap_state(team=team)) == []
    Membership.objects.filter(user=manager, team=team).delete()
    [island] = pitfalls(team=team, phases=roadmap_state(team=team))
    assert island.evidence == ["flow: its owner (maya) is not in the team any more"]
    assert orchestration.owner == manager


def test_the_roadmap_api(team, expert, manager, outsider):
    process = make_process(team)
    make_decided_cases(process, expert, 3)
    services.choose_battle(team=team, candidate_key="process:invoices", reason="x", by=manager)
    response = client_for(expert).get(f"/api/v1/teams/{team.slug}/roadmap")
    assert response.status_code == 200
    body = response.json()
    assert body["current_phase"] == 1
    assert [p["number"] for p in body["phases"]] == [1, 2, 3, 4]
    first = {c["kind"]: c for c in body["phases"][0]["criteria"]}
    assert first["process_decisions"]["value"] == 3
    assert first["battle_chosen"]["met"] is True
    assert body["first_battle"]["process"] == "invoices"
    assert body["first_battle"]["estimate_frozen_at"] is None
    assert client_for(outsider).get(f"/api/v1/teams/{team.slug}/roadmap").status_code == 404
    assert client_for(expert).get("/api/v1/teams/nope/roadmap").status_code == 404
    ranking = client_for(expert).get(f"/api/v1/teams/{team.slug}/first-battle")
    assert ranking.status_code == 200
    assert ranking.json()["candidates"][0]["key"] == "process:invoices"
