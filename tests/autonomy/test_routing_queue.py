"""At level 1 an expert route reaches the review queue: that expert gets the case first."""

from apps.autonomy.models import CaseRoute
from apps.cases.models import Case
from apps.cases.services.queue import claim_next_case, release_claim
from tests.autonomy.helpers import arrive, right_label, set_autonomy


def test_cases_routed_to_an_expert_come_to_them_first_and_to_colleagues_last(
    trained_process, expert, second_expert
):
    set_autonomy(
        trained_process,
        level=1,
        threshold=0.5,
        routes={"reject": "expert:erin"},
    )
    cases, _ = arrive(trained_process, 12, seed=61)
    routed = set(CaseRoute.objects.filter(route="expert:erin").values_list("case_id", flat=True))
    assert routed
    assert set(Case.objects.filter(routed_to=expert).values_list("pk", flat=True)) == routed
    # erin's first case is one routed to her, whatever the priorities say.
    first = claim_next_case(process=trained_process, expert=expert)
    assert first.pk in routed
    assert right_label(first) == "reject"
    # eli gets the unrouted cases before erin's.
    others = [c for c in cases if c.pk not in routed]
    seen = []
    for _ in others:
        case = claim_next_case(process=trained_process, expert=second_expert)
        seen.append(case.pk)
        release_claim(case=case, expert=second_expert)
        Case.objects.filter(pk=case.pk).update(status="decided")
    assert not set(seen) & routed
    # With nothing else left, a routed case still reaches a colleague rather than stalling.
    last = claim_next_case(process=trained_process, expert=second_expert)
    assert last is not None
    assert last.pk in routed
