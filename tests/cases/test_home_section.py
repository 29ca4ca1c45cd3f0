from django.urls import reverse

from apps.cases.services.decisions import record_decision
from tests.conftest import client_for
from tests.factories import make_cases


def test_expert_home_lists_review_work_with_todays_decisions(process, expert):
    first, _ = make_cases(process, 2)
    record_decision(case=first, expert=expert, label="approve", reason_code="ok")
    response = client_for(expert).get(reverse("home"))
    content = response.content.decode()
    assert "Cases waiting for you" in content
    assert reverse("review", args=[process.slug]) in content
    (rows,) = [s["review_rows"] for t, s in response.context["sections"] if "review_rows" in s]
    assert rows[0]["process"].open_count == 1
    assert rows[0]["decided_today"] == 1


def test_manager_home_shows_process_health_and_disagreements(
    double_process, expert, second_expert, manager
):
    (case,) = make_cases(double_process, 1)
    record_decision(case=case, expert=expert, label="approve", reason_code="ok")
    record_decision(case=case, expert=second_expert, label="reject", reason_code="fraud")
    content = client_for(manager).get(reverse("home")).content.decode()
    assert "Processes you manage" in content
    assert "Disagreements to settle" in content
    assert reverse("adjudication_queue", args=[double_process.slug]) in content
    assert "Cases waiting for you" not in content


def test_staff_home_lists_processes_without_review_work(process, staff):
    content = client_for(staff).get(reverse("home")).content.decode()
    assert process.name in content
    assert "Cases waiting for you" not in content


def test_outsider_home_shows_nothing_of_other_teams_processes(process, outsider):
    content = client_for(outsider).get(reverse("home")).content.decode()
    assert process.name not in content


def test_navigation_offers_processes(expert):
    assert b'href="/processes/"' in client_for(expert).get(reverse("home")).content
