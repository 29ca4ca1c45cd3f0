"""The team skills matrix (page and API): people by skills with levels and the evidence behind
them, single points of failure (a skill held at a level by one person only, a process with one
active expert), plans to review, and a number of queries that doesn't grow with the team."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.cases.models import Decision
from apps.cases.services.decisions import record_decision
from apps.people.models import Role
from apps.skills import matrix, services
from tests.api.conftest import token_client
from tests.conftest import client_for
from tests.factories import make_cases, make_member, make_process


@pytest.fixture
def small_framework(db):
    """Deciding: Aware with 1 agreeing decision, Practising with 3. Authoring: manual only."""
    area = services.create_area(slug="knowledge", name="Knowledge")
    deciding = services.create_skill(area=area, slug="deciding", name="Deciding cases")
    aware = services.add_level(skill=deciding, name="Aware")
    services.add_rule(level=aware, kind="cases.decisions_agree", min_count=1)
    practising = services.add_level(skill=deciding, name="Practising")
    services.add_rule(level=practising, kind="cases.decisions_agree", min_count=3)
    authoring = services.create_skill(area=area, slug="authoring", name="Authoring rules")
    services.add_rule(level=services.add_level(skill=authoring, name="Aware"), kind="skills.manual")
    return deciding


def _decide(process, expert, count):
    for case in make_cases(process, count):
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")


@pytest.fixture
def scenario(small_framework, team, expert, second_expert, manager, staff):
    """erin decides 3 invoices (Practising), eli 1 (Aware); only erin decides refunds lately:
    eli's refund 40 days ago and his undone one don't count. sam asks for a plan."""
    invoices = make_process(team, slug="invoices")
    refunds = make_process(team, slug="refunds")
    _decide(invoices, expert, 3)
    _decide(invoices, second_expert, 1)
    _decide(refunds, expert, 2)
    _decide(refunds, second_expert, 2)
    old, undone = Decision.objects.filter(case__process=refunds, expert=second_expert)
    Decision.objects.filter(pk=old.pk).update(decided_at=timezone.now() - timedelta(days=40))
    Decision.objects.filter(pk=undone.pk).update(retracted_at=timezone.now())
    for person in (expert, second_expert, manager, staff):
        services.refresh_person(person=person)
    role = services.create_role(slug="trainer", name="Trainer")
    services.create_plan(person=staff, target_role=role, by=staff)
    return invoices, refunds


def test_a_skill_held_at_practising_by_one_person_is_a_single_point_of_failure(
    scenario, team, expert
):
    data = matrix.team_matrix(team=team)
    assert [(s.skill.slug, s.holder, s.level.name) for s in data.skill_spofs] == [
        ("deciding", expert, "Practising")
    ]
    assert [s.slug for s in data.uncovered] == ["authoring"]
    # From Aware up, both erin and eli hold it: nobody alone.
    assert matrix.team_matrix(team=team, min_rank=1).skill_spofs == []


def test_a_process_decided_by_one_expert_in_30_days_is_a_single_point_of_failure(scenario, team):
    data = matrix.team_matrix(team=team)
    assert [(p.slug, p.expert, p.decisions) for p in data.process_spofs] == [("refunds", "erin", 2)]
    # Counted 50 days on, nobody has decided anything lately: no process rests on one expert.
    later = matrix.team_matrix(team=team, now=timezone.now() + timedelta(days=50))
    assert later.process_spofs == []


def test_the_matrix_rows_carry_each_level_and_its_evidence(scenario, team, expert, second_expert):
    data = matrix.team_matrix(team=team)
    assert [row.person.username for row in data.rows] == ["eli", "erin", "maya", "sam"]
    cells = {
        (row.person.username, cell.skill.slug): cell for row in data.rows for cell in row.cells
    }
    erin = cells[("erin", "deciding")]
    assert (erin.rank, erin.level.name) == (2, "Practising")
    assert [(e.count, e.met) for e in erin.evidence] == [(5, True)]
    assert cells[("eli", "deciding")].rank == 1
    assert cells[("sam", "deciding")].level is None
    assert "no level yet" in cells[("sam", "deciding")].title


def test_the_manager_sees_the_matrix_page_with_evidence_on_focus_and_the_spofs(
    scenario, small_framework, team, manager, expert
):
    response = client_for(manager).get(f"/skills/teams/{team.slug}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Single points of failure (2)" in page
    skills_spofs = page.split('data-spof="skills"')[1].split("</ul>")[0]
    assert "Deciding cases" in skills_spofs
    assert "erin" in skills_spofs
    processes = page.split('data-spof="processes"')[1].split("</ul>")[0]
    assert "Refunds" in processes
    assert "only erin (2 decisions" in processes
    # A level is a <details> (keyboard and touch) whose summary has a title (hover); its evidence
    # is loaded into it when the cell is hovered, focused or opened (and linked without JS).
    assert '<summary title="Deciding cases: Practising">2. Practising</summary>' in page
    assert "— measured 5" not in page
    erin = f"/skills/teams/{team.slug}/people/{expert.pk}/skills/{small_framework.pk}/"
    assert f'hx-get="{erin}"' in page
    assert f'<a href="{erin}">The evidence</a>' in page
    assert 'class="table-scroll skills-matrix"' in page
    assert "waits for a manager to agree" in page
    # From Aware up, only the process is left.
    page = client_for(manager).get(f"/skills/teams/{team.slug}/?level=1").content.decode()
    assert "Single points of failure (1)" in page
    assert "No skill rests on one person at this level." in page


def test_a_cells_evidence_is_a_fragment_for_htmx_and_a_page_without_it(
    scenario, small_framework, team, manager, expert, staff
):
    url = f"/skills/teams/{team.slug}/people/{expert.pk}/skills/{small_framework.pk}/"
    fragment = client_for(manager).get(url, headers={"HX-Request": "true"}).content.decode()
    assert fragment.strip().startswith('<ul class="matrix-evidence">')
    assert "<html" not in fragment
    assert "— measured 5, agreement 1.00</li>" in fragment
    assert "<li>Since " in fragment
    page = client_for(manager).get(url).content.decode()
    assert "<h1>Deciding cases: erin</h1>" in page
    assert "— measured 5, agreement 1.00</li>" in page
    # sam holds no level in it.
    sams = f"/skills/teams/{team.slug}/people/{staff.pk}/skills/{small_framework.pk}/"
    assert "<li>No level yet.</li>" in client_for(manager).get(sams).content.decode()


def test_a_cells_evidence_is_only_for_the_teams_managers_and_its_people(
    scenario, small_framework, team, manager, expert, outsider
):
    url = f"/skills/teams/{team.slug}/people/{expert.pk}/skills/{small_framework.pk}/"
    assert client_for(expert).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    as_maya = client_for(manager)
    stranger = f"/skills/teams/{team.slug}/people/{outsider.pk}/skills/{small_framework.pk}/"
    assert as_maya.get(stranger).status_code == 404
    assert as_maya.get(url.replace(f"/{small_framework.pk}/", "/999999/")).status_code == 404
    assert as_maya.get(url).status_code == 200


def test_the_api_gives_the_matrix_and_its_spofs(scenario, team, manager):
    response = token_client(manager).get(f"/api/v1/teams/{team.slug}/skills")
    assert response.status_code == 200
    body = response.json()
    assert body["min_rank"] == 2
    assert [s["slug"] for s in body["skills"]] == ["deciding", "authoring"]
    erin = next(p for p in body["people"] if p["username"] == "erin")
    deciding = next(c for c in erin["skills"] if c["skill"] == "deciding")
    assert deciding["level"] == {"rank": 2, "name": "Practising"}
    assert deciding["evidence"][0]["count"] == 5
    spofs = body["single_points_of_failure"]
    assert spofs["skills"] == [
        {"skill": "deciding", "holder": "erin", "level": {"rank": 2, "name": "Practising"}}
    ]
    assert [(p["process"], p["expert"], p["decisions"]) for p in spofs["processes"]] == [
        ("refunds", "erin", 2)
    ]
    assert spofs["uncovered"] == ["authoring"]
    assert [(p["person"], p["waits_for_agreement"]) for p in body["plans"]] == [("sam", True)]
    at_one = token_client(manager).get(f"/api/v1/teams/{team.slug}/skills?min_rank=1").json()
    assert at_one["single_points_of_failure"]["skills"] == []


def _grow(team, invoices, count):
    for _ in range(count):
        person = make_member(team, Role.EXPERT)
        _decide(invoices, person, 3)
        services.refresh_person(person=person)


def test_the_matrix_takes_the_same_number_of_queries_for_a_bigger_team(
    scenario, team, manager, django_assert_max_num_queries
):
    invoices, _ = scenario
    client, api = client_for(manager), token_client(manager)
    page_url, api_url = f"/skills/teams/{team.slug}/", f"/api/v1/teams/{team.slug}/skills"
    client.get(page_url)  # warm the session and caches
    api.get(api_url)
    with CaptureQueriesContext(connection) as page_queries:
        assert client.get(page_url).status_code == 200
    with CaptureQueriesContext(connection) as api_queries:
        assert api.get(api_url).status_code == 200
    _grow(team, invoices, 8)  # 4 people become 12
    with django_assert_max_num_queries(len(page_queries)):
        page = client.get(page_url)
    assert page.content.decode().count('<th scope="row">') == 12
    with django_assert_max_num_queries(len(api_queries)):
        body = api.get(api_url).json()
    assert len(body["people"]) == 12
    assert len(page_queries) <= 25  # a dozen reads of its own, plus session and navigation
