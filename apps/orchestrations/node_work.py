"""Orchestration work a fabric node runs: `evaluate_runs`, a micro-batch of runs evaluated with
the pure pipeline (pipeline.py). No database here: the control plane sends the versions' specs,
the items' fields and the models as artefacts; the node sends back each run's result, which the
control plane records once (execution.finish_runs).

args: {"schema": [field specs], "specs": {key: spec}, "rows": [[run id, key, shadow key | null,
fields]], "now": iso} → {"results": [{"run": id, "result": {...}, "shadow": {...} | null}],
"seconds": s}
"""

import time
from datetime import datetime
from typing import Any

from apps.classifiers.node_work import _pipeline
from apps.classifiers.types import CaseInput
from apps.fabric.payloads import Context, PayloadError, is_sha256, payload_function
from apps.orchestrations.pipeline import evaluate_batch

MAX_ROWS = 2_000


def _check(args: dict[str, Any]) -> None:
    specs, rows = args.get("specs"), args.get("rows")
    if not isinstance(specs, dict) or not all(isinstance(s, dict) for s in specs.values()):
        raise PayloadError("evaluate_runs: specs must be an object of version specs")
    for spec in specs.values():
        model = spec.get("model")
        if model is not None and not (isinstance(model, dict) and is_sha256(model.get("sha256"))):
            raise PayloadError("evaluate_runs: a spec's model must name its artefact's SHA-256")
    if not isinstance(rows, list) or not 0 < len(rows) <= MAX_ROWS:
        raise PayloadError(f"evaluate_runs: rows must be a list of 1 to {MAX_ROWS}")
    for row in rows:
        if not (
            isinstance(row, list)
            and len(row) == 4
            and isinstance(row[0], int)
            and row[1] in specs
            and (row[2] is None or row[2] in specs)
            and isinstance(row[3], dict)
        ):
            raise PayloadError("evaluate_runs: each row is [run id, spec, shadow spec, fields]")
    if not isinstance(args.get("schema"), list):
        raise PayloadError("evaluate_runs: schema must be a list of field specs")


def predictor(load: Any) -> Any:
    """predict(model spec, fields list) with `load(sha256)` giving the fitted pipeline."""

    def predict(model: dict[str, Any], rows: list[dict]) -> list[tuple[str, float]]:
        from apps.classifiers import learning  # scikit-learn: loaded where a model is used

        predictions = learning.predict(load(model["sha256"]), [CaseInput(r, "", []) for r in rows])
        return [(p.label, p.confidence) for p in predictions]

    return predict


def evaluate_rows(args: dict[str, Any], predict: Any) -> dict[str, Any]:
    """The runs' results (and their shadow version's), as the control plane records them."""
    started = time.perf_counter()
    now = datetime.fromisoformat(args["now"])
    rows = args["rows"]
    items = [(row[1], row[3]) for row in rows]
    shadows = [(index, row[2], row[3]) for index, row in enumerate(rows) if row[2] is not None]
    every = items + [(key, fields) for _, key, fields in shadows]
    results = evaluate_batch(
        schema=args["schema"], specs=args["specs"], items=every, predict=predict, now=now
    )
    shadow_of = {index: results[len(items) + n] for n, (index, _, _) in enumerate(shadows)}
    return {
        "results": [
            {
                "run": row[0],
                "result": results[index].to_json(),
                "shadow": shadow_of[index].to_json() if index in shadow_of else None,
            }
            for index, row in enumerate(rows)
        ],
        "seconds": round(time.perf_counter() - started, 6),
    }


@payload_function("evaluate_runs", check=_check)
def evaluate_runs(args: dict[str, Any], context: Context) -> dict[str, Any]:
    _check(args)
    return evaluate_rows(args, predictor(lambda sha256: _pipeline(sha256, context)))
