"""The gate: may a process run at a level? Measured on shadow predictions experts decided afterwards.

The gate for level N checks every level up to N, because each level does what the ones below do:
a level-3 process still routes the cases it leaves to experts.

- Always: at least `min_shadow` shadow predictions of the promoted model whose cases experts have
  decided since (predictions of earlier model versions are reported, not counted).
- Level 1 (route): among the decided predictions that got a route, the share whose route is the one
  the label→route map gives the experts' final label must reach `target_precision`. When no route
  was chosen at all this fails for level 1 and is skipped above it (cases stay in the team queue).
- Level 2 (suggest): precision at the threshold — the share of predictions with confidence ≥
  `threshold` whose label is the experts' — must reach `target_precision`.
- Level 3 (decide): the same precision, on at least `min_audits` confident predictions, so it is
  not measured on a handful.
"""

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.autonomy.models import Level, ProcessAutonomy, ShadowPrediction
from apps.autonomy.services.shadow import sync_outcomes
from apps.cases.models import Process
from apps.classifiers import services as classifiers

SWEEP = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _compare(value: float, target: float) -> str:
    """'0.91 < target 0.95', with a third decimal when two would print the same number."""
    digits = 2 if round(value, 2) != round(target, 2) else 3
    return f"{value:.{digits}f} < target {target:.{digits}f}"


def check_level(level: object) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= Level.DECIDE:
        raise ValidationError(f"level must be 1 (route), 2 (suggest) or 3 (decide), got {level!r}")
    return level


def evaluate(
    *, process: Process, target: int, include_backfilled: bool = False, sync: bool = True
) -> dict:
    """The evidence for running `process` at level `target`: counts, precision at the threshold,
    routing accuracy, the precision/coverage sweep, each check, what is missing, and `passed`.

    With `include_backfilled`, predictions computed over already-decided cases (demo evidence) count
    too and the evidence says how many. Refreshes the predictions' outcomes from the cases first
    (`sync=False` skips that when the caller just did it).
    """
    target = check_level(target)
    autonomy = ProcessAutonomy.objects.filter(process=process).first() or ProcessAutonomy(
        process=process
    )
    version = classifiers.promoted_version(process=process)
    evidence: dict = {
        "process": process.slug,
        "level": autonomy.level,
        "target": target,
        "target_name": Level(target).label,
        "measured_at": timezone.now().isoformat(),
        "model_version": version.version if version else None,
        "threshold": autonomy.threshold,
        "target_precision": autonomy.target_precision,
        "min_shadow": autonomy.min_shadow,
        "min_audits": autonomy.min_audits,
    }
    if version is None:
        missing = [f"{process.name} has no promoted model: train a model and promote it first"]
        evidence.update(
            decided=0, pending=0, covered=0, checks=[], sweep=[], missing=missing, passed=False
        )
        return evidence
    if sync:
        sync_outcomes(process=process)
    predictions = ShadowPrediction.objects.filter(process=process, model_version=version)
    if not include_backfilled:
        predictions = predictions.filter(backfilled=False)
    decided = predictions.filter(correct__isnull=False)
    threshold = autonomy.threshold
    sweep_at = sorted({*SWEEP, threshold})
    aggregates = {
        "n_decided": Count("pk"),
        "n_correct": Count("pk", filter=Q(correct=True)),
        "n_backfilled": Count("pk", filter=Q(backfilled=True)),
    }
    for index, cut in enumerate(sweep_at):
        aggregates[f"n{index}"] = Count("pk", filter=Q(confidence__gte=cut))
        aggregates[f"c{index}"] = Count("pk", filter=Q(confidence__gte=cut, correct=True))
    counts = decided.aggregate(**aggregates)
    sweep = [
        {
            "threshold": cut,
            "covered": counts[f"n{index}"],
            "coverage": _ratio(counts[f"n{index}"], counts["n_decided"]),
            "correct": counts[f"c{index}"],
            "precision": _ratio(counts[f"c{index}"], counts[f"n{index}"]),
        }
        for index, cut in enumerate(sweep_at)
    ]
    at = next(point for point in sweep if point["threshold"] == threshold)
    routing = _routing(autonomy, decided)
    evidence.update(
        predictions=predictions.count(),
        decided=counts["n_decided"],
        pending=predictions.filter(correct__isnull=True).count(),
        backfilled=counts["n_backfilled"],
        earlier_versions=ShadowPrediction.objects.filter(
            process=process, backfilled=False, correct__isnull=False
        )
        .exclude(model_version=version)
        .count(),
        accuracy=_ratio(counts["n_correct"], counts["n_decided"]),
        covered=at["covered"],
        coverage=at["coverage"],
        correct_at_threshold=at["correct"],
        precision_at_threshold=at["precision"],
        routing=routing,
        sweep=sweep,
        suggested_threshold=_suggested_threshold(sweep, autonomy.target_precision),
    )
    if include_backfilled and counts["n_backfilled"]:
        evidence["note"] = (
            f"{counts['n_backfilled']} of the {counts['n_decided']} decided predictions are backfilled: "
            "computed over cases experts had already decided, not made in shadow mode beforehand."
        )
    checks = _checks(autonomy, target, evidence)
    evidence["checks"] = checks
    evidence["missing"] = [check["missing"] for check in checks if not check["ok"]]
    evidence["passed"] = not evidence["missing"]
    return evidence


def passes_at(*, autonomy: ProcessAutonomy, evidence: dict, target: int) -> bool:
    """Whether the gate to `target` passes on `evidence` that evaluate() measured for the
    process of `autonomy` (for any target): the measurements don't depend on the target, only
    the checks do, so a page that asks about several levels measures once."""
    if evidence.get("model_version") is None:
        return False
    return all(check["ok"] for check in _checks(autonomy, check_level(target), evidence))


def _routing(autonomy: ProcessAutonomy, decided: QuerySet[ShadowPrediction]) -> dict:
    routes = autonomy.routes or {}
    rows = list(decided.exclude(route="").values_list("route", "outcome_label", "route_source"))
    right = sum(1 for route, label, _ in rows if routes.get(label, "") == route)
    by_source: dict[str, dict[str, int]] = {}
    for route, label, source in rows:
        entry = by_source.setdefault(source or "model", {"routed": 0, "correct": 0})
        entry["routed"] += 1
        entry["correct"] += int(routes.get(label, "") == route)
    return {
        "routed": len(rows),
        "correct": right,
        "accuracy": _ratio(right, len(rows)),
        "by_source": by_source,
        "map": routes,
    }


def _suggested_threshold(sweep: list[dict], target_precision: float) -> float | None:
    """The lowest threshold (most coverage) of the sweep whose precision reaches the target."""
    for point in sweep:
        if point["precision"] is not None and point["precision"] >= target_precision:
            return point["threshold"]
    return None


def _check(name: str, ok: bool, detail: str, missing: str) -> dict:
    return {"name": name, "ok": ok, "detail": detail, "missing": "" if ok else missing}


def _checks(autonomy: ProcessAutonomy, target: int, evidence: dict) -> list[dict]:
    decided, pending = evidence["decided"], evidence["pending"]
    tp, threshold = autonomy.target_precision, autonomy.threshold
    checks = [
        _check(
            "evidence",
            decided >= autonomy.min_shadow,
            f"{decided} of {autonomy.min_shadow} shadow predictions decided by experts afterwards",
            f"needs {autonomy.min_shadow - decided} more shadow predictions decided by experts "
            f"({pending} waiting for a decision)",
        )
    ]
    routing = evidence["routing"]
    if routing["routed"]:
        accuracy = routing["accuracy"]
        checks.append(
            _check(
                "routing",
                accuracy >= tp,
                f"routing accuracy {accuracy:.2f} on {routing['routed']} routed cases",
                f"routing accuracy {_compare(accuracy, tp)} on {routing['routed']} routed cases",
            )
        )
    elif target == Level.ROUTE:
        checks.append(
            _check(
                "routing",
                False,
                "no route chosen",
                "no route was chosen for any decided shadow prediction: add rules with a route "
                "action or map labels to routes in the settings",
            )
        )
    if target >= Level.SUGGEST:
        precision, covered = evidence["precision_at_threshold"], evidence["covered"]
        if precision is None:
            checks.append(
                _check(
                    "precision",
                    False,
                    f"no prediction at or above threshold {threshold}",
                    f"no decided shadow prediction reached the threshold {threshold}",
                )
            )
        else:
            checks.append(
                _check(
                    "precision",
                    precision >= tp,
                    f"precision {precision:.2f} at threshold {threshold} on {covered} predictions",
                    f"precision {_compare(precision, tp)} at threshold {threshold}",
                )
            )
    if target >= Level.DECIDE:
        covered = evidence["covered"]
        checks.append(
            _check(
                "confident_evidence",
                covered >= autonomy.min_audits,
                f"{covered} decided predictions at or above threshold {threshold}",
                f"needs {autonomy.min_audits - covered} more decided predictions at or above "
                f"threshold {threshold} (has {covered}, needs {autonomy.min_audits})",
            )
        )
    return checks
