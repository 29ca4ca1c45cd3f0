"""The skills app's own evidence kinds: manual evidence (a course, a certificate) that a manager
of the person's team approved, and practice on gold cases (see apps/core/evidence_kinds.py for
the other apps' kinds). Both measure a list of people at once."""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q

from apps.core.evidence_kinds import (
    EvidenceKind,
    Measurement,
    Param,
    Ref,
    between,
    latest_per_person,
    register_evidence_kind,
    share_per_person,
    url_maker,
)
from apps.skills.models import AttemptSource, ManualEvidence, PracticeAttempt

MANUAL = "skills.manual"


def approved_manual(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    rows = ManualEvidence.objects.filter(
        person_id__in=people,
        state=ManualEvidence.State.APPROVED,
        skill__slug=params.get("skill", ""),
        **between("reviewed_at", since, until),
    )
    counts = (
        rows.order_by().values("person_id").annotate(n=Count("pk")).values_list("person_id", "n")
    )
    counts = list(counts)
    latest = latest_per_person(
        rows,
        people=[person_id for person_id, _ in counts],
        person="person_id",
        order_by=[F("reviewed_at").desc(), F("pk").desc()],
        fields=("kind", "title"),
    )
    person_url = url_maker("person_skills", "user_id")
    measured = {}
    for person_id, count in counts:
        url = person_url(person_id) + "#manual-evidence"
        refs = [
            Ref(f"{ManualEvidence.Kind(kind).label}: {title}", url)
            for kind, title in latest[person_id]
        ]
        measured[person_id] = Measurement(count=count, refs=refs)
    return measured


register_evidence_kind(
    EvidenceKind(
        key=MANUAL,
        label="Courses and certificates a manager approved",
        value_label="",
        measure_many=approved_manual,
        involves=lambda: Exists(
            ManualEvidence.objects.filter(
                person_id=OuterRef("pk"), state=ManualEvidence.State.APPROVED
            )
        ),
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


def practice_accuracy(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    """measure_practice_accuracy (apps/skills/practice.py) for everyone at once; the same
    figures and links (tests/skills/test_refresh_everyone.py compares them)."""
    attempts = PracticeAttempt.objects.filter(person_id__in=people, **between("at", since, until))
    if params.get("process"):
        attempts = attempts.filter(process__slug=params["process"])
    totals = share_per_person(attempts, person="person_id", hit=Q(correct=True))
    latest = latest_per_person(
        attempts,
        people=[person_id for person_id, _, _ in totals],
        person="person_id",
        order_by=[F("at").desc(), F("pk").desc()],
        fields=(
            "correct", "gold__case__external_id", "gold__case_id", "process__name",
            "process__slug", "source",
        ),
    )  # fmt: skip
    queue_url = url_maker("practice_queue", "slug")
    measured = {}
    for person_id, count, right in totals:
        refs = [
            Ref(
                f"{'Right' if correct else 'Wrong'}: case {external_id or case_id}"
                f" ({process_name}, {AttemptSource(source).label.lower()})",
                queue_url(slug),
            )
            for correct, external_id, case_id, process_name, slug, source in latest[person_id]
        ]
        measured[person_id] = Measurement(count=count, value=right / count, refs=refs)
    return measured


register_evidence_kind(
    EvidenceKind(
        key=PRACTICE_ACCURACY,
        label="Gold cases answered in practice (or in the review queue)",
        value_label="practice accuracy",
        measure=_practice_accuracy,
        measure_many=practice_accuracy,
        involves=lambda: Exists(PracticeAttempt.objects.filter(person_id=OuterRef("pk"))),
        params=(Param("process", "process", "only this process's gold cases"),),
        todo="answer {n} more gold cases in practice",
        owner="skills",
    )
)
