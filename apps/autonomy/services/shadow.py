"""What autonomy does with cases: shadow predictions, routes, automatic decisions and audits, and
the experts' outcomes that later judge them.

A shadow prediction is made while its case is open, so the experts' later decision is an honest
test of it. Outcomes are filled by the decision_recorded receiver and re-synchronised from the
cases before every evaluation (imported decisions send no signal; an undo can reopen a case).
"""

import logging
import random
from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from apps.autonomy.models import AuditSample, CaseRoute, Level, ProcessAutonomy, ShadowPrediction
from apps.cases.errors import CaseConflict
from apps.cases.models import Case, CaseStatus, Decision, DecisionSource, Process
from apps.cases.services.automation import decide_automatically
from apps.classifiers import services as classifiers
from apps.classifiers.models import ModelVersion
from apps.classifiers.types import Prediction
from apps.core.db import lock_in_order
from apps.rules.language import Predicate, compile_predicate
from apps.rules.models import Rule

log = logging.getLogger(__name__)
BATCH = 1000


# --- rules and routes --------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    predicate: Predicate
    action: dict


def enabled_rules(*, process: Process) -> list[CompiledRule]:
    """The process's enabled rules by priority, compiled once for a batch of cases (the same
    first-hit order as apps.rules.services.evaluation.first_match). A rule whose condition no longer
    fits the schema is skipped, not fatal."""
    fields = process.schema.fields
    compiled = []
    rules = (
        Rule.objects.filter(process=process, enabled=True, current__isnull=False)
        .select_related("current")
        .order_by("priority", "pk")
    )
    for rule in rules:
        try:
            predicate = compile_predicate(rule.current.condition, fields=fields)
        except Exception:
            log.warning("rule %s of %s no longer compiles; skipped", rule.pk, process.slug)
            continue
        compiled.append(CompiledRule(rule, predicate, rule.current.action))
    return compiled


def first_hit(rules: list[CompiledRule], case: Case) -> CompiledRule | None:
    for compiled in rules:
        if compiled.predicate(case.fields, case.exception_reason, case.exception_fields or []):
            return compiled
    return None


def choose_route(
    *, autonomy: ProcessAutonomy, rule_action: dict | None, label: str, confidence: float
) -> tuple[str, str]:
    """(route, source): a first-match rule's route action wins; otherwise the route the label map
    gives the model's label when the model is confident (≥ threshold); otherwise ("", "") — the
    case stays in the team's queue."""
    if rule_action and "route" in rule_action:
        return str(rule_action["route"]), CaseRoute.Source.RULE
    route = (autonomy.routes or {}).get(label) if label else None
    if route and confidence >= autonomy.threshold:
        return str(route), CaseRoute.Source.MODEL
    return "", ""


# --- new cases ---------------------------------------------------------------------------------


@dataclass
class NewCasesResult:
    predicted: int = 0
    routed: int = 0
    decided: list[int] = field(default_factory=list)
    audited: list[int] = field(default_factory=list)
    skipped: int = 0


class _ReasonCodes:
    """The reason code an automatic decision gives: the rule's when it decides the same label,
    else the experts' most common one for that label, else the label's first."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self._cache: dict[str, str] = {}

    def __call__(self, label: str, rule_action: dict | None) -> tuple[str, str]:
        if rule_action and rule_action.get("decide") == label and rule_action.get("reason_code"):
            return str(rule_action["reason_code"]), "rule"
        if label not in self._cache:
            counts = Counter(
                Case.objects.filter(
                    process=self.process, status=CaseStatus.DECIDED, final_label=label
                )
                .exclude(final_reason_code="")
                .values_list("final_reason_code", flat=True)[:5000]
            )
            codes = self.process.schema.reason_codes(label)
            common = [code for code, _ in counts.most_common() if code in codes]
            self._cache[label] = common[0] if common else (codes[0] if codes else "")
        return self._cache[label], "history"


def active_autonomy(*, process: Process) -> ProcessAutonomy | None:
    """The process's autonomy when it does anything with new cases (level ≥ 1 or a shadow target)."""
    autonomy = ProcessAutonomy.objects.filter(process=process).first()
    if autonomy is None or (autonomy.level == Level.MANUAL and autonomy.target is None):
        return None
    return autonomy


def process_new_cases(
    *, process: Process, case_ids: list[int], rng: random.Random | None = None
) -> NewCasesResult:
    """Handle newly arrived cases by the process's autonomy: a shadow prediction for each open case
    (when a model is promoted), a route at level ≥ 1, and at level 3 an automatic decision for
    confident cases not drawn for audit (`rng.random() < audit_rate` sends one to audit).

    Idempotent: a case that already has this model's prediction, a route or an audit is skipped,
    so a redelivered task does nothing twice. `rng` is injectable for tests.
    """
    result = NewCasesResult()
    autonomy = active_autonomy(process=process)
    if autonomy is None or not case_ids:
        return result
    rng = rng or random.Random()
    version = classifiers.promoted_version(process=process)
    if (
        autonomy.level == Level.DECIDE
        and version is not None
        and autonomy.model_version_id not in (None, version.pk)
    ):
        autonomy = _demote_for_new_model(autonomy, version)
    process = Process.objects.select_related("schema").get(pk=process.pk)
    for start in range(0, len(case_ids), BATCH):
        _handle_batch(
            autonomy=autonomy,
            process=process,
            version=version,
            case_ids=case_ids[start : start + BATCH],
            rng=rng,
            result=result,
        )
    return result


def _demote_for_new_model(autonomy: ProcessAutonomy, version: ModelVersion) -> ProcessAutonomy:
    """Level 3 was earned by one model version; another one never decides without its own
    evidence. It keeps predicting (level 2), so it can earn level 3 again in shadow mode."""
    from apps.autonomy.services.levels import demote_autonomy

    earned = autonomy.model_version
    return demote_autonomy(
        process=autonomy.process,
        level=Level.SUGGEST,
        actor=None,
        automatic=True,
        reason=(
            f"model v{version.version} was promoted, but level 3 was earned with "
            f"v{earned.version if earned else '?'}; the new model must earn it in shadow mode"
        ),
        evidence={
            "earned_with": earned.version if earned else None,
            "promoted_now": version.version,
        },
    )


def _handle_batch(
    *,
    autonomy: ProcessAutonomy,
    process: Process,
    version: ModelVersion | None,
    case_ids: list[int],
    rng: random.Random,
    result: NewCasesResult,
) -> None:
    done = set(CaseRoute.objects.filter(case_id__in=case_ids).values_list("case_id", flat=True))
    done |= set(AuditSample.objects.filter(case_id__in=case_ids).values_list("case_id", flat=True))
    if version is not None:
        done |= set(
            ShadowPrediction.objects.filter(
                case_id__in=case_ids, model_version=version
            ).values_list("case_id", flat=True)
        )
    cases = list(
        Case.objects.filter(process=process, pk__in=case_ids, status=CaseStatus.OPEN)
        .exclude(pk__in=done)
        .order_by("pk")
    )
    result.skipped += len(case_ids) - len(cases)
    if not cases:
        return
    rules = enabled_rules(process=process)
    hits = [first_hit(rules, case) for case in cases]
    predictions: list[Prediction | None] = (
        list(classifiers.predict_cases(version=version, cases=cases))
        if version is not None
        else [None] * len(cases)
    )
    reason_codes = _ReasonCodes(process)
    with transaction.atomic():
        # Lock, then re-check: a case an expert decided while the model was predicting is not
        # "decided afterwards" and gets nothing.
        still_open = set(
            lock_in_order(
                Case.objects.filter(pk__in=[case.pk for case in cases], status=CaseStatus.OPEN),
                no_key=False,
            )
        )
        now = timezone.now()
        shadows, routes, audits, to_decide = [], [], [], []
        for case, hit, prediction in zip(cases, hits, predictions, strict=True):
            if case.pk not in still_open:
                result.skipped += 1
                continue
            rule_action = hit.action if hit else None
            label = prediction.label if prediction else ""
            confidence = prediction.confidence if prediction else 0.0
            route, source = choose_route(
                autonomy=autonomy, rule_action=rule_action, label=label, confidence=confidence
            )
            if prediction is not None:
                shadows.append(
                    ShadowPrediction(
                        process=process, case=case, model_version=version,
                        rule=hit.rule if hit else None, rule_action=rule_action, label=label,
                        confidence=confidence, route=route, route_source=source, created_at=now,
                    )
                )  # fmt: skip
            if (
                autonomy.level == Level.DECIDE
                and prediction is not None
                and confidence >= autonomy.threshold
            ):
                draw = rng.random()
                if draw < autonomy.audit_rate:
                    audits.append(
                        AuditSample(
                            process=process, case=case, model_version=version, label=label,
                            confidence=confidence, draw=draw, created_at=now,
                        )
                    )  # fmt: skip
                else:
                    to_decide.append((case, prediction, rule_action, hit, draw))
                    continue
            if autonomy.level >= Level.ROUTE and route:
                routes.append(
                    CaseRoute(
                        process=process, case=case, route=route, source=source,
                        rule=hit.rule if hit and source == CaseRoute.Source.RULE else None,
                        label=label, confidence=confidence if prediction else None, created_at=now,
                    )
                )  # fmt: skip
        ShadowPrediction.objects.bulk_create(shadows, ignore_conflicts=True)
        AuditSample.objects.bulk_create(audits, ignore_conflicts=True)
        result.predicted += len(shadows)
        result.audited += [audit.case_id for audit in audits]
        for case, prediction, rule_action, hit, draw in to_decide:
            code, code_source = reason_codes(prediction.label, rule_action)
            evidence = {
                "model_version": version.version,
                "confidence": round(prediction.confidence, 4),
                "threshold": autonomy.threshold,
                "probabilities": dict(
                    sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])[:3]
                ),
                "audit_rate": autonomy.audit_rate,
                "audit_draw": round(draw, 4),
                "rule": hit.rule.pk if hit else None,
                "reason_code_from": code_source,
            }
            try:
                decide_automatically(
                    case=case, label=prediction.label, reason_code=code, evidence=evidence
                )
            except CaseConflict as exc:
                # An expert got there first: the case stays with them, routed like any other.
                log.info("case %s not decided automatically: %s", case.pk, exc)
                route, source = choose_route(
                    autonomy=autonomy,
                    rule_action=rule_action,
                    label=prediction.label,
                    confidence=prediction.confidence,
                )
                if route:
                    routes.append(
                        CaseRoute(
                            process=process, case=case, route=route, source=source,
                            label=prediction.label, confidence=prediction.confidence,
                            created_at=now,
                        )
                    )  # fmt: skip
            else:
                result.decided.append(case.pk)
        CaseRoute.objects.bulk_create(routes, ignore_conflicts=True)
        _route_to_experts(routes)
        result.routed += len(routes)


def backfill_open_cases(*, process: Process, limit: int = 20_000) -> int:
    """Shadow predictions by the promoted model for open cases that have none from it yet (when
    shadow mode starts or a new model is promoted). Evidence only: nothing is routed or decided.
    Returns how many predictions were made."""
    version = classifiers.promoted_version(process=process)
    if version is None:
        return 0
    autonomy = ProcessAutonomy.objects.filter(process=process).first() or ProcessAutonomy(
        process=process
    )
    process = Process.objects.select_related("schema").get(pk=process.pk)
    rules = enabled_rules(process=process)
    ids = list(
        Case.objects.filter(process=process, status=CaseStatus.OPEN)
        .exclude(
            Exists(ShadowPrediction.objects.filter(case=OuterRef("pk"), model_version=version))
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    made = 0
    for start in range(0, len(ids), BATCH):
        cases = list(Case.objects.filter(pk__in=ids[start : start + BATCH]).order_by("pk"))
        made += _store_predictions(
            autonomy=autonomy, process=process, version=version, cases=cases, rules=rules
        )
    return made


def _store_predictions(
    *,
    autonomy: ProcessAutonomy,
    process: Process,
    version: ModelVersion,
    cases: list[Case],
    rules: list[CompiledRule],
    backfilled: bool = False,
) -> int:
    predictions = classifiers.predict_cases(version=version, cases=cases)
    now = timezone.now()
    rows = []
    for case, prediction in zip(cases, predictions, strict=True):
        hit = first_hit(rules, case)
        route, source = choose_route(
            autonomy=autonomy,
            rule_action=hit.action if hit else None,
            label=prediction.label,
            confidence=prediction.confidence,
        )
        row = ShadowPrediction(
            process=process, case=case, model_version=version, rule=hit.rule if hit else None,
            rule_action=hit.action if hit else None, label=prediction.label,
            confidence=prediction.confidence, route=route, route_source=source, created_at=now,
            backfilled=backfilled,
        )  # fmt: skip
        if backfilled:
            row.outcome_label = case.final_label
            row.correct = prediction.label == case.final_label
            row.outcome_at = case.decided_at
        rows.append(row)
    with transaction.atomic():
        if not backfilled:
            still_open = set(
                lock_in_order(
                    Case.objects.filter(pk__in=[case.pk for case in cases], status=CaseStatus.OPEN),
                    no_key=False,
                )
            )
            rows = [row for row in rows if row.case_id in still_open]
        ShadowPrediction.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _expert_decided(cases: QuerySet[Case]) -> QuerySet[Case]:
    model_decided = Decision.objects.filter(
        case=OuterRef("pk"), source=DecisionSource.MODEL, retracted_at__isnull=True
    )
    return (
        cases.filter(status=CaseStatus.DECIDED)
        .exclude(final_label="")
        .exclude(Exists(model_decided))
    )


def backfill_decided_evidence(
    *, process: Process, limit: int = 2000, exclude_training: bool = True
) -> dict:
    """Backfilled evidence over cases experts have already decided (for the demo): the promoted
    model predicts them now and is judged against their final labels. Marked `backfilled`, so the
    gate ignores it unless asked. Cases in the model's training snapshot are left out while enough
    others remain; otherwise they are used and the result says so (`in_sample`)."""
    version = classifiers.promoted_version(process=process)
    if version is None:
        return {"made": 0, "in_sample": False}
    process = Process.objects.select_related("schema").get(pk=process.pk)
    autonomy = ProcessAutonomy.objects.filter(process=process).first() or ProcessAutonomy(
        process=process
    )
    candidates = _expert_decided(Case.objects.filter(process=process)).exclude(
        Exists(ShadowPrediction.objects.filter(case=OuterRef("pk"), model_version=version))
    )
    training = set(classifiers.snapshot_ids(version))
    ids = list(candidates.order_by("-decided_at", "-pk").values_list("pk", flat=True))
    held_out = [pk for pk in ids if pk not in training]
    in_sample = exclude_training is False or len(held_out) < min(limit, autonomy.min_shadow)
    chosen = (ids if in_sample else held_out)[:limit]
    rules = enabled_rules(process=process)
    made = 0
    for start in range(0, len(chosen), BATCH):
        cases = list(Case.objects.filter(pk__in=chosen[start : start + BATCH]).order_by("pk"))
        made += _store_predictions(
            autonomy=autonomy,
            process=process,
            version=version,
            cases=cases,
            rules=rules,
            backfilled=True,
        )
    return {
        "made": made,
        "in_sample": in_sample and any(pk in training for pk in chosen),
        "held_out_available": len(held_out),
    }


# --- outcomes ----------------------------------------------------------------------------------


def sync_outcomes(*, process: Process | None = None, case_ids: list[int] | None = None) -> None:
    """Fill each shadow prediction's and audit's outcome from its case: the final label when experts
    decided it (not the model), nothing while it is open. Runs on every expert decision (receiver)
    and before every evaluation, so imports and undos are reflected too."""
    now = timezone.now()
    for model, label_field, at_field in (
        (ShadowPrediction, "outcome_label", "outcome_at"),
        (AuditSample, "expert_label", "decided_at"),
    ):
        rows = model.objects.all()
        if model is ShadowPrediction:
            rows = rows.filter(backfilled=False)
        if process is not None:
            rows = rows.filter(process=process)
        if case_ids is not None:
            rows = rows.filter(case_id__in=case_ids)
        decided = _expert_decided(Case.objects.filter(pk=OuterRef("case_id")))
        # No longer decided by experts (an undo reopened it): no outcome.
        rows.filter(correct__isnull=False).exclude(Exists(decided)).update(
            **{label_field: "", "correct": None, at_field: None}
        )
        final = Subquery(Case.objects.filter(pk=OuterRef("case_id")).values("final_label")[:1])
        # A shadow outcome is stamped when it was seen (an imported decision may carry an older
        # date); an audit keeps the case's decision time, which orders the sliding window.
        when = (
            now
            if model is ShadowPrediction
            else Subquery(Case.objects.filter(pk=OuterRef("case_id")).values("decided_at")[:1])
        )
        stale = rows.filter(Exists(decided)).exclude(**{label_field: F("case__final_label")})
        stale.update(**{label_field: final, at_field: when})
        filled = rows.exclude(**{label_field: ""})
        filled.filter(label=F(label_field)).exclude(correct=True).update(correct=True)
        filled.exclude(label=F(label_field)).exclude(correct=False).update(correct=False)


def audit_status(*, autonomy: ProcessAutonomy) -> dict:
    """Audited precision over the sliding window of the latest `audit_window` audited decisions
    since the process reached its current level, with the counts behind it."""
    samples = AuditSample.objects.filter(process=autonomy.process)
    auto = Decision.objects.filter(
        case__process=autonomy.process, source=DecisionSource.MODEL, retracted_at__isnull=True
    )
    if autonomy.level_since is not None:
        samples = samples.filter(created_at__gte=autonomy.level_since)
        auto = auto.filter(decided_at__gte=autonomy.level_since)
    window = list(
        samples.filter(correct__isnull=False)
        .order_by("-decided_at", "-pk")
        .values_list("correct", flat=True)[: autonomy.audit_window]
    )
    correct = sum(1 for c in window if c)
    return {
        "audit_rate": autonomy.audit_rate,
        "window": autonomy.audit_window,
        "min_audits": autonomy.min_audits,
        "audited": len(window),
        "correct": correct,
        "precision": round(correct / len(window), 4) if window else None,
        "target_precision": autonomy.target_precision,
        "waiting_for_experts": samples.filter(correct__isnull=True).count(),
        "auto_decided": auto.count(),
        "since": autonomy.level_since.isoformat() if autonomy.level_since else None,
    }


def _route_to_experts(routes: list[CaseRoute]) -> None:
    """Hand expert routes to the queue (Case.routed_to): the expert gets those cases first."""
    by_username: dict[str, list[int]] = {}
    for route in routes:
        kind, _, target = route.route.partition(":")
        if kind == "expert":
            by_username.setdefault(target, []).append(route.case_id)
    if not by_username:
        return
    users = dict(
        get_user_model().objects.filter(username__in=by_username).values_list("username", "pk")
    )
    for username, case_ids in by_username.items():
        if username in users:
            Case.objects.filter(pk__in=case_ids, status=CaseStatus.OPEN).update(
                routed_to_id=users[username]
            )
