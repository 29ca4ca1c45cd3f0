"""Active learning: how unsure the promoted model is about each open case (the queue can serve
the most uncertain first), and the decided cases whose single label it confidently doubts.

Uncertainty is 1 - margin (top probability minus the runner-up) of the promoted model, stored on
`Case.uncertainty`. It is computed in batches after a promotion, for new cases as they arrive,
and by a periodic catch-up (see tasks.py).

Likely label errors follow confident learning (Northcutt et al., the method behind cleanlab): a
label j's threshold is the mean probability the model gives j on the cases labelled j (its
self-confidence); a case labelled i is suspect when the model gives another label j at least
j's threshold and at least the process's `label_error_confidence`.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass

import psycopg
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, QuerySet, Sum

from apps.cases.models import Case, CaseStatus, Decision, DecisionSource, Process
from apps.classifiers import services
from apps.classifiers.models import ModelVersion
from apps.classifiers.types import CaseInput

log = logging.getLogger(__name__)
SCORE_BATCH = 5_000
LABEL_ERROR_SCAN = 20_000  # the most recently decided single-label cases checked per request
# Rounded, so that scoring again with the same model rewrites nothing (every rewritten row costs
# new index entries, the HNSW one included).
_DIGITS = 4

# The rows are locked in id order first (the lock order rule, apps/core/db.py): a plain UPDATE
# locks them in whatever order its plan reads them and can deadlock with a decisions import.
_UPDATE = """
    WITH locked AS MATERIALIZED (
        SELECT c.id, t.u FROM cases_case AS c
        JOIN unnest(%(ids)b::bigint[], %(u)b::float8[]) AS t(id, u) ON c.id = t.id
        WHERE c.status = 'open' AND c.uncertainty IS DISTINCT FROM t.u
        ORDER BY c.id FOR NO KEY UPDATE OF c
    )
    UPDATE cases_case AS c SET uncertainty = locked.u FROM locked WHERE c.id = locked.id
"""


def uncertainty_of(probabilities: dict[str, float]) -> float:
    """1 - margin: 0 when the model is sure, 1 when its two best labels are tied."""
    ranked = sorted(probabilities.values(), reverse=True)
    margin = ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)
    return round(1.0 - margin, _DIGITS)


def write_uncertainty(ids: list[int], values: list[float]) -> int:
    connection.ensure_connection()
    # Binary arrays bound server-side, as intake does: one statement per batch.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_UPDATE, {"ids": ids, "u": values})
        return cursor.rowcount


def _score_batch(version: ModelVersion, rows: list[tuple]) -> int:
    inputs = [CaseInput(fields, reason, list(fault or [])) for _, fields, reason, fault in rows]
    predictions = services.predict_cases(version=version, cases=inputs)
    return write_uncertainty(
        [row[0] for row in rows], [uncertainty_of(p.probabilities) for p in predictions]
    )


def score_open_cases(
    *, process: Process, case_ids: list[int] | None = None, only_unscored: bool = False
) -> int:
    """Compute the promoted model's uncertainty for the open cases of `process` (only `case_ids`
    when given, only those without a score with `only_unscored`) and store it; returns the number
    of rows whose value changed. No promoted model, or one that cannot be loaded: nothing is
    written (the queue then keeps the priority order for unscored cases)."""
    version = services.promoted_version(process=process)
    if version is None:
        return 0
    try:
        services.load_pipeline(version)
    except Exception:
        log.exception("cannot score %s: model version %s does not load", process, version.version)
        return 0
    cases = Case.objects.filter(process=process, status=CaseStatus.OPEN)
    if case_ids is not None:
        cases = cases.filter(pk__in=case_ids)
    if only_unscored:
        cases = cases.filter(uncertainty__isnull=True)
    rows = cases.order_by("pk").values_list("pk", "fields", "exception_reason", "exception_fields")
    changed = 0
    batch: list[tuple] = []
    for row in rows.iterator(chunk_size=SCORE_BATCH):
        batch.append(row)
        if len(batch) == SCORE_BATCH:
            changed += _score_batch(version, batch)
            batch = []
    if batch:
        changed += _score_batch(version, batch)
    if case_ids is None and not only_unscored:
        Process.objects.filter(pk=process.pk).update(uncertainty_model_id=version.pk)
    return changed


def refresh_uncertainty() -> dict[str, int]:
    """The periodic catch-up: every process with a promoted model gets its open cases scored,
    all of them when the promoted version changed since the last full scoring, otherwise only
    those still without a score (e.g. when the broker was down at intake). {slug: rows changed}."""
    done: dict[str, int] = {}
    promoted = ModelVersion.objects.filter(is_promoted=True).select_related("process")
    for version in promoted.defer("snapshot_ids"):
        process = version.process
        stale = process.uncertainty_model_id != version.pk
        done[process.slug] = score_open_cases(process=process, only_unscored=not stale)
    return done


def random_pick_case_ids(*, process: Process) -> QuerySet[Case]:
    """Ids of the cases the uncertainty queue handed out as random picks: the unbiased sample on
    which a model can be evaluated (decisions on uncertain picks are biased towards hard cases)."""
    return (
        Case.objects.filter(process=process, events__kind="picked", events__data__pick="random")
        .values_list("pk", flat=True)
        .distinct()
    )


# --- likely label errors -------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelError:
    case: Case
    expert: str
    given_label: str
    predicted_label: str
    confidence: float  # the model's probability of predicted_label
    given_confidence: float  # the model's probability of the expert's label
    threshold: float  # predicted_label's self-confidence threshold
    in_training: bool  # the model was trained on this label (its doubt is then the stronger)


@dataclass(frozen=True)
class LabelErrorReport:
    version: ModelVersion
    errors: list[LabelError]
    checked: int
    min_confidence: float
    thresholds: dict[str, float]
    scan_limit: int


def confident_disagreements(
    given: list[str], probabilities: list[dict[str, float]], min_confidence: float
) -> tuple[dict[str, float], list[tuple[int, str, float]]]:
    """Confident learning on the model's probabilities: per-label thresholds (the mean
    probability of a label over the rows carrying it) and, for each row whose probability of
    another label reaches both that label's threshold and `min_confidence`, (row index, that
    label, its probability) with the most probable such label."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for label, row in zip(given, probabilities, strict=True):
        if label in row:
            sums[label] += row[label]
            counts[label] += 1
    thresholds = {label: sums[label] / counts[label] for label in counts}
    found = []
    for index, (label, row) in enumerate(zip(given, probabilities, strict=True)):
        candidates = [
            (p, other)
            for other, p in row.items()
            if other != label and p >= min_confidence and p >= thresholds.get(other, 0.0)
        ]
        if candidates:
            p, other = max(candidates)
            found.append((index, other, p))
    return thresholds, found


# A scan predicts every checked case (a second or more on thousands): its result is kept until the
# model or the scanned cases change (the key holds their count, ids and latest decision).
SCAN_CACHE_SECONDS = 24 * 3600
Suspect = tuple[int, str, str, float, float]  # case id, given label, predicted label, p, given p


def _scan(
    *, version: ModelVersion, scanned: QuerySet[Case], min_confidence: float, limit: int
) -> tuple[dict[str, float], list[Suspect], int]:
    """(thresholds, suspects most confident first, cases checked) of confident learning on the
    `limit` most recently decided of `scanned`."""
    state = scanned.aggregate(n=Count("pk"), ids=Sum("pk"), last=Max("decided_at"))
    key = (
        f"classifiers:label-errors:{version.pk}:{version.artifact_sha256}:{min_confidence}:"
        f"{limit}:{state['n']}:{state['ids']}:{state['last'] and state['last'].isoformat()}"
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    rows = list(
        scanned.order_by("-decided_at", "-pk").values_list(
            "pk", "fields", "exception_reason", "exception_fields", "final_label"
        )[:limit]
    )
    predictions = services.predict_cases(
        version=version,
        cases=[
            CaseInput(fields, reason, list(fault or [])) for _, fields, reason, fault, _ in rows
        ],
    )
    thresholds, found = confident_disagreements(
        [row[4] for row in rows], [p.probabilities for p in predictions], min_confidence
    )
    suspects = [
        (rows[i][0], rows[i][4], label, p, predictions[i].probabilities.get(rows[i][4], 0.0))
        for i, label, p in found
    ]
    suspects.sort(key=lambda s: s[3], reverse=True)
    result = (thresholds, suspects, len(rows))
    cache.set(key, result, SCAN_CACHE_SECONDS)
    return result


def likely_label_errors(*, process: Process, limit: int = LABEL_ERROR_SCAN) -> LabelErrorReport:
    """Decided cases labelled by exactly one expert where the promoted model confidently predicts
    another label, most confident first. Checks the `limit` most recently decided such cases.

    Raises services.NoPromotedModel without a promoted model and ArtifactTampered when its
    artifact fails the checksum.
    """
    version = services.require_promoted(process=process)
    min_confidence = services.learning_settings(process=process).label_error_confidence
    scanned = Case.objects.filter(
        process=process, status=CaseStatus.DECIDED, label_count=1, extra_labels=0
    ).exclude(final_label="")
    thresholds, suspects, checked = _scan(
        version=version, scanned=scanned, min_confidence=min_confidence, limit=limit
    )
    ids = [case_id for case_id, *_ in suspects]
    cases = Case.objects.in_bulk(ids)
    experts = dict(
        Decision.objects.filter(case_id__in=ids, retracted_at__isnull=True)
        .exclude(source=DecisionSource.ADJUDICATION)
        .values_list("case_id", "expert__username")
    )
    trained_on = set(services.snapshot_ids(version)) if ids else set()
    errors = [
        LabelError(
            case=cases[case_id],
            expert=experts.get(case_id, ""),
            given_label=given,
            predicted_label=label,
            confidence=p,
            given_confidence=given_p,
            threshold=thresholds.get(label, 0.0),
            in_training=case_id in trained_on,
        )
        for case_id, given, label, p, given_p in suspects
        if case_id in cases
    ]
    return LabelErrorReport(
        version=version,
        errors=errors,
        checked=checked,
        min_confidence=min_confidence,
        thresholds=thresholds,
        scan_limit=limit,
    )


# --- signal receivers ----------------------------------------------------------------------------


def on_cases_created(
    sender: object, *, process_id: int, case_ids: list[int], **kwargs: object
) -> None:
    """New cases of a process with a promoted model get their uncertainty in the background."""
    if not ModelVersion.objects.filter(process_id=process_id, is_promoted=True).exists():
        return
    from apps.classifiers.tasks import score_cases

    for start in range(0, len(case_ids), SCORE_BATCH):
        score_cases.delay(process_id, case_ids[start : start + SCORE_BATCH])
