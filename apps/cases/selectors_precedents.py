"""Precedents for the review pane: the decided cases closest to a case in what decides cases.

The pool is the process's latest PRECEDENT_POOL decided cases plus the embedding's nearest ones
among older cases (pgvector), ranked field by field by apps/cases/precedents.py. Precedents are
decided cases only, so they never reveal a label of an open case (the blind rule).
"""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q, QuerySet

from apps.cases.models import Case, CaseStatus, Decision
from apps.cases.precedents import Comparison, Example, Metric, Part
from apps.cases.services.similarity import similar_cases
from apps.core.registry import precedent_weights

# The newest decided cases every search compares field by field (a few ms per 1,000).
PRECEDENT_POOL = 2000
# Older decided cases reach the pool through the embedding: these many nearest by cosine.
EMBEDDING_CANDIDATES = 50
# At or above this closeness a precedent is "close"; from the minimum up to here "loose".
CLOSE = 0.85
# A process's metric (weights, cut points, decision mixes) is learnt again when its decided cases
# changed by more than this share (any change below 200 cases), or after METRIC_SECONDS.
METRIC_DRIFT = 0.05
METRIC_SECONDS = 600
_METRIC_CACHE_SIZE = 64
_metrics: OrderedDict[tuple, "_Learnt"] = OrderedDict()
_metrics_lock = threading.Lock()
WEIGHTS_SOURCES = {
    "model": "the promoted model's importance",
    "decided": "how much each tells about the decision in the decided cases",
    "equal": "the same (too few decided cases to tell which decide)",
}


@dataclass(frozen=True)
class Difference:
    label: str
    theirs: object
    ours: object


@dataclass(frozen=True)
class Precedent:
    case: Case
    closeness: float  # 0 to 1, the weighted share of what decides cases that is alike
    band: str  # "close", "loose" or "far" (below the minimum: not a precedent)
    differences: list[Difference]
    decision: Decision | None  # the latest decision with the final label that has a rationale

    @property
    def percent(self) -> int:
        return round(self.closeness * 100)


@dataclass(frozen=True)
class PrecedentSearch:
    rows: list[Precedent]
    minimum: float
    weights_source: str
    top_fields: list[str] = field(default_factory=list)  # the weightiest parts' labels

    @property
    def shown(self) -> list[Precedent]:
        return [row for row in self.rows if row.band != "far"]

    @property
    def far(self) -> list[Precedent]:
        return [row for row in self.rows if row.band == "far"]

    @property
    def no_close_precedent(self) -> bool:
        return not self.shown

    @property
    def minimum_percent(self) -> int:
        return round(self.minimum * 100)

    @property
    def close_percent(self) -> int:
        return round(max(CLOSE, self.minimum) * 100)

    @property
    def weights_explained(self) -> str:
        return WEIGHTS_SOURCES[self.weights_source]


def minimum_closeness() -> float:
    return settings.ORCHCAP_PRECEDENT_MIN_SIMILARITY / 100


def band(closeness: float, minimum: float) -> str:
    closeness = round(closeness, 2)  # as shown: 84.6 % reads 85 %, and 85 % is close
    if closeness >= max(CLOSE, minimum):
        return "close"
    return "loose" if closeness >= minimum else "far"


@dataclass
class _Learnt:
    """A process's metric with what later searches reuse: the decided cases' values by pk (a
    case's fields never change after intake) and the last pool ready to compare."""

    metric: Metric
    learnt_at: float
    examples: dict[int, Example]
    comparison: tuple[tuple[int, ...], Comparison] | None = None


def _learnt(
    case: Case,
    specs: list[dict],
    pks: list[int],
    decided: QuerySet[Case],
    weights: dict[str, float] | None,
) -> _Learnt:
    """The process's metric, learnt from the pool `pks` unless a recent one learnt from nearly
    the same decided cases is at hand: learning it costs more than a search."""
    key = (
        case.process_id,
        case.schema_version_id,
        tuple(sorted(weights.items())) if weights else None,
    )
    now = time.monotonic()
    with _metrics_lock:
        cached = _metrics.get(key)
    if cached is not None:
        drift = abs(cached.metric.size - len(pks))
        small = max(cached.metric.size, len(pks)) < 200
        if now - cached.learnt_at < METRIC_SECONDS and (
            drift == 0 or (not small and drift <= METRIC_DRIFT * cached.metric.size)
        ):
            missing = [pk for pk in pks if pk not in cached.examples]
            if missing:  # newly decided cases: read once, then kept with the metric
                cached.examples.update(_examples(decided.filter(pk__in=missing)))
            return cached
    examples = _examples(decided.filter(pk__in=pks))
    learnt = _Learnt(Metric(specs, [examples[pk] for pk in pks], weights), now, examples)
    with _metrics_lock:
        _metrics[key] = learnt
        _metrics.move_to_end(key)
        while len(_metrics) > _METRIC_CACHE_SIZE:
            _metrics.popitem(last=False)
    return learnt


def _examples(decided: QuerySet[Case]) -> dict[int, Example]:
    columns = ("pk", "fields", "exception_reason", "final_label")
    return {
        pk: Example(fields or {}, reason, label)
        for pk, fields, reason, label in decided.values_list(*columns)
    }


def _comparison(learnt: _Learnt, specs: list[dict], pks: list[int]) -> Comparison:
    """The pool ready to compare: the last one again while no case was decided since."""
    pool = tuple(pks)
    last = learnt.comparison
    if last is not None and last[0] == pool:
        return last[1]
    comparison = Comparison(specs, [learnt.examples[pk] for pk in pks], metric=learnt.metric)
    learnt.comparison = (pool, comparison)
    return comparison


def _display(fields: dict, part: Part, exception_reason: str) -> str:
    """A part's value as the review pane shows it ("" when missing)."""
    value = exception_reason if part.name == "exception_reason" else fields.get(part.name)
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if part.kind == "money" and isinstance(value, int | float):
        return f"{value:,.2f}"
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def precedents(*, case: Case, k: int = 5) -> PrecedentSearch:
    """The k decided cases of the case's process closest to it (closest first), each with its
    closeness, band and the weightiest fields that differ; `shown` are those at or above
    ORCHCAP_PRECEDENT_MIN_SIMILARITY, and `no_close_precedent` says there is none."""
    decided = Case.objects.filter(process_id=case.process_id, status=CaseStatus.DECIDED).exclude(
        pk=case.pk
    )
    # Only the pks: the cases' values are read once per learnt metric (_learnt).
    pks = list(decided.order_by("-decided_at", "-pk").values_list("pk", flat=True)[:PRECEDENT_POOL])
    if len(pks) == PRECEDENT_POOL:  # a long history: older look-alikes come through pgvector
        seen = set(pks)
        nearest = [n.pk for n in similar_cases(case=case, k=EMBEDDING_CANDIDATES)]
        older = [pk for pk in nearest if pk not in seen]
        pks += list(decided.filter(pk__in=older).values_list("pk", flat=True))
    specs = case.schema_version.fields
    learnt = _learnt(case, specs, pks, decided, precedent_weights(case.process))
    comparison = _comparison(learnt, specs, pks)
    matches = comparison.nearest(case.fields, case.exception_reason, k=k)
    chosen = [pks[m.index] for m in matches]
    cases = Case.objects.in_bulk(chosen)
    rationales: dict[int, Decision] = {}
    finals = Q()
    for pk in chosen:
        finals |= Q(case_id=pk, label=cases[pk].final_label)
    if chosen:
        with_rationale = (
            Decision.objects.filter(finals, retracted_at__isnull=True)
            .exclude(rationale="")
            .order_by("case_id", "-decided_at")
        )
        for decision in with_rationale:
            rationales.setdefault(decision.case_id, decision)
    minimum = minimum_closeness()
    rows = []
    for match, pk in zip(matches, chosen, strict=True):
        neighbour = cases[pk]
        differences = [
            Difference(
                part.label,
                _display(neighbour.fields, part, neighbour.exception_reason),
                _display(case.fields, part, case.exception_reason),
            )
            for part in match.differences[:3]
        ]
        rows.append(
            Precedent(
                case=neighbour,
                closeness=match.closeness,
                band=band(match.closeness, minimum),
                differences=differences,
                decision=rationales.get(pk),
            )
        )
    ranked = sorted(comparison.parts, key=lambda part: -comparison.weights[part.name])
    return PrecedentSearch(
        rows=rows,
        minimum=minimum,
        weights_source=comparison.weights_source,
        top_fields=[part.label for part in ranked[:3]],
    )
