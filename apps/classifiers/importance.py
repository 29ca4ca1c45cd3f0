"""What the promoted model says decides a process's cases, for ranking precedents (cases).

Registered with apps.core.registry.register_precedent_weights from ClassifiersConfig.ready(), so
cases weighs fields by it without importing classifiers. Importance is occlusion, as for one
suggestion (learning.explain), averaged over the process's latest decided cases: how much the
probability of the model's own prediction drops when a field is left out.
"""

import threading
from collections import OrderedDict

import numpy as np
from threadpoolctl import threadpool_limits

from apps.cases.models import Case, CaseStatus, Process
from apps.classifiers import services
from apps.classifiers.types import EXCEPTION_REASON, CaseInput

# Cases the importance is averaged over: enough to be stable, few enough for one page view.
SAMPLE = 60
_CACHE_SIZE = 16
_cache: OrderedDict[str, dict[str, float]] = OrderedDict()
_cache_lock = threading.Lock()


def field_importance(*, rows: list[CaseInput], pipeline: object) -> dict[str, float]:
    """Mean drop in the predicted label's probability when each field (or the exception reason)
    is left out, over `rows`; never negative."""
    sources = sorted({name for row in rows for name in row.fields} | {EXCEPTION_REASON})
    batch: list[CaseInput] = list(rows)
    for source in sources:
        for row in rows:
            if source == EXCEPTION_REASON:
                batch.append(CaseInput(row.fields, "", row.exception_fields))
            else:
                batch.append(
                    CaseInput(
                        {k: v for k, v in row.fields.items() if k != source},
                        row.exception_reason,
                        [f for f in row.exception_fields if f != source],
                    )
                )
    from apps.classifiers.learning import THREADS, predict_proba

    with threadpool_limits(limits=THREADS):
        probabilities = predict_proba(pipeline, batch)  # type: ignore[arg-type]
    base = probabilities[: len(rows)]
    predicted = base.argmax(axis=1)
    taken = base[np.arange(len(rows)), predicted]
    importance = {}
    for index, source in enumerate(sources):
        start = len(rows) * (index + 1)
        without = probabilities[start : start + len(rows)][np.arange(len(rows)), predicted]
        importance[source] = max(0.0, float(np.mean(taken - without)))
    return importance


def promoted_model_weights(process: Process) -> dict[str, float] | None:
    """The promoted model's field importance for `process` (cached per model), or None without a
    promoted model, decided cases, or any field that matters to it."""
    version = services.promoted_version(process=process)
    if version is None:
        return None
    key = version.artifact_sha256
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key] or None
    cases = list(
        Case.objects.filter(process=process, status=CaseStatus.DECIDED)
        .order_by("-decided_at", "-pk")
        .only("fields", "exception_reason", "exception_fields")[:SAMPLE]
    )
    if not cases:
        return None
    importance = field_importance(
        rows=[services.case_input(case) for case in cases],
        pipeline=services.load_pipeline(version),
    )
    if not any(importance.values()):
        importance = {}
    with _cache_lock:
        _cache[key] = importance
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return importance or None
