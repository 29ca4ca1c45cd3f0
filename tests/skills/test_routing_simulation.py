"""The routing replay and its page and API, on 20 cases counted by hand.

Cases 0..19 arrive a minute apart, po_status missing (even) and matched (odd), each decided
"approve" 30 s later. erin labels every case first: right on missing ones, wrong on matched
ones; eli labels each second: right on matched, wrong on missing. With holdout 0.3 the profiles
come from cases 0..13 (erin 7 of 14, all 7 missing right; eli the mirror), mean 0.5, and cases
14..19 are replayed. With prior_weight 10, erin's accuracy on a missing case is
(7 + 10·0.5) / (7 + 10) = 12/17 and on a matched one 5/17, eli's the mirror: today's order (erin
on everything) expects 0.5, routing by expertise (missing → erin, matched → eli) 12/17.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Decision
from apps.cases.services.intake import create_cases
from apps.skills.routing_profiles import policy_for
from apps.skills.routing_simulation import simulate_routing
from tests.api.conftest import token_client
from tests.conftest import client_for
from tests.factories import make_process

FIELDS = [{"name": "po_status", "type": "category", "choices": ["matched", "missing"]}]


@pytest.fixture
def history(team, expert, second_expert):
    process = make_process(team, slug="replayed", fields=FIELDS, priority_field="")
    rows = [
        {"fields": {"po_status": "missing" if i % 2 == 0 else "matched"}, "exception": {}}
        for i in range(20)
    ]
    cases = create_cases(process=process, rows=rows, embed=False).cases
    start = timezone.now() - timedelta(days=1)
    decisions = []
    for i, case in enumerate(cases):
        created = start + timedelta(minutes=i)
        decided = created + timedelta(seconds=30)
        Case.objects.filter(pk=case.pk).update(
            created_at=created,
            decided_at=decided,
            status=CaseStatus.DECIDED,
            final_label="approve",
            label_count=2,
            random_key=0.9,
        )
        missing = i % 2 == 0
        decisions += [
            Decision(case=case, expert=expert, label="approve" if missing else "reject",
                     decided_at=decided - timedelta(seconds=2), seconds_spent=40),
            Decision(case=case, expert=second_expert, label="reject" if missing else "approve",
                     decided_at=decided, seconds_spent=40),
        ]  # fmt: skip
    Decision.objects.bulk_create(decisions)
    policy = policy_for(process=process)
    policy.expert_min_decisions = 5
    policy.learning_share = 0
    policy.save()
    return process, policy, cases


def test_the_replay_sends_each_segment_to_its_expert_and_expects_more_accuracy(
    history, expert, second_expert
):
    process, policy, cases = history
    result = simulate_routing(process=process, policy=policy, holdout=0.3)
    assert (result.measured_cases, result.replayed) == (14, 6)
    assert [row.case_id for row in result.rows] == [c.pk for c in cases[14:]]
    assert [row.today for row in result.rows] == ["erin"] * 6
    assert [row.strategy for row in result.rows] == ["erin", "eli"] * 3
    assert [row.strategy_expected for row in result.rows] == [round(12 / 17, 4)] * 6
    assert [row.today_expected for row in result.rows] == [round(12 / 17, 4), round(5 / 17, 4)] * 3
    assert result.today_expected == 0.5
    assert result.today_observed == 0.5
    assert result.strategy_expected == round(12 / 17, 4)
    assert (result.changed, result.learning_cases) == (3, 0)
    lines = {line.username: (line.today_cases, line.strategy_cases) for line in result.people}
    assert lines == {"erin": (6, 3), "eli": (0, 3)}


def test_a_learning_share_sends_cases_to_a_learner_with_a_checker(history, team):
    from apps.people.models import Role
    from tests.factories import make_member

    process, policy, _ = history
    make_member(team, Role.EXPERT, "lena")  # no decision: a learner
    Case.objects.filter(process=process).update(random_key=0.05)
    policy.learning_share = 0.1
    result = simulate_routing(process=process, policy=policy, holdout=0.3)
    assert result.learning_cases == 6
    # The least-loaded learner each time: lena; the checker is the segment's expert.
    assert [(r.strategy, r.checker) for r in result.rows] == [("lena", "erin"), ("lena", "eli")] * 3


def test_the_manager_sees_the_comparison_and_switches_the_strategy(history, manager):
    process, _, _ = history
    client = client_for(manager)
    page = client.get(f"/skills/routing/{process.slug}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="routing-chart"' in html
    assert "0.7059" in html
    assert "Replayed cases per person" in html
    data = {
        "strategy": "expertise", "learning_share": "0.2", "prior_weight": "10",
        "expert_min_decisions": "5", "speed_weight": "0.05", "load_penalty": "0.01",
    }  # fmt: skip
    assert client.post(f"/skills/routing/{process.slug}/", data).status_code == 302
    assert policy_for(process=process).strategy == "expertise"
    bad = client.post(f"/skills/routing/{process.slug}/", data | {"learning_share": "1.5"})
    assert bad.status_code == 422
    assert policy_for(process=process).learning_share == 0.2


def test_experts_never_see_others_accuracy_on_the_page_or_by_api(history, expert, outsider):
    process, _, _ = history
    assert client_for(expert).get(f"/skills/routing/{process.slug}/").status_code == 404
    assert client_for(outsider).get(f"/skills/routing/{process.slug}/").status_code == 404
    assert token_client(expert).get(f"/api/v1/skills/routing/{process.slug}").status_code == 404


def test_the_api_replays_and_sets_the_strategy(history, manager):
    process, _, _ = history
    client = token_client(manager)
    replay = client.get(f"/api/v1/skills/routing/{process.slug}/simulation?holdout=0.3").json()
    assert (replay["replayed"], replay["strategy_expected"]) == (6, round(12 / 17, 4))
    assert [c["strategy"] for c in replay["cases"]] == ["erin", "eli"] * 3
    body = {"strategy": "expertise", "learning_share": 0.1}
    answer = client.put(
        f"/api/v1/skills/routing/{process.slug}", body, content_type="application/json"
    )
    assert answer.status_code == 200
    assert answer.json()["strategy"] == "expertise"
    assert {c["username"] for c in answer.json()["candidates"]} == {"erin", "eli"}
    wrong = client.put(
        f"/api/v1/skills/routing/{process.slug}",
        {"strategy": "fastest"},
        content_type="application/json",
    )
    assert wrong.status_code == 422
    # Past what an integer column holds (was a 500: integer out of range), or past any sense.
    for knob, value in (("prior_weight", 10**12), ("load_penalty", 1e300)):
        huge = client.put(
            f"/api/v1/skills/routing/{process.slug}",
            {"strategy": "order", knob: value},
            content_type="application/json",
        )
        assert huge.status_code == 422, huge.content
        assert f"{knob} must be between 0 and" in huge.json()["detail"]
    assert client.get(f"/api/v1/skills/routing/{process.slug}").json()["strategy"] == "expertise"


def test_the_routing_index_lists_only_the_processes_one_manages(history, manager, expert):
    process, _, _ = history
    page = client_for(manager).get("/skills/routing/").content.decode()
    assert f'href="/skills/routing/{process.slug}/"' in page
    assert process.slug not in client_for(expert).get("/skills/routing/").content.decode()
