"""A second look: reopen a decided case for one more independent label.

Used when a label looks wrong (e.g. a confident model disagrees with the only expert who labelled
the case). The case goes back to open with one extra label required (`Case.extra_labels`), so the
queue offers it, as a partly labelled case, to another expert, blind as ever. When the new label
agrees, the case settles again as decided; when it disagrees, it goes to adjudication.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.cases.errors import CaseConflict
from apps.cases.models import (
    Case,
    CaseClaim,
    CaseEvent,
    CaseStatus,
    Decision,
    DecisionSource,
    Process,
)
from apps.people.models import Membership, Role
from apps.people.selectors import roles_of

SECOND_LOOK = "second_look"


def can_request_second_look(*, user: AbstractBaseUser | AnonymousUser, process: Process) -> bool:
    """Experts, managers and admins of the process's team may ask for a second look."""
    roles = roles_of(user=user, team=process.team)
    return bool(roles & {Role.EXPERT, Role.MANAGER, Role.ADMIN})


def _possible_reviewers(case: Case, requester: AbstractBaseUser) -> set[int]:
    """Experts who could give the extra label: reviewers of the process (or every expert of the
    team), minus those who labelled the case and the requester."""
    process = case.process
    named = set(process.reviewers.values_list("pk", flat=True))
    experts = set(
        Membership.objects.filter(team=process.team, role=Role.EXPERT).values_list(
            "user_id", flat=True
        )
    )
    pool = experts & named if named else experts
    labelled = set(
        Decision.objects.filter(case=case, retracted_at__isnull=True).values_list(
            "expert_id", flat=True
        )
    )
    return pool - labelled - {requester.pk}


@transaction.atomic
def request_second_look(
    *, case: Case, by: AbstractBaseUser, reason: dict[str, object] | None = None
) -> Case:
    """Reopen decided `case` for one more independent label; returns the case, now open.

    `reason` is stored on the case event (e.g. the model's label and confidence). Raises
    CaseConflict when the case is not decided, was adjudicated (two opinions already settled),
    or already waits for a second look; ValidationError when no other expert could label it.
    """
    case = (
        Case.objects.select_for_update(of=("self",)).select_related("process__team").get(pk=case.pk)
    )
    if case.status != CaseStatus.DECIDED:
        raise CaseConflict(
            f"only decided cases can get a second look; this one is {case.get_status_display()}"
        )
    if Decision.objects.filter(
        case=case, source=DecisionSource.ADJUDICATION, retracted_at__isnull=True
    ).exists():
        raise CaseConflict("this case was settled by an adjudicator; it already had a second look")
    if not _possible_reviewers(case, by):
        raise ValidationError(
            "no other expert can give this case a second label: everyone who reviews the process "
            "has labelled it (and the one who asks doesn't label it)"
        )
    now = timezone.now()
    previous = {"label": case.final_label, "reason_code": case.final_reason_code}
    case.extra_labels += 1
    case.status = CaseStatus.OPEN
    case.final_label, case.final_reason_code, case.decided_at = "", "", None
    case.save(
        update_fields=["extra_labels", "status", "final_label", "final_reason_code", "decided_at"]
    )
    # Stale leases from the first round must not hold the new place.
    CaseClaim.objects.filter(case=case).delete()
    CaseEvent.objects.create(
        case=case,
        actor=by,
        kind=SECOND_LOOK,
        at=now,
        # "label"/"reason_code" are hidden from blind viewers like every decision's.
        data={
            **(reason or {}),
            **previous,
            "before": CaseStatus.DECIDED.value,
            "after": CaseStatus.OPEN.value,
            "required_labels": case.required_labels,
        },
    )
    return case
