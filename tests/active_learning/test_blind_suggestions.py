"""The blind rule in the model's suggestions and the label-errors page: a case reopened for a
second look still carries its first label, which the promoted model learnt from."""

from django.urls import reverse

from apps.cases.models import CaseStatus
from apps.cases.services.decisions import record_decision
from apps.cases.services.second_look import request_second_look
from apps.classifiers import services
from tests.conftest import client_for


def test_the_pane_withholds_a_suggestion_learnt_from_the_cases_hidden_first_label(
    trained_process, expert, manager
):
    # eli labelled every case the model learnt from; maya asks erin for a second look at one.
    version = services.promoted_version(process=trained_process)
    case = trained_process.cases.get(pk=services.snapshot_ids(version)[0])
    request_second_look(case=case, by=manager)
    response = client_for(expert).get(reverse("review", args=[trained_process.slug]))
    assert response.context["case"] == case
    html = response.content.decode()
    assert 'id="suggestion-withheld"' in html
    assert "data-suggested-label" not in html
    [(_, panel)] = response.context["panels"]
    assert "suggestion" not in panel


def test_a_fresh_case_still_gets_the_models_suggestion(trained_process, expert, manager):
    from tests.factories import make_cases

    (fresh,) = make_cases(trained_process, 1, po_status="mismatch", amount=120)
    response = client_for(expert).get(reverse("review", args=[trained_process.slug]))
    assert response.context["case"] == fresh
    assert "data-suggested-label" in response.content.decode()
    assert 'id="suggestion-withheld"' not in response.content.decode()


def test_the_label_errors_page_lists_no_reopened_case_and_its_first_label(
    trained_process, expert, manager, second_expert
):
    version = services.promoted_version(process=trained_process)
    case = trained_process.cases.get(pk=services.snapshot_ids(version)[0])
    label = case.final_label
    code = (trained_process.schema.reason_codes(label) or [""])[0]
    request_second_look(case=case, by=manager)
    page = client_for(expert).get(reverse("label_errors", args=[trained_process.slug]))
    assert page.status_code == 200
    assert case not in [error.case for error in page.context["errors"]]
    detail = client_for(expert).get(f"/api/v1/cases/{case.pk}").json()
    assert detail["labels_hidden"] is True
    # After erin labels it, the case is settled and its labels show.
    record_decision(case=case, expert=expert, label=label, reason_code=code)
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED
    assert client_for(expert).get(f"/api/v1/cases/{case.pk}").json()["labels_hidden"] is False
