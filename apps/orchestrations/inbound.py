"""Inbound items: each one becomes a Run through the version picked at receipt, evaluated in
process for now (exception filter, pinned rules, pinned model, autonomy policy) with one RunStep
per stage naming the component versions it used, so the trace explains the outcome after the
rules and the model change.

Idempotency (IETF draft "The Idempotency-Key HTTP Header Field"): the key is claimed in its own
committed row before the work, so a re-send while the first is in flight is told so (409); the
answer is stored on that row and a later re-send with the same body gets it back unchanged.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.cases.models import Case, CaseStatus
from apps.cases.schema import validate_case_fields
from apps.cases.services.intake import BatchInvalid, create_cases
from apps.classifiers.learning import CaseInput
from apps.classifiers.services import predict_cases
from apps.orchestrations.challenger import record_challenger
from apps.orchestrations.models import (
    InboundRequest,
    Orchestration,
    OrchestrationVersion,
    Outcome,
    Run,
    RunState,
    RunStep,
    Stage,
    StepKind,
)
from apps.rules.language import compile_predicate
from apps.rules.models import RuleVersion

MAX_ITEMS = 500
MAX_EXTERNAL_ID = 150  # the case made for a routed item is "<slug>/<external_id>" (≤ 200)
MAX_KEY = 200


class KeyInFlight(Exception):
    """The same Idempotency-Key is still being answered (409)."""


class KeyReused(ValidationError):
    """The same Idempotency-Key with another body (422)."""


@dataclass
class Received:
    runs: list[Run]
    created: list[bool] = field(default_factory=list)


def body_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def canary_bucket(orchestration: Orchestration, external_id: str) -> float:
    """A stable number in [0, 1) for the item: below the canary share, the canary takes it."""
    digest = hashlib.sha256(f"{orchestration.pk}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- validation ---------------------------------------------------------------------------------


def validate_items(*, orchestration: Orchestration, items: object) -> list[dict]:
    """[{"external_id", "fields"}] cleaned against the process's schema; BatchInvalid listing
    every bad row (nothing is recorded then)."""
    if not isinstance(items, list) or not items:
        raise ValidationError("send one item object or a non-empty list of them")
    if len(items) > MAX_ITEMS:
        raise ValidationError(f"at most {MAX_ITEMS} items per request, got {len(items)}")
    specs = orchestration.process.schema.fields
    clean: list[dict] = []
    errors: list[dict] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"row": index, "errors": {"row": "must be an object"}})
            continue
        row_errors: dict[str, str] = {}
        unknown = set(item) - {"external_id", "fields"}
        if unknown:
            row_errors["row"] = f"unknown key(s): {', '.join(sorted(map(str, unknown)))}"
        fields, field_errors = validate_case_fields(specs, item.get("fields", {}))
        row_errors.update({f"fields.{name}": message for name, message in field_errors.items()})
        external_id = item.get("external_id")
        if not isinstance(external_id, str | int) or isinstance(external_id, bool):
            row_errors["external_id"] = "required: a non-empty string"
        else:
            external_id = str(external_id).strip()
            if not external_id or len(external_id) > MAX_EXTERNAL_ID or "\x00" in external_id:
                row_errors["external_id"] = f"must be 1 to {MAX_EXTERNAL_ID} characters"
            elif external_id in seen:
                row_errors["external_id"] = f"repeats row {seen[external_id]} of this request"
            else:
                seen[external_id] = index
        if row_errors:
            errors.append({"row": index, "errors": row_errors})
        else:
            clean.append({"external_id": external_id, "fields": fields})
    if errors:
        raise BatchInvalid(errors)
    return clean


# --- evaluation ---------------------------------------------------------------------------------


@dataclass
class Evaluation:
    outcome: str
    steps: list[tuple[str, dict]]
    label: str = ""
    reason_code: str = ""
    decided_by: str = ""
    confidence: float | None = None
    routed_to: str = ""
    due_by: Any = None


def _rule_versions(version: OrchestrationVersion) -> dict[tuple[int, int], RuleVersion]:
    pins = [(p["rule"], p["version"]) for p in version.rules]
    if not pins:
        return {}
    found = RuleVersion.objects.filter(rule_id__in=[r for r, _ in pins]).select_related("rule")
    return {(rv.rule_id, rv.version): rv for rv in found if (rv.rule_id, rv.version) in pins}


def evaluate(
    *, version: OrchestrationVersion, fields: dict, specs: list[dict], cache: dict | None = None
) -> Evaluation:
    """The outcome `version` gives an item with these fields, and the steps that led to it."""
    cache = cache if cache is not None else {}
    steps: list[tuple[str, dict]] = []
    condition = version.exception_filter
    is_exception = True
    if condition is not None:
        is_exception = bool(compile_predicate(condition, fields=specs)(fields, "", []))
    steps.append((StepKind.EXCEPTION_CHECK, {"filter": condition, "exception": is_exception}))
    if not is_exception:
        steps.append((StepKind.STANDARD, {"why": "the exception filter does not match"}))
        return Evaluation(Outcome.STANDARD, steps)

    rule_versions = cache.setdefault(("rules", version.pk), _rule_versions(version))
    checked: list[dict] = []
    hit: tuple[RuleVersion, dict] | None = None
    for pin in version.rules:
        rule_version = rule_versions.get((pin["rule"], pin["version"]))
        entry = {"rule": pin["rule"], "version": pin["version"]}
        if rule_version is None:
            checked.append({**entry, "skipped": "no longer exists"})
            continue
        entry["name"] = rule_version.rule.name
        if not rule_version.rule.enabled:
            checked.append({**entry, "enabled": False, "matched": None})
            continue
        try:
            matched = bool(compile_predicate(rule_version.condition, fields=specs)(fields, "", []))
        except ValidationError:
            checked.append({**entry, "skipped": "no longer fits the schema"})
            continue
        acts = matched and ("decide" in rule_version.action or "route" in rule_version.action)
        checked.append(
            {**entry, "enabled": True, "matched": matched, "action": rule_version.action}
        )
        if acts:
            hit = (rule_version, rule_version.action)
            break
    steps.append(
        (StepKind.RULES_EVALUATED, {"rules": checked, "hit": checked[-1] if hit else None})
    )
    now = timezone.now()
    due_by = now + timedelta(minutes=version.sla_minutes) if version.sla_minutes else None
    if hit is not None:
        rule_version, action = hit
        by = f"rule:{rule_version.rule_id}@{rule_version.version}"
        if "decide" in action:
            label = str(action["decide"])
            reason = str(action.get("reason_code") or "")
            steps.append((StepKind.DECIDED, {"by": by, "label": label, "reason_code": reason}))
            return Evaluation(
                Outcome.DECIDED, steps, label=label, reason_code=reason, decided_by=by
            )
        route = str(action["route"])
        steps.append((StepKind.ROUTE, {"by": by, "to": route, "due_by": _iso(due_by)}))
        return Evaluation(Outcome.ROUTED, steps, routed_to=route, decided_by=by, due_by=due_by)

    label, confidence = "", None
    model = version.model_version
    if model is not None:
        [prediction] = predict_cases(version=model, cases=[CaseInput(fields, "", [])])
        label, confidence = prediction.label, round(prediction.confidence, 4)
        steps.append(
            (StepKind.MODEL, {"model_version": model.version, "label": label,
                              "confidence": confidence})
        )  # fmt: skip
    decides = (
        version.autonomy_level == 3 and confidence is not None and confidence >= version.threshold
    )
    steps.append(
        (StepKind.AUTONOMY, {"level": version.autonomy_level, "threshold": version.threshold,
                             "confidence": confidence, "decides": decides})
    )  # fmt: skip
    if decides:
        by = f"model@{model.version}"
        steps.append((StepKind.DECIDED, {"by": by, "label": label, "confidence": confidence}))
        return Evaluation(Outcome.DECIDED, steps, label=label, decided_by=by, confidence=confidence)
    route = version.routes.get(label, "") if label else ""
    steps.append(
        (StepKind.ROUTE, {"to": route or None, "suggested": label or None,
                          "due_by": _iso(due_by)})
    )  # fmt: skip
    return Evaluation(
        Outcome.ROUTED, steps, label=label, confidence=confidence, routed_to=route, due_by=due_by
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --- receiving ----------------------------------------------------------------------------------


def _traffic(orchestration: Orchestration) -> dict[str, OrchestrationVersion]:
    versions = OrchestrationVersion.objects.filter(
        orchestration=orchestration, stage__in=[Stage.LIVE, Stage.CANARY, Stage.SHADOW]
    ).select_related("model_version")
    by_stage: dict[str, OrchestrationVersion] = {}
    for version in versions.order_by("number"):
        by_stage[version.stage] = version  # the newest shadow, if several
    return by_stage


def pick_version(
    orchestration: Orchestration, external_id: str, traffic: dict[str, OrchestrationVersion]
) -> tuple[OrchestrationVersion, float]:
    bucket = canary_bucket(orchestration, external_id)
    canary = traffic.get(Stage.CANARY)
    if canary is not None and bucket < (canary.canary_share or 0):
        return canary, bucket
    return traffic[Stage.LIVE], bucket


@transaction.atomic
def _record(orchestration: Orchestration, items: list[dict], key: str, digest: str) -> Received:
    traffic = _traffic(orchestration)
    if Stage.LIVE not in traffic:
        raise ValidationError(f"{orchestration.slug!r} has no live version to receive items")
    specs = orchestration.process.schema.fields
    existing = {
        run.external_id: run
        for run in Run.objects.filter(
            orchestration=orchestration, external_id__in=[i["external_id"] for i in items]
        )
    }
    received = Received(runs=[])
    cache: dict = {}
    routed: list[tuple[Run, dict]] = []
    for item in items:
        if item["external_id"] in existing:
            received.runs.append(existing[item["external_id"]])
            received.created.append(False)
            continue
        version, bucket = pick_version(orchestration, item["external_id"], traffic)
        result = evaluate(version=version, fields=item["fields"], specs=specs, cache=cache)
        steps = [(StepKind.RECEIVED, {"version": version.number, "stage": version.stage,
                                      "bucket": round(bucket, 4)})]  # fmt: skip
        steps += result.steps
        shadow = traffic.get(Stage.SHADOW)
        if shadow is not None:
            # Evaluated for comparison only: it acts on nothing.
            ghost = evaluate(version=shadow, fields=item["fields"], specs=specs, cache=cache)
            steps.append(
                (StepKind.SHADOW, {"version": shadow.number, "outcome": ghost.outcome,
                                   "label": ghost.label, "decided_by": ghost.decided_by,
                                   "confidence": ghost.confidence})
            )  # fmt: skip
        try:
            with transaction.atomic():
                run = Run.objects.create(
                    orchestration=orchestration, version=version,
                    external_id=item["external_id"], fields=item["fields"],
                    state=RunState.FINISHED, outcome=result.outcome, label=result.label,
                    reason_code=result.reason_code, decided_by=result.decided_by,
                    confidence=result.confidence, routed_to=result.routed_to,
                    due_by=result.due_by, idempotency_key=key, request_hash=digest,
                    finished_at=timezone.now(),
                )  # fmt: skip
        except IntegrityError:
            # The same external_id arrived concurrently: that run is the answer.
            received.runs.append(
                Run.objects.get(orchestration=orchestration, external_id=item["external_id"])
            )
            received.created.append(False)
            continue
        RunStep.objects.bulk_create(
            RunStep(run=run, number=n, kind=kind, data=data)
            for n, (kind, data) in enumerate(steps, start=1)
        )
        if result.outcome == Outcome.ROUTED:
            routed.append((run, item))
        received.runs.append(run)
        received.created.append(True)
    # The challenger model's answer on the live version's new runs (one batch; acts on nothing).
    record_challenger(
        runs=[r for r, new in zip(received.runs, received.created, strict=True) if new]
    )
    if routed:
        _open_cases(orchestration, routed)
    return received


def _open_cases(orchestration: Orchestration, routed: list[tuple[Run, dict]]) -> None:
    """Routed items become cases of the process, so experts see them in the review queue."""
    rows = [
        {"external_id": f"{orchestration.slug}/{run.external_id}", "fields": item["fields"]}
        for run, item in routed
    ]
    result = create_cases(process=orchestration.process, rows=rows)
    for (run, _), case in zip(routed, result.cases, strict=True):
        run.case = case
        run.save(update_fields=["case"])
    # An expert route puts the case first in that expert's queue (as autonomy level 1 does).
    experts: dict[str, list[int]] = {}
    for run, _ in routed:
        kind, _, username = run.routed_to.partition(":")
        if kind == "expert":
            experts.setdefault(username, []).append(run.case_id)
    users = dict(
        get_user_model().objects.filter(username__in=experts).values_list("username", "pk")
    )
    for username, case_ids in experts.items():
        if username in users:
            Case.objects.filter(pk__in=case_ids, status=CaseStatus.OPEN).update(
                routed_to_id=users[username]
            )


def receive_items(
    *, orchestration: Orchestration, items: object, idempotency_key: str = "", body_hash: str = ""
) -> tuple[Received | None, dict | None]:
    """Record one run per new item (known external_ids give their existing run). Returns
    (received, None), or (None, stored answer) for a re-send of an answered key.
    BatchInvalid/ValidationError for bad items (nothing recorded), KeyReused, KeyInFlight."""
    if idempotency_key:
        if len(idempotency_key) > MAX_KEY:
            raise ValidationError(f"Idempotency-Key: at most {MAX_KEY} characters")
        try:
            with transaction.atomic():
                InboundRequest.objects.create(
                    orchestration=orchestration, key=idempotency_key, request_hash=body_hash
                )
        except IntegrityError:
            first = InboundRequest.objects.get(orchestration=orchestration, key=idempotency_key)
            if first.request_hash != body_hash:
                raise KeyReused(
                    "Idempotency-Key: this key was used with another body; use a new key"
                ) from None
            if first.status is None:
                raise KeyInFlight(
                    "a request with this Idempotency-Key is still in flight"
                ) from None
            return None, {"status": first.status, "body": first.response}
    try:
        clean = validate_items(orchestration=orchestration, items=items)
        return _record(orchestration, clean, idempotency_key, body_hash), None
    except BaseException:
        if idempotency_key:
            # Nothing was recorded: the key is free again for a corrected request.
            InboundRequest.objects.filter(
                orchestration=orchestration, key=idempotency_key, status__isnull=True
            ).delete()
        raise


def store_answer(*, orchestration: Orchestration, key: str, status: int, body: dict) -> None:
    InboundRequest.objects.filter(orchestration=orchestration, key=key).update(
        status=status, response=body
    )
