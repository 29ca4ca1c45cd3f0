"""Practice on known answers: a person answers gold cases of a process and is told at once whether
they were right, with the gold rationale and the decided cases most like it.

Practice never writes a decision and never touches the case (no claim, skip, event or label): an
answer is a `PracticeAttempt`. Accuracy on those attempts is the evidence kind
`skills.practice_accuracy` (skill_evidence.py), seen only by the person, their managers and admins.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from apps.cases.models import Case, Decision, Process
from apps.cases.selectors import processes_for
from apps.cases.services.similarity import similar_cases
from apps.core.evidence_kinds import MAX_REFS, Measurement, Ref, between
from apps.skills.models import AttemptSource, GoldCase, PracticeAttempt


def labelled_by(person: AbstractBaseUser) -> QuerySet[Decision]:
    """Cases the person labelled (even if retracted): they know those answers already."""
    return Decision.objects.filter(expert_id=person.pk).values("case_id")


def practicable_golds(*, person: AbstractBaseUser, process: Process) -> QuerySet[GoldCase]:
    """Active gold cases of `process` the person may practise on (not one they labelled)."""
    return GoldCase.objects.filter(process=process, unmarked_at__isnull=True).exclude(
        case_id__in=labelled_by(person)
    )


def next_gold(
    *, person: AbstractBaseUser, process: Process, after: int | None = None
) -> GoldCase | None:
    """The gold case to practise next: one never practised first, then the least recently
    practised; `after` (a gold id just skipped) comes last. None when the process has none."""
    last = (
        PracticeAttempt.objects.filter(gold=OuterRef("pk"), person=person)
        .order_by("-at")
        .values("at")[:1]
    )
    golds = practicable_golds(person=person, process=process).annotate(last_at=Subquery(last))
    order = [F("last_at").asc(nulls_first=True), "marked_at", "pk"]
    if after is not None:
        chosen = golds.exclude(pk=after).order_by(*order).first()
        if chosen is not None:
            return chosen
    return golds.select_related("case__schema_version", "process").order_by(*order).first()


def gold_to_practise(*, person: AbstractBaseUser, process: Process, gold_id: int) -> GoldCase:
    gold = (
        practicable_golds(person=person, process=process)
        .select_related("case__schema_version", "process")
        .filter(pk=gold_id)
        .first()
    )
    if gold is None:
        raise ValidationError("That case is not there to practise on any more.")
    return gold


def record_attempt(
    *,
    gold: GoldCase,
    person: AbstractBaseUser,
    label: str,
    reason_code: str = "",
    rationale: str = "",
    source: str = AttemptSource.PRACTICE,
    at: datetime | None = None,
) -> PracticeAttempt:
    """The person's answer to a gold case, right when it equals the gold label. Writes only the
    attempt. ValidationError for a label the process doesn't offer."""
    labels = {option["label"] for option in gold.process.schema.decisions}
    if label not in labels:
        raise ValidationError(f"{label!r} is not a decision of {gold.process.name}.")
    return PracticeAttempt.objects.create(
        person=person,
        gold=gold,
        process=gold.process,
        label=label,
        reason_code=reason_code,
        rationale=rationale,
        correct=label == gold.label,
        source=source,
        at=at or timezone.now(),
    )


@dataclass(frozen=True)
class Neighbour:
    case: Case
    percent: int


@dataclass(frozen=True)
class Feedback:
    attempt: PracticeAttempt
    gold: GoldCase
    neighbours: list[Neighbour]


def feedback(*, attempt: PracticeAttempt, k: int = 5) -> Feedback:
    """What the person sees after answering: right or wrong, the gold answer and rationale, and
    the decided cases nearest to it (the cases app's similar-cases selector)."""
    gold = attempt.gold
    nearest = similar_cases(case=gold.case, k=k, decided_only=True)
    neighbours = [
        Neighbour(case=n, percent=max(0, round((1 - float(n.distance)) * 100)))
        for n in sorted(nearest, key=lambda n: n.distance)
    ]
    return Feedback(attempt=attempt, gold=gold, neighbours=neighbours)


@dataclass(frozen=True)
class Accuracy:
    process: Process
    attempts: int
    right: int
    golds: int  # active gold cases there to practise on

    @property
    def share(self) -> float | None:
        return self.right / self.attempts if self.attempts else None

    @property
    def percent(self) -> int | None:
        return None if self.share is None else round(self.share * 100)


def practice_overview(*, person: AbstractBaseUser) -> list[Accuracy]:
    """Every process of the person's teams that has gold cases to practise on, or attempts of
    theirs, with their accuracy there. Only for the person, their managers and admins."""
    stats = {
        row["process"]: row
        for row in PracticeAttempt.objects.filter(person=person)
        .values("process")
        .annotate(n=Count("pk"), right=Count("pk", filter=Q(correct=True)))
    }
    golds = dict(
        GoldCase.objects.filter(unmarked_at__isnull=True)
        .exclude(case_id__in=labelled_by(person))
        .values("process")
        .annotate(n=Count("pk"))
        .values_list("process", "n")
    )
    rows = []
    for process in processes_for(user=person).order_by("name"):
        if process.pk not in stats and not golds.get(process.pk):
            continue
        row = stats.get(process.pk, {"n": 0, "right": 0})
        rows.append(
            Accuracy(
                process=process,
                attempts=row["n"],
                right=row["right"],
                golds=golds.get(process.pk, 0),
            )
        )
    return rows


def recent_attempts(*, person: AbstractBaseUser, limit: int = 20) -> QuerySet[PracticeAttempt]:
    return PracticeAttempt.objects.filter(person=person).select_related("gold__case", "process")[
        :limit
    ]


def people_accuracy(*, process: Process) -> list[dict[str, object]]:
    """Per person: attempts and accuracy on `process`'s gold (for its managers' gold page)."""
    return list(
        PracticeAttempt.objects.filter(process=process)
        .values("person__username")
        .annotate(
            attempts=Count("pk"),
            right=Count("pk", filter=Q(correct=True)),
            last=Max("at"),
        )
        .order_by("person__username")
    )


# --- the evidence kind ---------------------------------------------------------------------------


def measure_practice_accuracy(
    *,
    person: AbstractBaseUser,
    params: dict[str, object],
    since: datetime | None,
    until: datetime,
) -> Measurement:
    """Attempts on gold cases (practice queue and the review queue's gold alike) over the
    period, with the share answered right."""
    attempts = PracticeAttempt.objects.filter(person=person, **between("at", since, until))
    if params.get("process"):
        attempts = attempts.filter(process__slug=params["process"])
    totals = attempts.aggregate(n=Count("pk"), right=Count("pk", filter=Q(correct=True)))
    count = totals["n"]
    refs = [
        Ref(
            f"{'Right' if a.correct else 'Wrong'}: case {a.gold.case.external_id or a.gold.case_id}"
            f" ({a.process.name}, {a.get_source_display().lower()})",
            reverse("practice_queue", kwargs={"slug": a.process.slug}),
        )
        for a in attempts.select_related("gold__case", "process").order_by("-at", "-pk")[:MAX_REFS]
    ]
    return Measurement(count=count, value=totals["right"] / count if count else None, refs=refs)
