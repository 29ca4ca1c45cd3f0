"""The review queue: which case an expert gets next, held by a lease taken under row locks.

Order: a case the expert already holds → cases that have some labels but need more (their overlap,
or a second look) → fresh cases routed to this expert (autonomy level 1) → fresh cases → fresh
cases routed to a colleague → partly labelled cases routed to a colleague who has yet to label
them (a learner's case waiting for its checker, apps/skills/routing.py) → cases the expert
skipped, oldest skip first. Fresh cases come by
the process's priority, then age; with the *due* order, soonest due first (routed items carry
their SLA's due time), then priority and age; or, with the *uncertainty* queue order, most
uncertain for the promoted model first, except that a `random_share` of the picks is a random
eligible case, so decisions on those stay an unbiased sample for evaluating the model (each such
pick is recorded as a `picked` case event, "random" or "uncertain").

Rows are chosen with SELECT … FOR UPDATE SKIP LOCKED, so two experts asking at the same moment
never get the same case beyond its overlap. Every stage query is backed by a partial index on open
cases (case_queue_idx, case_uncertainty_idx, case_random_idx). An expert never sees others' labels.
"""

import random
from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.cases.models import Case, CaseClaim, CaseEvent, CaseSkip, CaseStatus, Process, QueueOrder

# Shared conditions: open, not already labelled by me, and a free place left for me under the
# overlap (plus a second look's extra label) once others' live leases are counted. Whoever asked
# for a second look on a case has seen its first label, so that label is not theirs to give.
_ELIGIBLE = """
    c.process_id = %(process)s AND c.status = 'open'
    AND NOT EXISTS (SELECT 1 FROM cases_decision d
                    WHERE d.case_id = c.id AND d.expert_id = %(expert)s AND d.retracted_at IS NULL)
    AND c.label_count + (SELECT count(*) FROM cases_caseclaim l
                         WHERE l.case_id = c.id AND l.expires_at > %(now)s AND l.expert_id <> %(expert)s)
        < %(overlap)s + c.extra_labels
    AND (c.extra_labels = 0
         OR NOT EXISTS (SELECT 1 FROM cases_caseevent e WHERE e.case_id = c.id
                        AND e.kind = 'second_look' AND e.actor_id = %(expert)s))
"""
_NOT_SKIPPED = """
    AND NOT EXISTS (SELECT 1 FROM cases_caseskip s WHERE s.case_id = c.id AND s.expert_id = %(expert)s)
"""
_ANY_FRESH = (
    f"SELECT c.id FROM cases_case c WHERE {_ELIGIBLE} {_NOT_SKIPPED} AND c.label_count = 0 "  # noqa: S608
)
# Fresh cases not routed to a colleague (autonomy level 1 routes a case to one expert).
_FRESH = _ANY_FRESH + "AND (c.routed_to_id IS NULL OR c.routed_to_id = %(expert)s) "
_LOCK = " LIMIT 1 FOR UPDATE OF c SKIP LOCKED"
_ROUTED_TO_ME = (
    _ANY_FRESH + "AND c.routed_to_id = %(expert)s ORDER BY c.priority DESC, c.created_at" + _LOCK
)
# A colleague's routed cases, once an expert has nothing else: a routed case never stalls.
_ROUTED_ELSEWHERE = (
    _ANY_FRESH + "AND c.routed_to_id <> %(expert)s ORDER BY c.priority DESC, c.created_at" + _LOCK
)
# A labelled case routed to someone who has yet to label it waits for them (e.g. the expert who
# checks a learner's label), reaching colleagues only once they have nothing else.
_WAITS_FOR_COLLEAGUE = (
    "c.routed_to_id IS NOT NULL AND c.routed_to_id <> %(expert)s AND NOT EXISTS (SELECT 1 "
    "FROM cases_decision r WHERE r.case_id = c.id AND r.expert_id = c.routed_to_id "
    "AND r.retracted_at IS NULL)"
)
# Fixed SQL fragments only: every value goes in as a query parameter.
_PARTLY_LABELLED = (
    # partly labelled cases first: finishing their overlap settles them sooner
    f"SELECT c.id FROM cases_case c WHERE {_ELIGIBLE} {_NOT_SKIPPED} AND c.label_count > 0 "  # noqa: S608
    f"AND NOT ({_WAITS_FOR_COLLEAGUE}) "
    "ORDER BY c.label_count DESC, c.priority DESC, c.created_at" + _LOCK
)
_PARTLY_ROUTED_ELSEWHERE = (
    f"SELECT c.id FROM cases_case c WHERE {_ELIGIBLE} {_NOT_SKIPPED} AND c.label_count > 0 "  # noqa: S608
    f"AND {_WAITS_FOR_COLLEAGUE} ORDER BY c.priority DESC, c.created_at" + _LOCK
)
_BY_PRIORITY = _FRESH + "ORDER BY c.priority DESC, c.created_at" + _LOCK
# The `due` order: soonest due (overdue first), then as by priority; cases without a due time
# after those with one (case_due_idx). Routed cases follow the same order.
_BY_DUE = _FRESH + "ORDER BY c.due_by ASC NULLS LAST, c.priority DESC, c.created_at" + _LOCK
_ROUTED_TO_ME_BY_DUE = (
    _ANY_FRESH + "AND c.routed_to_id = %(expert)s "
    "ORDER BY c.due_by ASC NULLS LAST, c.priority DESC, c.created_at" + _LOCK
)
_ROUTED_ELSEWHERE_BY_DUE = (
    _ANY_FRESH + "AND c.routed_to_id <> %(expert)s "
    "ORDER BY c.due_by ASC NULLS LAST, c.priority DESC, c.created_at" + _LOCK
)
_BY_UNCERTAINTY = (
    _FRESH + "ORDER BY c.uncertainty DESC NULLS LAST, c.priority DESC, c.created_at" + _LOCK
)
# A uniform draw, then the first case at or after it (wrapping around): the keys are independent
# of the cases, so the pick is too, and the (process, label_count, random_key) index serves it.
_RANDOM_FROM = _FRESH + "AND c.random_key >= %(key)s ORDER BY c.random_key" + _LOCK
_RANDOM_WRAP = _FRESH + "AND c.random_key < %(key)s ORDER BY c.random_key" + _LOCK
_SKIPPED = (
    f"SELECT c.id FROM cases_case c JOIN cases_caseskip s ON s.case_id = c.id AND s.expert_id = %(expert)s "  # noqa: S608
    f"WHERE {_ELIGIBLE} ORDER BY s.skipped_at" + _LOCK
)

PICK_RANDOM = "random"
PICK_UNCERTAIN = "uncertain"


def _lease(process: Process) -> timedelta:
    return timedelta(seconds=process.lease_seconds)


def _fresh_stages(process: Process) -> tuple[list[str], str | None]:
    """The queries for fresh cases and how the pick is recorded (None: not recorded)."""
    if process.queue_order == QueueOrder.DUE:
        return [_BY_DUE], None
    if process.queue_order != QueueOrder.UNCERTAINTY:
        return [_BY_PRIORITY], None
    if random.random() < process.random_share:
        return [_RANDOM_FROM, _RANDOM_WRAP], PICK_RANDOM
    return [_BY_UNCERTAINTY], PICK_UNCERTAIN


@transaction.atomic
def claim_next_case(*, process: Process, expert: AbstractUser) -> Case | None:
    """The case `expert` should review next in `process`, now leased to them; None when done."""
    now = timezone.now()
    held = (
        CaseClaim.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            expert=expert, case__process=process, case__status=CaseStatus.OPEN, expires_at__gt=now
        )
        .order_by("-claimed_at")  # the latest: after an undo, the case just handed back
        .first()
    )
    if held is not None:
        held.expires_at = now + _lease(process)
        held.save(update_fields=["expires_at"])
        return Case.objects.get(pk=held.case_id)
    fresh, pick = _fresh_stages(process)
    params = {
        "process": process.pk,
        "expert": expert.pk,
        "now": now,
        "overlap": process.overlap,
        "key": random.random(),
    }
    by_due = process.queue_order == QueueOrder.DUE
    stages = [
        (_PARTLY_LABELLED, None),
        (_ROUTED_TO_ME_BY_DUE if by_due else _ROUTED_TO_ME, None),
        *((sql, pick) for sql in fresh),
        (_ROUTED_ELSEWHERE_BY_DUE if by_due else _ROUTED_ELSEWHERE, None),
        (_PARTLY_ROUTED_ELSEWHERE, None),
        (_SKIPPED, None),
    ]
    with connection.cursor() as cursor:
        for sql, kind in stages:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row is not None:
                picked = kind
                break
        else:
            return None
    CaseClaim.objects.update_or_create(
        case_id=row[0],
        expert=expert,
        defaults={"claimed_at": now, "expires_at": now + _lease(process)},
    )
    case = Case.objects.get(pk=row[0])
    if picked is not None:
        # Evaluation of the model uses only decisions on randomly picked cases (unbiased).
        CaseEvent.objects.create(
            case=case,
            actor=expert,
            kind="picked",
            at=now,
            data={"pick": picked, "uncertainty": case.uncertainty},
        )
    return case


@transaction.atomic
def renew_claim(*, case: Case, expert: AbstractUser) -> bool:
    """Extend the expert's lease while the page is open; False if it is gone: released, or expired
    while others took the places the overlap allows (the stale lease is then dropped)."""
    now = timezone.now()
    case = Case.objects.select_for_update(of=("self",)).select_related("process").get(pk=case.pk)
    claim = CaseClaim.objects.filter(case=case, expert=expert).first()
    if claim is None:
        return False
    if claim.expires_at <= now:
        others = (
            CaseClaim.objects.filter(case=case, expires_at__gt=now).exclude(expert=expert).count()
        )
        if case.status != CaseStatus.OPEN or case.label_count + others >= case.required_labels:
            claim.delete()
            return False
    claim.expires_at = now + _lease(case.process)
    claim.save(update_fields=["expires_at"])
    return True


@transaction.atomic
def skip_case(*, case: Case, expert: AbstractUser) -> None:
    """Release the expert's lease; the case comes back to them only after everything else."""
    now = timezone.now()
    CaseClaim.objects.filter(case=case, expert=expert).delete()
    CaseSkip.objects.update_or_create(case=case, expert=expert, defaults={"skipped_at": now})
    CaseEvent.objects.create(case=case, actor=expert, kind="skipped", at=now)


def release_claim(*, case: Case, expert: AbstractUser) -> None:
    CaseClaim.objects.filter(case=case, expert=expert).delete()


def update_queue_settings(*, process: Process, queue_order: str, random_share: float) -> Process:
    """Set how fresh cases are ordered. ValidationError for an unknown order or a share outside
    0 to 1. Switching to uncertainty needs a promoted model to be useful: until the open cases are
    scored they keep the priority order."""
    if queue_order not in QueueOrder.values:
        raise ValidationError(
            f"queue_order must be one of {', '.join(QueueOrder.values)}, got {queue_order!r}"
        )
    share = float(random_share)
    if not 0 <= share <= 1:
        raise ValidationError(f"random_share must be between 0 and 1, got {random_share}")
    process.queue_order = queue_order
    process.random_share = share
    process.save(update_fields=["queue_order", "random_share", "updated_at"])
    return process
