"""Issue 11: a NUL character typed (pasted) into a page's form or query loses nothing: it is
removed, the request goes on with everything else as typed, and the page says which field it was
removed from (a message on a page or after a redirect, an out-of-band toast in an htmx fragment).
No page answers 500 because of one (path, query, form, cookie); the API keeps its 422 with `loc`."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.cases.models import Decision, ImportJob, Process
from apps.orchestrations.models import SiteChange
from apps.orchestrations.services import create_orchestration
from tests.conftest import client_for
from tests.factories import (
    INVOICE_DECISIONS,
    INVOICE_FIELDS,
    make_cases,
    make_process,
    schema_form_data,
)

NUL = "\x00"
HTMX = {"HX-Request": "true"}


def removed_from(*fields: str) -> str:
    names = ", ".join(f"“{field}”" for field in fields)
    return f"A NUL character (invisible, usually from a paste) was removed from {names}"


@pytest.fixture
def process(team):
    return make_process(team)


def process_form(team, **overrides):
    return {
        "team": str(team.pk),
        "name": "Supplier onboarding",
        "slug": "",
        "description": "New vendor checks",
        "minutes_per_case": "4",
        "overlap": "2",
        "priority_field": "amount",
        "priority_descending": "on",
        **schema_form_data(INVOICE_FIELDS, INVOICE_DECISIONS),
        **overrides,
    }


def test_a_review_rationale_with_a_nul_is_recorded_without_it_and_the_fragment_says_so(
    process, expert
):
    (case,) = make_cases(process, 1)
    client = client_for(expert)
    client.get(reverse("review", args=[process.slug]))

    response = client.post(
        reverse("review_decide", args=[process.slug, case.pk]),
        {"label": "reject", "reason_code": "duplicate", "rationale": f"same invoice{NUL} twice"},
        headers=HTMX,
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="toasts" hx-swap-oob="beforeend"' in body
    assert removed_from("rationale") in body
    decision = Decision.objects.get(case=case)
    assert (decision.label, decision.reason_code, decision.rationale) == (
        "reject",
        "duplicate",
        "same invoice twice",
    )
    # Told once: the next page shows no leftover message.
    assert removed_from("rationale") not in client.get("/").content.decode()


def test_a_review_without_javascript_redirects_and_the_next_page_says_so(process, expert):
    (case,) = make_cases(process, 1)
    client = client_for(expert)
    client.get(reverse("review", args=[process.slug]))

    response = client.post(
        reverse("review_decide", args=[process.slug, case.pk]),
        {"label": "request_info", "rationale": f"{NUL}ask for the PO"},
        follow=True,
    )

    assert response.redirect_chain[0][1] == 302
    assert response.status_code == 200
    assert removed_from("rationale") in response.content.decode()
    assert Decision.objects.get(case=case).rationale == "ask for the PO"


def test_a_process_form_with_nuls_creates_the_process_with_the_other_values_as_typed(manager, team):
    response = client_for(manager).post(
        reverse("process_create"),
        process_form(team, name=f"Supplier{NUL} onboarding", description=f"New vendor{NUL} checks"),
        follow=True,
    )

    assert response.status_code == 200
    assert removed_from("name", "description") in response.content.decode()
    process = Process.objects.get(slug="supplier-onboarding")
    assert (process.name, process.description, process.overlap, process.minutes_per_case) == (
        "Supplier onboarding",
        "New vendor checks",
        2,
        4,
    )


def test_an_invalid_process_form_with_a_nul_re_renders_with_every_typed_value_and_the_notice(
    manager, team
):
    response = client_for(manager).post(
        reverse("process_create"),
        process_form(team, name=f"Supplier onboarding{NUL}", overlap="0"),
    )

    assert response.status_code == 422
    body = response.content.decode()
    assert removed_from("name") in body
    assert 'value="Supplier onboarding"' in body
    assert "New vendor checks" in body
    assert 'value="4"' in body
    assert not Process.objects.exists()


def test_the_site_form_keeps_the_site_and_records_the_reason_without_the_nul(
    admin, process, manager
):
    orchestration = create_orchestration(
        process=process, slug="invoice-flow", name="Invoice flow", owner=manager
    )

    response = client_for(admin).post(
        reverse("orchestration_site", args=[orchestration.slug]),
        {"site": "branch-3", "reason": f"residency{NUL}"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert removed_from("reason") in response.content.decode()
    change = SiteChange.objects.get()
    assert (change.to_site, change.reason) == ("branch-3", "residency")


def test_an_uploaded_file_named_with_a_nul_is_stored_under_the_name_without_it(manager, process):
    upload = SimpleUploadedFile(
        f"cases{NUL}.csv", b"external_id,vendor,amount,po_status\nINV-1,Acme GmbH,10,missing\n"
    )

    response = client_for(manager).post(
        reverse("process_upload", args=[process.slug]),
        {"file": upload, "file_format": "auto"},
        follow=True,
    )

    assert response.status_code == 200
    # Django's upload parser drops it already: nothing to say, and no 500 from the storage.
    assert "A NUL character" not in response.content.decode()
    stored = ImportJob.objects.get().file.name
    assert stored.startswith("imports/")
    assert stored.rsplit("/", 1)[-1].startswith("cases")
    assert NUL not in stored


def test_a_nul_in_a_page_query_is_removed_and_the_page_says_so(admin, process):
    response = client_for(admin).get(f"/processes/{process.slug}/?next=a%00b&q=%00")

    assert response.status_code == 200
    assert removed_from("next", "q") in response.content.decode()
    assert response.wsgi_request.GET.dict() == {"next": "ab", "q": ""}
    assert response.wsgi_request.META["QUERY_STRING"] == "next=ab&q="


def test_a_nul_in_a_login_form_is_removed_before_the_login_is_checked(db):
    response = Client().post("/login/", {"username": f"ada{NUL}", "password": "wrong"})

    assert response.status_code == 200
    body = response.content.decode()
    assert removed_from("username") in body
    assert 'value="ada"' in body


def test_no_page_answers_500_for_a_nul_in_the_path_query_or_a_cookie(admin, manager, process):
    create_orchestration(process=process, slug="invoice-flow", name="Invoice flow", owner=manager)
    client = client_for(admin)

    paths = [
        f"/processes/{process.slug}%00/",
        "/processes/%00/edit/",
        "/orchestrations/invoice%00flow/",
        "/no/such/%00/",
    ]
    for path in paths:
        assert client.get(path).status_code == 404, path
    runs = client.get("/orchestrations/invoice-flow/?external_id=A%00-1&version=%001")
    assert runs.status_code == 200
    assert runs.context["run_filters"] == {"external_id": "A-1", "outcome": "", "version": 1}
    forged = Client()
    forged.cookies["sessionid"] = f"abcdefgh{NUL}ijklmnop"
    assert forged.get("/").status_code == 302  # not signed in: to the login page


def test_the_api_still_refuses_a_nul_with_422_and_its_location(manager, process):
    client = client_for(manager)

    body = client.post(
        "/api/v1/processes",
        {"team": "ap", "name": f"Bad{NUL}name", "slug": "bad"},
        content_type="application/json",
    )
    query = client.get("/api/v1/orchestrations/x/runs?external_id=a%00b")

    assert body.status_code == 422
    assert body.json()["errors"][0]["loc"] == ["body", "name"]
    assert query.status_code == 422
    assert query.json()["errors"][0]["loc"] == ["query", "external_id"]
    assert not Process.objects.filter(slug="bad").exists()
