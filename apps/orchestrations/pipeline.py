"""Evaluating items against a version, as a pure function of the version's *spec* and the items'
fields: no database, no Django settings, so a fabric node runs exactly this code
(apps/orchestrations/node_work.py) and so does the control plane (execution.py, inbound.evaluate).

A spec is what a version pinned, with everything the evaluation reads inlined (JSON):

    {"version": n, "exception_filter": condition | None,
     "rules": [{"rule": id, "version": n, "name", "enabled", "condition", "action"}
               | {"rule": id, "version": n, "missing": true}],
     "model": {"version": n, "sha256": hex} | None,
     "autonomy_level": 0-3, "threshold": float, "routes": {label: target}, "sla_minutes": n | None}

Evaluation runs in three passes over a batch so that each model predicts once for the whole
batch (one load, one predict_proba): exception filter and rules per item, then one prediction per
model over every item that reached it, then the autonomy policy and the route per item.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError

from apps.rules.language.compile import compile_predicate

# predict(model spec, list of item fields) -> [(label, confidence)] in the same order
Predict = Callable[[dict[str, Any], list[dict[str, Any]]], list[tuple[str, float]]]


@dataclass
class Result:
    """The outcome a version gives one item, and the trace steps (kind, data) that led to it."""

    outcome: str
    steps: list[tuple[str, dict]] = field(default_factory=list)
    label: str = ""
    reason_code: str = ""
    decided_by: str = ""
    confidence: float | None = None
    routed_to: str = ""
    due_by: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "steps": [[kind, data] for kind, data in self.steps],
            "label": self.label,
            "reason_code": self.reason_code,
            "decided_by": self.decided_by,
            "confidence": self.confidence,
            "routed_to": self.routed_to,
            "due_by": self.due_by.isoformat() if self.due_by is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Result":
        due = data.get("due_by")
        return cls(
            outcome=str(data["outcome"]),
            steps=[(str(kind), dict(step)) for kind, step in data.get("steps") or []],
            label=str(data.get("label") or ""),
            reason_code=str(data.get("reason_code") or ""),
            decided_by=str(data.get("decided_by") or ""),
            confidence=data.get("confidence"),
            routed_to=str(data.get("routed_to") or ""),
            due_by=datetime.fromisoformat(due) if isinstance(due, str) else None,
        )


class Compiled:
    """A spec's conditions compiled once per batch (compiling costs more than matching)."""

    def __init__(self, spec: dict[str, Any], schema: list[dict]) -> None:
        self.spec = spec
        condition = spec.get("exception_filter")
        self.exception = (
            compile_predicate(condition, fields=schema) if condition is not None else None
        )
        self.rules: list[tuple[dict, Any]] = []
        for pin in spec.get("rules") or []:
            predicate: Any = None
            if not pin.get("missing") and pin.get("enabled"):
                try:
                    predicate = compile_predicate(pin["condition"], fields=schema)
                except ValidationError:
                    predicate = ValidationError  # the rule no longer fits the schema
            self.rules.append((pin, predicate))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def evaluate_batch(
    *,
    schema: list[dict],
    specs: dict[str, dict[str, Any]],
    items: Sequence[tuple[str, dict[str, Any]]],
    predict: Predict,
    now: datetime,
) -> list[Result]:
    """The Result of each (spec key, fields) item, in order; each model predicts once."""
    compiled = {key: Compiled(spec, schema) for key, spec in specs.items()}
    results: list[Result] = []
    waiting: dict[str, list[int]] = {}  # model sha256 → indexes of items waiting for it
    for index, (key, fields) in enumerate(items):
        result = _exception_and_rules(compiled[key], fields, now)
        results.append(result)
        model = compiled[key].spec.get("model")
        if result.outcome == "" and model is not None:
            waiting.setdefault(model["sha256"], []).append(index)
    for indexes in waiting.values():
        model = compiled[items[indexes[0]][0]].spec["model"]
        predictions = predict(model, [items[i][1] for i in indexes])
        for i, (label, confidence) in zip(indexes, predictions, strict=True):
            results[i].label, results[i].confidence = label, round(float(confidence), 4)
            results[i].steps.append(
                ("model", {"model_version": model["version"], "label": label,
                           "confidence": results[i].confidence})
            )  # fmt: skip
    for index, (key, _) in enumerate(items):
        if results[index].outcome == "":
            _autonomy_and_route(compiled[key].spec, results[index], now)
    return results


def _due(spec: dict[str, Any], now: datetime) -> datetime | None:
    minutes = spec.get("sla_minutes")
    return now + timedelta(minutes=minutes) if minutes else None


def _exception_and_rules(compiled: Compiled, fields: dict, now: datetime) -> Result:
    """Settles the item (outcome set) when the filter or a rule does; else outcome "" and the
    steps so far, for the model and the autonomy policy to finish."""
    spec = compiled.spec
    result = Result(outcome="")
    condition = spec.get("exception_filter")
    is_exception = compiled.exception is None or bool(compiled.exception(fields, "", []))
    result.steps.append(("exception_check", {"filter": condition, "exception": is_exception}))
    if not is_exception:
        result.outcome = "standard"
        result.steps.append(("standard", {"why": "the exception filter does not match"}))
        return result
    checked: list[dict] = []
    hit: dict | None = None
    for pin, predicate in compiled.rules:
        entry = {"rule": pin["rule"], "version": pin["version"]}
        if pin.get("missing"):
            checked.append({**entry, "skipped": "no longer exists"})
            continue
        entry["name"] = pin.get("name", "")
        if not pin.get("enabled"):
            checked.append({**entry, "enabled": False, "matched": None})
            continue
        if predicate is ValidationError:
            checked.append({**entry, "skipped": "no longer fits the schema"})
            continue
        matched = bool(predicate(fields, "", []))
        action = pin.get("action") or {}
        checked.append({**entry, "enabled": True, "matched": matched, "action": action})
        if matched and ("decide" in action or "route" in action):
            hit = pin
            break
    result.steps.append(
        ("rules_evaluated", {"rules": checked, "hit": checked[-1] if hit else None})
    )
    if hit is None:
        return result
    action = hit["action"]
    by = f"rule:{hit['rule']}@{hit['version']}"
    result.decided_by = by
    if "decide" in action:
        result.outcome = "decided"
        result.label = str(action["decide"])
        result.reason_code = str(action.get("reason_code") or "")
        result.steps.append(
            ("decided", {"by": by, "label": result.label, "reason_code": result.reason_code})
        )
        return result
    result.outcome = "routed"
    result.routed_to = str(action["route"])
    result.due_by = _due(spec, now)
    result.steps.append(
        ("route", {"by": by, "to": result.routed_to, "due_by": _iso(result.due_by)})
    )
    return result


def _autonomy_and_route(spec: dict[str, Any], result: Result, now: datetime) -> None:
    pinned, threshold = spec.get("autonomy_level", 0), spec.get("threshold", 0.9)
    # Never above what the process holds now (it may have been demoted since the deploy).
    level = min(pinned, spec.get("earned_level", pinned))
    confidence = result.confidence
    decides = level == 3 and confidence is not None and confidence >= threshold
    step = {"level": level, "threshold": threshold, "confidence": confidence, "decides": decides}
    if level < pinned:
        step |= {"pinned_level": pinned, "capped": f"the process holds level {level} now"}
    result.steps.append(("autonomy", step))
    if decides:
        by = f"model@{spec['model']['version']}"
        result.outcome, result.decided_by = "decided", by
        result.steps.append(
            ("decided", {"by": by, "label": result.label, "confidence": confidence})
        )
        return
    route = (spec.get("routes") or {}).get(result.label, "") if result.label else ""
    result.outcome, result.routed_to, result.due_by = "routed", route, _due(spec, now)
    result.steps.append(
        ("route", {"to": route or None, "suggested": result.label or None,
                   "due_by": _iso(result.due_by)})
    )  # fmt: skip
