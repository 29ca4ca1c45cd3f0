"""The skills app's own evidence kind: manual evidence (a course, a certificate) that a manager of
the person's team approved (see apps/core/evidence_kinds.py for the other apps' kinds)."""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from apps.core.evidence_kinds import (
    MAX_REFS,
    EvidenceKind,
    Measurement,
    Param,
    Ref,
    between,
    register_evidence_kind,
)
from apps.skills.models import ManualEvidence

MANUAL = "skills.manual"


def approved_manual(
    *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> Measurement:
    rows = ManualEvidence.objects.filter(
        person=person,
        state=ManualEvidence.State.APPROVED,
        skill__slug=params.get("skill", ""),
        **between("reviewed_at", since, until),
    ).order_by("-reviewed_at", "-pk")
    url = reverse("person_skills", kwargs={"user_id": person.pk}) + "#manual-evidence"
    refs = [Ref(f"{row.get_kind_display()}: {row.title}", url) for row in rows[:MAX_REFS]]
    return Measurement(count=rows.count(), refs=refs)


register_evidence_kind(
    EvidenceKind(
        key=MANUAL,
        label="Courses and certificates a manager approved",
        value_label="",
        measure=approved_manual,
        # Filled in with the rule's own skill when the rule is saved.
        params=(Param("skill", "text", "the skill (set from the rule's level)"),),
        todo="add {n} more approved course or certificate",
        owner="skills",
    )
)


PRACTICE_ACCURACY = "skills.practice_accuracy"


def _practice_accuracy(
    *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> Measurement:
    from apps.skills.practice import measure_practice_accuracy

    return measure_practice_accuracy(person=person, params=params, since=since, until=until)


register_evidence_kind(
    EvidenceKind(
        key=PRACTICE_ACCURACY,
        label="Gold cases answered in practice (or in the review queue)",
        value_label="practice accuracy",
        measure=_practice_accuracy,
        params=(Param("process", "process", "only this process's gold cases"),),
        todo="answer {n} more gold cases in practice",
        owner="skills",
    )
)
