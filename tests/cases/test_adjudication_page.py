"""The adjudication queue: who may settle, the settle flow, bad input, conflicts and escaping."""

import pytest
from django.urls import reverse

from apps.cases.models import CaseEvent, CaseStatus, Decision, DecisionSource
from apps.cases.services.decisions import adjudicate_case, record_decision
from apps.people.models import Role
from tests.conftest import client_for
from tests.factories import make_cases, make_member


def disagreement(process, first, second, **fields):
    """A case of `process` whose two labels disagree, so it awaits adjudication."""
    (case,) = make_cases(process, 1, **fields)
    record_decision(
        case=case,
        expert=first,
        label="approve",
        reason_code="ok",
        rationale="PO arrived late but matches.",
        key_factors=["amount"],
    )
    record_decision(
        case=case,
        expert=second,
        label="reject",
        reason_code="duplicate",
        rationale="Same invoice paid last week.",
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION
    return case


def queue_url(process) -> str:
    return reverse("adjudication_queue", args=[process.slug])


def settle_url(case) -> str:
    return reverse("adjudication_settle", args=[case.process.slug, case.pk])


@pytest.fixture
def case(double_process, expert, second_expert):
    return disagreement(double_process, expert, second_expert)


def test_expert_who_is_not_an_adjudicator_gets_403_with_the_reason(case, expert):
    client = client_for(expert)
    response = client.get(queue_url(case.process))
    assert response.status_code == 403
    assert "managers settle" in response.content.decode()
    response = client.post(settle_url(case), {"label": "approve", "reason_code": "ok"})
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION


def test_outsider_gets_404(case, outsider):
    assert client_for(outsider).get(queue_url(case.process)).status_code == 404
    response = client_for(outsider).post(settle_url(case), {"label": "approve"})
    assert response.status_code == 404


def test_named_adjudicators_replace_the_managers(case, expert, manager):
    case.process.adjudicators.add(expert)
    assert client_for(expert).get(queue_url(case.process)).status_code == 200
    response = client_for(manager).get(queue_url(case.process))
    assert response.status_code == 403
    assert "adjudicators named for this process" in response.content.decode()


def test_queue_shows_the_case_and_the_competing_decisions_side_by_side(case, manager):
    response = client_for(manager).get(queue_url(case.process))
    assert response.status_code == 200
    html = response.content.decode()
    assert case.external_id in html
    assert "PO missing" in html  # the exception reason
    assert 'class="at-fault"' in html  # po_status is the field at fault
    assert "Acme GmbH" in html
    for text in [
        "erin",
        "eli",
        "approve",
        "reject",
        "duplicate",
        "PO arrived late but matches.",
        "Same invoice paid last week.",
    ]:
        assert text in html
    assert html.count('class="competing-decision"') == 2
    assert "Key factors" in html
    assert f'action="{settle_url(case)}"' in html


def test_queue_starts_with_the_oldest_case(double_process, expert, second_expert, manager):
    oldest = disagreement(double_process, expert, second_expert, vendor="Oldest Ltd")
    disagreement(double_process, expert, second_expert, vendor="Newer Ltd")
    html = client_for(manager).get(queue_url(double_process)).content.decode()
    assert "Oldest Ltd" in html
    assert "Newer Ltd" not in html
    assert f'action="{settle_url(oldest)}"' in html
    assert '<strong id="queue-size">2</strong>' in html


def test_settling_decides_the_case_records_the_adjudicator_and_moves_on(
    double_process, expert, second_expert, manager
):
    first = disagreement(double_process, expert, second_expert, vendor="First Ltd")
    second = disagreement(double_process, expert, second_expert, vendor="Second Ltd")
    client = client_for(manager)
    response = client.post(
        settle_url(first),
        {"label": "reject", "reason_code": "duplicate", "rationale": "Paid on 3 March already."},
    )
    assert response.status_code == 302
    assert response["Location"] == queue_url(double_process)

    first.refresh_from_db()
    assert first.status == CaseStatus.DECIDED
    assert (first.final_label, first.final_reason_code) == ("reject", "duplicate")
    settlement = Decision.objects.get(case=first, source=DecisionSource.ADJUDICATION)
    assert settlement.expert == manager
    assert settlement.rationale == "Paid on 3 March already."
    assert CaseEvent.objects.get(case=first, kind="adjudicated").data["settled_by"] == "maya"

    html = client.get(response["Location"]).content.decode()
    assert f'action="{settle_url(second)}"' in html  # the next case
    assert "Second Ltd" in html
    assert f"Settled case {first.external_id}" in html
    assert "Recently settled" in html
    assert "<td>maya</td>" in html  # who settled it


def test_htmx_settle_returns_the_next_fragment_only(case, manager):
    response = client_for(manager).post(
        settle_url(case), {"label": "approve", "reason_code": "ok"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="adjudication-pane">')
    assert "Nothing to adjudicate" in html
    assert f"Settled case {case.external_id} as “Approve” (by maya)" in html
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED


def test_empty_queue_says_nothing_to_adjudicate(double_process, manager):
    response = client_for(manager).get(queue_url(double_process))
    assert response.status_code == 200
    assert "Nothing to adjudicate" in response.content.decode()


def test_unknown_label_is_422_with_the_reason_and_changes_nothing(case, manager):
    response = client_for(manager).post(
        settle_url(case), {"label": "bogus", "rationale": "my careful reasoning"}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "“bogus” is not a decision of this process." in html
    assert "my careful reasoning" in html  # the draft is kept
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION
    assert case.final_label == ""
    assert not Decision.objects.filter(case=case, source=DecisionSource.ADJUDICATION).exists()


def test_wrong_reason_code_or_missing_label_is_422(case, manager):
    client = client_for(manager)
    response = client.post(settle_url(case), {"label": "reject", "reason_code": "ok"})
    assert response.status_code == 422
    # A reason code of another label ("ok" is approve's) is refused next to its field.
    assert response.context["form"].errors["reason_code"] == [
        "“ok” is not a reason code of “reject”: choose one of duplicate, fraud."
    ]
    assert 'id="adjudication-reason-code-error"' in response.content.decode()
    response = client.post(settle_url(case), {"label": "", "reason_code": ""})
    assert response.status_code == 422
    assert "Choose the final decision." in response.content.decode()
    response = client.post(settle_url(case), {"label": "reject", "reason_code": ""})
    assert response.context["form"].errors["reason_code"] == ["Choose a reason code for “reject”."]
    case.refresh_from_db()
    assert case.status == CaseStatus.ADJUDICATION


def test_settling_a_case_someone_else_settled_is_a_clear_conflict(team, case, manager):
    other_manager = make_member(team, Role.MANAGER, "mia")
    adjudicate_case(case=case, adjudicator=other_manager, label="reject", reason_code="duplicate")
    response = client_for(manager).post(
        settle_url(case), {"label": "approve", "reason_code": "ok", "rationale": "keep me"}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert f"Case {case.external_id} was already settled by mia as “Reject”" in html
    assert "your decision was not recorded" in html
    assert "keep me" in html  # the adjudicator's text is shown so it can be copied
    case.refresh_from_db()
    assert case.final_label == "reject"
    assert Decision.objects.filter(case=case, source=DecisionSource.ADJUDICATION).count() == 1


def test_conflict_through_htmx_comes_back_as_the_fragment(team, case, manager):
    adjudicate_case(
        case=case,
        adjudicator=make_member(team, Role.MANAGER, "mia"),
        label="reject",
        reason_code="fraud",
    )
    response = client_for(manager).post(
        settle_url(case), {"label": "approve", "reason_code": "ok"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "<html" not in html
    assert "already settled by mia" in html


def test_case_of_another_process_is_404(case, process, manager):
    (other,) = make_cases(process, 1)
    url = reverse("adjudication_settle", args=[case.process.slug, other.pk])
    assert client_for(manager).post(url, {"label": "approve"}).status_code == 404


def test_rationale_with_script_is_escaped_on_display(
    double_process, expert, second_expert, manager
):
    (case,) = make_cases(double_process, 1)
    record_decision(
        case=case,
        expert=expert,
        label="approve",
        reason_code="ok",
        rationale="<script>alert('x')</script>",
    )
    record_decision(case=case, expert=second_expert, label="request_info")
    client = client_for(manager)
    html = client.get(queue_url(double_process)).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html

    # The adjudicator's own rationale, re-shown after a bad submit, is escaped too.
    response = client.post(
        settle_url(case), {"label": "bogus", "rationale": "<script>alert(2)</script>"}
    )
    assert response.status_code == 422
    assert "<script>alert(2)" not in response.content.decode()
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in response.content.decode()
