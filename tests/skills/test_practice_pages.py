"""The practice and gold pages and API: the practice pane looks like the review pane and answers
with feedback at once; gold cases are the team's managers' and admins'; practice accuracy is seen
only by the person, their managers and admins."""

import pytest
from django.urls import reverse

from apps.cases.models import Case, Decision
from apps.skills import gold as gold_services
from apps.skills import practice
from apps.skills.models import GoldCase, PracticeAttempt
from tests.api.conftest import token_client
from tests.conftest import client_for
from tests.factories import make_cases, make_process
from tests.skills.test_practice import decide


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def gold(process, second_expert, manager):
    case = make_cases(process, 1, po_status="mismatch")[0]
    decide(case, second_expert, "reject", rationale="PO does not match the invoice.")
    return gold_services.mark_gold(case=Case.objects.get(pk=case.pk), by=manager)


def test_the_practice_pane_has_the_review_panes_ids_and_keys(process, gold, staff):
    client = client_for(staff)
    page = client.get(reverse("practice_queue", args=[process.slug]))
    assert page.status_code == 200
    body = page.content.decode()
    for marker in (
        'id="review-pane"',
        'id="decision-form"',
        'id="skip-form"',
        'id="rationale"',
        'id="reason-code"',
        'data-key="1"',
        "js/review.js",
        'id="review-help"',
    ):
        assert marker in body, marker  # fmt: skip
    assert "PO does not match" not in body  # the answer only after answering
    fragment = client.get(reverse("practice_queue", args=[process.slug]), HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<div id="review-pane"')
    assert "<html" not in fragment.content.decode()


def test_an_answer_gets_feedback_at_once_and_writes_no_decision(process, gold, staff):
    decisions = Decision.objects.count()
    response = client_for(staff).post(
        reverse("practice_answer", args=[process.slug, gold.pk]),
        {"label": "approve", "reason_code": "ok"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="feedback-verdict"' in body
    assert "Not this time" in body
    assert "PO does not match the invoice." in body
    assert 'id="practice-next"' in body
    assert Decision.objects.count() == decisions
    assert PracticeAttempt.objects.get(person=staff).correct is False
    right = client_for(staff).post(
        reverse("practice_answer", args=[process.slug, gold.pk]), {"label": "reject"}
    )
    assert "<strong>Right.</strong>" in right.content.decode()


def test_an_answer_without_a_decision_is_refused_with_422(process, gold, staff):
    response = client_for(staff).post(reverse("practice_answer", args=[process.slug, gold.pk]), {})
    assert response.status_code == 422
    assert "Choose a decision" in response.content.decode()
    assert not PracticeAttempt.objects.exists()


def test_practice_is_for_members_of_the_processs_team(process, gold, outsider, expert):
    assert (
        client_for(outsider).get(reverse("practice_queue", args=[process.slug])).status_code == 404
    )
    assert client_for(expert).get(reverse("practice_home")).status_code == 200
    home = client_for(expert).get(reverse("practice_home")).content.decode()
    assert reverse("practice_queue", args=[process.slug]) in home


@pytest.mark.parametrize(
    ("viewer", "status"),
    [("manager", 200), ("team_admin", 200), ("expert", 403), ("staff", 403), ("outsider", 404)],
)
def test_who_sees_the_gold_page(request, process, gold, viewer, status):
    user = request.getfixturevalue(viewer)
    assert client_for(user).get(reverse("gold_list", args=[process.slug])).status_code == status


def test_a_manager_marks_and_unmarks_gold_on_the_gold_page_and_the_case_page(
    process, gold, manager, second_expert
):
    case = make_cases(process, 1)[0]
    decide(case, second_expert, "approve", rationale="ok")
    client = client_for(manager)
    detail = client.get(reverse("case_detail", args=[case.pk])).content.decode()
    assert 'id="gold-panel"' in detail
    assert "Mark as gold" in detail
    client.post(
        reverse("gold_mark", args=[process.slug]),
        {"case": str(case.pk), "next": f"/cases/{case.pk}/"},
    )
    assert GoldCase.objects.get(case=case).label == "approve"
    assert (
        "This case is gold" in client.get(reverse("case_detail", args=[case.pk])).content.decode()
    )
    client.post(reverse("gold_unmark", args=[process.slug, case.pk]))
    assert GoldCase.objects.get(case=case).unmarked_at is not None
    refused = client.post(reverse("gold_mark", args=[process.slug]), {"case": "NOPE-1"})
    assert refused.status_code == 422
    assert "has no case" in refused.content.decode()


def test_the_gold_box_is_not_shown_to_experts(process, gold, expert):
    detail = client_for(expert).get(reverse("case_detail", args=[gold.case_id])).content.decode()
    assert 'id="gold-panel"' not in detail


def test_gold_by_api_for_managers_only(process, gold, manager, expert, outsider, second_expert):
    url = f"/api/v1/processes/{process.slug}/gold"
    listed = token_client(manager).get(url)
    assert listed.status_code == 200
    assert [(g["case_id"], g["label"]) for g in listed.json()] == [(gold.case_id, "reject")]
    assert token_client(expert).get(url).status_code == 403
    assert token_client(outsider).get(url).status_code == 404
    open_case = make_cases(process, 1)[0]
    refused = token_client(manager).post(
        url, {"case_id": open_case.pk}, content_type="application/json"
    )
    assert refused.status_code == 422
    decided = make_cases(process, 1)[0]
    decide(decided, second_expert, "request_info")
    made = token_client(manager).post(
        url, {"case_id": decided.pk, "rationale": "ask"}, content_type="application/json"
    )
    assert made.status_code == 201
    assert made.json()["label"] == "request_info"
    assert token_client(manager).delete(f"{url}/{decided.pk}").status_code == 204
    assert not GoldCase.objects.get(case=decided).is_active


@pytest.mark.parametrize(
    ("viewer", "status"),
    [("staff", 200), ("manager", 200), ("admin", 200), ("expert", 404), ("outsider", 404)],
)
def test_only_the_person_their_managers_and_admins_see_practice_accuracy(
    request, process, gold, staff, viewer, status
):
    practice.record_attempt(gold=gold, person=staff, label="reject")
    user = request.getfixturevalue(viewer)
    response = token_client(user).get(f"/api/v1/people/{staff.username}/practice")
    assert response.status_code == status
    if status == 200:
        assert response.json()["processes"] == [
            {"process": process.slug, "attempts": 1, "right": 1, "accuracy": 1.0, "gold_cases": 1}
        ]
    page = client_for(user).get(reverse("person_skills", args=[staff.pk]))
    assert page.status_code == status


def test_an_expert_sees_no_one_elses_accuracy_on_the_practice_pages(process, gold, staff, expert):
    practice.record_attempt(gold=gold, person=staff, label="approve")
    home = client_for(expert).get(reverse("practice_home")).content.decode()
    assert staff.username not in home
    pane = client_for(expert).get(reverse("practice_queue", args=[process.slug])).content.decode()
    assert 'id="practice-accuracy"' not in pane
    own = client_for(staff).get(reverse("practice_home")).content.decode()
    assert "0 %" in own
