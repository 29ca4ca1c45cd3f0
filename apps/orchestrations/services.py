"""Writes: orchestrations, their versions, stage changes and rollback.

Lock order: a stage change locks every version of the orchestration in id order
(apps/core/db.py lock_in_order) before it reads which one is live, so two concurrent promotions
serialise instead of both retiring the same live version (the partial unique index is the last
line of defence).
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.autonomy.selectors import autonomy_of
from apps.autonomy.services.levels import clean_routes
from apps.cases.models import Process
from apps.classifiers.models import ModelVersion
from apps.connectors.models import Connector
from apps.core.db import lock_in_order
from apps.orchestrations.errors import StageConflict
from apps.orchestrations.models import (
    ComponentKind,
    ComponentReuse,
    Orchestration,
    OrchestrationVersion,
    Stage,
    StageChange,
)
from apps.rules.language import validate_condition
from apps.rules.models import Rule, RuleVersion

COMPONENTS = (
    "exception_filter",
    "rules",
    "model_version",
    "autonomy_level",
    "threshold",
    "audit_rate",
    "routes",
    "connectors",
    "sla_minutes",
)
MAX_SLA_MINUTES = 60 * 24 * 366
MAX_RULES = 200
MAX_CONNECTORS = 20
# Where a version may go from each stage (rollback aside, which revives a retired one).
NEXT_STAGES: dict[str, frozenset[str]] = {
    Stage.DRAFT: frozenset({Stage.SHADOW, Stage.CANARY, Stage.LIVE, Stage.RETIRED}),
    Stage.SHADOW: frozenset({Stage.CANARY, Stage.LIVE, Stage.RETIRED}),
    Stage.CANARY: frozenset({Stage.CANARY, Stage.SHADOW, Stage.LIVE, Stage.RETIRED}),
    Stage.LIVE: frozenset({Stage.RETIRED}),
    Stage.RETIRED: frozenset(),
}
MAX_REASON = 2000


def create_orchestration(
    *, process: Process, slug: str, name: str, owner: AbstractBaseUser | None
) -> Orchestration:
    """A new orchestration of `process` (in its team), without versions. ValidationError for a
    taken or malformed slug or an empty name."""
    orchestration = Orchestration(
        team=process.team, process=process, slug=slug, name=name.strip(), owner=owner
    )
    if Orchestration.objects.filter(slug=slug).exists():
        raise ValidationError(f"slug: an orchestration {slug!r} already exists")
    orchestration.full_clean(exclude=["team", "process", "owner"])
    try:
        with transaction.atomic():
            orchestration.save()
    except IntegrityError:
        raise ValidationError(f"slug: an orchestration {slug!r} already exists") from None
    return orchestration


# --- components ---------------------------------------------------------------------------------


def _number(name: str, value: object, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(f"{name}: must be from {low} to {high}, got {value}")
    return float(value)


def _whole(name: str, value: object, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(f"{name}: must be from {low} to {high}, got {value}")
    return value


def _clean_rules(process: Process, value: object) -> list[dict]:
    """[{"rule": id, "version": n}]; a rule given without a version is pinned at its current one."""
    if not isinstance(value, list) or len(value) > MAX_RULES:
        raise ValidationError(f'rules: expected a list of at most {MAX_RULES} {{"rule": id}}')
    pinned: list[dict] = []
    for i, entry in enumerate(value):
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = {"rule": entry}
        if not isinstance(entry, dict) or set(entry) - {"rule", "version"}:
            raise ValidationError(f'rules[{i}]: expected {{"rule": id, "version": n}}')
        rule_id = _whole(f"rules[{i}].rule", entry.get("rule"), low=1, high=2**62)
        rule = Rule.objects.filter(pk=rule_id, process=process).select_related("current").first()
        if rule is None:
            raise ValidationError(f"rules[{i}]: {process.name!r} has no rule {rule_id}")
        if entry.get("version") is None:
            if rule.current is None:
                raise ValidationError(f"rules[{i}]: rule {rule.name!r} has no version yet")
            number = rule.current.version
        else:
            number = _whole(f"rules[{i}].version", entry["version"], low=1, high=2**31)
            if not RuleVersion.objects.filter(rule=rule, version=number).exists():
                raise ValidationError(f"rules[{i}]: rule {rule.name!r} has no version {number}")
        if any(p["rule"] == rule_id for p in pinned):
            raise ValidationError(f"rules[{i}]: rule {rule.name!r} is listed twice")
        pinned.append({"rule": rule_id, "version": number})
    return pinned


def _clean_connectors(process: Process, value: object) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_CONNECTORS:
        raise ValidationError(f"connectors: expected a list of at most {MAX_CONNECTORS} ids")
    ids = [_whole(f"connectors[{i}]", v, low=1, high=2**62) for i, v in enumerate(value)]
    found = set(
        Connector.objects.filter(team_id=process.team_id, pk__in=ids).values_list("pk", flat=True)
    )
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValidationError(
            f"connectors: the team {process.team.name!r} has no connector "
            + ", ".join(map(str, unknown))
        )
    return list(dict.fromkeys(ids))


def _clean_model(process: Process, value: object) -> ModelVersion | None:
    """A model version of the process, given by its version number."""
    if value is None:
        return None
    number = _whole("model_version", value, low=1, high=2**31)
    model = ModelVersion.objects.filter(process=process, version=number).first()
    if model is None:
        raise ValidationError(f"model_version: {process.name!r} has no model version {number}")
    return model


def check_autonomy_policy(
    *, process: Process, level: int, threshold: float, audit_rate: float, model: ModelVersion | None
) -> None:
    """Refuse a policy above what the process has earned under its gates (apps/autonomy): a
    higher level, or at the earned level a lower threshold or (deciding) a lower audit rate, or
    a model other than the one the level was earned with."""
    earned = autonomy_of(process=process)
    if level > earned.level:
        raise ValidationError(
            f"autonomy_level: {process.name!r} has earned level {earned.level} "
            f"({earned.level_name}) under its gates; a version can't ask for {level}"
        )
    if level >= 1 and level == earned.level and threshold < earned.threshold:
        raise ValidationError(
            f"threshold: at level {level} it must be at least the earned {earned.threshold}"
        )
    if level == 3 and audit_rate < earned.audit_rate:
        raise ValidationError(
            f"audit_rate: deciding alone, it must be at least the earned {earned.audit_rate}"
        )
    if level == 3 and model is None:
        raise ValidationError("model_version: level 3 (decide) needs a model version")
    if (
        level >= 1
        and model is not None
        and earned.model_version_id is not None
        and model.pk != earned.model_version_id
    ):
        raise ValidationError(
            f"model_version: level {level} was earned with another model version; "
            "pin that one or ask for level 0"
        )


def _components_of(version: OrchestrationVersion) -> dict[str, Any]:
    return {
        "exception_filter": version.exception_filter,
        "rules": version.rules,
        "model_version": version.model_version.version if version.model_version else None,
        "autonomy_level": version.autonomy_level,
        "threshold": version.threshold,
        "audit_rate": version.audit_rate,
        "routes": version.routes,
        "connectors": version.connector_ids,
        "sla_minutes": version.sla_minutes,
    }


def clean_components(*, process: Process, values: dict[str, Any]) -> dict[str, Any]:
    """Every component checked against the process (its schema, rules, models, team's
    connectors, earned autonomy); ValidationError naming the first one at fault."""
    unknown = sorted(set(values) - set(COMPONENTS))
    if unknown:
        raise ValidationError(f"unknown component(s): {', '.join(unknown)}")
    clean: dict[str, Any] = {}
    condition = values.get("exception_filter")
    if condition is not None:
        fields = process.schema.fields if process.schema else []
        validate_condition(condition, fields=fields)
    clean["exception_filter"] = condition
    clean["rules"] = _clean_rules(process, values.get("rules", []))
    clean["model_version"] = _clean_model(process, values.get("model_version"))
    clean["autonomy_level"] = _whole(
        "autonomy_level", values.get("autonomy_level", 0), low=0, high=3
    )
    clean["threshold"] = _number("threshold", values.get("threshold", 0.9), low=0, high=1)
    if clean["threshold"] == 0:
        raise ValidationError("threshold: must be above 0")
    clean["audit_rate"] = _number("audit_rate", values.get("audit_rate", 0.1), low=0, high=1)
    clean["routes"] = clean_routes(process=process, routes=values.get("routes", {}))
    clean["connectors"] = _clean_connectors(process, values.get("connectors", []))
    sla = values.get("sla_minutes")
    clean["sla_minutes"] = (
        None if sla is None else _whole("sla_minutes", sla, low=1, high=MAX_SLA_MINUTES)
    )
    check_autonomy_policy(
        process=process,
        level=clean["autonomy_level"],
        threshold=clean["threshold"],
        audit_rate=clean["audit_rate"],
        model=clean["model_version"],
    )
    return clean


def _record_reuse(version: OrchestrationVersion) -> None:
    rows = [
        ComponentReuse(
            version=version,
            orchestration_id=version.orchestration_id,
            kind=ComponentKind.RULE,
            component_id=pinned["rule"],
            component_version=pinned["version"],
        )
        for pinned in version.rules
    ]
    if version.model_version is not None:
        rows.append(
            ComponentReuse(
                version=version,
                orchestration_id=version.orchestration_id,
                kind=ComponentKind.MODEL,
                component_id=version.model_version.pk,
                component_version=version.model_version.version,
            )
        )
    rows += [
        ComponentReuse(
            version=version,
            orchestration_id=version.orchestration_id,
            kind=ComponentKind.CONNECTOR,
            component_id=connector_id,
        )
        for connector_id in version.connector_ids
    ]
    ComponentReuse.objects.bulk_create(rows)


@transaction.atomic
def create_version(
    *,
    orchestration: Orchestration,
    actor: AbstractBaseUser | None,
    values: dict[str, Any],
    base: OrchestrationVersion | None = None,
) -> OrchestrationVersion:
    """A new draft, numbered after the last: `base`'s components (when given) with `values` over
    them, all checked (clean_components). Its components are recorded for reuse counts."""
    merged = {**(_components_of(base) if base is not None else {}), **values}
    clean = clean_components(process=orchestration.process, values=merged)
    # Numbers are handed out one at a time per orchestration.
    lock_in_order(Orchestration.objects.filter(pk=orchestration.pk))
    last = orchestration.versions.order_by("-number").values_list("number", flat=True).first()
    version = OrchestrationVersion.objects.create(
        orchestration=orchestration,
        number=(last or 0) + 1,
        exception_filter=clean["exception_filter"],
        rules=clean["rules"],
        model_version=clean["model_version"],
        autonomy_level=clean["autonomy_level"],
        threshold=clean["threshold"],
        audit_rate=clean["audit_rate"],
        routes=clean["routes"],
        connector_ids=clean["connectors"],
        sla_minutes=clean["sla_minutes"],
        created_by=actor,
    )
    _record_reuse(version)
    return version


# --- stages -------------------------------------------------------------------------------------


def _clean_reason(reason: str) -> str:
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValidationError(f"reason: at most {MAX_REASON} characters")
    return reason.strip()


def _move(
    version: OrchestrationVersion,
    *,
    to: str,
    share: float | None,
    actor: AbstractBaseUser | None,
    reason: str,
    rollback: bool = False,
) -> None:
    change = StageChange(
        orchestration_id=version.orchestration_id,
        version=version,
        actor=actor,
        from_stage=version.stage,
        to_stage=to,
        canary_share=share,
        reason=reason,
        rollback=rollback,
    )
    version.stage = to
    version.canary_share = share
    version.stage_changed_at = timezone.now()
    version.save(update_fields=["stage", "canary_share", "stage_changed_at"])
    change.save()


def _locked_versions(orchestration: Orchestration) -> dict[int, OrchestrationVersion]:
    ids = lock_in_order(OrchestrationVersion.objects.filter(orchestration=orchestration))
    versions = OrchestrationVersion.objects.select_related("model_version").in_bulk(ids)
    return {v.number: v for v in versions.values()}


def _displace(
    versions: dict[int, OrchestrationVersion],
    *,
    stage: str,
    keep: OrchestrationVersion,
    actor: AbstractBaseUser | None,
    reason: str,
) -> None:
    # One live (and one canary) version at a time: the one it replaces is retired, logged.
    for other in versions.values():
        if other.stage == stage and other.pk != keep.pk:
            _move(other, to=Stage.RETIRED, share=None, actor=actor, reason=reason)


@transaction.atomic
def change_stage(
    *,
    version: OrchestrationVersion,
    stage: str,
    actor: AbstractBaseUser | None,
    reason: str = "",
    canary_share: float | None = None,
) -> OrchestrationVersion:
    """Move `version` to `stage` (shadow, canary, live or retired). Canary needs a share
    0 < share < 1 and a live version to share traffic with; live retires the previous live
    version (and a canary replaces the previous canary). Canary and live re-check the autonomy
    policy against what the process has earned now. ValidationError for bad input,
    StageConflict for a move the version's stage doesn't allow. Returns the version, reloaded."""
    reason = _clean_reason(reason)
    if stage not in (Stage.SHADOW, Stage.CANARY, Stage.LIVE, Stage.RETIRED):
        raise ValidationError("stage: expected one of shadow, canary, live, retired")
    if stage == Stage.CANARY:
        if canary_share is None:
            raise ValidationError("canary_share: a canary needs a share of live items")
        share = _number("canary_share", canary_share, low=0, high=1)
        if not 0 < share < 1:
            raise ValidationError(f"canary_share: must be above 0 and below 1, got {share}")
    elif canary_share is not None:
        raise ValidationError("canary_share: only a canary takes a share")
    else:
        share = None
    versions = _locked_versions(version.orchestration)
    current = versions[version.number]
    if stage not in NEXT_STAGES[current.stage]:
        raise StageConflict(f"version {current.number} is {current.stage}: it can't go {stage}")
    if stage in (Stage.CANARY, Stage.LIVE):
        check_autonomy_policy(
            process=version.orchestration.process,
            level=current.autonomy_level,
            threshold=current.threshold,
            audit_rate=current.audit_rate,
            model=current.model_version,
        )
    if stage == Stage.CANARY and not any(
        v.stage == Stage.LIVE and v.pk != current.pk for v in versions.values()
    ):
        raise StageConflict("a canary shares live items with the live version: there is none")
    if stage in (Stage.LIVE, Stage.CANARY):
        note = f"replaced by version {current.number}" + (f": {reason}" if reason else "")
        _displace(versions, stage=stage, keep=current, actor=actor, reason=note)
    _move(current, to=stage, share=share, actor=actor, reason=reason)
    return current


@transaction.atomic
def rollback(
    *, orchestration: Orchestration, to_number: int, actor: AbstractBaseUser | None, reason: str
) -> OrchestrationVersion:
    """Make an earlier version live again in one action: the live version (and any canary) is
    retired. The target must have left draft and be older than the live version. A reason is
    required; every move is logged with the actor."""
    reason = _clean_reason(reason)
    if not reason:
        raise ValidationError("reason: say why you roll back")
    versions = _locked_versions(orchestration)
    target = versions.get(to_number)
    if target is None:
        raise ValidationError(f"to: there is no version {to_number}")
    live = next((v for v in versions.values() if v.stage == Stage.LIVE), None)
    if target.stage == Stage.DRAFT:
        raise StageConflict(f"version {to_number} is a draft: it was never deployed")
    if live is not None and target.number >= live.number:
        raise StageConflict(
            f"version {to_number} is not earlier than the live version {live.number}"
        )
    check_autonomy_policy(
        process=orchestration.process,
        level=target.autonomy_level,
        threshold=target.threshold,
        audit_rate=target.audit_rate,
        model=target.model_version,
    )
    note = f"rolled back to version {to_number}: {reason}"
    for other in versions.values():
        if other.stage in (Stage.LIVE, Stage.CANARY) and other.pk != target.pk:
            _move(other, to=Stage.RETIRED, share=None, actor=actor, reason=note, rollback=True)
    _move(target, to=Stage.LIVE, share=None, actor=actor, reason=reason, rollback=True)
    return target


# --- diff ---------------------------------------------------------------------------------------

SETTINGS = ("exception_filter", "autonomy_level", "threshold", "audit_rate", "sla_minutes")


def diff_versions(*, old: OrchestrationVersion, new: OrchestrationVersion) -> dict[str, Any]:
    """What changes from `old` to `new`, as data: {"from", "to", "components": {"rules":
    {added, removed, changed}, "model_version": {from, to} | None, "connectors": {added,
    removed}}, "settings": [{name, from, to}], "routes": [{label, from, to}], "same": bool}."""
    old_rules = {r["rule"]: r["version"] for r in old.rules}
    new_rules = {r["rule"]: r["version"] for r in new.rules}
    rules = {
        "added": [{"rule": r, "version": v} for r, v in new_rules.items() if r not in old_rules],
        "removed": [{"rule": r, "version": v} for r, v in old_rules.items() if r not in new_rules],
        "changed": [
            {"rule": r, "from": old_rules[r], "to": v}
            for r, v in new_rules.items()
            if r in old_rules and old_rules[r] != v
        ],
        "order_changed": [r for r in old_rules if r in new_rules]
        != [r for r in new_rules if r in old_rules],
    }
    old_model = old.model_version.version if old.model_version else None
    new_model = new.model_version.version if new.model_version else None
    model = None if old_model == new_model else {"from": old_model, "to": new_model}
    connectors = {
        "added": [c for c in new.connector_ids if c not in old.connector_ids],
        "removed": [c for c in old.connector_ids if c not in new.connector_ids],
    }
    settings = [
        {"name": name, "from": getattr(old, name), "to": getattr(new, name)}
        for name in SETTINGS
        if getattr(old, name) != getattr(new, name)
    ]
    routes = [
        {"label": label, "from": old.routes.get(label), "to": new.routes.get(label)}
        for label in sorted(set(old.routes) | set(new.routes))
        if old.routes.get(label) != new.routes.get(label)
    ]
    same = not (
        rules["added"] or rules["removed"] or rules["changed"] or rules["order_changed"]
        or model or connectors["added"] or connectors["removed"] or settings or routes
    )  # fmt: skip
    return {
        "from": old.number,
        "to": new.number,
        "components": {"rules": rules, "model_version": model, "connectors": connectors},
        "settings": settings,
        "routes": routes,
        "same": same,
    }
