"""Changing a process's autonomy: shadow mode, promotion through the gate, demotion, settings.

Every change is written to the AutonomyChange log with its evidence, in the same transaction.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.autonomy.models import AutonomyChange, Level, ProcessAutonomy
from apps.autonomy.services.gate import check_level, evaluate
from apps.autonomy.services.shadow import audit_status
from apps.cases.models import Process
from apps.classifiers import services as classifiers
from apps.people.models import Membership, Role, Team
from apps.rules.language import validate_action


class GateFailed(ValidationError):
    """The gate for the level asked is not passed; `evidence` says what is missing."""

    def __init__(self, evidence: dict) -> None:
        self.evidence = evidence
        super().__init__(
            f"the gate for level {evidence['target']} ({evidence['target_name'].lower()}) is not "
            "passed: " + "; ".join(evidence["missing"])
        )


def autonomy_for(*, process: Process) -> ProcessAutonomy:
    autonomy, _ = ProcessAutonomy.objects.get_or_create(process=process)
    return autonomy


def _locked(process: Process) -> ProcessAutonomy:
    autonomy_for(process=process)
    return (
        ProcessAutonomy.objects.select_for_update(of=("self",))
        .select_related("process__schema")
        .get(process=process)
    )


def _log(
    autonomy: ProcessAutonomy,
    *,
    kind: str,
    from_level: int,
    actor: AbstractBaseUser | None,
    evidence: dict,
    reason: str = "",
    automatic: bool = False,
) -> AutonomyChange:
    return AutonomyChange.objects.create(
        process=autonomy.process,
        kind=kind,
        from_level=from_level,
        to_level=autonomy.level,
        target=autonomy.target,
        evidence=evidence,
        actor=actor,
        automatic=automatic,
        reason=reason,
        at=timezone.now(),
    )


@transaction.atomic
def start_shadow(
    *, process: Process, target: object, actor: AbstractBaseUser | None, reason: str = ""
) -> ProcessAutonomy:
    """Start earning `target` in shadow mode: from now on every new case gets a shadow prediction,
    and the open cases are backfilled (by a task, after commit). Needs a promoted model."""
    target = check_level(target)
    autonomy = _locked(process)
    if target <= autonomy.level:
        raise ValidationError(
            f"{process.name} is already at level {autonomy.level} ({autonomy.level_name}); "
            "shadow mode earns a higher level"
        )
    version = classifiers.promoted_version(process=process)
    if version is None:
        raise ValidationError(
            f"{process.name} has no promoted model: train one and promote it before shadow mode"
        )
    previous = autonomy.target
    autonomy.target = target
    autonomy.shadow_started_at = timezone.now()
    autonomy.save(update_fields=["target", "shadow_started_at", "updated_at"])
    _log(
        autonomy,
        kind=AutonomyChange.Kind.SHADOW,
        from_level=autonomy.level,
        actor=actor,
        reason=reason,
        evidence={"model_version": version.version, "previous_target": previous},
    )
    from apps.autonomy.tasks import backfill_shadow

    transaction.on_commit(lambda: backfill_shadow.delay(process.pk), robust=True)
    return autonomy


@transaction.atomic
def stop_shadow(
    *, process: Process, actor: AbstractBaseUser | None, reason: str = ""
) -> ProcessAutonomy:
    autonomy = _locked(process)
    if autonomy.target is None:
        raise ValidationError(f"{process.name} is not in shadow mode")
    previous = autonomy.target
    autonomy.target = None
    autonomy.shadow_started_at = None
    autonomy.save(update_fields=["target", "shadow_started_at", "updated_at"])
    _log(
        autonomy,
        kind=AutonomyChange.Kind.SHADOW_STOPPED,
        from_level=autonomy.level,
        actor=actor,
        reason=reason,
        evidence={"previous_target": previous},
    )
    return autonomy


@transaction.atomic
def promote_autonomy(
    *,
    process: Process,
    level: object,
    actor: AbstractBaseUser | None,
    reason: str = "",
    include_backfilled: bool = False,
    extra_evidence: dict | None = None,
) -> ProcessAutonomy:
    """Raise the process to `level` if the gate for that level passes (GateFailed otherwise, with
    the evidence); the evidence is logged with the promotion. A level can be skipped only when the
    gate of the level asked passes, which includes the checks of the levels below."""
    level = check_level(level)
    autonomy = _locked(process)
    if level <= autonomy.level:
        raise ValidationError(
            f"{process.name} is already at level {autonomy.level} ({autonomy.level_name}); "
            "a promotion goes up (demote to go down)"
        )
    evidence = evaluate(process=process, target=level, include_backfilled=include_backfilled)
    if not evidence["passed"]:
        raise GateFailed(evidence)
    evidence.update(extra_evidence or {})
    before = autonomy.level
    autonomy.level = level
    autonomy.level_since = timezone.now()
    autonomy.model_version = classifiers.promoted_version(process=process)
    if autonomy.target is not None and autonomy.target <= level:
        autonomy.target = None
        autonomy.shadow_started_at = None
    autonomy.save()
    _log(
        autonomy,
        kind=AutonomyChange.Kind.PROMOTE,
        from_level=before,
        actor=actor,
        reason=reason,
        evidence=evidence,
    )
    return autonomy


@transaction.atomic
def demote_autonomy(
    *,
    process: Process,
    level: object,
    actor: AbstractBaseUser | None,
    reason: str,
    automatic: bool = False,
    evidence: dict | None = None,
) -> ProcessAutonomy:
    """Lower the process to `level` (always allowed, with a reason); logged with the state it left."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= Level.DECIDE:
        raise ValidationError(f"level must be 0, 1, 2 or 3, got {level!r}")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why the process is demoted (reason)")
    autonomy = _locked(process)
    if level >= autonomy.level:
        raise ValidationError(
            f"{process.name} is at level {autonomy.level} ({autonomy.level_name}); a demotion "
            "goes down"
        )
    before = autonomy.level
    if evidence is None:
        evidence = {"left_level": before, "left_level_since": _iso(autonomy.level_since)}
        if before == Level.DECIDE:
            evidence["audits"] = audit_status(autonomy=autonomy)
    autonomy.level = level
    autonomy.level_since = timezone.now()
    autonomy.save(update_fields=["level", "level_since", "updated_at"])
    _log(
        autonomy,
        kind=AutonomyChange.Kind.DEMOTE,
        from_level=before,
        actor=actor,
        reason=reason,
        evidence=evidence,
        automatic=automatic,
    )
    return autonomy


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]


def demote_if_audits_fail(*, process: Process) -> ProcessAutonomy | None:
    """At level 3: once `min_audits` audited decisions exist since the promotion, demote to level 2
    when the audited precision over the sliding window falls below the target. Returns the demoted
    autonomy, or None when nothing changed."""
    autonomy = ProcessAutonomy.objects.filter(process=process).first()
    if autonomy is None or autonomy.level != Level.DECIDE:
        return None
    status = audit_status(autonomy=autonomy)
    if status["audited"] < autonomy.min_audits:
        return None
    if status["precision"] >= autonomy.target_precision:
        return None
    with transaction.atomic():
        locked = _locked(process)
        if locked.level != Level.DECIDE:  # a concurrent decision demoted it already
            return None
        return demote_autonomy(
            process=process,
            level=Level.SUGGEST,
            actor=None,
            automatic=True,
            reason=(
                f"audited precision {status['precision']:.2f} < target "
                f"{autonomy.target_precision:.2f} over the last {status['audited']} audited "
                "decisions"
            ),
            evidence={"audits": status},
        )


SETTINGS = (
    "threshold",
    "target_precision",
    "min_shadow",
    "audit_rate",
    "audit_window",
    "min_audits",
    "routes",
)


def _number(name: str, value: object, *, low: float, high: float, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name}: expected a number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bound = f"above {low}" if low_open else f"at least {low}"
        raise ValidationError(f"{name}: must be {bound} and at most {high}, got {value}")
    return float(value)


def _count(name: str, value: object, *, low: int = 1, high: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValidationError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def clean_routes(*, process: Process, routes: object) -> dict[str, str]:
    """{label: "team:<slug>" | "expert:<username>"}: labels of the process, routes in the rule
    language's syntax."""
    if not isinstance(routes, dict):
        raise ValidationError('routes: expected an object {label: "team:<slug>"}')
    labels = process.schema.labels
    clean = {}
    for label, route in routes.items():
        if label not in labels:
            raise ValidationError(
                f"routes: unknown decision {label!r}; use one of {', '.join(labels)}"
            )
        if route in (None, ""):
            continue
        try:
            validate_action({"route": route}, labels=labels, reason_codes={})
        except ValidationError as exc:
            raise ValidationError(
                f"routes.{label}: " + " ".join(exc.messages).removeprefix("action.route: ")
            ) from None
        _check_route_target(process=process, label=label, route=str(route))
        clean[label] = route
    return clean


def _check_route_target(*, process: Process, label: str, route: str) -> None:
    # A route to nobody would silently leave the case in no one's queue.
    kind, _, target = route.partition(":")
    if kind == "team" and not Team.objects.filter(slug=target).exists():
        raise ValidationError(f"routes.{label}: there is no team {target!r}")
    if (
        kind == "expert"
        and not Membership.objects.filter(
            team_id=process.team_id, user__username=target, user__is_active=True, role=Role.EXPERT
        ).exists()
    ):
        raise ValidationError(
            f"routes.{label}: {target!r} is not an expert of the team {process.team.name!r}"
        )


@transaction.atomic
def update_autonomy_settings(
    *, process: Process, actor: AbstractBaseUser | None, values: dict
) -> ProcessAutonomy:
    """Change the gate's bar and the level-3 audit settings; ValidationError naming the setting.
    Logged with each changed value before and after."""
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise ValidationError(f"unknown setting(s): {', '.join(unknown)}")
    autonomy = _locked(process)
    clean: dict[str, object] = {}
    for name, value in values.items():
        if name in ("threshold", "target_precision"):
            clean[name] = _number(name, value, low=0, high=1, low_open=True)
        elif name == "audit_rate":
            clean[name] = _number(name, value, low=0, high=1, low_open=False)
        elif name == "routes":
            clean[name] = clean_routes(process=process, routes=value)
        else:
            clean[name] = _count(name, value)
    window = clean.get("audit_window", autonomy.audit_window)
    minimum = clean.get("min_audits", autonomy.min_audits)
    if minimum > window:  # type: ignore[operator]
        raise ValidationError(
            f"min_audits: must be at most the audit window ({window}), got {minimum}"
        )
    changed = {
        name: [getattr(autonomy, name), value]
        for name, value in clean.items()
        if getattr(autonomy, name) != value
    }
    if not changed:
        return autonomy
    for name, (_, value) in changed.items():
        setattr(autonomy, name, value)
    autonomy.save()
    _log(
        autonomy,
        kind=AutonomyChange.Kind.SETTINGS,
        from_level=autonomy.level,
        actor=actor,
        evidence={"changed": changed},
    )
    return autonomy
