"""The people part of a run: expert decisions on the case of a routed or audited item.

The cases app tells what happened through its signals (sent after its transaction commits, see
receivers.py); each becomes a step of the run's trace, and, when it changes the answer the
source system was given, the run's outcome and a connector event, in one transaction:

- a routed item's case decided by experts: the run becomes decided by `expert:<username>` (its
  `routed_to` stays) and `item.decided` is sent;
- a later decision that changes that label (undone and decided again, or adjudicated): a
  correction, `item.decided` with `corrects` naming the answer it replaces;
- an audited item's case decided with another label than the model's: the run takes the
  expert's label and `audit.overturned` is sent; an audit that agrees is a step only;
- an undo: a step; the run keeps the answer last sent until the case is decided again.

A label that doesn't settle the case yet (overlap, adjudication) is a step only. The run's
outcome fields always say what the source system was last told. A periodic catch-up
(`catch_up_decisions`, every 5 minutes) records the decisions a lost signal left out.
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.autonomy.models import AuditSample
from apps.cases.models import Case, CaseStatus, Decision, DecisionSource
from apps.connectors.models import EventType
from apps.orchestrations import events
from apps.orchestrations.models import Outcome, Run, RunStep, StepKind

log = logging.getLogger(__name__)
RATIONALE_EXCERPT = 280


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= RATIONALE_EXCERPT else text[: RATIONALE_EXCERPT - 1] + "…"


def _locked_run(case_id: int) -> Run | None:
    return (
        Run.objects.select_for_update(of=("self",))
        .select_related("orchestration__team", "version__model_version")
        .filter(case_id=case_id)
        .order_by("pk")
        .first()
    )


def _seen(run: Run, kind: str, decision_id: int) -> bool:
    return RunStep.objects.filter(run=run, kind=kind, data__decision=decision_id).exists()


def _add_step(run: Run, kind: str, data: dict) -> RunStep:
    number = events.next_step_numbers([run.pk])[run.pk]
    return RunStep.objects.create(run=run, number=number, kind=kind, data=data)


def _by(decision: Decision) -> tuple[str, dict]:
    """`decided_by` for the run (at most 60 characters) and the `by` object of the payload."""
    username = decision.expert.get_username()
    if decision.source == DecisionSource.MODEL:
        # The process's own autopilot decided the case (process-level autonomy at level 3).
        return "model:autopilot", {"kind": "autopilot", "username": username}
    return f"expert:{username}"[:60], {"kind": "expert", "username": username}


@transaction.atomic
def record_case_decision(*, case_id: int, decision_id: int) -> Run | None:
    """Record decision `decision_id` on the case of a run (None when no run has this case):
    an `expert_decision` step, and when the case is decided, the outcome and its event (see
    the module's docstring). Idempotent: a decision already in the trace is not recorded again."""
    run = _locked_run(case_id)
    if run is None or _seen(run, StepKind.EXPERT_DECISION, decision_id):
        return run
    decision = Decision.objects.select_related("expert").get(pk=decision_id)
    case = Case.objects.get(pk=case_id)
    decided = case.status == CaseStatus.DECIDED
    _add_step(
        run,
        StepKind.EXPERT_DECISION,
        {
            "decision": decision.pk, "by": decision.expert.get_username(),
            "source": decision.source, "label": decision.label,
            "reason_code": decision.reason_code, "rationale": _excerpt(decision.rationale),
            "decided_at": events.iso(decision.decided_at), "case": case.pk,
            "case_status": case.status,
            "final": {"label": case.final_label, "reason_code": case.final_reason_code}
            if decided else None,
        },
    )  # fmt: skip
    if not decided:
        return run
    audit = AuditSample.objects.filter(case_id=case_id).first()
    if audit is not None and run.outcome == Outcome.DECIDED:
        _settle_audit(run, case, decision, audit)
    else:
        _settle_routed(run, case, decision)
    return run


def _settle_routed(run: Run, case: Case, decision: Decision) -> None:
    before = {"label": run.label, "reason_code": run.reason_code, "decided_by": run.decided_by}
    was_decided = run.outcome == Outcome.DECIDED
    if was_decided and (run.label, run.reason_code) == (case.final_label, case.final_reason_code):
        return  # decided again the same way: the source system already has this answer
    decided_by, by = _by(decision)
    run.outcome = Outcome.DECIDED
    run.label, run.reason_code = case.final_label, case.final_reason_code
    run.decided_by = decided_by
    run.confidence = None  # the model's confidence stays in its step; an expert has none
    run.save(update_fields=["outcome", "label", "reason_code", "decided_by", "confidence"])
    payload = events.decided_payload(
        run, corrects=before if was_decided else None, at=case.decided_at
    )
    payload["by"] = by
    events.send(orchestration=run.orchestration, events=[(run, EventType.ITEM_DECIDED, payload)])


def _settle_audit(run: Run, case: Case, decision: Decision, audit: AuditSample) -> None:
    agrees = case.final_label == audit.label
    decided_by, by = _by(decision)
    _add_step(
        run,
        StepKind.AUDIT,
        {
            "decision": decision.pk, "by": by["username"], "model_label": audit.label,
            "model_version": audit.model_version.version, "expert_label": case.final_label,
            "reason_code": case.final_reason_code, "agrees": agrees,
        },
    )  # fmt: skip
    if case.final_label == run.label:
        return  # what the source system was told stands
    old_label, old_code = run.label, run.reason_code
    confidence = audit.confidence
    run.label, run.reason_code, run.decided_by = (
        case.final_label,
        case.final_reason_code,
        decided_by,
    )
    run.save(update_fields=["label", "reason_code", "decided_by"])
    payload = events.overturned_payload(
        run, old_label=old_label, old_reason_code=old_code,
        model_version=audit.model_version.version, by=by["username"], at=case.decided_at,
    )  # fmt: skip
    payload.update(model_label=audit.label, confidence=confidence)
    events.send(
        orchestration=run.orchestration, events=[(run, EventType.AUDIT_OVERTURNED, payload)]
    )


@transaction.atomic
def record_retraction(*, case_id: int, decision_id: int) -> Run | None:
    """An expert undid decision `decision_id` on the case of a run: a `decision_retracted` step.
    The run keeps the answer last sent; the case's next decision corrects it if it differs."""
    run = _locked_run(case_id)
    if run is None or _seen(run, StepKind.DECISION_RETRACTED, decision_id):
        return run
    decision = Decision.objects.select_related("expert").get(pk=decision_id)
    case = Case.objects.get(pk=case_id)
    _add_step(
        run,
        StepKind.DECISION_RETRACTED,
        {
            "decision": decision.pk, "by": decision.expert.get_username(),
            "label": decision.label, "reason_code": decision.reason_code,
            "retracted_at": events.iso(decision.retracted_at or timezone.now()),
            "case_status": case.status,
        },
    )  # fmt: skip
    return run


def step_summary(kind: str, data: dict) -> str:
    """One sentence for the people part of a trace (expert decisions, undos, audits), from what
    the step recorded; "" for other kinds."""
    match kind:
        case StepKind.EXPERT_DECISION:
            code = f" ({data['reason_code']})" if data.get("reason_code") else ""
            settled = (
                f" The case is decided: {data['final']['label']}."
                if data.get("final")
                else f" The case is {data.get('case_status')}: it needs more labels or an "
                "adjudication."
            )
            return f"{data.get('by')} decided {data.get('label')}{code}.{settled}"
        case StepKind.DECISION_RETRACTED:
            return (
                f"{data.get('by')} undid their decision {data.get('label')}; the case is "
                f"{data.get('case_status')} again."
            )
        case StepKind.AUDIT:
            if data.get("opened"):
                return (
                    f"Drawn for audit: the model's {data.get('model_label')} stands, and an "
                    f"expert labels case #{data.get('case')} to check it."
                )
            if data.get("agrees"):
                return (
                    f"Audit by {data.get('by')}: {data.get('expert_label')}, the model was right."
                )
            return (
                f"Audit by {data.get('by')}: {data.get('expert_label')} overturns the model's "
                f"{data.get('model_label')}; the correction was sent."
            )
    return ""


# --- catching up --------------------------------------------------------------------------------

CATCH_UP_WINDOW = timedelta(hours=24)


def catch_up_decisions(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Record the decisions of the last 24 hours on runs' cases that their traces lack: the
    signal is sent after the decision commits, so a process that died in between, or a receiver
    that failed, would otherwise leave the run (and the source system) without the experts'
    answer. Oldest first, at most `limit`. Returns how many were recorded."""
    now = now or timezone.now()
    decisions = list(
        Decision.objects.filter(
            decided_at__gte=now - CATCH_UP_WINDOW,
            case_id__in=Run.objects.filter(case__isnull=False).values("case_id"),
        )
        .order_by("decided_at", "pk")
        .values_list("pk", "case_id")
    )
    if not decisions:
        return 0
    recorded = set(
        RunStep.objects.filter(
            run__case_id__in={case_id for _, case_id in decisions},
            kind=StepKind.EXPERT_DECISION,
        ).values_list("data__decision", flat=True)
    )
    missing = [(pk, case_id) for pk, case_id in decisions if pk not in recorded][:limit]
    for pk, case_id in missing:
        try:
            record_case_decision(case_id=case_id, decision_id=pk)
        except Exception:
            # One case's trouble must not hold up the others; the next sweep tries again.
            log.exception("decision %s on case %s not recorded in its run", pk, case_id)
    return len(missing)
