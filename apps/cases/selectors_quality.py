"""Reads for the process quality page and the adjudication queue: agreement, disagreements, settlements."""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

from django.db.models import Count, F, Q, QuerySet

from apps.cases import agreement
from apps.cases.models import Case, CaseStatus, Decision, DecisionSource, Process
from apps.cases.selectors import active_decisions, adjudication_queue, review_decisions

METHOD_NAMES = {
    "cohen": "Cohen's kappa",
    "fleiss": "Fleiss' kappa",
    "krippendorff": "Krippendorff's alpha",
}


@dataclass(frozen=True)
class LabelAgreement:
    """One label against all the others (yes/no: "is it this label?")."""

    label: str
    value: float | None
    uses: int  # ratings with this label, on cases with two or more labels
    cases: int  # of those cases, how many got this label from at least one expert


@dataclass(frozen=True)
class PairAgreement:
    expert_a: str
    expert_b: str
    cases: int  # cases both labelled
    agreed: int
    kappa: float | None


@dataclass(frozen=True)
class ExpertFinalAgreement:
    expert: str
    compared: int  # the expert's labels on decided cases
    matches: int  # of those, equal to the final label
    shared_compared: int  # the same, only on cases other experts labelled too
    shared_matches: int

    @property
    def share(self) -> float | None:
        return self.matches / self.compared if self.compared else None

    @property
    def shared_share(self) -> float | None:
        return self.shared_matches / self.shared_compared if self.shared_compared else None


@dataclass(frozen=True)
class ProcessAgreement:
    method: str  # "cohen", "fleiss" or "krippendorff"
    overall: float | None  # None: not enough cases or not enough variation
    alpha: float | None  # Krippendorff's alpha on the same cases, comparable across processes
    percent: float | None  # raw share of agreeing pairs, not corrected for chance
    cases_compared: int  # cases with two or more labels
    labels_compared: int  # labels on those cases
    labels_total: int  # all active expert labels in the process
    per_label: list[LabelAgreement] = field(default_factory=list)
    pairs: list[PairAgreement] = field(default_factory=list)
    experts: list[ExpertFinalAgreement] = field(default_factory=list)

    @property
    def method_name(self) -> str:
        return METHOD_NAMES[self.method]


def _method_for(units: Sequence[Sequence[object]], overlap: int) -> str:
    """Cohen's kappa when every compared case has exactly two labels, Fleiss' kappa when they all
    have the same number, Krippendorff's alpha otherwise (it takes any number per case)."""
    sizes = {len(unit) for unit in units}
    if not sizes:
        return "cohen" if overlap <= 2 else "fleiss"
    if sizes == {2}:
        return "cohen"
    if len(sizes) == 1:
        return "fleiss"
    return "krippendorff"


def _measure(method: str, units: Sequence[Sequence[object]]) -> float | None:
    if method == "cohen":
        # Raters differ from case to case, so "rater A" is whoever labelled the case first and
        # "rater B" whoever labelled it second (units are in decision order).
        return agreement.cohens_kappa([(unit[0], unit[1]) for unit in units])
    if method == "fleiss":
        return agreement.fleiss_kappa(units)
    return agreement.krippendorffs_alpha(units)


def process_agreement(
    *, process: Process, labels: QuerySet[Decision] | None = None
) -> ProcessAgreement:
    """Agreement among the experts of `process`, from their active labels (adjudications excluded).

    `labels` narrows those labels (by default all of them): a page passes the ones its viewer may
    see (selectors.visible_decisions), so a blind expert's figures never count another expert's
    label on an open case they haven't labelled.

    Three queries whatever the size: the labels of cases with two or more labels (grouped in
    Python), the label total, and each expert's labels against final decisions (SQL aggregates).
    Only cases with two or more labels are compared; there, an expert with several active labels
    on a case (say an imported one and a reviewed one) counts once, with the latest. Measures are
    None when undefined (no compared cases, or a single label used throughout): show "not enough
    variation".
    """
    if labels is None:
        labels = review_decisions(process=process)
    # Only cases with two or more labels are compared: on a large overlap-1 process that is a small
    # share of the labels, so the Python side stays small; totals come from SQL aggregates.
    rows = (
        labels.filter(case__label_count__gte=2)
        .order_by("case_id", "decided_at", "pk")
        .values_list("case_id", "expert__username", "label", "case__status", "case__final_label")
    )
    # case -> {expert: label}, in decision order (dicts keep insertion order; a later label of the
    # same expert replaces the earlier one in place, which is fine for agreement).
    by_case: dict[int, dict[str, str]] = defaultdict(dict)
    final: dict[int, str] = {}
    for case_id, username, label, status, final_label in rows.iterator(chunk_size=5000):
        by_case[case_id][username] = label
        if status == CaseStatus.DECIDED and final_label:
            final[case_id] = final_label
    labels_total = labels.count()

    compared = {case_id: ratings for case_id, ratings in by_case.items() if len(ratings) >= 2}
    units = [list(ratings.values()) for ratings in compared.values()]
    method = _method_for(units, process.overlap)

    return ProcessAgreement(
        method=method,
        overall=_measure(method, units),
        alpha=agreement.krippendorffs_alpha(units),
        percent=agreement.percent_agreement(units),
        cases_compared=len(units),
        labels_compared=sum(len(unit) for unit in units),
        labels_total=labels_total,
        per_label=_per_label(process, method, units),
        pairs=_per_pair(compared),
        experts=_per_expert(labels, by_case, final),
    )


def _per_label(process: Process, method: str, units: list[list[str]]) -> list[LabelAgreement]:
    uses = Counter(label for unit in units for label in unit)
    cases = Counter(label for unit in units for label in set(unit))
    schema_labels = process.schema.labels if process.schema else []
    # Labels of older schema versions still appear if experts used them.
    labels = schema_labels + sorted(set(uses) - set(schema_labels))
    result = []
    for label in labels:
        binary = [[value == label for value in unit] for unit in units]
        result.append(
            LabelAgreement(
                label=label,
                value=_measure(method, binary),
                uses=uses[label],
                cases=cases[label],
            )
        )
    return result


def _per_pair(compared: dict[int, dict[str, str]]) -> list[PairAgreement]:
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for ratings in compared.values():
        for a, b in combinations(sorted(ratings), 2):
            pairs[a, b].append((ratings[a], ratings[b]))
    return [
        PairAgreement(
            expert_a=a,
            expert_b=b,
            cases=len(labels),
            agreed=sum(x == y for x, y in labels),
            kappa=agreement.cohens_kappa(labels),
        )
        for (a, b), labels in sorted(pairs.items())
    ]


def _per_expert(
    labels: QuerySet[Decision], by_case: dict[int, dict[str, str]], final: dict[int, str]
) -> list[ExpertFinalAgreement]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    # All decided cases, aggregated in SQL: each expert's labels against the final decision.
    decided = (
        labels.filter(case__status=CaseStatus.DECIDED)
        .exclude(case__final_label="")
        .values_list("expert__username")
        .annotate(total=Count("id"), same=Count("id", filter=Q(label=F("case__final_label"))))
    )
    for username, total, same in decided:
        counts[username][0] += total
        counts[username][1] += same
    # Cases other experts labelled too, from the compared cases already in memory.
    for case_id, ratings in by_case.items():
        final_label = final.get(case_id)
        if final_label is None:
            continue
        for username, label in ratings.items():
            counts[username][2] += 1
            counts[username][3] += label == final_label
    return [
        ExpertFinalAgreement(
            expert=username,
            compared=row[0],
            matches=row[1],
            shared_compared=row[2],
            shared_matches=row[3],
        )
        for username, row in sorted(counts.items())
    ]


def adjudication_size(*, process: Process) -> int:
    return adjudication_queue(process=process).count()


def next_case_to_adjudicate(*, process: Process) -> Case | None:
    """The oldest case of `process` whose labels disagree and that nobody has settled yet."""
    # pk breaks ties: a batch intake gives many cases the same created_at.
    return (
        adjudication_queue(process=process)
        .select_related("schema_version")
        .order_by("created_at", "pk")
        .first()
    )


def competing_decisions(*, case: Case) -> QuerySet[Decision]:
    """The active expert labels of `case` (not adjudications), first decided first."""
    return (
        active_decisions(case=case)
        .exclude(source=DecisionSource.ADJUDICATION)
        .order_by("decided_at")
    )


def settlement_of(*, case: Case) -> Decision | None:
    """The adjudication that settled `case`, if any (latest first)."""
    return (
        Decision.objects.filter(
            case=case, source=DecisionSource.ADJUDICATION, retracted_at__isnull=True
        )
        .select_related("expert")
        .order_by("-decided_at")
        .first()
    )


def recent_settlements(*, process: Process, limit: int = 5) -> QuerySet[Decision]:
    """The latest adjudications of `process`, with who settled them."""
    return (
        Decision.objects.filter(
            case__process=process,
            source=DecisionSource.ADJUDICATION,
            retracted_at__isnull=True,
        )
        .select_related("expert", "case")
        .order_by("-decided_at")[:limit]
    )
