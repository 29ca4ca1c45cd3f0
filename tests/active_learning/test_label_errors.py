"""Likely label errors (confident learning) and the second look that reopens a case for one more
independent label."""

from statistics import mean

import pytest
from django.urls import reverse

from apps.cases.models import Case, CaseEvent, CaseStatus
from apps.cases.services.decisions import record_decision
from apps.cases.services.intake import create_cases, import_decisions
from apps.cases.services.queue import claim_next_case
from apps.classifiers import active, services
from apps.people.models import Role
from tests.conftest import client_for
from tests.factories import make_member


@pytest.fixture
def planted(trained_process, expert):
    """Copies of invoices the model is surely right to reject, labelled approve by erin alone."""
    services.update_learning_settings(process=trained_process, label_error_confidence=0.5)
    version = services.promoted_version(process=trained_process)
    rejects = list(trained_process.cases.filter(status="decided", final_label="reject"))
    confidence = [
        p.probabilities["reject"] for p in services.predict_cases(version=version, cases=rejects)
    ]
    threshold = mean(confidence)  # the per-label threshold of confident learning
    sure = [c for c, p in zip(rejects, confidence, strict=True) if p >= max(threshold, 0.5)][:3]
    assert sure
    rows = [
        {"external_id": f"DOUBT-{i}", "fields": case.fields,
         "exception": {"reason": case.exception_reason, "fields": case.exception_fields}}
        for i, case in enumerate(sure)
    ]  # fmt: skip
    cases = create_cases(process=trained_process, rows=rows, embed=False).cases
    import_decisions(
        process=trained_process,
        rows=[
            {"external_id": row["external_id"], "expert": expert.username, "label": "approve",
             "reason_code": "ok", "decided_at": "2026-02-01T00:00:00Z"}
            for row in rows
        ],
    )  # fmt: skip
    return cases


def test_confident_disagreement_needs_the_labels_threshold_and_the_setting():
    given = ["a", "a", "a", "b", "b"]
    rows = [
        {"a": 0.9, "b": 0.1},
        {"a": 0.7, "b": 0.3},
        {"a": 0.05, "b": 0.95},  # labelled a, surely b: above b's threshold (0.85) and 0.8
        {"a": 0.2, "b": 0.8},
        {"a": 0.1, "b": 0.9},
    ]
    thresholds, found = active.confident_disagreements(given, rows, 0.8)
    assert thresholds == pytest.approx({"a": 0.55, "b": 0.85})
    assert found == [(2, "b", 0.95)]
    # b's row 3 gives a only 0.2; lowering the setting does not beat a's threshold for it.
    assert active.confident_disagreements(given, rows, 0.1)[1] == [(2, "b", 0.95)]
    # With a stricter setting nothing is confident enough.
    assert active.confident_disagreements(given, rows, 0.96)[1] == []


def test_the_planted_single_labels_are_found_most_confident_first(planted):
    process = planted[0].process
    report = active.likely_label_errors(process=process)
    found = {e.case.pk: e for e in report.errors}
    assert {c.pk for c in planted} <= set(found)
    for case in planted:
        error = found[case.pk]
        assert (error.expert, error.given_label, error.predicted_label) == (
            "erin",
            "approve",
            "reject",
        )
        assert error.confidence >= max(error.threshold, 0.5)
        assert not error.in_training
    assert all(e.predicted_label != e.given_label for e in report.errors)
    confidences = [e.confidence for e in report.errors]
    assert confidences == sorted(confidences, reverse=True)
    assert report.checked == 150 + len(planted)


def test_the_page_lists_them_for_the_teams_experts_and_managers(planted, expert, manager):
    url = reverse("label_errors", args=[planted[0].process.slug])
    response = client_for(manager).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("case_detail", args=[planted[0].pk]) in html
    assert "by erin" in html
    assert "Ask for a second look" in html
    assert client_for(expert).get(url).status_code == 200


def test_staff_are_refused_and_outsiders_see_nothing(trained_process, staff, outsider):
    url = reverse("label_errors", args=[trained_process.slug])
    assert client_for(staff).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404


def test_without_a_promoted_model_the_page_says_so(process, manager):
    response = client_for(manager).get(reverse("label_errors", args=[process.slug]))
    assert response.status_code == 200
    assert "has no promoted model yet" in response.content.decode()


def _ask(user, case, htmx=True):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client_for(user).post(
        reverse("label_error_second_look", args=[case.process.slug, case.pk]), **headers
    )


def test_a_second_look_reopens_the_case_and_an_agreeing_label_settles_it(
    planted, manager, second_expert
):
    case = planted[0]
    response = _ask(manager, case)
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert "open again for one more independent label" in response.content.decode()
    case.refresh_from_db()
    assert (case.status, case.extra_labels, case.final_label) == ("open", 1, "")
    event = CaseEvent.objects.get(case=case, kind="second_look")
    assert event.actor == manager
    assert event.data["label"] == "approve"
    assert event.data["model_label"] == "reject"
    # Gone from the list while it waits; the queue offers it to another expert.
    listed = active.likely_label_errors(process=case.process).errors
    assert case.pk not in {e.case.pk for e in listed}
    assert claim_next_case(process=case.process, expert=second_expert) == case
    record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    case.refresh_from_db()
    assert (case.status, case.final_label, case.label_count) == ("decided", "approve", 2)


def test_undoing_the_second_label_reopens_the_case_for_it(planted, manager, second_expert):
    from apps.cases.services.decisions import undo_last_decision

    case = planted[0]
    _ask(manager, case)
    assert claim_next_case(process=case.process, expert=second_expert) == case
    record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    undo_last_decision(expert=second_expert, process_id=case.process_id)
    case.refresh_from_db()
    assert (case.status, case.final_label, case.label_count) == ("open", "", 1)
    assert case.required_labels == 2


def test_a_disagreeing_second_label_sends_the_case_to_adjudication(planted, manager, second_expert):
    case = planted[0]
    _ask(manager, case, htmx=False)
    claim_next_case(process=case.process, expert=second_expert)
    record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION


def test_the_expert_who_asked_does_not_give_the_second_label(planted, team, second_expert):
    third = make_member(team, Role.EXPERT, "ed")
    case = planted[0]
    response = _ask(second_expert, case, htmx=False)
    assert response.status_code == 302
    assert claim_next_case(process=case.process, expert=second_expert) is None
    assert claim_next_case(process=case.process, expert=third) == case


def test_the_second_look_stays_blind_for_the_next_expert(planted, manager, second_expert):
    case = planted[0]
    _ask(manager, case)
    detail = client_for(second_expert).get(f"/api/v1/cases/{case.pk}").json()
    [event] = [e for e in detail["timeline"] if e["kind"] == "second_look"]
    assert "label" not in event["data"]
    assert "decisions" not in detail  # left out while review is blind for eli


def test_no_second_look_without_another_expert_to_give_it(planted, second_expert):
    # erin labelled it and eli asks: nobody is left to label it independently.
    response = _ask(second_expert, planted[0])
    assert response.status_code == 422
    assert "no other expert" in response.content.decode()
    assert Case.objects.get(pk=planted[0].pk).status == CaseStatus.DECIDED


def test_an_open_case_cannot_get_a_second_look(planted, manager):
    _ask(manager, planted[0])
    response = _ask(manager, planted[0])
    assert response.status_code == 409
    assert "only decided cases" in response.content.decode()
    assert Case.objects.get(pk=planted[0].pk).extra_labels == 1


def test_the_kept_scan_still_sees_labels_decided_after_it(trained_process, expert, request):
    """The scan's predictions are kept between requests, but never past a newly decided case."""
    services.update_learning_settings(process=trained_process, label_error_confidence=0.5)
    before = active.likely_label_errors(process=trained_process)
    assert not any(str(e.case.external_id).startswith("DOUBT-") for e in before.errors)
    planted = request.getfixturevalue("planted")  # decided after the first scan
    after = active.likely_label_errors(process=trained_process)
    assert after.checked == before.checked + len(planted)
    doubted = {e.case.pk for e in after.errors}
    assert {case.pk for case in planted} <= doubted


def test_label_errors_page_queries_do_not_grow_with_the_doubts(
    trained_process, planted, expert, django_assert_max_num_queries
):
    client = client_for(expert)
    url = reverse("label_errors", args=[trained_process.slug])
    client.get(url)
    with django_assert_max_num_queries(20):
        page = client.get(url)
    assert page.status_code == 200
    for case in planted:
        assert reverse("case_detail", args=[case.pk]) in page.content.decode()
