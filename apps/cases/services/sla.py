"""SLA fields of a case (due time, breach, escalation steps) and who it is routed to. Written by
`orchestrations` for the items it routes to people (docs/orchestrations.md#sla-and-escalation);
the review queue orders by `due_by` when the process's queue order is `due`."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from apps.cases.models import Case, CaseEvent, CaseStatus
from apps.core.db import lock_in_order


def set_due(*, due: dict[int, datetime]) -> int:
    """Give cases (by id) their due time, which is also when their first escalation step is due.
    Precondition: inside `transaction.atomic`. The rows are locked in id order first (a case
    just opened in this transaction is already held by it). Returns how many were set."""
    if not due:
        return 0
    ids = lock_in_order(Case.objects.filter(pk__in=list(due)))
    if not ids:
        return 0
    with connection.cursor() as cursor:
        # One statement for a whole batch of routed items (a request may route hundreds).
        cursor.execute(
            "UPDATE cases_case c SET due_by = v.due, escalate_at = v.due "
            "FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS due) v "
            "WHERE c.id = v.id",
            [ids, [due[pk] for pk in ids]],
        )
        return cursor.rowcount


def lock_due_case(*, case_id: int, now: datetime) -> Case | None:
    """The open case `case_id`, locked, if an escalation step is due for it at `now`; None when
    not (decided meanwhile, or the step already taken: a second sweep finds nothing to do).
    Precondition: inside `transaction.atomic`."""
    return (
        Case.objects.select_for_update(of=("self",))
        .select_related("process")
        .filter(pk=case_id, status=CaseStatus.OPEN, escalate_at__lte=now)
        .first()
    )


def record_escalation(
    *,
    case: Case,
    level: int,
    next_at: datetime | None,
    routed_to: AbstractBaseUser | bool | None = False,
    data: dict | None = None,
    now: datetime | None = None,
) -> Case:
    """Record escalation step `level` on a case locked by `lock_due_case`: the first step marks
    the breach (`sla_breached_at`, counted once), `next_at` is when the next step is due (None:
    no step left). `routed_to` hands the case to an expert first (None: back to the whole
    queue; False: unchanged). A `sla_escalated` event goes on the case's timeline."""
    now = now or timezone.now()
    fields = ["escalation_level", "escalate_at"]
    case.escalation_level = level
    case.escalate_at = next_at
    if case.sla_breached_at is None:
        case.sla_breached_at = now
        fields.append("sla_breached_at")
    if routed_to is not False:
        case.routed_to = routed_to
        fields.append("routed_to")
    case.save(update_fields=fields)
    CaseEvent.objects.create(
        case=case, actor=None, kind="sla_escalated", at=now, data={"level": level, **(data or {})}
    )
    return case
