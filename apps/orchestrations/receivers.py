"""Listening to the cases app (which sits below and never imports orchestrations): expert
decisions and undos on the case of a run become steps of its trace (people.py)."""

from apps.orchestrations import people
from apps.orchestrations.models import Run


def on_decision_recorded(
    sender: object, *, case_id: int, decision_id: int, **kwargs: object
) -> None:
    if Run.objects.filter(case_id=case_id).exists():
        people.record_case_decision(case_id=case_id, decision_id=decision_id)


def on_decision_retracted(
    sender: object, *, case_id: int, decision_id: int, **kwargs: object
) -> None:
    if Run.objects.filter(case_id=case_id).exists():
        people.record_retraction(case_id=case_id, decision_id=decision_id)
