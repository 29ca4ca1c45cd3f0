"""Classifier work a fabric node runs: training and batch prediction as payload functions.

No Django here (nodes have no settings and no database): the control plane sends the decided
cases as a dataset artefact, or the rows to score with the model's artefact, and the functions
below run the pure code of learning.py over them. A trained model comes back as an artefact the
node uploads for its attempt; the control plane verifies it and files it in the registry
(see fabric.py in this app for that side).

Formats (JSON, the dataset zlib-compressed):
- dataset: {"format": 1, "specs": [schema field specs], "rows": [[fields, reason, fault]],
  "labels": [...], "min_decisions": n, "ids": [case ids]} (the ids are the snapshot the control
  plane files with the model; the node doesn't use them)
- train_classifier args: {"dataset": sha256} → {"model": sha256, "algorithm", "params",
  "labels", "metrics", "cross_validation", "dropped_labels", "rows", "seconds"}
- predict_batch args: {"model": sha256, "rows": [[fields, reason, fault]], "ids": [...]} →
  {"ids": [...], "classes": [...], "probabilities": [[...]]} (rounded to 4 digits)
"""

import json
import threading
import time
import zlib
from collections import OrderedDict
from typing import Any

from apps.classifiers.types import CaseInput
from apps.fabric.payloads import Context, PayloadError, is_sha256, payload_function

DATASET_FORMAT = 1
MAX_PREDICT_ROWS = 10_000
_DIGITS = 4
_models: OrderedDict[str, Any] = OrderedDict()  # sha256 → pipeline, the last few used
_models_lock = threading.Lock()
_MODELS_KEPT = 4


def encode_dataset(
    *,
    specs: list[dict],
    ids: list[int],
    rows: list[CaseInput],
    labels: list[str],
    min_decisions: int,
) -> bytes:
    body = {
        "format": DATASET_FORMAT,
        "ids": ids,
        "specs": specs,
        "rows": [[r.fields, r.exception_reason, list(r.exception_fields)] for r in rows],
        "labels": labels,
        "min_decisions": min_decisions,
    }
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)


def decode_dataset(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(zlib.decompress(content))
    except (zlib.error, ValueError) as exc:
        raise PayloadError(f"train_classifier: the dataset is not readable: {exc}") from None
    if not isinstance(body, dict) or body.get("format") != DATASET_FORMAT:
        raise PayloadError(f"train_classifier: the dataset must be format {DATASET_FORMAT}")
    return body


def _inputs(rows: object, what: str) -> list[CaseInput]:
    if not isinstance(rows, list):
        raise PayloadError(f"{what}: rows must be a list")
    inputs = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], dict)):
            raise PayloadError(f"{what}: each row is [fields, exception reason, fields at fault]")
        inputs.append(CaseInput(row[0], row[1] or "", list(row[2] or [])))
    return inputs


def _check_train(args: dict[str, Any]) -> None:
    if not is_sha256(args.get("dataset")):
        raise PayloadError("train_classifier: dataset must be a SHA-256 hex digest")


@payload_function("train_classifier", check=_check_train)
def train_classifier(args: dict[str, Any], context: Context) -> dict[str, Any]:
    from apps.classifiers import learning  # scikit-learn: loaded where a model is trained

    _check_train(args)
    started = time.perf_counter()
    dataset = decode_dataset(context.artifact(args["dataset"]))
    rows = _inputs(dataset.get("rows"), "train_classifier")
    trained = learning.fit_classifier(
        dataset["specs"], rows, list(dataset["labels"]), min_decisions=int(dataset["min_decisions"])
    )
    model = context.store_artifact(learning.serialise(trained.pipeline), "classifier model")
    return {
        "model": model,
        "algorithm": trained.algorithm,
        "params": trained.params,
        "labels": trained.labels,
        "metrics": trained.metrics,
        "cross_validation": trained.cross_validation,
        "dropped_labels": trained.dropped_labels,
        "rows": len(rows),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _check_predict(args: dict[str, Any]) -> None:
    if not is_sha256(args.get("model")):
        raise PayloadError("predict_batch: model must be a SHA-256 hex digest")
    rows, ids = args.get("rows"), args.get("ids")
    if not isinstance(rows, list) or len(rows) > MAX_PREDICT_ROWS:
        raise PayloadError(f"predict_batch: rows must be a list of at most {MAX_PREDICT_ROWS}")
    if ids is not None and (not isinstance(ids, list) or len(ids) != len(rows)):
        raise PayloadError("predict_batch: ids must be a list as long as rows")


def _pipeline(sha256: str, context: Context) -> Any:
    from apps.classifiers import learning  # scikit-learn: loaded where a model is used

    with _models_lock:
        if sha256 in _models:
            _models.move_to_end(sha256)
            return _models[sha256]
    pipeline = learning.deserialise(context.artifact(sha256))
    with _models_lock:
        _models[sha256] = pipeline
        while len(_models) > _MODELS_KEPT:
            _models.popitem(last=False)
    return pipeline


@payload_function("predict_batch", check=_check_predict)
def predict_batch(args: dict[str, Any], context: Context) -> dict[str, Any]:
    _check_predict(args)
    rows = _inputs(args["rows"], "predict_batch")
    if not rows:
        return {"ids": args.get("ids") or [], "classes": [], "probabilities": []}
    from apps.classifiers import learning

    pipeline = _pipeline(args["model"], context)
    predictions = learning.predict(pipeline, rows)
    classes = list(predictions[0].probabilities)
    return {
        "ids": args.get("ids") or [],
        "classes": classes,
        "probabilities": [
            [round(p.probabilities[c], _DIGITS) for c in classes] for p in predictions
        ],
    }
