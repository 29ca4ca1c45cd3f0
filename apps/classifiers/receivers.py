"""Listening to knowledge capture: new decisions may make a retraining due."""

from apps.cases.models import Case, CaseStatus, DecisionSource
from apps.classifiers.models import LearningSettings


def on_decision_recorded(
    sender: object, *, case_id: int, status: str, source: str, **kwargs: object
) -> None:
    if status != CaseStatus.DECIDED or source == DecisionSource.MODEL:
        return
    process_id = Case.objects.filter(pk=case_id).values_list("process_id", flat=True).first()
    if process_id is None:
        return
    if LearningSettings.objects.filter(process_id=process_id, retrain_after=0).exists():
        return
    from apps.classifiers.tasks import retrain_if_due

    retrain_if_due.delay(process_id)
