"""Who sees whose skills, pages and API. Only a person, their managers (managers and admins of one of
their teams) and organisation admins see their levels and evidence; experts don't see each
other's accuracy; the team matrix is for the team's managers and admins (a member in another role
gets 403, anyone outside the team 404, as the team pages do); only organisation admins import the
framework."""

import json

import pytest

from apps.cases.services.decisions import record_decision
from apps.people.models import Role
from apps.people.services import add_member
from apps.skills import services
from apps.skills.demo import seed_skills
from tests.api.conftest import token_client
from tests.conftest import client_for
from tests.factories import make_cases, make_process

PERSONAS = ["expert", "second_expert", "manager", "staff", "admin", "team_admin", "outsider"]


@pytest.fixture
def measured(db, team, expert, second_expert):
    """Both experts decided cases; their accuracy is measured (the evidence is stored)."""
    seed_skills()
    process = make_process(team)
    cases = make_cases(process, 8)
    for case in cases[:6]:
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    for case in cases[6:]:
        record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")
    services.refresh_person(person=expert)
    services.refresh_person(person=second_expert)
    return process


# Viewer → status for erin's skills page and API (her levels, evidence and agreement figures).
ERINS_SKILLS = {
    "expert": 200, "second_expert": 404, "manager": 200, "staff": 404, "admin": 200,
    "team_admin": 200, "outsider": 404,
}  # fmt: skip


@pytest.mark.parametrize("viewer", PERSONAS)
def test_a_persons_levels_and_evidence_by_page_and_api(measured, request, expert, viewer):
    user = request.getfixturevalue(viewer)
    page = client_for(user).get(f"/skills/people/{expert.pk}/")
    api = token_client(user).get(f"/api/v1/people/{expert.username}/skills")
    plans = token_client(user).get(f"/api/v1/people/{expert.username}/plans")
    assert (page.status_code, api.status_code, plans.status_code) == (ERINS_SKILLS[viewer],) * 3
    if api.status_code == 200:
        deciding = next(s for s in api.json()["skills"] if s["skill"] == "deciding-cases")
        assert deciding["level"] == {"rank": 1, "name": "Aware"}


# Viewer → status for team ap's skills matrix, page and API.
MATRIX = {
    "expert": 403, "second_expert": 403, "manager": 200, "staff": 403, "admin": 200,
    "team_admin": 200, "outsider": 404,
}  # fmt: skip


@pytest.mark.parametrize("viewer", PERSONAS)
def test_the_team_matrix_is_for_the_teams_managers_and_admins(measured, request, team, viewer):
    user = request.getfixturevalue(viewer)
    page = client_for(user).get(f"/skills/teams/{team.slug}/")
    api = token_client(user).get(f"/api/v1/teams/{team.slug}/skills")
    assert (page.status_code, api.status_code) == (MATRIX[viewer],) * 2


def test_experts_dont_see_each_others_accuracy_anywhere(measured, expert, second_expert, manager):
    # eli's evidence (his agreement on the cases he decided) links to those cases: his manager
    # sees them on his page; erin's own page shows only hers.
    elis_cases = [f'href="/cases/{pk}/"' for pk in measured.cases.filter(
        decisions__expert=second_expert).values_list("pk", flat=True)]  # fmt: skip
    elis_page = client_for(manager).get(f"/skills/people/{second_expert.pk}/").content.decode()
    assert all(link in elis_page for link in elis_cases)
    as_erin = client_for(expert)
    own = as_erin.get("/skills/").content.decode()
    assert not any(link in own for link in elis_cases)
    assert as_erin.get(f"/skills/people/{second_expert.pk}/").status_code == 404
    assert token_client(expert).get("/api/v1/people/eli/skills").status_code == 404
    assert token_client(expert).get("/api/v1/teams/ap/skills").status_code == 403
    assert as_erin.get("/skills/teams/").status_code == 403
    assert as_erin.get("/skills/reviews/").status_code == 403


def test_a_manager_of_one_team_sees_neither_another_teams_matrix_nor_its_people(
    measured, other_team, manager, outsider
):
    # maya manages ap; otto (claims) is no one she manages; in claims she is an expert only.
    as_maya = client_for(manager)
    assert as_maya.get(f"/skills/teams/{other_team.slug}/").status_code == 404
    assert as_maya.get(f"/skills/people/{outsider.pk}/").status_code == 404
    add_member(team=other_team, user=manager, role=Role.EXPERT)
    assert as_maya.get(f"/skills/teams/{other_team.slug}/").status_code == 403
    assert token_client(manager).get(f"/api/v1/teams/{other_team.slug}/skills").status_code == 403
    assert as_maya.get(f"/skills/people/{outsider.pk}/").status_code == 404


def test_the_organisation_admin_sees_every_teams_matrix(measured, other_team, admin, outsider):
    assert client_for(admin).get(f"/skills/teams/{other_team.slug}/").status_code == 200
    page = client_for(admin).get("/skills/teams/").content.decode()
    assert f'href="/skills/teams/{other_team.slug}/"' in page


def test_signed_out_visitors_see_nothing(measured, client, team, expert):
    assert client.get(f"/skills/teams/{team.slug}/").status_code == 302  # to the login page
    assert client.get(f"/skills/people/{expert.pk}/").status_code == 302
    assert client.get("/api/v1/teams/ap/skills").status_code == 401
    assert client.get("/api/v1/people/erin/skills").status_code == 401
    assert client.get("/api/v1/skills/framework").status_code == 401


@pytest.mark.parametrize("viewer", ["expert", "manager", "team_admin", "staff"])
def test_only_organisation_admins_import_or_export_the_framework(measured, request, viewer):
    user = request.getfixturevalue(viewer)
    assert client_for(user).get("/skills/framework/export").status_code == 403
    response = token_client(user).post(
        "/api/v1/skills/framework",
        json.dumps({"areas": [{"slug": "x", "name": "X"}]}),
        content_type="application/json",
    )
    assert response.status_code == 403
