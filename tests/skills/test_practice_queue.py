"""Gold cases mixed into the real review queue of experts new to a process: the share is kept, the
gold case is shown through the normal review URLs, and the answer is a practice attempt against the
gold label: production data (the gold case, its decisions, events, claims and skips, and the
decisions table as a whole) is left untouched."""

import pytest
from django.urls import reverse

from apps.cases.models import Case, CaseClaim, CaseEvent, CaseSkip, Decision
from apps.skills import gold as gold_services
from apps.skills.models import AttemptSource, GoldServe, PracticeAttempt
from apps.skills.practice_queue import gold_due
from tests.conftest import client_for
from tests.factories import make_cases, make_process
from tests.skills.test_practice import decide


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def golds(process, second_expert, manager):
    """Two gold cases (eli decided them: reject, approve) and three open cases."""
    decided = make_cases(process, 2, po_status="mismatch")
    for case, label in zip(decided, ["reject", "approve"], strict=True):
        decide(case, second_expert, label, rationale=f"why {label}")
    made = [gold_services.mark_gold(case=Case.objects.get(pk=c.pk), by=manager) for c in decided]
    make_cases(process, 3)
    return made


def _production(process) -> dict[str, object]:
    return {
        "cases": sorted(
            Case.objects.filter(process=process).values_list(
                "pk", "status", "final_label", "label_count", "decided_at", "extra_labels"
            )
        ),
        "decisions": sorted(
            Decision.objects.filter(case__process=process).values_list(
                "pk", "case_id", "expert_id", "label", "retracted_at"
            )
        ),
        "events": CaseEvent.objects.filter(case__process=process).count(),
        "skips": CaseSkip.objects.filter(case__process=process).count(),
    }


def _shown_case(response) -> int:
    return response.context["case"].pk


def test_without_a_share_the_queue_never_serves_gold(process, golds, expert):
    response = client_for(expert).get(reverse("review", args=[process.slug]))
    assert _shown_case(response) not in {g.case_id for g in golds}
    assert not GoldServe.objects.exists()


def test_a_new_expert_answers_a_gold_case_in_the_queue_as_practice_and_production_is_untouched(
    process, golds, expert, manager
):
    gold_services.set_practice_setting(process=process, by=manager, gold_share=0.5, new_below=20)
    client = client_for(expert)
    first = client.get(reverse("review", args=[process.slug]))
    gold = golds[0]
    assert _shown_case(first) == gold.case_id
    # Shown as a normal case: the review page with its decide URL, no gold box.
    body = first.content.decode()
    assert reverse("review_decide", args=[process.slug, gold.case_id]) in body
    assert 'id="gold-panel"' not in body
    # Asking again (a reload) shows the same gold case, like a held case.
    assert _shown_case(client.get(reverse("review", args=[process.slug]))) == gold.case_id
    before = _production(process)
    claims_before = CaseClaim.objects.filter(case__process=process).count()

    response = client.post(
        reverse("review_decide", args=[process.slug, gold.case_id]),
        {"label": "approve", "reason_code": "ok", "rationale": "seems fine"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "Recorded Approve for case" in response.content.decode()
    attempt = PracticeAttempt.objects.get(person=expert)
    assert (attempt.gold, attempt.label, attempt.correct, attempt.source) == (
        gold,
        "approve",
        False,
        AttemptSource.QUEUE,
    )
    assert _production(process) == before
    # The next case (share 0.5: one gold, then one real) is a real open case, now claimed.
    following = _shown_case(response)
    assert following not in {g.case_id for g in golds}
    assert CaseClaim.objects.filter(case__process=process).count() == claims_before + 1
    assert not Decision.objects.filter(expert=expert).exists()


def test_the_share_is_kept_gold_then_real_cases_and_stops_once_the_expert_is_no_longer_new(
    process, golds, expert, manager
):
    gold_services.set_practice_setting(process=process, by=manager, gold_share=0.5, new_below=2)
    client = client_for(expert)
    shown = []
    for _ in range(4):
        page = client.get(reverse("review", args=[process.slug]))
        case = page.context["case"]
        if case is None:
            break
        shown.append(case.pk in {g.case_id for g in golds})
        client.post(
            reverse("review_decide", args=[process.slug, case.pk]),
            {"label": "approve", "reason_code": "ok"},
        )
    # gold, real, gold, real: then two decisions make the expert no longer new.
    assert shown == [True, False, True, False]
    assert PracticeAttempt.objects.filter(person=expert, source=AttemptSource.QUEUE).count() == 2
    assert Decision.objects.filter(expert=expert).count() == 2
    assert not gold_due(process=process, expert=expert)


def test_skipping_a_gold_case_in_the_queue_skips_nothing_in_production(
    process, golds, expert, manager
):
    gold_services.set_practice_setting(process=process, by=manager, gold_share=0.5, new_below=20)
    client = client_for(expert)
    gold_case = _shown_case(client.get(reverse("review", args=[process.slug])))
    before = _production(process)
    client.post(reverse("review_skip", args=[process.slug, gold_case]))
    assert _production(process) == before
    serve = GoldServe.objects.get(person=expert)
    assert serve.skipped_at is not None
    assert not PracticeAttempt.objects.exists()
    assert _shown_case(client.get(reverse("review", args=[process.slug]))) != gold_case


def test_an_expert_who_decided_a_gold_case_is_never_served_it(
    process, golds, second_expert, manager
):
    gold_services.set_practice_setting(process=process, by=manager, gold_share=0.5, new_below=20)
    response = client_for(second_expert).get(reverse("review", args=[process.slug]))
    assert _shown_case(response) not in {g.case_id for g in golds}


def test_the_setting_is_refused_out_of_range_and_by_non_managers(process, expert, manager):
    from django.core.exceptions import PermissionDenied, ValidationError

    with pytest.raises(ValidationError):
        gold_services.set_practice_setting(process=process, by=manager, gold_share=0.6, new_below=5)
    with pytest.raises(PermissionDenied):
        gold_services.set_practice_setting(process=process, by=expert, gold_share=0.1, new_below=5)
    page = client_for(manager).post(
        reverse("practice_setting", args=[process.slug]), {"gold_share": "0.9", "new_below": "5"}
    )
    assert page.status_code == 422
    assert gold_services.practice_setting(process=process).gold_share == 0


def test_a_manager_new_to_the_process_sees_no_gold_box_on_a_gold_case_served_in_review(
    process, golds, manager, team
):
    from apps.people.models import Role
    from apps.people.services import add_member

    add_member(team=team, user=manager, role=Role.EXPERT)
    gold_services.set_practice_setting(process=process, by=manager, gold_share=0.5, new_below=20)
    page = client_for(manager).get(reverse("review", args=[process.slug]))
    assert _shown_case(page) == golds[0].case_id
    assert 'id="gold-panel"' not in page.content.decode()
    # On the case's own page (not served there) the manager has the box as usual.
    detail = client_for(manager).get(reverse("case_detail", args=[golds[1].case_id]))
    assert 'id="gold-panel"' in detail.content.decode()
