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
