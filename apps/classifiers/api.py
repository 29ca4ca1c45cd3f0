"""Classifiers API: train (a background job), list versions with metrics, promote, roll back,
predict for a batch."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.errors import HttpError

from apps.cases import selectors as case_selectors
from apps.cases.models import Case, Process
from apps.classifiers import placement, selectors, services
from apps.classifiers.models import ModelVersion, TrainingJob
from apps.classifiers.schemas import (
    ContributionOut,
    ErrorOut,
    ModelListOut,
    ModelVersionOut,
    ModelVersionPatchIn,
    PredictIn,
    PredictionOut,
    PredictOut,
    TrainingJobOut,
)
from apps.classifiers.types import TrainingRefused
from apps.core.api import validation_errors

router = Router(tags=["classifiers"])
_ERRORS = {403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


def _process(request: HttpRequest, slug: str) -> Process:
    return case_selectors.process_for_member(user=request.user, slug=slug)


def job_out(job: TrainingJob) -> TrainingJobOut:
    return TrainingJobOut(
        id=job.pk,
        process=job.process.slug,
        state=job.state,
        progress=job.progress,
        stage=job.current_stage(),
        error=job.error,
        fabric_task=job.fabric_task_id,
        trigger=job.trigger,
        model_version=job.model_version.version if job.model_version_id else None,
        requested_by=job.requested_by.username if job.requested_by_id else None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def version_out(version: ModelVersion) -> ModelVersionOut:
    return ModelVersionOut(
        version=version.version,
        algorithm=version.algorithm,
        labels=version.labels,
        params=version.params,
        metrics=version.metrics,
        cross_validation=version.cross_validation,
        snapshot_size=version.snapshot_size,
        snapshot_hash=version.snapshot_hash,
        artifact_sha256=version.artifact_sha256,
        schema_version=version.schema_version.version,
        trained_by=version.trained_by.username if version.trained_by_id else None,
        trained_at=version.trained_at,
        training_seconds=version.training_seconds,
        is_promoted=version.is_promoted,
        promoted_by=version.promoted_by.username if version.promoted_by_id else None,
        promoted_at=version.promoted_at,
        gpu_only=version.gpu_only,
    )


@router.post(
    "/processes/{slug}/models",
    response={202: TrainingJobOut, **_ERRORS},
    summary="Train a new model version in the background (returns the job)",
)
def start_training(request: HttpRequest, slug: str) -> Status:
    process = _process(request, slug)
    if not selectors.can_train(user=request.user, process=process):
        raise HttpError(403, "Only the team's experts, managers and admins train models.")
    try:
        job = services.start_training(process=process, requested_by=request.user)
    except TrainingRefused as exc:
        raise HttpError(422, f"cannot train a model for {process.name}: {exc}") from None
    except services.TrainingInProgress as exc:
        follow = f"/api/v1/processes/{slug}/models/jobs/{exc.job.pk}"
        raise HttpError(409, f"{exc}; follow it at {follow}") from None
    return Status(202, job_out(job))


@router.get(
    "/processes/{slug}/models",
    response={200: ModelListOut, **_ERRORS},
    summary="Model versions with their metrics, and recent training jobs",
)
def list_models(request: HttpRequest, slug: str) -> ModelListOut:
    process = _process(request, slug)
    return ModelListOut(
        versions=[version_out(v) for v in selectors.model_versions_of(process=process)],
        jobs=[job_out(job) for job in selectors.recent_jobs(process=process)],
    )


@router.get(
    "/processes/{slug}/models/jobs/{int:job_id}",
    response={200: TrainingJobOut, **_ERRORS},
    summary="A training job's state and progress",
)
def training_job(request: HttpRequest, slug: str, job_id: int) -> TrainingJobOut:
    process = _process(request, slug)
    job = get_object_or_404(
        TrainingJob.objects.select_related("process", "model_version", "requested_by"),
        pk=job_id,
        process=process,
    )
    return job_out(job)


def _version(process: Process, version: int) -> ModelVersion:
    return get_object_or_404(selectors.model_versions_of(process=process), version=version)


@router.get(
    "/processes/{slug}/models/{int:version}",
    response={200: ModelVersionOut, **_ERRORS},
    summary="One model version",
)
def model_version(request: HttpRequest, slug: str, version: int) -> ModelVersionOut:
    return version_out(_version(_process(request, slug), version))


@router.patch(
    "/processes/{slug}/models/{int:version}",
    response={200: ModelVersionOut, **_ERRORS},
    summary="Keep a model version to GPU nodes of the fabric, or let any node run it (the "
    "team's managers and admins)",
)
def update_model_version(
    request: HttpRequest, slug: str, version: int, payload: ModelVersionPatchIn
) -> ModelVersionOut:
    process = _process(request, slug)
    if not selectors.can_promote(user=request.user, process=process):
        raise HttpError(403, "Only the team's managers and admins decide where a model runs.")
    updated = placement.set_gpu_only(
        version=_version(process, version), gpu_only=payload.gpu_only, actor=request.user
    )
    return version_out(_version(process, updated.version))


def _promoter(request: HttpRequest, slug: str) -> Process:
    process = _process(request, slug)
    if not selectors.can_promote(user=request.user, process=process):
        raise HttpError(403, "Only the team's managers and admins promote or roll back models.")
    return process


@router.post(
    "/processes/{slug}/models/{int:version}/promote",
    response={200: ModelVersionOut, **_ERRORS},
    summary="Make this version the one that suggests labels",
)
def promote(request: HttpRequest, slug: str, version: int) -> ModelVersionOut:
    process = _promoter(request, slug)
    try:
        promoted = services.promote(version=_version(process, version), actor=request.user)
    except services.ArtifactTampered as exc:
        raise HttpError(409, str(exc)) from None
    return version_out(promoted)


@router.post(
    "/processes/{slug}/models/rollback",
    response={200: ModelVersionOut, **_ERRORS},
    summary="Promote again the version promoted before the current one",
)
@validation_errors
def rollback(request: HttpRequest, slug: str) -> ModelVersionOut:
    process = _promoter(request, slug)
    target = services.rollback(process=process, actor=request.user)
    return version_out(_version(process, target.version))


@router.post(
    "/processes/{slug}/predict",
    response={200: PredictOut, **_ERRORS},
    summary="Classify a batch of cases with the promoted model",
)
@validation_errors
def predict(request: HttpRequest, slug: str, payload: PredictIn) -> PredictOut:
    process = _process(request, slug)
    if bool(payload.cases) == bool(payload.case_ids):
        raise HttpError(
            422, "send either `cases` (field values) or `case_ids`, not both or neither"
        )
    try:
        version = services.require_promoted(process=process)
    except services.NoPromotedModel as exc:
        raise HttpError(409, str(exc)) from None
    case_ids: list[int | None]
    if payload.case_ids:
        if len(payload.case_ids) > services.MAX_PREDICT_BATCH:
            raise HttpError(422, f"at most {services.MAX_PREDICT_BATCH} case ids per request")
        found = {c.pk: c for c in Case.objects.filter(process=process, pk__in=payload.case_ids)}
        missing = [i for i in payload.case_ids if i not in found]
        if missing:
            raise HttpError(422, f"no case(s) {', '.join(map(str, missing[:10]))} in {slug}")
        rows = [services.case_input(found[i]) for i in payload.case_ids]
        case_ids = list(payload.case_ids)
    else:
        rows = services.clean_prediction_rows(
            process=process, rows=[case.dict(exclude_none=True) for case in payload.cases]
        )
        case_ids = [None] * len(rows)
    try:
        predictions = services.predict_cases(version=version, cases=rows)
        explanations = (
            services.explain_rows(version=version, rows=rows) if payload.explain else None
        )
    except services.ArtifactTampered as exc:
        raise HttpError(409, str(exc)) from None
    return PredictOut(
        model_version=version.version,
        predictions=[
            PredictionOut(
                case_id=case_id,
                label=p.label,
                confidence=p.confidence,
                probabilities=p.probabilities,
                contributions=(
                    [ContributionOut(field=c.source, effect=c.effect) for c in explanations[i]]
                    if explanations is not None
                    else None
                ),
            )
            for i, (case_id, p) in enumerate(zip(case_ids, predictions, strict=True))
        ],
    )
