"""The skills pages and API: who sees whose skills, plans moving through their states, the
framework editor, and the person's skills by API."""

import pytest

from apps.cases.services.decisions import record_decision
from apps.skills import services
from apps.skills.demo import seed_skills
from apps.skills.models import CareerRole, EvidenceRule, Plan, PlanReview
from tests.api.conftest import token_client
from tests.conftest import client_for
from tests.factories import make_cases, make_process


@pytest.fixture
def framework(db):
    seed_skills()


def test_a_person_sees_their_own_skills_with_what_is_missing(framework, team, expert):
    process = make_process(team)
    for case in make_cases(process, 6):
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    services.refresh_person(person=expert)
    page = client_for(expert).get("/skills/").content.decode()
    assert "Deciding exception cases: Aware" in page  # 6 decisions ≥ 5
    # Practising asks for 50 with agreement ≥ 0.8 over 90 days: 44 more (agreement is 1.0).
    assert "Decide 44 more cases over the last 90 days" in page
    # The evidence links to the decided cases it counted.
    assert f'href="/cases/{process.cases.order_by("pk").last().pk}/"' in page


@pytest.mark.parametrize(
    ("viewer", "status"),
    [("expert", 200), ("manager", 200), ("admin", 200), ("second_expert", 404), ("outsider", 404),
     ("staff", 404)],
)  # fmt: skip
def test_who_sees_a_persons_skills_page(framework, request, expert, viewer, status):
    user = request.getfixturevalue(viewer)
    assert client_for(user).get(f"/skills/people/{expert.pk}/").status_code == status


def test_others_skills_by_api_are_404_and_ones_own_are_there(framework, expert, second_expert):
    assert token_client(expert).get("/api/v1/people/eli/skills").status_code == 404
    response = token_client(expert).get("/api/v1/people/erin/skills")
    assert response.status_code == 200
    body = response.json()
    deciding = next(s for s in body["skills"] if s["skill"] == "deciding-cases")
    assert deciding["level"] is None
    assert deciding["next_level"] == {"rank": 1, "name": "Aware"}
    assert deciding["evidence"][0]["kind"] == "cases.decisions_agree"


def test_a_manager_sees_their_teams_people_by_api(framework, manager, expert):
    assert token_client(manager).get("/api/v1/people/erin/skills").status_code == 200


def _plan_action(client, plan, to, note=""):
    return client.post(f"/skills/plans/{plan.pk}/transition", {"to": to, "note": note})


def test_a_plan_moves_draft_agreed_active_done_and_refuses_bad_moves(framework, staff, manager):
    trainer = CareerRole.objects.get(slug="ai-trainer")
    as_sam, as_maya = client_for(staff), client_for(manager)
    response = as_sam.post(f"/skills/people/{staff.pk}/plans", {"target_role": trainer.pk})
    plan = Plan.objects.get(person=staff)
    assert response.status_code == 302
    assert response["Location"] == f"/skills/plans/{plan.pk}/"
    # sam proposed it: sam can't agree to it himself.
    response = _plan_action(as_sam, plan, "agreed")
    assert response.status_code == 422
    assert "agreed by a manager" in response.content.decode()
    # Skipping a state is refused, whoever asks.
    response = _plan_action(as_maya, plan, "active")
    assert response.status_code == 422
    assert "this one is draft, so it can&#x27;t become active" in response.content.decode()
    assert _plan_action(as_maya, plan, "agreed", "good path").status_code == 302
    assert _plan_action(as_sam, plan, "active").status_code == 302
    assert _plan_action(as_sam, plan, "done").status_code == 422  # a manager marks it done
    assert _plan_action(as_maya, plan, "done").status_code == 302
    plan.refresh_from_db()
    assert (plan.state, plan.agreed_by) == ("done", manager)
    assert list(plan.events.values_list("to_state", flat=True)) == [
        "draft", "agreed", "active", "done",
    ]  # fmt: skip
    assert _plan_action(as_maya, plan, "unknown").status_code == 422


def test_a_plan_a_manager_proposes_is_agreed_by_the_person(framework, expert, manager):
    role = CareerRole.objects.get(slug="knowledge-author")
    plan = services.create_plan(person=expert, target_role=role, by=manager)
    assert _plan_action(client_for(manager), plan, "agreed").status_code == 422
    assert _plan_action(client_for(expert), plan, "agreed").status_code == 302


def test_a_second_open_plan_towards_the_same_role_is_refused(framework, staff):
    role = CareerRole.objects.get(slug="data-analyst")
    client = client_for(staff)
    assert (
        client.post(f"/skills/people/{staff.pk}/plans", {"target_role": role.pk}).status_code == 302
    )
    response = client.post(f"/skills/people/{staff.pk}/plans", {"target_role": role.pk})
    assert response.status_code == 422
    assert "already an open plan" in response.content.decode()


def test_plan_pages_of_others_are_404(framework, staff, second_expert, outsider, manager):
    plan = services.create_plan(
        person=staff, target_role=CareerRole.objects.get(slug="ai-trainer"), by=staff
    )
    assert client_for(second_expert).get(f"/skills/plans/{plan.pk}/").status_code == 404
    assert client_for(outsider).get(f"/skills/plans/{plan.pk}/").status_code == 404
    assert _plan_action(client_for(outsider), plan, "agreed").status_code == 404
    page = client_for(manager).get(f"/skills/plans/{plan.pk}/")
    assert page.status_code == 200
    assert "Mark the plan agreed" in page.content.decode()


def test_review_requests_on_a_plan(framework, staff, manager):
    plan = services.create_plan(
        person=staff, target_role=CareerRole.objects.get(slug="ai-trainer"), by=staff
    )
    as_sam = client_for(staff)
    # A draft plan has nothing to review yet.
    assert as_sam.post(f"/skills/plans/{plan.pk}/reviews", {"note": "x"}).status_code == 422
    services.transition_plan(plan=plan, to="agreed", actor=manager)
    assert (
        as_sam.post(f"/skills/plans/{plan.pk}/reviews", {"note": "how am I doing?"}).status_code
        == 302
    )
    assert as_sam.post(f"/skills/plans/{plan.pk}/reviews", {"note": "again"}).status_code == 422
    reviews = client_for(manager).get("/skills/reviews/").content.decode()
    assert "how am I doing?" in reviews
    review = PlanReview.objects.get()
    response = client_for(manager).post(
        f"/skills/plan-reviews/{review.pk}/answer", {"response": "On track."}
    )
    assert response.status_code == 302
    review.refresh_from_db()
    assert (review.resolved_by, review.response) == (manager, "On track.")


def test_plans_by_api(framework, staff, manager):
    as_sam = token_client(staff)
    response = as_sam.post(
        "/api/v1/people/sam/plans", {"target_role": "ai-trainer"}, content_type="application/json"
    )
    assert response.status_code == 201
    plan_id = response.json()["id"]
    bad = as_sam.post(
        f"/api/v1/skills/plans/{plan_id}/transition", {"to": "done"},
        content_type="application/json",
    )  # fmt: skip
    assert bad.status_code == 422
    assert "can't become done" in bad.json()["detail"]
    ok = token_client(manager).post(
        f"/api/v1/skills/plans/{plan_id}/transition", {"to": "agreed"},
        content_type="application/json",
    )  # fmt: skip
    assert ok.status_code == 200
    assert ok.json()["state"] == "agreed"
    unknown = as_sam.post(
        "/api/v1/people/sam/plans", {"target_role": "astronaut"}, content_type="application/json"
    )
    assert unknown.status_code == 422
    assert token_client(staff).get("/api/v1/people/maya/plans").status_code == 404


def test_the_framework_is_edited_by_organisation_admins_only(framework, admin, manager):
    assert client_for(manager).get("/skills/framework/").status_code == 403
    client = client_for(admin)
    assert client.get("/skills/framework/").status_code == 200
    skill = services.create_skill(
        area=services.create_area(slug="x", name="X"), slug="sx", name="Skill X"
    )
    level = services.add_level(skill=skill, name="Aware")
    url = f"/skills/framework/skills/{skill.pk}/"
    assert client.get(url).status_code == 200
    bad = client.post(url, {"save": "rule", "rule-level": level.pk, "rule-kind": "cases.peer_kappa",
                            "rule-params": '{"colour": "red"}', "rule-min_count": 1})  # fmt: skip
    assert bad.status_code == 422
    assert "takes no parameter colour" in bad.content.decode()
    no_figure = client.post(url, {"save": "rule", "rule-level": level.pk,
                                  "rule-kind": "rules.rationales_reused", "rule-params": "{}",
                                  "rule-min_count": 1, "rule-min_value": 0.5})  # fmt: skip
    assert no_figure.status_code == 422
    good = client.post(url, {"save": "rule", "rule-level": level.pk,
                             "rule-kind": "cases.peer_kappa", "rule-params": "{}",
                             "rule-min_count": 4, "rule-min_value": 0.6, "rule-period_days": 30})  # fmt: skip
    assert good.status_code == 302
    rule = EvidenceRule.objects.get(level=level)
    assert (rule.min_count, rule.min_value, rule.period_days) == (4, 0.6, 30)
    framework_json = token_client(manager).get("/api/v1/skills/framework").json()
    assert "skills.manual" in framework_json["kinds"]
    assert any(s["slug"] == "sx" for s in framework_json["skills"])


def test_paths_list_the_roles_skills_in_suggested_order(framework, expert):
    page = client_for(expert).get("/skills/paths/").content.decode()
    section = page.split('id="role-orchestration-designer"')[1]
    # Authoring rules comes before training models, which comes before designing orchestrations.
    assert section.index("Authoring rules") < section.index("Training models")
    assert section.index("Training models") < section.index("Designing orchestrations")


def test_the_api_says_what_is_missing_and_links_the_rows(framework, team, expert):
    process = make_process(team)
    cases = make_cases(process, 6)
    for case in cases:
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    services.refresh_person(person=expert)
    body = token_client(expert).get("/api/v1/people/erin/skills").json()
    deciding = next(s for s in body["skills"] if s["skill"] == "deciding-cases")
    assert deciding["level"] == {"rank": 1, "name": "Aware"}
    # Practising: 50 decisions in 90 days (6 so far) with agreement ≥ 0.8 (1.0 so far).
    assert deciding["missing"] == ["decide 44 more cases over the last 90 days"]
    first = deciding["evidence"][0]
    assert (first["kind"], first["count"], first["value"], first["met"]) == (
        "cases.decisions_agree", 6, 1.0, True,
    )  # fmt: skip
    assert {ref["url"] for ref in first["refs"]} == {f"/cases/{c.pk}/" for c in cases}


def test_a_manager_reviews_only_their_teams_evidence(framework, staff, manager, outsider):
    from apps.skills.models import Skill

    skill = Skill.objects.get(slug="analysing-data")
    services.submit_manual_evidence(person=staff, skill=skill, kind="course", title="SQL 101")
    services.submit_manual_evidence(person=outsider, skill=skill, kind="course", title="Excel")
    page = client_for(manager).get("/skills/reviews/").content.decode()
    assert "SQL 101" in page
    assert "Excel" not in page
    assert client_for(staff).get("/skills/reviews/").status_code == 403


def test_an_outsider_cannot_propose_a_plan(framework, staff, outsider):
    response = token_client(outsider).post(
        "/api/v1/people/sam/plans", {"target_role": "ai-trainer"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert not Plan.objects.exists()


def test_framework_edits_refuse_a_skill_or_role_pointing_at_itself(framework, admin):
    from apps.skills.models import Skill

    client = client_for(admin)
    skill = Skill.objects.get(slug="authoring-rules")
    response = client.post(
        f"/skills/framework/skills/{skill.pk}/",
        {"save": "skill", "skill-area": skill.area_id, "skill-name": "Authoring rules",
         "skill-prerequisites": [skill.pk]},
    )  # fmt: skip
    assert response.status_code == 422
    role = CareerRole.objects.get(slug="rule-author")
    response = client.post(
        f"/skills/framework/roles/{role.pk}/",
        {"save": "role", "role-name": "Rule author", "role-leads_to": [role.pk]},
    )
    assert response.status_code == 422
    response = client.post(
        f"/skills/framework/skills/{skill.pk}/",
        {"save": "level", "level-name": "Master", "level-match": "all"},
    )
    assert response.status_code == 302
    assert skill.levels.order_by("-rank").first().rank == 5
