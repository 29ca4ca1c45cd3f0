"""Listening to knowledge capture: new cases get the autonomy's treatment (in a task), expert
decisions become the outcomes that judge shadow predictions and audits."""

from django.db.models import Q

from apps.autonomy.models import AuditSample, ProcessAutonomy, ShadowPrediction
from apps.cases.models import Case, CaseStatus, DecisionSource

CHUNK = 1000


def on_cases_created(
    sender: object,
    *,
    process_id: int,
    case_ids: list[int],
    orchestrated: bool = False,
    **kwargs: object,
) -> None:
    if orchestrated:
        # An orchestration version already applied its autonomy policy and sent these to people
        # (or to an audit): the process's autopilot must not decide them behind its back.
        return
    active = ProcessAutonomy.objects.filter(process_id=process_id).filter(
        Q(level__gte=1) | Q(target__isnull=False)
    )
    if not case_ids or not active.exists():
        return
    from apps.autonomy.tasks import handle_new_cases

    for start in range(0, len(case_ids), CHUNK):
        handle_new_cases.delay(process_id, list(case_ids[start : start + CHUNK]))


def on_decision_recorded(
    sender: object, *, case_id: int, source: str, status: str, **kwargs: object
) -> None:
    # The model's own decisions judge nothing; only experts' final labels are outcomes.
    if source == DecisionSource.MODEL or status != CaseStatus.DECIDED:
        return
    watched = (
        ShadowPrediction.objects.filter(case_id=case_id).exists()
        or AuditSample.objects.filter(case_id=case_id).exists()
    )
    if not watched:
        return
    from apps.autonomy.services.levels import demote_if_audits_fail
    from apps.autonomy.services.shadow import sync_outcomes

    sync_outcomes(case_ids=[case_id])
    if AuditSample.objects.filter(case_id=case_id).exists():
        process = Case.objects.select_related("process").get(pk=case_id).process
        demote_if_audits_fail(process=process)
