"""The expert review queue page, as an expert uses it (with and without htmx)."""

from django.urls import reverse

from apps.cases.models import CaseClaim, CaseStatus, Decision
from apps.cases.services.decisions import record_decision
from apps.cases.services.similarity import embed_cases
from tests.conftest import client_for
from tests.factories import make_cases

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_review_page_shows_the_highest_priority_case_with_fault_highlighted(process, expert):
    make_cases(process, 1, amount=10)
    (urgent,) = make_cases(process, 1, amount=9000)
    response = client_for(expert).get(reverse("review", args=[process.slug]))
    assert response.status_code == 200
    assert response.context["case"] == urgent
    content = response.content.decode()
    assert "PO missing" in content
    assert 'class="at-fault"' in content
    assert "<kbd>1</kbd> Approve" in content  # the label in words, its code as the value


def test_submitting_by_htmx_records_and_swaps_in_the_next_case_only(process, expert):
    first, second = make_cases(process, 2)
    client = client_for(expert)
    shown = client.get(reverse("review", args=[process.slug])).context["case"]
    response = client.post(
        reverse("review_decide", args=[process.slug, shown.pk]),
        {
            "label": "reject",
            "reason_code": "duplicate",
            "rationale": "same invoice twice",
            "key_factors": ["vendor"],
        },
        **HTMX,
    )
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<div id="review-pane"')
    assert b"<html" not in response.content
    decision = Decision.objects.get(case=shown)
    assert (decision.label, decision.reason_code, decision.key_factors) == (
        "reject",
        "duplicate",
        ["vendor"],
    )
    assert decision.seconds_spent is not None
    following = first if shown == second else second
    assert f"Case {following.external_id}".encode() in response.content


def test_submitting_without_javascript_redirects_to_the_queue(process, expert):
    (case,) = make_cases(process, 1)
    client = client_for(expert)
    client.get(reverse("review", args=[process.slug]))
    response = client.post(
        reverse("review_decide", args=[process.slug, case.pk]), {"label": "request_info"}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.final_label == "request_info"


def test_unknown_reason_code_is_422_and_keeps_the_rationale(process, expert):
    (case,) = make_cases(process, 1)
    client = client_for(expert)
    client.get(reverse("review", args=[process.slug]))
    response = client.post(
        reverse("review_decide", args=[process.slug, case.pk]),
        {"label": "approve", "reason_code": "because", "rationale": "my careful notes"},
        **HTMX,
    )
    assert response.status_code == 422
    assert b"choose a reason code for" in response.content
    assert b"my careful notes" in response.content
    assert not Decision.objects.exists()


def test_missing_label_is_422(process, expert):
    (case,) = make_cases(process, 1)
    client = client_for(expert)
    client.get(reverse("review", args=[process.slug]))
    response = client.post(
        reverse("review_decide", args=[process.slug, case.pk]), {"rationale": "x"}, **HTMX
    )
    assert response.status_code == 422
    assert "Choose a decision" in response.content.decode()


def test_expired_lease_taken_by_another_expert_is_409_and_keeps_the_draft(
    process, expert, second_expert
):
    (case,) = make_cases(process, 1)
    client = client_for(expert)
    client.get(reverse("review", args=[process.slug]))
    CaseClaim.objects.filter(expert=expert).delete()
    client_for(second_expert).get(reverse("review", args=[process.slug]))
    response = client.post(
        reverse("review_decide", args=[process.slug, case.pk]),
        {"label": "approve", "reason_code": "ok", "rationale": "long careful text"},
        **HTMX,
    )
    assert response.status_code == 409
    assert b"another expert is reviewing it now" in response.content
    assert b"long careful text" in response.content
    assert not Decision.objects.exists()


def test_skip_then_undo_through_the_page(process, expert):
    make_cases(process, 2)
    client = client_for(expert)
    first = client.get(reverse("review", args=[process.slug])).context["case"]
    client.post(reverse("review_skip", args=[process.slug, first.pk]), **HTMX)
    second = CaseClaim.objects.get(expert=expert).case
    assert second != first
    client.post(
        reverse("review_decide", args=[process.slug, second.pk]),
        {"label": "approve", "reason_code": "ok"},
        **HTMX,
    )
    response = client.post(reverse("review_undo", args=[process.slug]), **HTMX)
    assert response.status_code == 200
    assert f"Case {second.external_id}".encode() in response.content
    assert b"Undid your Approve decision" in response.content
    second.refresh_from_db()
    assert second.status == CaseStatus.OPEN


def test_undo_with_nothing_to_undo_says_so(process, expert):
    make_cases(process, 1)
    response = client_for(expert).post(reverse("review_undo", args=[process.slug]), **HTMX)
    assert response.status_code == 409
    assert b"nothing to undo" in response.content


def test_renew_keeps_the_lease_and_reports_a_lost_one(process, expert):
    (case,) = make_cases(process, 1)
    client = client_for(expert)
    client.get(reverse("review", args=[process.slug]))
    assert client.post(reverse("review_renew", args=[process.slug, case.pk])).status_code == 204
    CaseClaim.objects.all().delete()
    assert client.post(reverse("review_renew", args=[process.slug, case.pk])).status_code == 409


def test_empty_queue_says_so(process, expert):
    response = client_for(expert).get(reverse("review", args=[process.slug]))
    assert response.context["case"] is None
    assert b"Nothing left for you to review" in response.content


def test_precedents_show_similar_decided_cases_with_rationale(process, expert, second_expert):
    old = make_cases(process, 1, vendor="Globex Ltd")[0]
    other = make_cases(process, 1, vendor="Initech", po_status="matched")[0]
    record_decision(
        case=old,
        expert=second_expert,
        label="reject",
        reason_code="duplicate",
        rationale="dup of INV-7",
    )
    record_decision(case=other, expert=second_expert, label="approve", reason_code="ok")
    (new,) = make_cases(process, 1, vendor="Globex Ltd")
    embed_cases(case_ids=[old.pk, other.pk, new.pk])
    response = client_for(expert).get(reverse("review", args=[process.slug]))
    assert response.context["case"] == new
    precedents = response.context["precedents"]
    assert precedents[0]["case"] == old
    assert b"dup of INV-7" in response.content


def test_rationale_with_markup_is_escaped_on_the_case_page(process, expert, manager):
    (case,) = make_cases(process, 1)
    record_decision(
        case=case,
        expert=expert,
        label="approve",
        reason_code="ok",
        rationale="<script>alert(1)</script>",
    )
    response = client_for(manager).get(reverse("case_detail", args=[case.pk]))
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_only_reviewers_reach_the_queue(process, staff, manager, outsider):
    assert client_for(staff).get(reverse("review", args=[process.slug])).status_code == 403
    assert client_for(manager).get(reverse("review", args=[process.slug])).status_code == 403
    assert client_for(outsider).get(reverse("review", args=[process.slug])).status_code == 404


def test_named_reviewers_restrict_the_queue(process, expert, second_expert):
    process.reviewers.add(second_expert)
    assert client_for(expert).get(reverse("review", args=[process.slug])).status_code == 403
    assert client_for(second_expert).get(reverse("review", args=[process.slug])).status_code == 200


def test_another_teams_case_is_404(process, outsider):
    (case,) = make_cases(process, 1)
    assert client_for(outsider).get(reverse("case_detail", args=[case.pk])).status_code == 404


def test_case_page_hides_others_labels_until_the_expert_decided(
    double_process, expert, second_expert
):
    (case,) = make_cases(double_process, 1)
    record_decision(
        case=case,
        expert=second_expert,
        label="reject",
        reason_code="fraud",
        rationale="secret reason",
    )
    response = client_for(expert).get(reverse("case_detail", args=[case.pk]))
    assert b"secret reason" not in response.content
    assert b"blind review" in response.content
    record_decision(case=case, expert=expert, label="reject", reason_code="fraud")
    response = client_for(expert).get(reverse("case_detail", args=[case.pk]))
    assert b"secret reason" in response.content
    assert b"decided" in response.content


def test_undo_without_javascript_shows_the_undone_case_again(process, expert):
    make_cases(process, 3)
    client = client_for(expert)
    first = client.get(reverse("review", args=[process.slug])).context["case"]
    client.post(
        reverse("review_decide", args=[process.slug, first.pk]),
        {"label": "approve", "reason_code": "ok"},
    )
    following = client.get(reverse("review", args=[process.slug])).context["case"]
    assert following != first
    assert client.post(reverse("review_undo", args=[process.slug])).status_code == 302
    assert client.get(reverse("review", args=[process.slug])).context["case"] == first
