"""The review queue: which case an expert gets next, held by a lease taken under row locks.

Order: a case the expert already holds → cases that have some labels but need more for their
overlap → fresh cases by the process's priority, then age → cases the expert skipped, oldest skip
first. Rows are chosen with SELECT … FOR UPDATE SKIP LOCKED, so two experts asking at the same
moment never get the same case beyond its overlap. An expert never sees others' labels (blind).
"""

from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.db import connection, transaction
from django.utils import timezone

from apps.cases.models import Case, CaseClaim, CaseEvent, CaseSkip, CaseStatus, Process

# Shared conditions: open, not already labelled by me, and a free place left for me under the
# overlap once others' live leases are counted.
_ELIGIBLE = """
    c.process_id = %(process)s AND c.status = 'open'
    AND NOT EXISTS (SELECT 1 FROM cases_decision d
                    WHERE d.case_id = c.id AND d.expert_id = %(expert)s AND d.retracted_at IS NULL)
    AND c.label_count + (SELECT count(*) FROM cases_caseclaim l
                         WHERE l.case_id = c.id AND l.expires_at > %(now)s AND l.expert_id <> %(expert)s)
        < %(overlap)s
"""
_NOT_SKIPPED = """
    AND NOT EXISTS (SELECT 1 FROM cases_caseskip s WHERE s.case_id = c.id AND s.expert_id = %(expert)s)
"""
# Fixed SQL fragments only: every value goes in as a query parameter.
_STAGES = [
    # partly labelled cases first: finishing their overlap settles them sooner
    f"SELECT c.id FROM cases_case c WHERE {_ELIGIBLE} {_NOT_SKIPPED} AND c.label_count > 0 "  # noqa: S608
    "ORDER BY c.label_count DESC, c.priority DESC, c.created_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED",
    f"SELECT c.id FROM cases_case c WHERE {_ELIGIBLE} {_NOT_SKIPPED} AND c.label_count = 0 "  # noqa: S608
    "ORDER BY c.priority DESC, c.created_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED",
    f"SELECT c.id FROM cases_case c JOIN cases_caseskip s ON s.case_id = c.id AND s.expert_id = %(expert)s "  # noqa: S608
    f"WHERE {_ELIGIBLE} ORDER BY s.skipped_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED",
]


def _lease(process: Process) -> timedelta:
    return timedelta(seconds=process.lease_seconds)


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
    params = {"process": process.pk, "expert": expert.pk, "now": now, "overlap": process.overlap}
    with connection.cursor() as cursor:
        for sql in _STAGES:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row is not None:
                break
        else:
            return None
    CaseClaim.objects.update_or_create(
        case_id=row[0],
        expert=expert,
        defaults={"claimed_at": now, "expires_at": now + _lease(process)},
    )
    return Case.objects.get(pk=row[0])


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
        if case.status != CaseStatus.OPEN or case.label_count + others >= case.process.overlap:
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
