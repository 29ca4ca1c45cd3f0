"""Classifier registry: train a version in the background, store it with its evidence, promote,
roll back, load it (checksum verified) and predict with it."""

import hashlib
import logging
import time
import zlib
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import TYPE_CHECKING

import numpy as np
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, Max, OuterRef
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Decision, DecisionSource, Process
from apps.cases.schema import validate_case_fields
from apps.classifiers.models import (
    TRAINING_KIND,
    LearningSettings,
    ModelArtifact,
    ModelVersion,
    RegistryEvent,
    TrainingJob,
)
from apps.classifiers.types import CaseInput, Contribution, Prediction, TrainingRefused
from apps.core import outbox

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from apps.classifiers.learning import TrainedModel

# learning.py (scikit-learn, about 1.2 s of imports) is imported in the functions that train or
# predict, not here: most processes that import this module (the web server's first request, a
# worker that only embeds) never load a model.

log = logging.getLogger(__name__)
MAX_PREDICT_BATCH = 10_000


class ArtifactTampered(Exception):
    """A stored model's bytes no longer match the checksum recorded when it was trained."""


class TrainingInProgress(Exception):
    def __init__(self, job: TrainingJob) -> None:
        super().__init__(f"training job {job.pk} of this process is already {job.state}")
        self.job = job


class NoPromotedModel(Exception):
    pass


# --- settings ----------------------------------------------------------------------------------


def learning_settings(*, process: Process) -> LearningSettings:
    settings, _ = LearningSettings.objects.get_or_create(process=process)
    return settings


def update_learning_settings(*, process: Process, **values: object) -> LearningSettings:
    settings = learning_settings(process=process)
    for name, value in values.items():
        setattr(settings, name, value)
    settings.full_clean()
    settings.save()
    return settings


# --- training ----------------------------------------------------------------------------------


def _decided(process: Process, decided_before: datetime | None = None):  # type: ignore[no-untyped-def]
    """The cases a model learns from: decided by people. A case the model decided itself (autonomy
    level 3) would teach it its own answers."""
    cases = (
        Case.objects.filter(process=process, status=CaseStatus.DECIDED)
        .exclude(final_label="")
        .exclude(
            Exists(
                Decision.objects.filter(
                    case=OuterRef("pk"), source=DecisionSource.MODEL, retracted_at__isnull=True
                )
            )
        )
    )
    if decided_before is not None:
        cases = cases.filter(decided_at__lt=decided_before)
    return cases


def check_can_train(*, process: Process, decided_before: datetime | None = None) -> None:
    """Refuse at once (TrainingRefused) what the training task would refuse later."""
    settings = learning_settings(process=process)
    counts = Counter(
        dict(
            _decided(process, decided_before)
            .values_list("final_label")
            .annotate(n=Count("id"))
            .values_list("final_label", "n")
        )
    )
    from apps.classifiers import learning

    learning.check_training_data(counts, min_decisions=settings.min_decisions)


def start_training(
    *,
    process: Process,
    requested_by: AbstractUser | None,
    trigger: str = "manual",
    decided_before: datetime | None = None,
) -> TrainingJob:
    """Queue a training job; TrainingRefused with the reason when the data cannot train a model,
    TrainingInProgress when one is already queued or running."""
    check_can_train(process=process, decided_before=decided_before)
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(
                process=process,
                requested_by=requested_by,
                trigger=trigger,
                stage="queued",
                decided_before=decided_before,
            )
            # Sent after commit; with the broker down the job stays queued for the sweeper.
            outbox.enqueue(kind=TRAINING_KIND, job_id=job.pk)
    except IntegrityError:
        active = TrainingJob.objects.filter(
            process=process, state__in=[TrainingJob.State.QUEUED, TrainingJob.State.RUNNING]
        ).first()
        # A job no worker took, or whose worker died, must not block the process for ever.
        if active is None or outbox.release_stale(kind=TRAINING_KIND, job_id=active.pk):
            return start_training(
                process=process,
                requested_by=requested_by,
                trigger=trigger,
                decided_before=decided_before,
            )
        raise TrainingInProgress(active) from None
    job.refresh_from_db()
    return job


def _report(job_id: int, percent: int, stage: str) -> None:
    TrainingJob.objects.filter(pk=job_id).update(
        progress=percent, stage=stage[:200], heartbeat_at=timezone.now()
    )


def snapshot_hash(ids: list[int], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for case_id, label in zip(ids, labels, strict=True):
        digest.update(f"{case_id}\t{label}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class TrainingData:
    ids: list[int]
    rows: list[CaseInput]
    labels: list[str]
    min_decisions: int


def claim_training_job(job_id: int) -> TrainingJob | None:
    """Move a queued job to running; None when it was claimed before (a message sent again by the
    sweeper, or redelivered): the conditional update runs a job once however many arrive."""
    now = timezone.now()
    claimed = TrainingJob.objects.filter(pk=job_id, state=TrainingJob.State.QUEUED).update(
        state=TrainingJob.State.RUNNING, started_at=now, heartbeat_at=now, stage="reading decisions"
    )
    return TrainingJob.objects.select_related("process__schema").get(pk=job_id) if claimed else None


def training_data(job: TrainingJob) -> TrainingData:
    """The people's decisions a job trains on, in id order (the snapshot)."""
    data = list(
        _decided(job.process, job.decided_before)
        .order_by("id")
        .values_list("id", "fields", "exception_reason", "exception_fields", "final_label")
    )
    return TrainingData(
        ids=[row[0] for row in data],
        rows=[CaseInput(fields, reason, list(fault or [])) for _, fields, reason, fault, _ in data],
        labels=[row[4] for row in data],
        min_decisions=learning_settings(process=job.process).min_decisions,
    )


def run_training_job(job_id: int) -> TrainingJob:
    """Train in this process: read the decided cases, fit, store the version. The training task
    sends jobs through the compute fabric instead (fabric.py); this path serves the demo seed,
    the benchmarks and tests of the learning itself."""
    from apps.classifiers import learning

    job = claim_training_job(job_id)
    if job is None:
        return TrainingJob.objects.get(pk=job_id)
    started = time.perf_counter()
    try:
        data = training_data(job)
        _report(job_id, 5, f"read {len(data.ids):,} decided cases")
        trained = learning.fit_classifier(
            job.process.schema.fields,
            data.rows,
            data.labels,
            min_decisions=data.min_decisions,
            progress=lambda percent, stage: _report(job_id, percent, stage),
        )
        _report(job_id, 95, "storing the model")
        version = store_version(
            job=job,
            content=learning.serialise(trained.pipeline),
            trained=trained,
            ids=data.ids,
            labels=data.labels,
            seconds=time.perf_counter() - started,
        )
    except TrainingRefused as exc:
        return fail_training_job(job, str(exc))
    except Exception as exc:
        log.exception("training job %s failed", job_id)
        return fail_training_job(job, f"training failed: {exc}")
    return finish_training_job(job, version)


def finish_training_job(job: TrainingJob, version: ModelVersion) -> TrainingJob:
    TrainingJob.objects.filter(pk=job.pk).update(
        state=TrainingJob.State.SUCCEEDED,
        progress=100,
        stage=f"trained version {version.version}",
        model_version=version,
        finished_at=timezone.now(),
    )
    if learning_settings(process=job.process).auto_promote:
        _auto_promote(version)
    job.refresh_from_db()
    return job


def fail_training_job(job: TrainingJob, reason: str) -> TrainingJob:
    TrainingJob.objects.filter(pk=job.pk).update(
        state=TrainingJob.State.FAILED, error=reason, finished_at=timezone.now(), stage="failed"
    )
    job.refresh_from_db()
    return job


@transaction.atomic
def store_version(
    *,
    job: TrainingJob,
    content: bytes,
    trained: "TrainedModel",
    ids: list[int],
    labels: list[str],
    seconds: float,
) -> ModelVersion:
    """File a trained model (its serialised pipeline `content`) as the process's next version."""
    digest = hashlib.sha256(content).hexdigest()
    artifact, _ = ModelArtifact.objects.get_or_create(
        sha256=digest, defaults={"content": content, "size": len(content)}
    )
    process = Process.objects.select_for_update().get(pk=job.process_id)
    number = (process.model_versions.aggregate(n=Max("version"))["n"] or 0) + 1
    metrics = dict(trained.metrics)
    if trained.dropped_labels:
        metrics["dropped_labels"] = trained.dropped_labels
    version = ModelVersion.objects.create(
        process=process,
        version=number,
        algorithm=trained.algorithm,
        params=trained.params,
        labels=trained.labels,
        schema_version=process.schema,
        snapshot_size=len(ids),
        snapshot_hash=snapshot_hash(ids, labels),
        snapshot_ids=zlib.compress(np.asarray(ids, dtype=np.int64).tobytes()),
        decided_at_training=len(ids),
        metrics=metrics,
        cross_validation=trained.cross_validation,
        artifact=artifact,
        artifact_sha256=digest,
        trained_by=job.requested_by,
        trained_at=timezone.now(),
        training_seconds=round(seconds, 2),
    )
    RegistryEvent.objects.create(
        process=process,
        model_version=version,
        kind="trained",
        actor=job.requested_by,
        at=version.trained_at,
        data={"job": job.pk, "trigger": job.trigger, "macro_f1": metrics["macro_f1"]},
    )
    return version


def snapshot_ids(version: ModelVersion) -> list[int]:
    return np.frombuffer(zlib.decompress(bytes(version.snapshot_ids)), dtype=np.int64).tolist()


def _auto_promote(version: ModelVersion) -> None:
    current = promoted_version(process=version.process)
    if current is None or version.metrics["macro_f1"] >= current.metrics.get("macro_f1", 0):
        promote(version=version, actor=None, note="auto-promoted after retraining")


# --- registry ----------------------------------------------------------------------------------


def promoted_version(*, process: Process) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(process=process, is_promoted=True).defer("snapshot_ids").first()
    )


@transaction.atomic
def promote(*, version: ModelVersion, actor: AbstractUser | None, note: str = "") -> ModelVersion:
    """Make `version` the process's model for suggestions (one promoted version per process)."""
    Process.objects.select_for_update().get(pk=version.process_id)
    previous = promoted_version(process=version.process)
    if previous is not None and previous.pk == version.pk:
        return version
    load_pipeline(version)  # never promote an artifact that would not load
    ModelVersion.objects.filter(process=version.process_id, is_promoted=True).update(
        is_promoted=False
    )
    now = timezone.now()
    ModelVersion.objects.filter(pk=version.pk).update(
        is_promoted=True, promoted_by=actor, promoted_at=now
    )
    RegistryEvent.objects.create(
        process_id=version.process_id,
        model_version=version,
        kind="promoted",
        actor=actor,
        at=now,
        data={"previous": previous.version if previous else None, "note": note},
    )
    from apps.classifiers.tasks import score_cases

    # The queue's uncertainty order must follow the model that now suggests.
    transaction.on_commit(lambda: score_cases.delay(version.process_id), robust=True)
    version.refresh_from_db()
    return version


@transaction.atomic
def rollback(*, process: Process, actor: AbstractUser | None) -> ModelVersion:
    """Promote again the version that was promoted before the current one."""
    current = promoted_version(process=process)
    if current is None:
        raise ValidationError("no model is promoted, so there is nothing to roll back")
    earlier = (
        RegistryEvent.objects.filter(process=process, kind="promoted")
        .exclude(model_version=current)
        .select_related("model_version")
        .first()
    )
    if earlier is None:
        raise ValidationError(
            f"version {current.version} is the only version ever promoted; nothing to roll back to"
        )
    target = earlier.model_version
    promote(version=target, actor=actor, note=f"rolled back from version {current.version}")
    RegistryEvent.objects.create(
        process=process,
        model_version=target,
        kind="rolled_back",
        actor=actor,
        at=timezone.now(),
        data={"from": current.version, "to": target.version},
    )
    return target


_cache: "OrderedDict[str, Pipeline]" = OrderedDict()
_cache_lock = Lock()
_CACHE_SIZE = 8


def load_pipeline(version: ModelVersion) -> "Pipeline":
    """The fitted pipeline of `version`; ArtifactTampered if its bytes changed since training."""
    digest = version.artifact_sha256
    with _cache_lock:
        if digest in _cache:
            _cache.move_to_end(digest)
            return _cache[digest]
    content = bytes(ModelArtifact.objects.values_list("content", flat=True).get(sha256=digest))
    if hashlib.sha256(content).hexdigest() != digest:
        raise ArtifactTampered(
            f"model version {version.version} of {version.process.slug}: the stored artifact does "
            "not match its recorded SHA-256; refusing to load it (retrain or roll back)"
        )
    from apps.classifiers import learning

    pipeline = learning.deserialise(content)
    with _cache_lock:
        _cache[digest] = pipeline
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return pipeline


def forget_loaded_models() -> None:
    with _cache_lock:
        _cache.clear()


# --- prediction --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseSuggestion:
    version: ModelVersion
    prediction: Prediction
    contributions: list[Contribution]


def case_input(case: Case) -> CaseInput:
    return CaseInput(case.fields, case.exception_reason, list(case.exception_fields or []))


def predict_cases(
    *, version: ModelVersion, cases: list[Case] | list[CaseInput]
) -> list[Prediction]:
    from apps.classifiers import learning

    rows = [c if isinstance(c, CaseInput) else case_input(c) for c in cases]
    return learning.predict(load_pipeline(version), rows)


def suggest(*, case: Case, top: int = 3) -> CaseSuggestion | None:
    """The promoted model's suggestion for one case, with the fields that drove it."""
    from apps.classifiers import learning

    version = promoted_version(process=case.process)
    if version is None:
        return None
    pipeline = load_pipeline(version)
    row = case_input(case)
    [prediction] = learning.predict(pipeline, [row])
    return CaseSuggestion(version, prediction, learning.explain(pipeline, row, top=top))


def explain_rows(
    *, version: ModelVersion, rows: list[CaseInput], top: int = 3
) -> list[list[Contribution]]:
    from apps.classifiers import learning

    pipeline = load_pipeline(version)
    return [learning.explain(pipeline, row, top=top) for row in rows]


def clean_prediction_rows(*, process: Process, rows: list[dict]) -> list[CaseInput]:
    """Validate raw rows ({fields, exception: {reason, fields}}) against the current schema;
    ValidationError listing each bad row (unknown or missing fields, wrong types)."""
    if not rows:
        raise ValidationError("send at least one case")
    if len(rows) > MAX_PREDICT_BATCH:
        raise ValidationError(f"at most {MAX_PREDICT_BATCH} cases per request, got {len(rows)}")
    specs = process.schema.fields
    names = {spec["name"] for spec in specs}
    clean_rows: list[CaseInput] = []
    problems: list[str] = []
    for index, row in enumerate(rows):
        fields, errors = validate_case_fields(specs, row.get("fields"))
        exception = row.get("exception") or {}
        at_fault = exception.get("fields") or []
        unknown = [name for name in at_fault if name not in names]
        if unknown:
            errors["exception.fields"] = f"unknown field(s) {', '.join(map(str, unknown))}"
        if errors:
            detail = "; ".join(f"{name}: {message}" for name, message in sorted(errors.items()))
            problems.append(f"cases[{index}]: {detail}")
            continue
        clean_rows.append(CaseInput(fields, str(exception.get("reason") or ""), list(at_fault)))
    if problems:
        shown = problems[:20]
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise ValidationError("; ".join(shown) + more)
    return clean_rows


def require_promoted(*, process: Process) -> ModelVersion:
    version = promoted_version(process=process)
    if version is None:
        raise NoPromotedModel(
            f"{process.name} has no promoted model yet: train one and promote it first"
        )
    return version


# --- retraining --------------------------------------------------------------------------------


def decisions_since_training(*, process: Process) -> int | None:
    latest = (
        ModelVersion.objects.filter(process=process)
        .order_by("-version")
        .values_list("decided_at_training", flat=True)
        .first()
    )
    if latest is None:
        return None
    return _decided(process).count() - latest


def retrain_if_due(*, process: Process) -> TrainingJob | None:
    """Start a training when `retrain_after` new decisions arrived since the latest version."""
    settings = learning_settings(process=process)
    if not settings.retrain_after:
        return None
    new = decisions_since_training(process=process)
    if new is None or new < settings.retrain_after:
        return None
    try:
        return start_training(process=process, requested_by=None, trigger="retrain")
    except (TrainingRefused, TrainingInProgress):
        return None
