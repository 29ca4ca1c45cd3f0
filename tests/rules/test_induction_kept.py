"""What induction learnt is kept between views, but never past a change of the decided cases."""

from django.urls import reverse

from apps.rules.services.induction import induce_rules
from tests.conftest import client_for
from tests.rules.test_induction import decided


def _support(candidates, label):
    return max(c.support for c in candidates if c.action["decide"] == label)


def test_candidates_follow_cases_decided_after_the_first_induction(process, expert, second_expert):
    decided(process, second_expert, 15, "request_info", po_status="missing")
    decided(process, second_expert, 15, "approve", "ok", po_status="matched")
    assert _support(induce_rules(process=process), "request_info") == 15
    assert induce_rules(process=process) == induce_rules(process=process)
    decided(process, second_expert, 5, "request_info", po_status="missing")
    assert _support(induce_rules(process=process), "request_info") == 20


def test_the_candidates_page_answers_in_a_bounded_number_of_queries(
    process, expert, second_expert, django_assert_max_num_queries
):
    decided(process, second_expert, 20, "request_info", po_status="missing")
    decided(process, second_expert, 20, "approve", "ok", po_status="matched")
    client = client_for(expert)
    url = reverse("rule_induce", args=[process.slug])
    with django_assert_max_num_queries(20):
        page = client.get(url)
    assert page.status_code == 200
    assert "Request info" in page.content.decode() or "request_info" in page.content.decode()
