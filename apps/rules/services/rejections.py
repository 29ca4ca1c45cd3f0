"""Turning down proposed rules, with a reason, so that induction does not propose them again."""

import hashlib
import json

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.cases.models import Process
from apps.rules.models import RejectedCandidate
from apps.rules.services.authoring import check_rule

MAX_REASON = 2000


class AlreadyRejected(Exception):
    """The same condition and action were rejected before (a state conflict: 409)."""

    def __init__(self, rejection: RejectedCandidate) -> None:
        who = rejection.rejected_by.username if rejection.rejected_by else "someone"
        super().__init__(
            f"already rejected by {who} on {rejection.rejected_at:%Y-%m-%d}: {rejection.reason}"
        )
        self.rejection = rejection


def fingerprint(condition: object, action: object) -> str:
    """sha256 of the canonical JSON of condition and action: equal rules, equal fingerprints."""
    canonical = json.dumps(
        {"condition": condition, "action": action},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def rejected_fingerprints(*, process: Process) -> set[str]:
    return set(
        RejectedCandidate.objects.filter(process=process).values_list("fingerprint", flat=True)
    )


def reject_candidate(
    *,
    process: Process,
    rejected_by: AbstractUser,
    condition: object,
    action: object,
    reason: str,
    evidence: dict | None = None,
) -> RejectedCandidate:
    """Record that `condition` → `action` should not become a rule, and why. Raises
    ValidationError for a blank reason or an invalid rule, AlreadyRejected for a repeat."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("reason: say why the rule is rejected")
    if len(reason) > MAX_REASON:
        raise ValidationError(f"reason: at most {MAX_REASON} characters")
    sentence = check_rule(process, condition, action)
    key = fingerprint(condition, action)
    earlier = (
        RejectedCandidate.objects.filter(process=process, fingerprint=key)
        .select_related("rejected_by")
        .first()
    )
    if earlier is not None:
        raise AlreadyRejected(earlier)
    try:
        with transaction.atomic():
            return RejectedCandidate.objects.create(
                process=process,
                condition=condition,
                action=action,
                sentence=sentence,
                fingerprint=key,
                reason=reason,
                evidence=evidence or {},
                rejected_by=rejected_by,
            )
    except IntegrityError:  # rejected at the same moment by someone else
        raise AlreadyRejected(
            RejectedCandidate.objects.select_related("rejected_by").get(
                process=process, fingerprint=key
            )
        ) from None
