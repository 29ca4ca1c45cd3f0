"""The cases API: intake, historical decisions, listing with cursors, case detail, decisions."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.cases.models import Case, CaseClaim, CaseStatus, Decision, DecisionSource
from apps.cases.services.decisions import record_decision
from apps.people import services
from tests.conftest import client_for
from tests.factories import make_cases, make_process

CASES_URL = "/api/v1/processes/invoices/cases"
DECISIONS_URL = "/api/v1/processes/invoices/decisions"


def token_client(user) -> Client:
    _, raw = services.create_api_token(user=user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post_json(client: Client, url: str, body: object):
    return client.post(url, json.dumps(body), content_type="application/json")


def row(external_id: str | None = None, amount: object = 120, **extra: object) -> dict:
    data: dict = {"fields": {"vendor": "Acme GmbH", "amount": amount, "po_status": "missing"}}
    if external_id is not None:
        data["external_id"] = external_id
    return {**data, **extra}


# --- intake -------------------------------------------------------------------------------------


def test_one_case_is_created_from_a_single_object_with_a_token(staff, process):
    body = row("INV-1", exception={"reason": "PO missing", "fields": ["po_status"]})
    response = post_json(token_client(staff), CASES_URL, body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["created"] == 1
    assert data["existing"] == 0
    case = Case.objects.get()
    assert data["cases"] == [{"id": case.pk, "external_id": "INV-1", "created": True}]
    assert case.fields == {"vendor": "Acme GmbH", "amount": 120.0, "po_status": "missing"}
    assert case.exception_reason == "PO missing"
    assert case.exception_fields == ["po_status"]


def test_a_batch_is_created_in_order(expert, process):
    body = [row("INV-1", 10), row(None, 20), row("INV-3", 30)]
    response = post_json(client_for(expert), CASES_URL, body)
    assert response.status_code == 201
    data = response.json()
    assert data["created"] == 3
    assert [c["external_id"] for c in data["cases"]] == ["INV-1", None, "INV-3"]
    amounts = [Case.objects.get(pk=c["id"]).fields["amount"] for c in data["cases"]]
    assert amounts == [10, 20, 30]


def test_batch_with_an_invalid_row_is_rejected_whole_with_row_errors(expert, process):
    body = [
        row("INV-1"),
        row("INV-2", amount="lots"),
        {"fields": {"amount": 5}, "colour": "red"},
        row("INV-4", exception={"reason": "x", "fields": ["nope"]}),
    ]
    response = post_json(client_for(expert), CASES_URL, body)
    assert response.status_code == 422
    data = response.json()
    assert "nothing was written" in data["detail"]
    rows = {r["row"]: r["errors"] for r in data["rows"]}
    assert set(rows) == {1, 2, 3}
    assert "expected a number" in rows[1]["fields.amount"]
    assert rows[2]["fields.vendor"] == "is required"
    assert "colour" in rows[2]["row"]
    assert "nope" in rows[3]["exception.fields"]
    assert not Case.objects.exists()


def test_resending_an_external_id_returns_the_existing_case(expert, process):
    first = post_json(client_for(expert), CASES_URL, row("INV-1")).json()
    again = post_json(client_for(expert), CASES_URL, [row("INV-1", 999), row("INV-2")])
    assert again.status_code == 201
    data = again.json()
    assert data["created"] == 1
    assert data["existing"] == 1
    assert data["cases"][0] == {
        "id": first["cases"][0]["id"],
        "external_id": "INV-1",
        "created": False,
    }
    assert Case.objects.count() == 2
    assert Case.objects.get(external_id="INV-1").fields["amount"] == 120  # not overwritten
    only_existing = post_json(client_for(expert), CASES_URL, row("INV-2"))
    assert only_existing.status_code == 200
    assert only_existing.json()["created"] == 0
    assert Case.objects.count() == 2


def test_more_than_ten_thousand_rows_are_refused(expert, process):
    response = post_json(client_for(expert), CASES_URL, [row() for _ in range(10_001)])
    assert response.status_code == 422
    assert "at most 10000" in response.json()["detail"]
    assert not Case.objects.exists()


def test_a_body_that_is_not_json_is_refused(expert, process):
    response = client_for(expert).post(CASES_URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_empty_batch_is_refused(expert, process):
    response = post_json(client_for(expert), CASES_URL, [])
    assert response.status_code == 422
    assert "non-empty list" in response.json()["detail"]


def test_outsider_cannot_send_cases(outsider, process):
    assert post_json(client_for(outsider), CASES_URL, row("INV-1")).status_code == 404
    assert not Case.objects.exists()


def test_request_without_credentials_is_401(process):
    assert post_json(Client(), CASES_URL, row("INV-1")).status_code == 401


# --- historical decisions -----------------------------------------------------------------------


def history(external_id: str, expert: str = "erin", label: str = "approve", **extra) -> dict:
    return {
        "external_id": external_id,
        "label": label,
        "reason_code": "ok" if label == "approve" else "",
        "rationale": "checked with the vendor",
        "expert": expert,
        "decided_at": "2025-11-03T10:15:00Z",
        **extra,
    }


def test_manager_imports_historical_decisions_with_a_token(manager, expert, process):
    a, b = make_cases(process, 2)
    body = [history(a.external_id), history(b.external_id, label="request_info")]
    response = post_json(token_client(manager), DECISIONS_URL, body)
    assert response.status_code == 201, response.content
    assert response.json() == {"imported": 2}
    a.refresh_from_db()
    assert a.status == CaseStatus.DECIDED
    assert a.final_label == "approve"
    decision = Decision.objects.get(case=a)
    assert decision.source == DecisionSource.IMPORT
    assert decision.expert == expert
    assert decision.decided_at.year == 2025


def test_invalid_historical_decisions_are_rejected_whole(manager, expert, process):
    (case,) = make_cases(process, 1)
    body = [
        history(case.external_id),
        history(case.external_id, expert="eli", label="shrug"),
        history(case.external_id, expert="nobody"),
        history("INV-404"),
    ]
    response = post_json(client_for(manager), DECISIONS_URL, body)
    assert response.status_code == 422
    rows = {r["row"]: r["errors"] for r in response.json()["rows"]}
    assert set(rows) == {1, 2, 3}
    assert "unknown label 'shrug'" in rows[1]["label"]
    assert "'nobody'" in rows[2]["expert"]
    assert "'INV-404'" in rows[3]["external_id"]
    assert not Decision.objects.exists()
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN


def test_expert_cannot_import_decisions(expert, process):
    (case,) = make_cases(process, 1)
    response = post_json(client_for(expert), DECISIONS_URL, [history(case.external_id)])
    assert response.status_code == 403
    assert not Decision.objects.exists()


def test_decisions_import_needs_a_list(manager, process):
    response = post_json(client_for(manager), DECISIONS_URL, {"external_id": "x"})
    assert response.status_code == 422
    assert "list" in response.json()["detail"]


# --- listing ------------------------------------------------------------------------------------


def test_list_walks_every_page_once_newest_first(expert, process):
    cases = make_cases(process, 23)
    client = token_client(expert)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        url = f"{CASES_URL}?limit=5" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url)
        assert response.status_code == 200, response.content
        data = response.json()
        assert len(data["items"]) <= 5
        seen += [item["id"] for item in data["items"]]
        pages += 1
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    ordered = sorted(cases, key=lambda c: (c.created_at, c.pk), reverse=True)
    assert seen == [c.pk for c in ordered]


def test_list_items_carry_the_case_columns(expert, process):
    (case,) = make_cases(process, 1)
    item = client_for(expert).get(CASES_URL).json()["items"][0]
    assert item["id"] == case.pk
    assert item["external_id"] == case.external_id
    assert item["status"] == "open"
    assert item["fields"]["vendor"] == "Acme GmbH"
    assert item["exception"] == {"reason": "PO missing", "fields": ["po_status"]}
    assert item["final_label"] == ""
    assert item["decided_at"] is None
    assert item["is_synthetic"] is False
    assert item["schema_version"] == 1


def test_list_filters_by_status_label_external_id_and_times(expert, second_expert, process):
    approved, rejected = make_cases(process, 2)
    (untouched,) = make_cases(
        process, 1
    )  # a later batch: cases of one batch share their arrival time
    record_decision(case=approved, expert=expert, label="approve", reason_code="ok")
    record_decision(case=rejected, expert=expert, label="reject", reason_code="fraud")
    client = client_for(second_expert)

    def ids(query: str) -> set[int]:
        response = client.get(f"{CASES_URL}?{query}")
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["items"]}

    assert ids("status=decided") == {approved.pk, rejected.pk}
    assert ids("status=open") == {untouched.pk}
    assert ids("final_label=reject") == {rejected.pk}
    assert ids(f"external_id={untouched.external_id}") == {untouched.pk}
    stamp = (untouched.created_at - timedelta(microseconds=1)).isoformat()
    assert ids(f"created_after={stamp.replace('+', '%2B')}") == {untouched.pk}
    assert ids(f"created_before={stamp.replace('+', '%2B')}") == {approved.pk, rejected.pk}
    past = (timezone.now() - timedelta(hours=1)).isoformat().replace("+", "%2B")
    assert ids(f"decided_after={past}") == {approved.pk, rejected.pk}
    assert ids("decided_after=2999-01-01T00:00:00") == set()


@pytest.mark.parametrize(
    "query", ["limit=501", "limit=0", "status=maybe", "cursor=%21%21bad", "created_after=soon"]
)
def test_bad_list_parameters_are_422(expert, process, query):
    response = client_for(expert).get(f"{CASES_URL}?{query}")
    assert response.status_code == 422
    assert response.json()["detail"]


def test_outsider_cannot_list_cases(outsider, process):
    make_cases(process, 1)
    assert client_for(outsider).get(CASES_URL).status_code == 404


# --- case detail --------------------------------------------------------------------------------


def test_expert_who_has_not_labelled_an_open_overlap_two_case_sees_no_labels(
    expert, second_expert, manager, double_process
):
    (case,) = make_cases(double_process, 1)
    record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")

    blind = client_for(expert).get(f"/api/v1/cases/{case.pk}").json()
    assert blind["labels_hidden"] is True
    assert "decisions" not in blind
    assert "reject" not in json.dumps(blind)
    assert "fraud" not in json.dumps(blind)
    assert [event["kind"] for event in blind["timeline"]] == ["decided"]

    labelled = token_client(second_expert).get(f"/api/v1/cases/{case.pk}").json()
    assert labelled["labels_hidden"] is False
    assert [(d["expert"], d["label"]) for d in labelled["decisions"]] == [("eli", "reject")]
    assert labelled["timeline"][0]["data"]["label"] == "reject"

    managed = client_for(manager).get(f"/api/v1/cases/{case.pk}").json()
    assert managed["labels_hidden"] is False
    assert managed["decisions"][0]["reason_code"] == "fraud"


def test_decided_case_shows_every_decision_with_its_timeline(expert, second_expert, process):
    (case,) = make_cases(process, 1)
    record_decision(
        case=case, expert=expert, label="approve", reason_code="ok", rationale="fine",
        key_factors=["amount"],
    )  # fmt: skip
    data = client_for(second_expert).get(f"/api/v1/cases/{case.pk}").json()
    assert data["status"] == "decided"
    assert data["final_label"] == "approve"
    assert data["labels_hidden"] is False
    (decision,) = data["decisions"]
    assert decision["expert"] == "erin"
    assert decision["rationale"] == "fine"
    assert decision["key_factors"] == ["amount"]
    assert decision["source"] == "review"
    assert decision["retracted_at"] is None
    assert [e["kind"] for e in data["timeline"]] == ["decided", "status"]
    assert data["timeline"][1]["data"] == {"before": "open", "after": "decided"}
    assert data["timeline"][0]["actor"] == "erin"


def test_another_teams_case_is_404(outsider, process):
    (case,) = make_cases(process, 1)
    assert client_for(outsider).get(f"/api/v1/cases/{case.pk}").status_code == 404
    assert client_for(outsider).get("/api/v1/cases/999999").status_code == 404


# --- submitting decisions -----------------------------------------------------------------------


def test_reviewer_submits_a_decision_with_a_token(expert, process):
    (case,) = make_cases(process, 1)
    response = post_json(
        token_client(expert),
        f"/api/v1/cases/{case.pk}/decisions",
        {"label": "reject", "reason_code": "duplicate", "rationale": "<b>seen</b> before",
         "key_factors": ["vendor", "amount"]},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["label"] == "reject"
    assert data["expert"] == "erin"
    assert data["source"] == "api"
    assert data["case_status"] == "decided"
    assert data["rationale"] == "<b>seen</b> before"
    decision = Decision.objects.get(pk=data["id"])
    assert decision.source == DecisionSource.API
    assert decision.key_factors == ["vendor", "amount"]
    case.refresh_from_db()
    assert case.final_reason_code == "duplicate"


def test_deciding_an_already_decided_case_is_409_with_the_reason(expert, second_expert, process):
    (case,) = make_cases(process, 1)
    record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    response = post_json(
        client_for(second_expert),
        f"/api/v1/cases/{case.pk}/decisions",
        {"label": "reject", "reason_code": "fraud"},
    )
    assert response.status_code == 409
    assert "already decided" in response.json()["detail"]
    assert Decision.objects.count() == 1


def test_deciding_a_case_someone_else_holds_is_409(expert, second_expert, process):
    (case,) = make_cases(process, 1)
    now = timezone.now()
    CaseClaim.objects.create(
        case=case, expert=second_expert, claimed_at=now, expires_at=now + timedelta(minutes=5)
    )
    response = post_json(
        client_for(expert), f"/api/v1/cases/{case.pk}/decisions", {"label": "request_info"}
    )
    assert response.status_code == 409
    assert "another expert" in response.json()["detail"]
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"label": "shrug"}, "unknown decision 'shrug'"),
        ({"label": "reject", "reason_code": "bored"}, "choose a reason code"),
        ({"label": "approve", "reason_code": "ok", "key_factors": ["mood"]}, "mood"),
    ],
)
def test_unknown_label_reason_or_factor_is_422(expert, process, body, message):
    (case,) = make_cases(process, 1)
    response = post_json(client_for(expert), f"/api/v1/cases/{case.pk}/decisions", body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert not Decision.objects.exists()


def test_non_reviewer_gets_403(staff, manager, process):
    (case,) = make_cases(process, 1)
    for user in (staff, manager):
        response = post_json(
            client_for(user), f"/api/v1/cases/{case.pk}/decisions", {"label": "request_info"}
        )
        assert response.status_code == 403
        assert "experts who review" in response.json()["detail"]
    assert not Decision.objects.exists()


def test_expert_outside_the_named_reviewers_gets_403(expert, second_expert, process):
    process.reviewers.add(second_expert)
    (case,) = make_cases(process, 1)
    response = post_json(
        client_for(expert), f"/api/v1/cases/{case.pk}/decisions", {"label": "request_info"}
    )
    assert response.status_code == 403


def test_deciding_another_teams_case_is_404(outsider, other_team, process):
    from apps.people.models import Role
    from apps.people.services import add_member

    add_member(team=other_team, user=outsider, role=Role.EXPERT)
    make_process(other_team, slug="claims-intake")
    (case,) = make_cases(process, 1)
    response = post_json(
        client_for(outsider), f"/api/v1/cases/{case.pk}/decisions", {"label": "request_info"}
    )
    assert response.status_code == 404
    assert not Decision.objects.exists()
