"""Decisions nobody typed: a process at autonomy level 3 lets its model settle confident cases.

The decision is recorded like an expert's (a Decision, CaseEvents, the decision_recorded signal)
but by a service user that cannot log in, with source `model` and the evidence the model acted on,
so the case page, exports and audits show who decided and why.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.cases.errors import CaseConflict
from apps.cases.models import Case, CaseClaim, CaseEvent, CaseStatus, Decision, DecisionSource
from apps.cases.services.decisions import announce_decision, validate_decision

AUTOPILOT_USERNAME = "orchcap-autopilot"


def autopilot_user() -> AbstractUser:
    """The service user automatic decisions are recorded under: inactive, no usable password."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=AUTOPILOT_USERNAME).first()
    if user is None:
        user = user_model(username=AUTOPILOT_USERNAME, is_active=False)
        user.first_name = "orchcap"
        user.last_name = "autopilot"
        user.set_unusable_password()
        user.save()
    return user


def _rationale(evidence: dict) -> str:
    parts = ["Decided automatically (autonomy level 3)"]
    if "model_version" in evidence and "confidence" in evidence:
        parts.append(
            f"model v{evidence['model_version']} with confidence {evidence['confidence']:.3f}"
        )
    if "threshold" in evidence:
        parts.append(f"threshold {evidence['threshold']}")
    return "; ".join(parts) + "."


@transaction.atomic
def decide_automatically(
    *, case: Case, label: str, reason_code: str = "", evidence: dict | None = None
) -> Decision:
    """Record the model's decision on an open case nobody has started on, and settle it as decided.

    Whatever the process's overlap, the one automatic decision is final. Raises ValidationError for a
    label or reason code outside the schema, and CaseConflict when the case is no longer open, an
    expert already labelled it, or an expert holds it in the review queue right now: experts who
    started on a case keep it.
    """
    evidence = dict(evidence or {})
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("process__schema", "schema_version")
        .get(pk=case.pk)
    )
    validate_decision(case=case, label=label, reason_code=reason_code, key_factors=[])
    if case.status != CaseStatus.OPEN:
        raise CaseConflict(f"this case is {case.get_status_display().lower()}; not decided again")
    active = Decision.objects.filter(case=case, retracted_at__isnull=True)
    if active.exists():
        raise CaseConflict("experts have started labelling this case; it stays with them")
    now = timezone.now()
    if CaseClaim.objects.filter(Q(case=case) & Q(expires_at__gt=now)).exists():
        raise CaseConflict("an expert is reviewing this case right now; it stays with them")
    robot = autopilot_user()
    decision = Decision.objects.create(
        case=case,
        expert=robot,
        label=label,
        reason_code=reason_code,
        rationale=_rationale(evidence),
        key_factors=[],
        source=DecisionSource.MODEL,
        decided_at=now,
    )
    CaseEvent.objects.create(
        case=case,
        actor=robot,
        kind="decided",
        at=now,
        data={
            "label": label,
            "reason_code": reason_code,
            "decision": decision.pk,
            "source": DecisionSource.MODEL,
            "evidence": evidence,
        },
    )
    before = case.status
    case.status = CaseStatus.DECIDED
    case.final_label = label
    case.final_reason_code = reason_code
    case.decided_at = now
    case.label_count = active.exclude(source=DecisionSource.ADJUDICATION).count()
    case.save(
        update_fields=["status", "final_label", "final_reason_code", "decided_at", "label_count"]
    )
    CaseEvent.objects.create(
        case=case,
        actor=robot,
        kind="status",
        at=now,
        data={"before": before, "after": case.status},
    )
    announce_decision(decision, case)
    return decision
