"""The blind rule on every page and endpoint that shows experts' labels or rationales.

While a case is open, an expert who hasn't labelled it sees no other expert's label, reason code or
rationale on it, nor anything computed from them; once they labelled it, or the case is no longer
open, they do. Managers, admins and the process's adjudicators always do (docs/cases.md).
Here erin labels an open overlap-2 case first; eli hasn't labelled it yet.
"""

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from apps.cases.models import CaseStatus
from apps.cases.services.decisions import record_decision
from apps.cases.services.similarity import embed_cases
from apps.people.models import Role
from apps.people.services import create_api_token
from tests.conftest import client_for
from tests.factories import make_cases, make_member, make_process
from tests.rules import fake_chat

SECRET = "Same invoice number already paid last month, duplicate submission"


@pytest.fixture
def pending(double_process, expert):
    """An open case of an overlap-2 process with erin's label (reject) and rationale."""
    (case,) = make_cases(double_process, 1, po_status="mismatch")
    record_decision(
        case=case, expert=expert, label="reject", reason_code="duplicate", rationale=SECRET
    )
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN
    return case


def agree(case, who) -> None:
    """`who` labels the case like erin did, which settles it (overlap 2)."""
    record_decision(case=case, expert=who, label="reject", reason_code="duplicate", rationale="me")


def text_of(response) -> str:
    if isinstance(response, StreamingHttpResponse):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_the_rationales_page_hides_a_pending_rationale_until_you_label_the_case(
    pending, second_expert, manager, admin, staff
):
    url = reverse("rationale_summary", args=[pending.process.slug])
    assert SECRET not in text_of(client_for(second_expert).get(url))
    assert SECRET not in text_of(client_for(staff).get(url))
    assert SECRET in text_of(client_for(manager).get(url))
    assert SECRET in text_of(client_for(admin).get(url))
    agree(pending, second_expert)
    assert SECRET in text_of(client_for(second_expert).get(url))


def test_the_rationales_page_shows_a_named_adjudicator_the_pending_rationale(
    pending, team, second_expert
):
    judge = make_member(team, Role.STAFF, "judy")
    pending.process.adjudicators.set([judge])
    url = reverse("rationale_summary", args=[pending.process.slug])
    assert SECRET in text_of(client_for(judge).get(url))
    assert SECRET not in text_of(client_for(second_expert).get(url))


def test_the_case_page_and_its_history_hide_labels_until_you_label_the_case(
    pending, second_expert, manager
):
    url = reverse("case_detail", args=[pending.pk])
    blind = client_for(second_expert).get(url)
    assert blind.context["show_labels"] is False
    assert SECRET not in text_of(blind)
    assert list(blind.context["timeline"]) == []
    assert SECRET in text_of(client_for(manager).get(url))
    agree(pending, second_expert)
    seen = client_for(second_expert).get(url)
    assert SECRET in text_of(seen)
    assert [e.kind for e in seen.context["timeline"]][:1] == ["decided"]


def test_the_case_api_hides_decisions_and_timeline_labels_until_you_label_the_case(
    pending, second_expert
):
    url = f"/api/v1/cases/{pending.pk}"
    blind = client_for(second_expert).get(url).json()
    assert blind["labels_hidden"] is True
    assert "decisions" not in blind
    assert SECRET not in json.dumps(blind)
    assert all("label" not in event["data"] for event in blind["timeline"])
    agree(pending, second_expert)
    seen = client_for(second_expert).get(url).json()
    assert next(d["rationale"] for d in seen["decisions"]) == SECRET


def test_the_quality_page_leaves_out_pending_labels_you_may_not_see(
    team, expert, second_expert, manager
):
    third = make_member(team, Role.EXPERT, "tom")
    triple = make_process(team, slug="triple", overlap=3)
    (case,) = make_cases(triple, 1)
    # erin and tom disagree on an open case; eli hasn't labelled it.
    record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    record_decision(case=case, expert=third, label="reject", reason_code="fraud")
    url = reverse("process_quality", args=[triple.slug])

    blind = client_for(second_expert).get(url).context["stats"]
    assert (blind.cases_compared, blind.labels_total, blind.pairs) == (0, 0, [])
    assert all(row.uses == 0 for row in blind.per_label)
    full = client_for(manager).get(url).context["stats"]
    assert (full.cases_compared, full.labels_total) == (1, 2)
    assert [(p.expert_a, p.expert_b, p.agreed) for p in full.pairs] == [("erin", "tom", 0)]

    record_decision(case=case, expert=second_expert, label="approve", reason_code="ok")
    seen = client_for(second_expert).get(url).context["stats"]
    assert (seen.cases_compared, seen.labels_total) == (1, 3)


@pytest.fixture
def chat(settings, monkeypatch):
    settings.ORCHCAP_CHAT_MODEL = "tests.rules.fake_chat:model"
    rule = {
        "condition": {"field": "po_status", "op": "eq", "value": "mismatch"},
        "action": {"decide": "reject", "reason_code": "duplicate"},
    }
    monkeypatch.setattr(fake_chat, "REPLIES", [json.dumps(rule)] * 4)


def test_a_rule_draft_reads_no_pending_rationale_on_the_page_or_the_api(
    pending, second_expert, chat
):
    slug = pending.process.slug
    client = client_for(second_expert)
    page = client.post(
        reverse("rule_draft", args=[slug]), {"label": "reject", "cases": [pending.pk]}, follow=True
    )
    # The same answer as for a label nobody gave: it tells nothing about erin's label.
    assert "none of these cases has a rationale for reject" in text_of(page)
    assert "Draft by chat model" not in text_of(page)
    api = client.post(
        f"/api/v1/processes/{slug}/rules/draft",
        {"label": "reject", "cases": [pending.pk]},
        content_type="application/json",
    )
    assert api.status_code == 422
    assert api.json()["detail"] == "cases: none of these cases has a rationale for reject"

    agree(pending, second_expert)
    drafted = client.post(
        f"/api/v1/processes/{slug}/rules/draft",
        {"label": "reject", "cases": [pending.pk]},
        content_type="application/json",
    )
    assert drafted.status_code == 200, drafted.content


def test_exports_carry_no_pending_label_on_the_page_or_the_api(pending, second_expert):
    slug = pending.process.slug
    _, raw = create_api_token(user=second_expert, name="tests")
    token = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    page = client_for(second_expert)
    for fmt in ("csv", "jsonl"):
        for response in (
            page.get(reverse("process_export", args=[slug]) + f"?format={fmt}"),
            page.get(f"/api/v1/processes/{slug}/export?format={fmt}", **token),
        ):
            assert response.status_code == 200
            body = text_of(response)
            assert SECRET not in body
            if fmt == "csv":
                [row] = csv.DictReader(io.StringIO(body))
            else:
                row = json.loads(body)
            assert (row["status"], row["final_label"], row["final_reason_code"]) == ("open", "", "")


def test_review_precedents_show_no_pending_rationale(double_process, expert, second_expert):
    cases = make_cases(double_process, 3, po_status="mismatch")
    embed_cases(case_ids=[c.pk for c in cases])
    labelled, decided, _ = cases
    record_decision(
        case=labelled, expert=expert, label="reject", reason_code="duplicate", rationale=SECRET
    )
    agree(decided, expert)
    agree(decided, second_expert)
    client = client_for(second_expert)
    first = client.get(reverse("review", args=[double_process.slug])).context["case"]
    assert first == labelled  # partly labelled cases come first; eli skips it
    client.post(reverse("review_skip", args=[double_process.slug, labelled.pk]))
    pane = client.get(reverse("review", args=[double_process.slug]))
    assert pane.context["case"] not in (labelled, decided)
    shown = [row["case"] for row in pane.context["precedents"]]
    assert decided in shown
    assert labelled not in shown
    assert SECRET not in text_of(pane)


def test_adjudication_is_for_adjudicators_and_labels_show_once_the_case_awaits_it(
    pending, second_expert, manager
):
    record_decision(case=pending, expert=second_expert, label="approve", reason_code="ok")
    pending.refresh_from_db()
    assert pending.status == CaseStatus.ADJUDICATION
    url = reverse("adjudication_queue", args=[pending.process.slug])
    assert client_for(second_expert).get(url).status_code == 403
    assert SECRET in text_of(client_for(manager).get(url))
    # No longer open: everyone in the team sees the competing labels (docs/cases.md).
    detail = client_for(second_expert).get(f"/api/v1/cases/{pending.pk}").json()
    assert detail["labels_hidden"] is False


def test_rule_induction_counts_no_pending_label(double_process, expert, second_expert, manager):
    def induce(user):
        response = client_for(user).post(
            f"/api/v1/processes/{double_process.slug}/rules/induce",
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        return [(c["sentence"], c["support"], c["correct"]) for c in response.json()["candidates"]]

    for status, label, code in (("missing", "request_info", ""), ("matched", "approve", "ok")):
        for case in make_cases(double_process, 12, po_status=status):
            for who in (expert, second_expert):
                record_decision(case=case, expert=who, label=label, reason_code=code)
    before = induce(second_expert)
    assert before
    # erin's pending labels on open cases that match the candidates change nothing eli sees.
    for case in make_cases(double_process, 5, po_status="missing"):
        record_decision(case=case, expert=expert, label="reject", reason_code="fraud")
    assert induce(second_expert) == before
    assert induce(manager) == before  # candidates come from decided cases only, for everyone
