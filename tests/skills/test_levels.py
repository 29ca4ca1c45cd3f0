"""Levels granted by evidence rules, lost when the evidence decays or a decision is undone, with
their history; manual evidence that counts once a manager approves it; the periodic task."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.cases.models import Decision
from apps.cases.services.decisions import record_decision, undo_last_decision
from apps.skills import services
from apps.skills.models import Evidence, LevelEvent, ManualEvidence, PersonSkill, Skill
from apps.skills.tasks import refresh_skills
from tests.conftest import client_for
from tests.factories import make_cases, make_process


@pytest.fixture
def deciding(db):
    """Aware: 2 decisions (all time). Practising: 3 decisions, agreement >= 0.6, last 90 days."""
    area = services.create_area(slug="knowledge", name="Knowledge")
    skill = services.create_skill(area=area, slug="deciding", name="Deciding cases")
    aware = services.add_level(skill=skill, name="Aware")
    practising = services.add_level(skill=skill, name="Practising")
    services.add_rule(level=aware, kind="cases.decisions_agree", min_count=2)
    services.add_rule(
        level=practising, kind="cases.decisions_agree", min_count=3, min_value=0.6,
        period_days=90,
    )  # fmt: skip
    return skill


def level_of(person, skill):
    row = PersonSkill.objects.filter(person=person, skill=skill).select_related("level").first()
    return row.level.name if row and row.level else None


def decide(process, expert, count):
    cases = make_cases(process, count)
    for case in cases:
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    return cases


def test_levels_are_granted_by_rule_and_lost_when_the_evidence_decays(deciding, team, expert):
    process = make_process(team)
    decide(process, expert, 3)  # overlap 1: each label decides its case, agreement 1.0
    result = services.refresh_person(person=expert)
    assert (result.granted, result.lost) == (2, 0)
    assert level_of(expert, deciding) == "Practising"
    # The decisions age out of the 90 days: Practising decays, Aware (all time) stays.
    Decision.objects.filter(expert=expert).update(decided_at=timezone.now() - timedelta(days=91))
    result = services.refresh_person(person=expert)
    assert (result.granted, result.lost) == (0, 1)
    assert level_of(expert, deciding) == "Aware"
    history = list(
        LevelEvent.objects.filter(person=expert).order_by("pk").values_list("level__name", "kind")
    )
    assert history == [("Aware", "granted"), ("Practising", "granted"), ("Practising", "lost")]
    lost = LevelEvent.objects.get(kind="lost")
    assert "no longer met" in lost.detail
    assert "90 days" in lost.detail


def test_a_refresh_with_the_same_records_changes_nothing(deciding, team, expert):
    decide(make_process(team), expert, 2)
    services.refresh_person(person=expert)
    first = Evidence.objects.filter(person=expert).count()
    again = services.refresh_person(person=expert)
    assert (again.granted, again.lost) == (0, 0)
    assert Evidence.objects.filter(person=expert).count() == first == 2
    assert LevelEvent.objects.filter(person=expert).count() == 1


def test_an_undone_decision_takes_its_level_back(deciding, team, expert):
    process = make_process(team)
    decide(process, expert, 2)
    services.refresh_person(person=expert)
    assert level_of(expert, deciding) == "Aware"
    undo_last_decision(expert=expert, process_id=process.pk)
    services.refresh_person(person=expert)
    assert level_of(expert, deciding) is None
    assert LevelEvent.objects.filter(person=expert, kind="lost").count() == 1


def test_a_higher_level_is_not_granted_without_the_lower_one(deciding, team, expert):
    # Practising's rule alone met would not skip Aware: here Aware needs 2 and both need data;
    # make Aware impossible to check that Practising is not granted on its own.
    aware = deciding.levels.get(rank=1)
    aware.rules.update(min_count=100)
    decide(make_process(team), expert, 3)
    services.refresh_person(person=expert)
    assert level_of(expert, deciding) is None


@pytest.fixture
def certified(db):
    area = services.create_area(slug="data", name="Data")
    skill = services.create_skill(area=area, slug="analysing", name="Analysing data")
    level = services.add_level(skill=skill, name="Aware")
    services.add_rule(level=level, kind="skills.manual")
    return skill


def test_manual_evidence_counts_once_a_manager_approves_it(certified, staff, manager):
    as_sam = client_for(staff)
    response = as_sam.post(
        f"/skills/people/{staff.pk}/evidence",
        {"skill": certified.pk, "kind": "course", "title": "SQL for analysts", "url": ""},
    )
    assert response.status_code == 302
    services.refresh_person(person=staff)
    assert level_of(staff, certified) is None  # pending evidence counts for nothing
    evidence = ManualEvidence.objects.get(person=staff)
    response = client_for(manager).post(
        f"/skills/evidence/{evidence.pk}/review", {"decision": "approve"}
    )
    assert response.status_code == 302
    assert level_of(staff, certified) == "Aware"  # the approval recomputed sam's levels
    evidence.refresh_from_db()
    assert (evidence.state, evidence.reviewed_by) == ("approved", manager)


def test_a_manager_cannot_approve_their_own_evidence(certified, manager, admin):
    evidence = services.submit_manual_evidence(
        person=manager, skill=certified, kind="certificate", title="Cert"
    )
    response = client_for(manager).post(
        f"/skills/evidence/{evidence.pk}/review", {"decision": "approve"}
    )
    assert response.status_code == 422
    assert "Only a manager of this person" in response.content.decode()
    # The organisation admin can.
    assert (
        client_for(admin)
        .post(f"/skills/evidence/{evidence.pk}/review", {"decision": "approve"})
        .status_code
        == 302
    )


def test_rejecting_evidence_needs_a_reason(certified, staff, manager):
    evidence = services.submit_manual_evidence(
        person=staff, skill=certified, kind="course", title="A course"
    )
    response = client_for(manager).post(
        f"/skills/evidence/{evidence.pk}/review", {"decision": "reject", "note": " "}
    )
    assert response.status_code == 422
    assert "Say why" in response.content.decode()
    evidence.refresh_from_db()
    assert evidence.state == "pending"


def test_a_manager_of_another_team_gets_404_for_the_evidence(certified, staff, outsider):
    evidence = services.submit_manual_evidence(
        person=staff, skill=certified, kind="course", title="A course"
    )
    response = client_for(outsider).post(
        f"/skills/evidence/{evidence.pk}/review", {"decision": "approve"}
    )
    assert response.status_code == 404


def test_adding_evidence_with_a_missing_title_re_renders_with_the_error(certified, staff):
    response = client_for(staff).post(
        f"/skills/people/{staff.pk}/evidence", {"skill": certified.pk, "kind": "course"}
    )
    assert response.status_code == 422
    assert "This field is required" in response.content.decode()


def test_the_periodic_task_recomputes_everyone(deciding, team, expert, second_expert):
    process = make_process(team)
    decide(process, expert, 2)
    decide(process, second_expert, 3)
    changes = refresh_skills.apply().get()
    assert changes == 1 + 2
    assert refresh_skills.apply().get() == 0  # idempotent
    assert level_of(second_expert, deciding) == "Practising"


def test_the_seeded_framework_is_valid_and_seeding_twice_adds_nothing(db):
    from apps.skills.demo import seed_skills
    from apps.skills.models import CareerRole, EvidenceRule

    seed_skills()
    counts = (Skill.objects.count(), EvidenceRule.objects.count(), CareerRole.objects.count())
    assert "0 rows created" in seed_skills()
    assert counts == (
        Skill.objects.count(),
        EvidenceRule.objects.count(),
        CareerRole.objects.count(),
    )
    paths = {
        r.slug: sorted(r.leads_to.values_list("slug", flat=True)) for r in CareerRole.objects.all()
    }
    assert paths["domain-expert"] == ["knowledge-author"]
    assert paths["ai-trainer"] == ["orchestration-designer"]
    assert paths["fabric-operator"] == ["intelligence-coordinator"]
    assert paths["data-steward"] == ["ai-trainer"]
    assert paths["process-owner"] == ["orchestration-designer"]


def test_the_demo_puts_sam_on_the_path_to_ai_trainer_agreed_with_maya(staff, manager):
    from apps.skills.demo import seed_skills_demo
    from apps.skills.models import Plan

    line = seed_skills_demo()
    plan = Plan.objects.get(person=staff)
    assert (plan.target_role.slug, plan.state, plan.agreed_by) == ("ai-trainer", "active", manager)
    assert "Levels measured for 2 people" in line
    seed_skills_demo()  # again: no second plan
    assert Plan.objects.filter(person=staff).count() == 1
