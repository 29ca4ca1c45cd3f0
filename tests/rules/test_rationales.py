from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.cases.services.decisions import record_decision
from apps.rules.services.rationales import rationale_groups
from tests.conftest import client_for
from tests.factories import make_cases

DUPLICATE = "Same invoice number already paid last month, duplicate submission"
FRAUD = "Bank account changed by email, vendor unreachable by phone, suspected fraud"


def test_rationales_of_a_decision_fall_into_their_reasons(process, expert):
    cases = make_cases(process, 12)
    for index, case in enumerate(cases):
        text, code = (DUPLICATE, "duplicate") if index % 2 else (FRAUD, "fraud")
        record_decision(
            case=case, expert=expert, label="reject", reason_code=code, rationale=f"{text} #{index}"
        )
    groups = rationale_groups(process=process, viewer=expert, max_groups=2)["reject"]
    assert sorted(group.size for group in groups) == [6, 6]
    for group in groups:
        texts = {text.split(" #")[0] for _, text in group.examples}
        assert len(texts) == 1  # each group holds one kind of reason
    assert any("duplicate" in " ".join(g.terms) for g in groups)


def test_rationale_page_is_for_team_members_and_escapes_text(process, expert, staff, outsider):
    (case,) = make_cases(process, 1)
    record_decision(
        case=case, expert=expert, label="approve", reason_code="ok", rationale="<b>fine</b> invoice"
    )
    response = client_for(staff).get(reverse("rationale_summary", args=[process.slug]))
    assert response.status_code == 200
    assert b"&lt;b&gt;fine&lt;/b&gt;" in response.content
    assert (
        client_for(outsider).get(reverse("rationale_summary", args=[process.slug])).status_code
        == 404
    )


def test_rationale_page_queries_do_not_grow_with_decisions(process, expert, second_expert):
    """One query per decision label, whatever the number of rationales (no query per row)."""
    client = client_for(expert)
    url = reverse("rationale_summary", args=[process.slug])
    counts = []
    for batch in range(2):  # 40 decisions, then 80: the page must cost the same
        for index, case in enumerate(make_cases(process, 40)):
            who = expert if index % 2 else second_expert
            label, code = (("approve", "ok"), ("reject", "fraud"), ("request_info", ""))[index % 3]
            rationale = f"{DUPLICATE} {FRAUD[: index + 5]} {batch}"
            record_decision(
                case=case, expert=who, label=label, reason_code=code, rationale=rationale
            )
        with CaptureQueriesContext(connection) as queries:
            page = client.get(url)
        assert page.status_code == 200
        assert page.content.count(b"<article") >= 3
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 20, counts  # a page of a handful of queries, not one per rationale


def test_rationale_groups_are_recomputed_when_a_rationale_is_added(process, expert):
    """Groups are cached by the rationales they are made of: a new one is never missed."""
    cases = make_cases(process, 9)
    for case in cases[:8]:
        record_decision(
            case=case, expert=expert, label="reject", reason_code="duplicate", rationale=DUPLICATE
        )
    before = rationale_groups(process=process, viewer=expert)["reject"]
    assert sum(group.size for group in before) == 8
    record_decision(
        case=cases[8], expert=expert, label="reject", reason_code="fraud", rationale=FRAUD
    )
    after = rationale_groups(process=process, viewer=expert)["reject"]
    assert sum(group.size for group in after) == 9
    assert any(FRAUD in text for group in after for _, text in group.examples)
