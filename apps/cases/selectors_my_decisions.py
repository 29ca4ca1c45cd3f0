"""An expert's own decisions and what became of them (the "My decisions" page)."""

from dataclasses import dataclass
from datetime import date

from django.db.models import (
    BooleanField,
    CharField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models import Case as CaseWhen

from apps.cases.models import CaseStatus, Decision, DecisionSource, Process
from apps.cases.selectors import AnyUser, _labels_visible, processes_for
from apps.people.models import Role
from apps.people.selectors import roles_of

# An expert's own labels: what they decided in review, through the API or in imported history.
# Adjudications settle other people's labels and model decisions are the autopilot's.
OWN_SOURCES = [DecisionSource.REVIEW, DecisionSource.API, DecisionSource.IMPORT]


class Outcome:
    AGREED = "agreed"
    OVERTURNED = "overturned"
    PENDING = "pending"
    CHOICES = [
        (AGREED, "Agreed: the final label is mine"),
        (OVERTURNED, "Overturned: the final label differs"),
        (PENDING, "Pending: not decided yet"),
    ]


@dataclass(frozen=True)
class DecisionFilters:
    process: Process | None = None
    label: str = ""
    outcome: str = ""
    decided_from: date | None = None
    decided_to: date | None = None


def my_decisions(*, expert: AnyUser, filters: DecisionFilters | None = None) -> QuerySet[Decision]:
    """`expert`'s active labels (not undone) on the cases of their teams' processes, newest first,
    narrowed by `filters`. Each comes with its case and process and these annotations:

    - `final_shown`: whether the blind rule lets `expert` see the case's final label (always, for
      a case they labelled: cases_with_visible_labels; kept explicit so the page never shows a
      final label the rule would hide);
    - `outcome`: "agreed" (decided with `expert`'s label), "overturned" (decided with another
      label) or "pending" (open, under a second look, or awaiting adjudication);
    - `settled_by`, `settled_reason_code`, `settled_rationale`: the adjudication that settled the
      case, when one did (who overturned the label, and why).
    """
    filters = filters or DecisionFilters()
    if not expert.is_authenticated:
        return Decision.objects.none()
    final_shown = _labels_visible(user=expert, case_prefix="case__")
    adjudication = Decision.objects.filter(
        case_id=OuterRef("case_id"),
        source=DecisionSource.ADJUDICATION,
        retracted_at__isnull=True,
    ).order_by("-decided_at")
    decisions = (
        Decision.objects.filter(
            expert_id=expert.pk,
            retracted_at__isnull=True,
            source__in=OWN_SOURCES,
            case__process__in=processes_for(user=expert).values("pk"),
        )
        .select_related("case__process")
        .annotate(
            final_shown=ExpressionWrapper(final_shown, output_field=BooleanField()),
            outcome=CaseWhen(
                When(~final_shown | ~Q(case__status=CaseStatus.DECIDED), then=Value("pending")),
                When(case__final_label=F("label"), then=Value(Outcome.AGREED)),
                default=Value(Outcome.OVERTURNED),
                output_field=CharField(),
            ),
            settled_by=Subquery(adjudication.values("expert__username")[:1]),
            settled_reason_code=Subquery(adjudication.values("reason_code")[:1]),
            settled_rationale=Subquery(adjudication.values("rationale")[:1]),
        )
        .order_by("-decided_at", "-pk")
    )
    if filters.process is not None:
        decisions = decisions.filter(case__process=filters.process)
    if filters.label:
        decisions = decisions.filter(label=filters.label)
    if filters.decided_from is not None:
        decisions = decisions.filter(decided_at__date__gte=filters.decided_from)
    if filters.decided_to is not None:
        decisions = decisions.filter(decided_at__date__lte=filters.decided_to)
    if filters.outcome:
        decisions = decisions.filter(outcome=filters.outcome)
    return decisions


def outcome_counts(*, decisions: QuerySet[Decision]) -> dict[str, int]:
    """{outcome: how many} of `decisions` (from my_decisions), in one query."""
    counts = decisions.order_by().aggregate(
        **{
            value: Count("pk", filter=Q(outcome=value))
            for value in (Outcome.AGREED, Outcome.OVERTURNED, Outcome.PENDING)
        }
    )
    return {value: counts[value] or 0 for value in counts}


def has_decisions_page(user: AnyUser) -> bool:
    """Experts (of any team) label cases: the navigation offers them "My decisions"."""
    return Role.EXPERT in roles_of(user=user)


def my_labels(*, expert: AnyUser) -> list[str]:
    """The labels `expert` has given (for the label filter), in alphabetical order."""
    if not expert.is_authenticated:
        return []
    return list(
        Decision.objects.filter(
            expert_id=expert.pk, retracted_at__isnull=True, source__in=OWN_SOURCES
        )
        .order_by("label")
        .values_list("label", flat=True)
        .distinct()
    )
