"""The promoted model's field importance weighs the review pane's precedents (classifiers →
cases through apps.core.registry)."""

from apps.cases.selectors_precedents import precedents
from apps.classifiers.importance import promoted_model_weights
from tests.factories import make_cases


def test_the_promoted_model_says_the_po_status_and_amount_decide_not_the_vendor(trained_process):
    # make_decided_cases' policy: PO mismatch → reject, missing or ≥ 5,000 → request_info.
    weights = promoted_model_weights(trained_process)

    assert weights is not None
    assert weights["po_status"] > weights["vendor"]
    assert weights["amount"] > weights["vendor"]
    assert promoted_model_weights(trained_process) == weights  # cached per model


def test_precedents_of_a_process_with_a_promoted_model_are_weighted_by_it(trained_process):
    (case,) = make_cases(trained_process, 1, po_status="mismatch", amount=300)

    search = precedents(case=case)

    assert search.weights_source == "model"
    assert search.top_fields[0] == "Po status"
    assert all(row.case.final_label == "reject" for row in search.shown[:3])


def test_without_a_promoted_model_there_are_no_model_weights(process):
    assert promoted_model_weights(process) is None
