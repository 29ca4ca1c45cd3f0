"""The assessment, first-battle, roadmap, report and criteria pages: who may read and change
them, forms with errors (422), and a recorded assessment's diff."""

import pytest
from django.urls import reverse

from apps.capital.models import Assessment, ListedAsset, PhaseCriterion
from tests.conftest import client_for
from tests.factories import make_decided_cases, make_process

PAGES = ["capital_assessment", "capital_battle", "capital_roadmap", "capital_report"]


@pytest.fixture
def process(team, expert):
    process = make_process(team)
    make_decided_cases(process, expert, 12)
    return process


def _url(name: str, team) -> str:
    return reverse(name, kwargs={"team_slug": team.slug})


@pytest.mark.parametrize("name", PAGES)
def test_members_read_every_page_and_outsiders_get_404(
    name, team, process, manager, expert, staff, outsider, client
):
    url = _url(name, team)
    assert client_for(manager).get(url).status_code == 200
    assert client_for(expert).get(url).status_code == 200
    assert client_for(staff).get(url).status_code == 200
    assert client_for(outsider).get(url).status_code == 404
    assert client.get(url).status_code == 302  # to the login page


def test_only_editors_see_the_forms(team, process, manager, expert):
    url = _url("capital_assessment", team)
    assert b"Record assessment" in client_for(manager).get(url).content
    assert b"Record assessment" not in client_for(expert).get(url).content


def test_a_reader_cannot_post(team, process, expert):
    response = client_for(expert).post(
        _url("capital_assessment", team),
        {"action": "asset", "asset-name": "srv", "asset-asset_class": "server"},
    )
    assert response.status_code == 403
    assert not ListedAsset.objects.exists()


def test_listing_a_machine_and_the_errors_of_a_bad_one(team, process, manager):
    as_manager = client_for(manager)
    url = _url("capital_assessment", team)
    ok = as_manager.post(
        url, {"action": "asset", "asset-name": "render-2", "asset-asset_class": "gpu",
              "asset-site": "branch 3"},
    )  # fmt: skip
    assert ok.status_code == 302
    assert ListedAsset.objects.get(team=team).site == "branch 3"
    bad = as_manager.post(
        url, {"action": "asset", "asset-name": "render-2", "asset-asset_class": "toaster"}
    )
    assert bad.status_code == 422
    assert b"Select a valid choice" in bad.content
    twice = as_manager.post(
        url, {"action": "asset", "asset-name": "RENDER-2", "asset-asset_class": "gpu"}
    )
    assert twice.status_code == 422
    assert b"already listed" in twice.content
    assert ListedAsset.objects.count() == 1


def test_a_named_process_with_a_negative_estimate_is_refused(team, process, manager):
    response = client_for(manager).post(
        _url("capital_assessment", team),
        {"action": "named", "named-name": "Vendor onboarding", "named-cases_per_week": "-3"},
    )
    assert response.status_code == 422
    assert b"greater than or equal to 0" in response.content


def test_answers_to_unknown_questions_do_nothing_and_long_ones_are_refused(team, process, manager):
    url = _url("capital_assessment", team)
    response = client_for(manager).post(url, {"action": "answers", "q-data.sources": "x" * 4001})
    assert response.status_code == 422
    assert b"at most 4000 characters" in response.content
    saved = client_for(manager).post(
        url, {"action": "answers", "q-data.sources": "SAP, SharePoint"}
    )
    assert saved.status_code == 302
    assert b"SAP, SharePoint" in client_for(manager).get(url).content


def test_recording_twice_shows_what_changed(team, process, manager, expert):
    as_manager = client_for(manager)
    url = _url("capital_assessment", team)
    assert as_manager.post(url, {"action": "record", "record-note": "first"}).status_code == 302
    as_manager.post(url, {"action": "asset", "asset-name": "srv-1", "asset-asset_class": "server"})
    as_manager.post(url, {"action": "answers", "q-data.sources": "the ERP"})
    assert as_manager.post(url, {"action": "record"}).status_code == 302
    assert list(Assessment.objects.values_list("version", flat=True).order_by("version")) == [1, 2]
    page = client_for(expert).get(
        reverse("capital_assessment_version", kwargs={"team_slug": team.slug, "number": 2})
    )
    assert page.status_code == 200
    text = page.content.decode()
    # One machine listed since v1: the count and the row show up as changes.
    assert "infrastructure.assets_listed" in text
    assert "infrastructure.assets[srv-1].class" in text
    assert "the ERP" in text
    missing = client_for(expert).get(
        reverse("capital_assessment_version", kwargs={"team_slug": team.slug, "number": 9})
    )
    assert missing.status_code == 404


def test_battle_weights_form_errors(team, process, manager):
    url = _url("capital_battle", team)
    response = client_for(manager).post(
        url, {"action": "weights", "pain": "0", "data": "0", "stakeholders": "0"}
    )
    assert response.status_code == 422
    assert b"At least one weight must be above 0" in response.content
    response = client_for(manager).post(
        url, {"action": "weights", "pain": "12", "data": "1", "stakeholders": "1"}
    )
    assert response.status_code == 422


def test_choosing_the_first_battle_shows_on_the_roadmap(team, process, manager, expert):
    url = _url("capital_battle", team)
    empty = client_for(manager).post(url, {"action": "choose", "candidate": "process:invoices"})
    assert empty.status_code == 422  # the reason is required
    chosen = client_for(manager).post(
        url, {"action": "choose", "candidate": "process:invoices", "reason": "Our worst backlog"}
    )
    assert chosen.status_code == 302
    roadmap = client_for(expert).get(_url("capital_roadmap", team)).content.decode()
    assert "Our worst backlog" in roadmap
    assert "First battle chosen: Invoices" in roadmap


def test_roadmaps_index_lists_the_users_teams(team, other_team, process, manager, admin):
    assert client_for(manager).get(reverse("capital_roadmaps")).content.count(b"Accounts Payable")
    everything = client_for(admin).get(reverse("capital_roadmaps")).content
    assert b"Claims" in everything  # organisation admins see every team


def test_only_organisation_admins_change_criteria(team, manager, admin, team_admin):
    url = reverse("capital_criteria")
    assert client_for(manager).get(url).status_code == 200
    body = {"phase": "1", "kind": "process_decisions", "threshold": "300"}
    assert client_for(manager).post(url, body).status_code == 403
    assert client_for(team_admin).post(url, body).status_code == 403
    assert client_for(admin).post(url, body).status_code == 302
    assert PhaseCriterion.objects.get(phase=1, kind="process_decisions").threshold == 300
    share = client_for(admin).post(url, {"phase": "3", "kind": "reuse_share", "threshold": "30"})
    assert share.status_code == 422
    assert b"A share is between 0 and 1" in share.content
    unknown = client_for(admin).post(url, {"phase": "9", "kind": "nope", "threshold": "1"})
    assert unknown.status_code == 422


def test_the_dashboard_tab_only_for_those_who_may_open_it(team, process, manager, expert):
    dashboard = f'href="{reverse("capital_dashboard", kwargs={"team_slug": team.slug})}"'.encode()
    assert dashboard in client_for(manager).get(_url("capital_roadmap", team)).content
    assert dashboard not in client_for(expert).get(_url("capital_roadmap", team)).content


def test_removing_a_listed_item(team, process, manager):
    as_manager = client_for(manager)
    url = _url("capital_assessment", team)
    as_manager.post(url, {"action": "source", "source-name": "erp"})
    source = team.capital_data_sources.get()
    assert (
        as_manager.post(url, {"action": "remove", "kind": "source", "item": "x"}).status_code == 422
    )
    assert (
        as_manager.post(url, {"action": "remove", "kind": "disk", "item": source.pk}).status_code
        == 422
    )
    ok = as_manager.post(url, {"action": "remove", "kind": "source", "item": source.pk})
    assert ok.status_code == 302
    assert not team.capital_data_sources.exists()


def test_the_roadmap_endpoints_are_in_the_openapi_schema(manager):
    paths = client_for(manager).get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/teams/{slug}/roadmap"]
    assert "404" in paths["/api/v1/teams/{slug}/roadmap"]["get"]["responses"]
    assert "get" in paths["/api/v1/teams/{slug}/first-battle"]


def test_page_level_errors_are_422_not_500(team, process, manager, admin):
    battle = client_for(manager).post(_url("capital_battle", team), {"action": "refresh"})
    assert battle.status_code == 422
    assert b"No first battle is chosen" in battle.content
    odd = client_for(manager).post(_url("capital_battle", team), {"action": "dance"})
    assert odd.status_code == 422
    criteria = client_for(admin).post(reverse("capital_criteria"), {"remove": "nope"})
    assert criteria.status_code == 422
    assert b"No such criterion" in criteria.content


def test_reading_the_roadmap_writes_nothing_and_the_hourly_refresh_advances_it(
    team, process, manager
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.capital import services_roadmap as services
    from apps.capital.models import PhaseEntry
    from apps.capital.snapshots import refresh_recent

    # Phase 1 down to "an assessment recorded", and one is recorded: phase 1 is done.
    PhaseCriterion.objects.filter(phase=1).exclude(kind="assessment_recorded").delete()
    services.record_assessment(team=team, by=manager)
    reader = client_for(manager)
    reads = [
        _url("capital_roadmap", team),
        reverse("capital_roadmaps"),
        f"/api/v1/teams/{team.slug}/roadmap",
    ]
    with CaptureQueriesContext(connection) as queries:
        for url in reads:
            assert reader.get(url).status_code == 200
    writes = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert not PhaseEntry.objects.exists()
    before = reader.get(f"/api/v1/teams/{team.slug}/roadmap").json()
    # Phase 1 is dated from the team's start even before the first refresh wrote it.
    assert (before["current_phase"], before["phases"][0]["entered_at"] is not None) == (1, True)

    refresh_recent()  # what beat runs every hour
    assert list(PhaseEntry.objects.filter(team=team).values_list("phase", flat=True)) == [1, 2]
    after = reader.get(f"/api/v1/teams/{team.slug}/roadmap").json()
    assert after["current_phase"] == 2
