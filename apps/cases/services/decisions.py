"""Recording, undoing and adjudicating decisions. A case settles when it has `overlap` labels
(plus one per second look asked for: `Case.required_labels`)."""

from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.cases.errors import CaseConflict
from apps.cases.models import Case, CaseClaim, CaseEvent, CaseStatus, Decision, DecisionSource
from apps.cases.signals import decision_recorded, decision_retracted


def validate_decision(*, case: Case, label: str, reason_code: str, key_factors: list[str]) -> None:
    """Raise ValidationError unless `label`/`reason_code`/`key_factors` fit the process's schema."""
    schema = case.process.schema
    if label not in schema.labels:
        raise ValidationError(
            f"unknown decision {label!r}; expected one of {', '.join(schema.labels)}"
        )
    codes = schema.reason_codes(label)
    if codes and reason_code not in codes:
        raise ValidationError(f"choose a reason code for {label!r}: one of {', '.join(codes)}")
    if not codes and reason_code:
        raise ValidationError(f"{label!r} has no reason codes, got {reason_code!r}")
    field_names = {spec["name"] for spec in case.schema_version.fields}
    unknown = [name for name in key_factors if name not in field_names]
    if unknown:
        raise ValidationError(f"unknown key factor field(s): {', '.join(unknown)}")


_SETTLED_FIELDS = ["label_count", "status", "final_label", "final_reason_code", "decided_at"]


def _settle(case: Case, labels: list[tuple[str, str, object]], *, history: bool) -> None:
    """Set `case`'s settled fields from its live labels ((label, reason code, decided at), oldest
    first); doesn't save."""
    case.label_count = len(labels)
    if not labels or (len(labels) < case.required_labels and not history):
        case.status = CaseStatus.OPEN
        # An undone label can reopen a decided case: its final decision goes with it.
        case.final_label, case.final_reason_code, case.decided_at = "", "", None
        return
    votes = Counter(label for label, _, _ in labels)
    if len(votes) == 1:
        label = labels[-1][0]
        codes = Counter(code for lab, code, _ in labels if lab == label)
        case.status = CaseStatus.DECIDED
        case.final_label = label
        case.final_reason_code = codes.most_common(1)[0][0]
        case.decided_at = max(at for _, _, at in labels)
    else:
        case.status = CaseStatus.ADJUDICATION


def _live_labels(case_ids: list[int]) -> dict[int, list[tuple[str, str, object]]]:
    labels: dict[int, list[tuple[str, str, object]]] = {pk: [] for pk in case_ids}
    rows = (
        Decision.objects.filter(case_id__in=case_ids, retracted_at__isnull=True)
        .exclude(source=DecisionSource.ADJUDICATION)
        .order_by("case_id", "decided_at", "id")
        .values_list("case_id", "label", "reason_code", "decided_at")
    )
    for case_id, label, reason_code, decided_at in rows:
        labels[case_id].append((label, reason_code, decided_at))
    return labels


def settle_case(*, case: Case, history: bool = False) -> None:
    """After a label: decided when `overlap` labels agree, adjudication when they don't.

    With `history` (imported decisions), whatever labels exist settle the case even below overlap.
    Precondition: `case` is locked (select_for_update) by the caller's transaction.
    """
    _settle(case, _live_labels([case.pk])[case.pk], history=history)
    case.save(update_fields=_SETTLED_FIELDS)


def settle_cases(*, cases: list[Case], history: bool = False) -> None:
    """settle_case for many cases: their labels in one query, the cases written in one bulk
    update (an import of thousands of decisions). `cases` are locked by the caller, with their
    process loaded (select_related): it says how many labels settle a case."""
    labels = _live_labels([case.pk for case in cases])
    for case in cases:
        _settle(case, labels[case.pk], history=history)
    Case.objects.bulk_update(cases, _SETTLED_FIELDS, batch_size=1000)


@transaction.atomic
def record_decision(
    *,
    case: Case,
    expert: AbstractUser,
    label: str,
    reason_code: str = "",
    rationale: str = "",
    key_factors: list[str] | None = None,
    seconds_spent: float | None = None,
    source: str = DecisionSource.REVIEW,
) -> Decision:
    """Record `expert`'s label on `case` and settle the case if its overlap is reached.

    Raises ValidationError for labels/codes outside the schema and CaseConflict when the case can't
    take this label now (already decided, already labelled by this expert, or the expert's lease
    expired and someone else holds the last free place). The caller keeps the expert's draft.
    """
    key_factors = list(dict.fromkeys(key_factors or []))
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("process__schema", "schema_version")
        .get(pk=case.pk)
    )
    validate_decision(case=case, label=label, reason_code=reason_code, key_factors=key_factors)
    if case.status == CaseStatus.DECIDED:
        raise CaseConflict(
            f"this case was already decided ({case.final_label}); your decision was not recorded"
        )
    if case.status == CaseStatus.ADJUDICATION:
        raise CaseConflict("this case already has all its labels and awaits adjudication")
    if Decision.objects.filter(case=case, expert=expert, retracted_at__isnull=True).exists():
        raise CaseConflict("you already decided this case")
    now = timezone.now()
    own_claim = CaseClaim.objects.filter(case=case, expert=expert, expires_at__gt=now).exists()
    if not own_claim:
        others = (
            CaseClaim.objects.filter(case=case, expires_at__gt=now).exclude(expert=expert).count()
        )
        if case.label_count + others >= case.required_labels:
            raise CaseConflict(
                "your hold on this case expired and another expert is reviewing it now; "
                "your decision was not recorded (your text is kept so you can copy it)"
            )
    decision = Decision.objects.create(
        case=case,
        expert=expert,
        label=label,
        reason_code=reason_code,
        rationale=rationale,
        key_factors=key_factors,
        seconds_spent=seconds_spent,
        source=source,
        decided_at=now,
    )
    CaseClaim.objects.filter(case=case, expert=expert).delete()
    CaseEvent.objects.create(
        case=case,
        actor=expert,
        kind="decided",
        at=now,
        data={
            "label": label,
            "reason_code": reason_code,
            "decision": decision.pk,
            "source": source,
        },
    )
    before = case.status
    settle_case(case=case)
    if case.status != before:
        CaseEvent.objects.create(
            case=case,
            actor=expert,
            kind="status",
            at=now,
            data={"before": before, "after": case.status},
        )
    announce_decision(decision, case)
    return decision


def announce_decision(decision: Decision, case: Case) -> None:
    """Send `decision_recorded` once the caller's transaction commits (with the case's status now)."""
    status = case.status
    transaction.on_commit(
        lambda: decision_recorded.send_robust(
            sender=Decision,
            case_id=case.pk,
            decision_id=decision.pk,
            source=decision.source,
            status=status,
        )
    )


def undo_window() -> timedelta:
    return timedelta(seconds=getattr(settings, "ORCHCAP_UNDO_SECONDS", 120))


@transaction.atomic
def undo_last_decision(*, expert: AbstractUser, process_id: int) -> Decision:
    """Retract `expert`'s latest review decision in the process (within the undo window) and give
    them the case back. The decision is kept, marked retracted, and the timeline says so."""
    now = timezone.now()
    decision = (
        Decision.objects.select_for_update()
        .filter(
            expert=expert,
            case__process_id=process_id,
            retracted_at__isnull=True,
            source__in=[DecisionSource.REVIEW, DecisionSource.API],
            decided_at__gte=now - undo_window(),
        )
        .order_by("-decided_at")
        .first()
    )
    if decision is None:
        raise CaseConflict(
            f"nothing to undo: only your decisions of the last {undo_window().seconds}s can be undone"
        )
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("process")
        .get(pk=decision.case_id)
    )
    if (
        case.status == CaseStatus.DECIDED
        and Decision.objects.filter(
            case=case, source=DecisionSource.ADJUDICATION, retracted_at__isnull=True
        ).exists()
    ):
        raise CaseConflict("this case has been adjudicated since; it can't be undone")
    decision.retracted_at = now
    decision.save(update_fields=["retracted_at"])
    before = case.status
    case.final_label, case.final_reason_code, case.decided_at = "", "", None
    settle_case(case=case)
    CaseClaim.objects.update_or_create(
        case=case,
        expert=expert,
        defaults={
            "claimed_at": now,
            "expires_at": now + timedelta(seconds=case.process.lease_seconds),
        },
    )
    CaseEvent.objects.create(
        case=case,
        actor=expert,
        kind="retracted",
        at=now,
        data={
            "decision": decision.pk,
            "label": decision.label,
            "before": before,
            "after": case.status,
        },
    )
    status = case.status
    transaction.on_commit(
        lambda: decision_retracted.send_robust(
            sender=Decision, case_id=case.pk, decision_id=decision.pk, status=status
        )
    )
    return decision


@transaction.atomic
def adjudicate_case(
    *, case: Case, adjudicator: AbstractUser, label: str, reason_code: str = "", rationale: str = ""
) -> Decision:
    """Settle a disagreement: the adjudicator's label becomes final, recording who settled it."""
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("process__schema", "schema_version")
        .get(pk=case.pk)
    )
    validate_decision(case=case, label=label, reason_code=reason_code, key_factors=[])
    if case.status != CaseStatus.ADJUDICATION:
        raise CaseConflict("this case does not await adjudication")
    now = timezone.now()
    decision = Decision.objects.create(
        case=case,
        expert=adjudicator,
        label=label,
        reason_code=reason_code,
        rationale=rationale,
        source=DecisionSource.ADJUDICATION,
        decided_at=now,
    )
    case.status = CaseStatus.DECIDED
    case.final_label = label
    case.final_reason_code = reason_code
    case.decided_at = now
    case.save(update_fields=["status", "final_label", "final_reason_code", "decided_at"])
    CaseEvent.objects.create(
        case=case,
        actor=adjudicator,
        kind="adjudicated",
        at=now,
        data={
            "label": label,
            "reason_code": reason_code,
            "decision": decision.pk,
            "settled_by": adjudicator.username,
        },
    )
    announce_decision(decision, case)
    return decision
