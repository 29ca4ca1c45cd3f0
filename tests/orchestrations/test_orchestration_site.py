"""Pinning an orchestration to a site: shown to its team on the page and in the API, set by an
organisation admin only (a team's manager or admin gets 403 with the reason), a malformed site
refused with 422 and the reason; the pin becomes the runs' placement requirement."""

from django.urls import reverse

from apps.fabric.models import ComputeNode
from apps.orchestrations.execution import requirements_of
from apps.orchestrations.inbound import receive_items
from apps.orchestrations.models import Orchestration
from apps.orchestrations.services import change_stage, create_version
from tests.conftest import client_for


def api_url(orchestration):
    return f"/api/v1/orchestrations/{orchestration.slug}"


def site_url(orchestration):
    return reverse("orchestration_site", args=[orchestration.slug])


def site_of(orchestration):
    return Orchestration.objects.get(pk=orchestration.pk).site


def test_an_org_admin_pins_it_through_the_api_and_new_runs_carry_the_site(
    admin, manager, orchestration
):
    version = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=version, stage="live", actor=manager)

    answer = client_for(admin).patch(
        api_url(orchestration),
        {"site": " branch-3 ", "reason": "branch data stays in branch 3"},
        content_type="application/json",
    )

    assert answer.status_code == 200
    assert answer.json()["site"] == "branch-3"
    assert answer.json()["site_nodes"] == 0
    assert site_of(orchestration) == "branch-3"
    # Read by the team; the runs' placement asks for nodes of that site (none here: it waits).
    shown = client_for(manager).get(api_url(orchestration)).json()
    assert (shown["site"], shown["site_nodes"]) == ("branch-3", 0)
    listed = client_for(manager).get("/api/v1/orchestrations").json()
    assert listed[0]["site"] == "branch-3"
    (run,) = receive_items(
        orchestration=Orchestration.objects.get(pk=orchestration.pk),
        items=[{"external_id": "A-1", "fields": {"vendor": "Acme GmbH", "amount": 10}}],
    )[0].runs
    assert requirements_of(run) == {"labels": {"site": "branch-3"}}
    # "" unpins.
    cleared = client_for(admin).patch(
        api_url(orchestration), {"site": "", "reason": "moved"}, content_type="application/json"
    )
    assert cleared.json()["site"] == ""
    assert cleared.json()["site_nodes"] is None


def test_a_team_manager_or_team_admin_gets_403_with_the_reason_and_outsiders_404(
    manager, team_admin, expert, outsider, orchestration
):
    for user in (manager, team_admin, expert):
        answer = client_for(user).patch(
            api_url(orchestration),
            {"site": "branch-3", "reason": "why not"},
            content_type="application/json",
        )
        assert answer.status_code == 403, user
        assert "Only an organisation admin" in answer.json()["detail"]
        page = client_for(user).post(
            site_url(orchestration), {"site": "branch-3", "reason": "why not"}
        )
        assert page.status_code == 403
    hidden = client_for(outsider).patch(
        api_url(orchestration), {"site": "branch-3"}, content_type="application/json"
    )
    assert hidden.status_code == 404
    assert site_of(orchestration) == ""


def test_a_malformed_site_is_422_with_the_reason(admin, orchestration):
    client = client_for(admin)

    bad = client.patch(api_url(orchestration), {"site": "a,b=c"}, content_type="application/json")
    long = client.patch(api_url(orchestration), {"site": "x" * 61}, content_type="application/json")
    page = client.post(site_url(orchestration), {"site": "two\nlines"})
    fragment = client.post(site_url(orchestration), {"site": "a,b"}, headers={"HX-Request": "true"})

    assert bad.status_code == 422
    assert "is not a site label" in bad.json()["detail"]
    assert long.status_code == 422
    assert page.status_code == 422
    assert "is not a site label" in page.content.decode()
    assert "Where its items run" in page.content.decode()
    assert fragment.status_code == 422
    assert b"<html" not in fragment.content
    assert b'aria-invalid="true"' in fragment.content
    assert site_of(orchestration) == ""


def test_the_page_shows_the_site_and_only_an_org_admin_gets_the_form(admin, manager, orchestration):
    ComputeNode.objects.create(
        name="branch-3-box", node_class="server", labels={"site": "branch-3"},
        credential_hash="h" * 64, fingerprint="f" * 64,
    )  # fmt: skip
    detail = reverse("orchestration_detail", args=[orchestration.slug])

    saved = client_for(admin).post(site_url(orchestration), {"site": "branch-3", "reason": "b3"})
    fragment = client_for(admin).post(
        site_url(orchestration), {"site": "branch-3"}, headers={"HX-Request": "true"}
    )
    as_admin = client_for(admin).get(detail).content.decode()
    as_manager = client_for(manager).get(detail).content.decode()

    assert saved.status_code == 302
    assert fragment.status_code == 200
    assert b"Saved: pinned to site branch-3." in fragment.content
    assert "Pinned to site <code>branch-3</code>" in as_admin
    assert "(1 enrolled)" in as_admin
    assert 'name="site"' in as_admin
    assert "Pinned to site <code>branch-3</code>" in as_manager
    assert 'name="site"' not in as_manager
    assert "Only an organisation admin pins" in as_manager
