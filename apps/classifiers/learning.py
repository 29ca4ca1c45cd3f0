"""Training, evaluation and explanation of a process's classifier — plain functions over rows.

Training: hold out a stratified 20 %, compare the candidates (logistic regression on sparse
features, histogram gradient boosting on dense ones) by cross-validated macro-F1 on the rest,
then fit the winner on 80 % of the rest and calibrate its probabilities on the other 20 % (sigmoid
below 1,000 calibration cases, isotonic above), and measure it on the held-out split. No database access: a compute node can run this on rows it is
sent, and the caller stores the result.
"""

import copy
import gc
import io
import itertools
import pickle
import time
import weakref
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from apps.classifiers.features import CaseTable, encode_rows, feature_transformer

# The plain values live in types.py (no scikit-learn there); importable from here as before.
from apps.classifiers.types import (
    EXCEPTION_REASON,
    CaseInput,
    Contribution,
    Prediction,
    TrainingRefused,
)

MIN_PER_LABEL = 10
HOLDOUT_SHARE = 0.2
SELECTION_SAMPLE = 10_000  # rows used to compare candidates; the winner is fitted on all
CALIBRATION_SHARE = 0.2  # of the training split, held back to calibrate the probabilities
SEED = 20260101

Progress = Callable[[int, str], None]


def _candidates(specs: list[dict]) -> dict[str, Callable[[], Pipeline]]:
    return {
        "logistic_regression": lambda: Pipeline(
            [
                ("features", feature_transformer(specs, dense=False)),
                ("classifier", LogisticRegression(max_iter=2000, C=1.0)),
            ]
        ),
        "hist_gradient_boosting": lambda: Pipeline(
            [
                ("features", feature_transformer(specs, dense=True)),
                (
                    "classifier",
                    HistGradientBoostingClassifier(
                        max_iter=150, learning_rate=0.1, early_stopping=True, random_state=SEED
                    ),
                ),
            ]
        ),
    }


@dataclass
class TrainedModel:
    pipeline: Pipeline  # CaseTable → calibrated classifier; predict_proba over `labels`
    algorithm: str
    params: dict
    labels: list[str]
    metrics: dict
    cross_validation: list[dict]
    dropped_labels: dict[str, int]


def check_training_data(counts: Counter[str], *, min_decisions: int) -> dict[str, int]:
    """Refuse data that cannot train a model; returns the labels too rare to learn (dropped)."""
    total = sum(counts.values())
    if total < min_decisions:
        raise TrainingRefused(
            f"needs at least {min_decisions} decided cases to train, this process has {total}"
        )
    rare = {label: n for label, n in counts.items() if n < MIN_PER_LABEL}
    kept = [label for label in counts if label not in rare]
    if len(kept) < 2:
        if len(counts) < 2:
            raise TrainingRefused(
                "needs decisions with at least two different labels; every decided case is "
                f"{next(iter(counts), '(none)')!r}"
            )
        raise TrainingRefused(
            f"needs at least two labels with {MIN_PER_LABEL} or more decisions each; "
            + ", ".join(f"{label}: {n}" for label, n in counts.most_common())
        )
    return rare


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins (top label)."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        mask = (confidence > low) & (confidence <= high)
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def evaluate(pipeline: Pipeline, rows: list[CaseInput], labels: list[str]) -> dict:
    classes = list(pipeline.classes_)
    probabilities = predict_proba(pipeline, rows)
    predicted = [classes[i] for i in probabilities.argmax(axis=1)]
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    confidence = probabilities.max(axis=1)
    correct = np.array([p == t for p, t in zip(predicted, labels, strict=True)])
    majority = Counter(labels).most_common(1)[0][1] / len(labels)
    return {
        "held_out": len(labels),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(
            f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)
        ),
        "majority_baseline": float(majority),
        "calibration_error": expected_calibration_error(confidence, correct),
        "per_label": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(classes)
        },
        "confusion": {
            "labels": classes,
            "matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        },
    }


# Workers run several tasks side by side on few cores: OpenMP threads on top of them oversubscribe
# the machine, and gradient boosting then slows down by an order of magnitude. One thread each.
THREADS = 1


def fit_classifier(
    specs: list[dict],
    rows: list[CaseInput],
    labels: list[str],
    *,
    min_decisions: int,
    progress: Progress = lambda percent, stage: None,
) -> TrainedModel:
    with threadpool_limits(limits=THREADS):
        return _fit_classifier(specs, rows, labels, min_decisions=min_decisions, progress=progress)


def _fit_classifier(
    specs: list[dict],
    rows: list[CaseInput],
    labels: list[str],
    *,
    min_decisions: int,
    progress: Progress = lambda percent, stage: None,
) -> TrainedModel:
    dropped = check_training_data(Counter(labels), min_decisions=min_decisions)
    keep = [i for i, label in enumerate(labels) if label not in dropped]
    rows = [rows[i] for i in keep]
    labels = [labels[i] for i in keep]
    table = CaseTable(specs).transform(rows)
    y = np.array(labels, dtype=object)
    train_at, test_at = train_test_split(
        np.arange(len(y)), test_size=HOLDOUT_SHARE, stratify=y, random_state=SEED
    )
    train_x, train_y, test_y = table[train_at], y[train_at], y[test_at]
    progress(10, f"comparing candidates on {len(train_y):,} training cases")
    sample_x, sample_y = train_x, train_y
    if len(train_y) > SELECTION_SAMPLE:
        sample_x, _, sample_y, _ = train_test_split(
            train_x, train_y, train_size=SELECTION_SAMPLE, stratify=train_y, random_state=SEED
        )
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=SEED)
    scores: list[dict] = []
    candidates = _candidates(specs)
    for step, (name, build) in enumerate(candidates.items()):
        started = time.perf_counter()
        fold_scores = cross_val_score(build(), sample_x, sample_y, cv=folds, scoring="f1_macro")
        scores.append(
            {
                "algorithm": name,
                "macro_f1_mean": float(fold_scores.mean()),
                "macro_f1_std": float(fold_scores.std()),
                "folds": len(fold_scores),
                "rows": len(sample_y),
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        progress(10 + 40 * (step + 1) // len(candidates), f"cross-validated {name}")
    best = max(scores, key=lambda s: s["macro_f1_mean"])["algorithm"]
    # One fit on most of the training split, calibrated on the rest: a quarter of the time of
    # cross-validated calibration, and one model to run at prediction time.
    fit_at, calibrate_at = train_test_split(
        np.arange(len(train_y)), test_size=CALIBRATION_SHARE, stratify=train_y, random_state=SEED
    )
    method = "isotonic" if len(calibrate_at) >= 1000 else "sigmoid"
    progress(55, f"fitting {best} on {len(fit_at):,} cases")
    fitted = candidates[best]().fit(train_x[fit_at], train_y[fit_at])
    progress(80, f"calibrating ({method}) on {len(calibrate_at):,} cases")
    # The model is frozen, so "cross-validation" is one split whose test part is every calibration
    # case (sklearn's default 5 folds would refuse labels with fewer than 5 calibration cases).
    everything = np.arange(len(calibrate_at))
    calibrated = CalibratedClassifierCV(
        FrozenEstimator(fitted), method=method, cv=[(everything, everything)]
    )
    calibrated.fit(train_x[calibrate_at], train_y[calibrate_at])
    pipeline = Pipeline([("table", CaseTable(specs)), ("model", calibrated)])
    progress(88, f"measuring on {len(test_y):,} held-out cases")
    metrics = evaluate(pipeline, [rows[i] for i in test_at], list(test_y))
    metrics["train_rows"] = len(train_y)
    return TrainedModel(
        pipeline=pipeline,
        algorithm=best,
        params={
            "calibration": method,
            "candidates": [s["algorithm"] for s in scores],
            "holdout_share": HOLDOUT_SHARE,
            "seed": SEED,
            "min_per_label": MIN_PER_LABEL,
            "classifier": _classifier_params(calibrated),
        },
        labels=list(pipeline.classes_),
        metrics=metrics,
        cross_validation=scores,
        dropped_labels=dropped,
    )


def _classifier_params(calibrated: CalibratedClassifierCV) -> dict:
    estimator = calibrated.estimator.estimator.named_steps["classifier"]
    return {
        key: value
        for key, value in estimator.get_params().items()
        if isinstance(value, int | float | str | bool) or value is None
    }


# --- artifacts ---------------------------------------------------------------------------------


def serialise(pipeline: Pipeline) -> bytes:
    buffer = io.BytesIO()
    pickle.dump(pipeline, buffer, protocol=5)
    return zlib.compress(buffer.getvalue(), 6)


def deserialise(content: bytes) -> Pipeline:
    # Only ever called on bytes whose SHA-256 matched the registry's record (see services).
    return pickle.loads(zlib.decompress(content))  # noqa: S301


# --- prediction and explanation ----------------------------------------------------------------


# What predict_proba needs of a trained pipeline, found once per loaded pipeline: its schema, and
# per calibrated classifier the fitted encoder and a copy calibrating the bare classifier's scores.
_parts: "weakref.WeakKeyDictionary[Pipeline, tuple | None]" = weakref.WeakKeyDictionary()


def _prediction_parts(pipeline: Pipeline) -> tuple | None:
    """None for a pipeline of another shape (predict_proba then asks the pipeline itself)."""
    steps = getattr(pipeline, "steps", [])
    if len(steps) != 2:
        return None
    (_, table), (_, model) = steps
    if not isinstance(table, CaseTable) or not isinstance(model, CalibratedClassifierCV):
        return None
    pairs = []
    for calibrated in model.calibrated_classifiers_:
        fitted = getattr(calibrated.estimator, "estimator", None)  # inside its FrozenEstimator
        if not isinstance(fitted, Pipeline) or [name for name, _ in fitted.steps] != [
            "features",
            "classifier",
        ]:
            return None
        encoder, classifier = fitted.named_steps["features"], fitted.named_steps["classifier"]
        if not isinstance(encoder, ColumnTransformer) or encoder.transformer_weights is not None:
            return None
        for _, transformer, selection in encoder.transformers_:
            plain = isinstance(selection, int) or (
                isinstance(selection, list) and all(isinstance(i, int) for i in selection)
            )
            if not plain or (isinstance(transformer, str) and transformer != "drop"):
                return None
        direct = copy.copy(calibrated)
        direct.estimator = classifier
        pairs.append((encoder, direct))
    return table.specs or [], pairs


def predict_proba(pipeline: Pipeline, rows: list[CaseInput]) -> np.ndarray:
    """`pipeline.predict_proba(rows)`, the same numbers, at about the cost of the bare classifier:
    the rows are encoded straight into the classifier's matrix (features.encode_rows, no object
    table, no ColumnTransformer checks) and each calibrator scores the classifier itself rather than
    the whole pipeline again, then their mean as CalibratedClassifierCV takes it."""
    try:
        parts = _parts[pipeline]
    except KeyError:
        parts = _parts.setdefault(pipeline, _prediction_parts(pipeline))
    if parts is None:
        return pipeline.predict_proba(rows)
    specs, pairs = parts
    matrices: dict[int, object] = {}
    total = np.zeros((len(rows), len(pipeline.classes_)))
    for encoder, calibrated in pairs:
        if id(encoder) not in matrices:
            matrices[id(encoder)] = encode_rows(encoder, specs, rows)
        total += calibrated.predict_proba(matrices[id(encoder)])
    total /= len(pairs)
    return total


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector while many objects without cycles are made. 20,000 predictions
    made it scan the whole heap nearly every call: 150 ms of a 750 ms call in a small process (the
    web server's), more in one holding a data set (the bench's, or a worker's)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def predict(pipeline: Pipeline, rows: list[CaseInput]) -> list[Prediction]:
    if not rows:
        return []
    classes = list(pipeline.classes_)
    with threadpool_limits(limits=THREADS):
        probabilities = predict_proba(pipeline, rows)
    best = probabilities.argmax(axis=1).tolist()
    with _no_cycle_collection():
        return [
            Prediction(
                label=classes[b], confidence=p[b], probabilities=dict(zip(classes, p, strict=True))
            )
            for p, b in zip(probabilities.tolist(), best, strict=True)
        ]


def explain(pipeline: Pipeline, row: CaseInput, *, top: int = 3) -> list[Contribution]:
    """The parts of the case that most raised the predicted label's probability.

    Occlusion: each field is removed in turn (missing, as the pipeline imputes it) and the drop in
    the predicted label's probability is its contribution. Model-agnostic and in the schema's words.
    """
    sources = [name for name, value in row.fields.items() if value not in (None, "")]
    variants = [
        CaseInput(
            {k: v for k, v in row.fields.items() if k != name},
            row.exception_reason,
            [f for f in row.exception_fields if f != name],
        )
        for name in sources
    ]
    if row.exception_reason:
        sources.append(EXCEPTION_REASON)
        variants.append(CaseInput(row.fields, "", row.exception_fields))
    probabilities = predict_proba(pipeline, [row, *variants])
    index = int(probabilities[0].argmax())
    base = probabilities[0, index]
    contributions = [
        Contribution(source, float(base - probabilities[i + 1, index]))
        for i, source in enumerate(sources)
    ]
    contributions.sort(key=lambda c: c.effect, reverse=True)
    return [c for c in contributions[:top] if c.effect > 0.005]
