"""Issue 12: a change of an orchestration's site is a SiteChange row with the actor, the old and
new site and the reason, through the page (plain and htmx) and the API, shown on the page and in
the API's `site_log`; without a reason it is refused with the typed values kept, and anyone but an
organisation admin gets 403 with nothing written."""

from django.urls import reverse

from apps.orchestrations.models import Orchestration, SiteChange
from tests.conftest import client_for


def api_url(orchestration):
    return f"/api/v1/orchestrations/{orchestration.slug}"


def site_url(orchestration):
    return reverse("orchestration_site", args=[orchestration.slug])


def detail_url(orchestration):
    return reverse("orchestration_detail", args=[orchestration.slug])


def changes_of(orchestration):
    return list(
        SiteChange.objects.filter(orchestration=orchestration)
        .order_by("id")
        .values_list("actor__username", "from_site", "to_site", "reason")
    )


def test_the_page_form_writes_the_change_with_actor_old_and_new_site_and_reason(
    admin, manager, orchestration
):
    first = client_for(admin).post(
        site_url(orchestration), {"site": "branch-3", "reason": " Branch 3's data stays there "}
    )
    second = client_for(admin).post(
        site_url(orchestration),
        {"site": "hq", "reason": "branch 3 closed"},
        headers={"HX-Request": "true"},
    )

    assert first.status_code == 302
    assert second.status_code == 200
    assert changes_of(orchestration) == [
        ("ada", "", "branch-3", "Branch 3's data stays there"),
        ("ada", "branch-3", "hq", "branch 3 closed"),
    ]
    # The fragment htmx swaps in carries the log, newest first.
    fragment = second.content.decode()
    assert "<html" not in fragment
    assert fragment.index("branch 3 closed") < fragment.index("Branch 3&#x27;s data stays there")
    # The team sees it where it sees the site.
    page = client_for(manager).get(detail_url(orchestration)).content.decode()
    assert 'id="site-log"' in page
    assert "branch 3 closed" in page
    assert "<td>ada</td>" in page


def test_the_api_writes_the_change_and_lists_it_in_site_log(admin, manager, orchestration):
    answer = client_for(admin).patch(
        api_url(orchestration),
        {"site": "branch-3", "reason": "residency: branch 3"},
        content_type="application/json",
    )
    cleared = client_for(admin).patch(
        api_url(orchestration), {"site": "", "reason": "unpinned"}, content_type="application/json"
    )

    assert answer.status_code == 200
    assert answer.json()["site_log"][0]["reason"] == "residency: branch 3"
    assert cleared.status_code == 200
    assert changes_of(orchestration) == [
        ("ada", "", "branch-3", "residency: branch 3"),
        ("ada", "branch-3", "", "unpinned"),
    ]
    shown = client_for(manager).get(api_url(orchestration)).json()["site_log"]
    assert [(c["actor"], c["from_site"], c["to_site"], c["reason"]) for c in shown] == [
        ("ada", "branch-3", "", "unpinned"),
        ("ada", "", "branch-3", "residency: branch 3"),
    ]
    assert all(c["at"] for c in shown)


def test_a_change_without_a_reason_is_422_with_the_typed_values_kept_and_nothing_written(
    admin, orchestration
):
    client = client_for(admin)

    api = client.patch(api_url(orchestration), {"site": "hq"}, content_type="application/json")
    blank = client.patch(
        api_url(orchestration), {"site": "hq", "reason": "   "}, content_type="application/json"
    )
    page = client.post(site_url(orchestration), {"site": "hq", "reason": ""})
    fragment = client.post(
        site_url(orchestration), {"site": "hq", "reason": " "}, headers={"HX-Request": "true"}
    )

    assert (api.status_code, blank.status_code) == (422, 422)
    assert "reason: say why the site changes" in api.json()["detail"]
    assert page.status_code == 422
    assert 'id="site-reason-error"' in page.content.decode()
    assert 'value="hq"' in page.content.decode()
    assert fragment.status_code == 422
    assert b'aria-describedby="site-reason-error"' in fragment.content
    assert b'value="hq"' in fragment.content
    assert SiteChange.objects.count() == 0
    assert Orchestration.objects.get(pk=orchestration.pk).site == ""


def test_saving_the_same_site_writes_nothing_and_needs_no_reason(admin, orchestration):
    client = client_for(admin)
    client.patch(
        api_url(orchestration), {"site": "hq", "reason": "first"}, content_type="application/json"
    )

    again = client.patch(api_url(orchestration), {"site": " hq "}, content_type="application/json")

    assert again.status_code == 200
    assert changes_of(orchestration) == [("ada", "", "hq", "first")]


def test_anyone_but_an_org_admin_gets_403_and_nothing_is_written(
    manager, team_admin, expert, orchestration
):
    for user in (manager, team_admin, expert):
        api = client_for(user).patch(
            api_url(orchestration),
            {"site": "branch-3", "reason": "because"},
            content_type="application/json",
        )
        page = client_for(user).post(
            site_url(orchestration), {"site": "branch-3", "reason": "because"}
        )
        assert (api.status_code, page.status_code) == (403, 403), user

    assert SiteChange.objects.count() == 0
    assert Orchestration.objects.get(pk=orchestration.pk).site == ""


def test_a_reason_over_2000_characters_is_422(admin, orchestration):
    answer = client_for(admin).patch(
        api_url(orchestration),
        {"site": "hq", "reason": "x" * 2001},
        content_type="application/json",
    )
    page = client_for(admin).post(site_url(orchestration), {"site": "hq", "reason": "x" * 2001})

    assert answer.status_code == 422
    assert page.status_code == 422
    assert "at most 2000 characters" in page.content.decode()
    assert SiteChange.objects.count() == 0
