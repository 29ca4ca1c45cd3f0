"""Audits asked for by callers above autonomy (an orchestration's model decisions at level 3): the
case is recorded as an AuditSample like the ones process-level autonomy draws, so the experts'
label on it judges the model and counts in the process's audited precision (and its automatic
demotion)."""

from dataclasses import dataclass

from django.utils import timezone

from apps.autonomy.models import AuditSample
from apps.cases.models import Case
from apps.classifiers.models import ModelVersion


@dataclass(frozen=True)
class AuditRequest:
    case: Case
    model_version: ModelVersion
    label: str
    confidence: float
    draw: float


def open_audits(*, audits: list[AuditRequest]) -> list[AuditSample]:
    """One AuditSample per case (a case already audited keeps its sample). Call it in the
    transaction that creates the cases: the new-case task then skips them (a case with an audit
    is done), so the process's autopilot never decides a case drawn for audit."""
    now = timezone.now()
    return AuditSample.objects.bulk_create(
        [
            AuditSample(
                process_id=audit.case.process_id,
                case=audit.case,
                model_version=audit.model_version,
                label=audit.label,
                confidence=audit.confidence,
                draw=audit.draw,
                created_at=now,
            )
            for audit in sorted(audits, key=lambda audit: audit.case.pk)
        ],
        ignore_conflicts=True,
    )
