"""Champion and challenger: a model version of the process predicting in shadow beside the live
version's model, on the same items, acting on nothing.

- `record_challenger(runs=...)` is called where runs are evaluated: for each new run of the live
  version that reached the model stage (an exception no rule settled), the challenger's label,
  confidence and whether it would decide at the version's threshold and level are appended to the
  run's trace as a `challenger` step, with the champion's answer beside it. One batch predict per
  call; a challenger that fails to load or predict costs the items nothing (logged, no step).
- `set_challenger`, `promote_challenger` are the owner's writes, logged as ChallengerEvent rows.

The comparison of the two (and against experts' outcomes) is in apps/orchestrations/evidence.py.
"""

import logging
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.classifiers.models import ModelVersion
from apps.classifiers.services import predict_cases
from apps.classifiers.types import CaseInput
from apps.core.db import lock_in_order
from apps.orchestrations.errors import StageConflict
from apps.orchestrations.models import (
    ChallengerAction,
    ChallengerEvent,
    Orchestration,
    OrchestrationVersion,
    Outcome,
    Run,
    RunStep,
    Stage,
    StepKind,
)
from apps.orchestrations.services import check_autonomy_policy, create_version

logger = logging.getLogger(__name__)
MAX_REASON = 2000


def reached_model(run: Run) -> bool:
    """Whether the run's version got as far as the model: an exception no rule settled."""
    return run.outcome in (Outcome.DECIDED, Outcome.ROUTED) and not run.decided_by.startswith(
        "rule:"
    )


def record_challenger(*, runs: Sequence[Run]) -> int:
    """Append a `challenger` step to each run in `runs` that its orchestration's live version
    evaluated up to the model stage, when the orchestration has a challenger other than that
    version's model. Precondition: the runs are finished (outcome set) and their steps written.
    Returns the number of steps recorded."""
    # Read now, not from the runs' orchestration objects: those may predate a challenger change
    # (the runs a request just recorded carry the request's copy).
    challengers = dict(
        Orchestration.objects.filter(pk__in={run.orchestration_id for run in runs}).values_list(
            "pk", "challenger_id"
        )
    )
    eligible = [
        run
        for run in runs
        if run.version.stage == Stage.LIVE
        and challengers.get(run.orchestration_id) is not None
        and challengers[run.orchestration_id] != run.version.model_version_id
        and reached_model(run)
    ]
    if not eligible:
        return 0
    by_challenger: dict[int, list[Run]] = {}
    for run in eligible:
        by_challenger.setdefault(challengers[run.orchestration_id], []).append(run)
    last = dict(
        RunStep.objects.filter(run__in=eligible)
        .values("run")
        .annotate(last=Max("number"))
        .values_list("run", "last")
    )
    steps: list[RunStep] = []
    models = ModelVersion.objects.in_bulk(list(by_challenger))
    for challenger_id, runs_of_one in by_challenger.items():
        challenger = models[challenger_id]
        try:
            predictions = predict_cases(
                version=challenger, cases=[CaseInput(run.fields, "", []) for run in runs_of_one]
            )
        except Exception:
            # The challenger acts on nothing: whatever is wrong with it, the items go on.
            logger.exception("challenger model %s could not predict", challenger.pk)
            continue
        for run, prediction in zip(runs_of_one, predictions, strict=True):
            version = run.version
            confidence = round(prediction.confidence, 4)
            confident = confidence >= version.threshold
            champion = version.model_version
            steps.append(
                RunStep(
                    run=run,
                    number=last.get(run.pk, 0) + 1,
                    kind=StepKind.CHALLENGER,
                    data={
                        "model_version": challenger.version,
                        "label": prediction.label,
                        "confidence": confidence,
                        "threshold": version.threshold,
                        "level": version.autonomy_level,
                        "confident": confident,
                        "would_decide": version.autonomy_level == 3 and confident,
                        "champion": {
                            "model_version": champion.version if champion else None,
                            "label": run.label or None,
                            "confidence": run.confidence,
                            "decides": run.outcome == Outcome.DECIDED,
                        },
                    },
                )
            )
    RunStep.objects.bulk_create(steps)
    return len(steps)


# --- the owner's writes -------------------------------------------------------------------------


def _clean_reason(reason: object, *, required: bool = False) -> str:
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValidationError(f"reason: at most {MAX_REASON} characters")
    reason = reason.strip()
    if required and not reason:
        raise ValidationError("reason: say why")
    return reason


def _live(orchestration: Orchestration) -> OrchestrationVersion | None:
    return orchestration.versions.select_related("model_version").filter(stage=Stage.LIVE).first()


@transaction.atomic
def set_challenger(
    *,
    orchestration: Orchestration,
    model_version: int | None,
    actor: AbstractBaseUser | None,
    reason: str = "",
) -> Orchestration:
    """Make the process's model version number `model_version` the challenger (None clears it).
    ValidationError for a model version the process doesn't have or the one the live version
    already uses. Logged with actor and reason; returns the orchestration, reloaded."""
    reason = _clean_reason(reason)
    lock_in_order(Orchestration.objects.filter(pk=orchestration.pk))
    orchestration = Orchestration.objects.select_related("challenger").get(pk=orchestration.pk)
    model = None
    if model_version is not None:
        if isinstance(model_version, bool) or not isinstance(model_version, int):
            raise ValidationError(f"model_version: expected a whole number, got {model_version!r}")
        model = ModelVersion.objects.filter(
            process_id=orchestration.process_id, version=model_version
        ).first()
        if model is None:
            raise ValidationError(
                f"model_version: {orchestration.process.name!r} has no model version "
                f"{model_version}"
            )
        live = _live(orchestration)
        if live is not None and live.model_version_id == model.pk:
            raise ValidationError(
                f"model_version: the live version {live.number} already uses model "
                f"v{model_version}; pick another to challenge it"
            )
    if (model.pk if model else None) == orchestration.challenger_id:
        return orchestration
    orchestration.challenger = model
    orchestration.challenger_since = timezone.now() if model else None
    orchestration.save(update_fields=["challenger", "challenger_since", "updated_at"])
    ChallengerEvent.objects.create(
        orchestration=orchestration,
        action=ChallengerAction.SET if model else ChallengerAction.CLEARED,
        model_version=model,
        actor=actor,
        reason=reason,
    )
    return orchestration


def _policy_for(
    orchestration: Orchestration, base: OrchestrationVersion, model: ModelVersion
) -> tuple[int, str]:
    """The highest autonomy level up to `base`'s that the process's earned autonomy allows with
    `model` pinned (levels are earned with one model: another one may start lower), and why."""
    for level in range(base.autonomy_level, -1, -1):
        try:
            check_autonomy_policy(
                process=orchestration.process,
                level=level,
                threshold=base.threshold,
                audit_rate=base.audit_rate,
                model=model,
            )
        except ValidationError as exc:
            why = exc.messages[0]
            continue
        if level == base.autonomy_level:
            return level, ""
        return level, f"level {level} instead of {base.autonomy_level}: {why}"
    return 0, ""  # pragma: no cover - level 0 always passes


@transaction.atomic
def promote_challenger(
    *,
    orchestration: Orchestration,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict | None = None,
) -> OrchestrationVersion:
    """A new draft version: the live version's components with the challenger as model (at the
    highest autonomy level the process's earned autonomy allows with it). It then goes the
    normal way (shadow, canary, live). A reason is required; logged with the actor, the draft and
    `evidence` (the comparison the owner saw). StageConflict without a challenger or a live
    version."""
    reason = _clean_reason(reason, required=True)
    lock_in_order(Orchestration.objects.filter(pk=orchestration.pk))
    orchestration = Orchestration.objects.select_related("challenger", "process").get(
        pk=orchestration.pk
    )
    challenger = orchestration.challenger
    if challenger is None:
        raise StageConflict("there is no challenger to promote: set one first")
    live = _live(orchestration)
    if live is None:
        raise StageConflict("a challenger is promoted from the live version: there is none")
    if live.model_version_id == challenger.pk:
        # Promoted earlier and live since: nothing left to promote.
        raise StageConflict(
            f"the live version {live.number} already uses model v{challenger.version}: "
            "set another challenger"
        )
    level, note = _policy_for(orchestration, live, challenger)
    draft = create_version(
        orchestration=orchestration,
        actor=actor,
        base=live,
        values={"model_version": challenger.version, "autonomy_level": level},
    )
    ChallengerEvent.objects.create(
        orchestration=orchestration,
        action=ChallengerAction.PROMOTED,
        model_version=challenger,
        draft=draft,
        actor=actor,
        reason=reason + (f" ({note})" if note else ""),
        evidence=evidence or {},
    )
    return draft


def challenger_log(*, orchestration: Orchestration, limit: int = 50) -> list[ChallengerEvent]:
    return list(
        orchestration.challenger_events.select_related("actor", "model_version", "draft")[:limit]
    )
