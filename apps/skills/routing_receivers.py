"""Listening to cases (its signals come after the transaction commits): new cases of a process
routed by expertise get their first reviewer; a label keeps the profiles it changes current and
hands a learner's case to its checker."""

from apps.cases.models import CaseStatus, Decision
from apps.skills.models import RoutingPolicy, RoutingStrategy

# A batch this small is routed at once (about a millisecond or two a case); a bigger one in a
# task, so that an import of thousands doesn't wait for it.
INLINE_MAX = 20


def on_cases_created(
    sender: object, *, process_id: int, case_ids: list[int], **kwargs: object
) -> None:
    if (
        not case_ids
        or not RoutingPolicy.objects.filter(
            process_id=process_id, strategy=RoutingStrategy.EXPERTISE
        ).exists()
    ):
        return
    if len(case_ids) <= INLINE_MAX:
        from apps.skills.routing import route_cases

        route_cases(process_id=process_id, case_ids=list(case_ids))
        return
    from apps.skills.tasks import route_new_cases

    for start in range(0, len(case_ids), 500):
        route_new_cases.delay(process_id, list(case_ids[start : start + 500]))


def on_decision_recorded(
    sender: object, *, case_id: int, decision_id: int, status: str, **kwargs: object
) -> None:
    from apps.skills.routing import hand_to_checker
    from apps.skills.routing_profiles import refresh_case_people

    if status == CaseStatus.DECIDED:
        refresh_case_people(case_id=case_id)
        _refresh_evidence_later(case_id)
    elif status == CaseStatus.OPEN:
        expert_id = Decision.objects.filter(pk=decision_id).values_list("expert_id", flat=True)
        if expert_id:
            hand_to_checker(case_id=case_id, expert_id=expert_id[0])


def on_decision_retracted(sender: object, *, case_id: int, **kwargs: object) -> None:
    from apps.skills.routing_profiles import refresh_case_people

    # The case may have left `decided`: its labellers' agreement changes.
    refresh_case_people(case_id=case_id)
    _refresh_evidence_later(case_id)


def _refresh_evidence_later(case_id: int) -> None:
    # Levels follow a decision within seconds (services.refresh_person_kinds, a few tens of ms
    # a person) in a task, so that recording a label doesn't wait for it.
    from apps.skills.tasks import refresh_decision_evidence

    refresh_decision_evidence.delay(case_id)
