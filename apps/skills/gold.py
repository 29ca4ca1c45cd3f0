"""Gold cases: decided cases whose answer is known, marked by the team's managers and admins, and a
process's practice setting (the share of gold slipped into the review queue of experts new to it).

The answer is the case's final label when it was marked, with its reason code and a rationale
(the manager's, or the one the deciding label carried). The case itself is only read: marking,
unmarking and every practice answer leave the cases app's rows as they were.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Decision, DecisionSource, Process
from apps.cases.selectors import can_manage_process
from apps.skills.models import GoldCase, PracticeSetting

MAX_GOLD_SHARE = 0.5


def can_manage_gold(*, user: AbstractBaseUser, process: Process) -> bool:
    """Managers and admins of the process's team (not other teams', not organisation admins
    who hold no role there)."""
    return bool(user.is_authenticated) and can_manage_process(user=user, process=process)


def require_gold_manager(*, user: AbstractBaseUser, process: Process) -> None:
    if not can_manage_gold(user=user, process=process):
        raise PermissionDenied("Only the team's managers and admins choose gold cases.")


def _kept_rationale(case: Case) -> str:
    """The rationale that went with the final label: an adjudicator's first, then the latest
    expert label equal to it that has one."""
    decisions = (
        Decision.objects.filter(case=case, retracted_at__isnull=True, label=case.final_label)
        .exclude(rationale="")
        .order_by("-decided_at", "-pk")
    )
    settled = decisions.filter(source=DecisionSource.ADJUDICATION).first()
    chosen = settled or decisions.first()
    return chosen.rationale if chosen else ""


@transaction.atomic
def mark_gold(
    *, case: Case, by: AbstractBaseUser, rationale: str = "", now: object = None
) -> GoldCase:
    """Make a decided case gold (again). The answer is its final label now; `rationale` (blank:
    the deciding label's) is kept with it. PermissionDenied for anyone but the team's managers and
    admins; ValidationError for a case that isn't decided."""
    require_gold_manager(user=by, process=case.process)
    if case.status != CaseStatus.DECIDED or not case.final_label:
        raise ValidationError("Only a decided case can be gold: its final label is the answer.")
    rationale = rationale.strip() or _kept_rationale(case)
    gold, _ = GoldCase.objects.update_or_create(
        case=case,
        defaults={
            "process": case.process,
            "label": case.final_label,
            "reason_code": case.final_reason_code,
            "rationale": rationale,
            "marked_by": by,
            "marked_at": now or timezone.now(),
            "unmarked_at": None,
        },
    )
    return gold


def unmark_gold(*, gold: GoldCase, by: AbstractBaseUser) -> GoldCase:
    """No longer gold: practice and the review queue stop serving it; its attempts stay (they
    still count as evidence)."""
    require_gold_manager(user=by, process=gold.process)
    if gold.unmarked_at is None:
        gold.unmarked_at = timezone.now()
        gold.save(update_fields=["unmarked_at"])
    return gold


def gold_cases(*, process: Process, active_only: bool = True) -> QuerySet[GoldCase]:
    """A process's gold cases, newest first, with how many attempts and how many right."""
    golds = GoldCase.objects.filter(process=process)
    if active_only:
        golds = golds.filter(unmarked_at__isnull=True)
    return golds.select_related("case", "marked_by").annotate(
        attempt_count=Count("attempts"),
        right_count=Count("attempts", filter=Q(attempts__correct=True)),
    )


def gold_for_manager(*, user: AbstractBaseUser, process: Process, case_id: int) -> GoldCase:
    gold = GoldCase.objects.filter(process=process, case_id=case_id).first()
    if gold is None:
        raise ValidationError(f"Case {case_id} is not a gold case of {process.name}.")
    require_gold_manager(user=user, process=process)
    return gold


def decided_case_of(*, process: Process, reference: str) -> Case:
    """A case of `process` by its id or external id (what a manager types); ValidationError
    when there is none."""
    reference = reference.strip()
    lookup = Q(external_id=reference)
    if reference.isdigit():
        lookup |= Q(pk=int(reference))
    case = Case.objects.filter(lookup, process=process).select_related("process").first()
    if case is None:
        raise ValidationError(f"{process.name} has no case {reference!r}.")
    return case


# --- the process's practice setting --------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    gold_share: float
    new_below: int


def practice_setting(*, process: Process) -> Setting:
    row = PracticeSetting.objects.filter(process=process).first()
    if row is None:
        return Setting(
            gold_share=0.0, new_below=PracticeSetting._meta.get_field("new_below").default
        )
    return Setting(gold_share=row.gold_share, new_below=row.new_below)


def set_practice_setting(
    *, process: Process, by: AbstractBaseUser, gold_share: float, new_below: int
) -> PracticeSetting:
    """The share (0 to 0.5) of gold cases in the queue of experts with fewer than `new_below`
    decisions in the process. Managers and admins of the team only."""
    require_gold_manager(user=by, process=process)
    if not 0 <= gold_share <= MAX_GOLD_SHARE:
        raise ValidationError(f"The gold share is between 0 and {MAX_GOLD_SHARE}.")
    if new_below < 1:
        raise ValidationError("An expert is new below at least 1 decision.")
    row, _ = PracticeSetting.objects.update_or_create(
        process=process, defaults={"gold_share": gold_share, "new_below": new_below}
    )
    return row
