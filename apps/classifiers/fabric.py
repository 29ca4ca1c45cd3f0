"""Classifier work on the compute fabric: the control plane's side.

Training: the job's decided cases go out as a dataset artefact (zlib JSON, node_work.py), a
fabric task `train_classifier` is placed on a node (`local`, the control plane's own worker, or an
enrolled machine), the node uploads the fitted model as an artefact of its attempt, and the
handler below verifies and files it in the registry, then deletes the dataset (decisions don't
linger on the fabric). Batch prediction: open cases go out in chunks with the promoted model's
artefact; the handler writes each case's uncertainty for the queue.

Where the work may run: ORCHCAP_LEARNING_REQUIREMENTS (fabric requirements as JSON, e.g.
`{"labels": {"site": "hq"}}` to keep case data on the site's machines); any node by default.
"""

import hashlib
import json
import logging
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Process
from apps.classifiers import node_work, services
from apps.classifiers.models import ModelArtifact, ModelVersion, TrainingJob
from apps.fabric.models import FabricArtifact, FabricTask, FabricTaskState
from apps.fabric.services import dispatch
from apps.fabric.services.artifacts import store_artifact
from apps.fabric.services.completion import completion_handler

log = logging.getLogger(__name__)
TRAINING = "classifiers.training"
UNCERTAINTY = "classifiers.uncertainty"
PREDICT_CHUNK = 2_000


def learning_requirements() -> dict[str, Any]:
    raw = settings.ORCHCAP_LEARNING_REQUIREMENTS
    try:
        value = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ImproperlyConfigured(f"ORCHCAP_LEARNING_REQUIREMENTS is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured("ORCHCAP_LEARNING_REQUIREMENTS must be a JSON object")
    return value


# --- training ----------------------------------------------------------------------------------


def send_training_job(job_id: int) -> TrainingJob | None:
    """The training task's body: claim the job, send its data to the fabric. The job stays
    running until the fabric task's result is filed (or fails). None when the job is gone (its
    process was deleted, or the request that made it rolled back after the message left)."""
    job = services.claim_training_job(job_id)
    if job is None:  # claimed before (a redelivered message), or gone
        return TrainingJob.objects.filter(pk=job_id).first()
    try:
        data = services.training_data(job)
        content = node_work.encode_dataset(
            specs=job.process.schema.fields,
            ids=data.ids,
            rows=data.rows,
            labels=data.labels,
            min_decisions=data.min_decisions,
        )
        dataset = store_artifact(content=content, name=f"training data of job {job.pk}")
        [task] = dispatch.submit_tasks(
            specs=[
                dispatch.TaskSpec(
                    kind="call",
                    payload={"function": "train_classifier", "args": {"dataset": dataset.sha256}},
                    requirements=learning_requirements(),
                    artifacts=(dataset.sha256,),
                    idempotency_key=f"classifiers-training-{job.pk}",
                    on_done=TRAINING,
                )
            ]
        )
    except Exception as exc:
        log.exception("training job %s could not be sent to the fabric", job_id)
        return services.fail_training_job(job, f"could not send the training to the fabric: {exc}")
    TrainingJob.objects.filter(pk=job.pk).update(
        fabric_task=task,
        heartbeat_at=timezone.now(),
        progress=10,
        stage=f"sent {len(data.ids):,} decided cases to the compute fabric",
    )
    job.refresh_from_db()
    return job


def _forget_dataset(task: FabricTask) -> None:
    """Training data leaves the fabric once used (unless another task still names it)."""
    for sha in task.artifacts:
        still_needed = (
            FabricTask.objects.filter(artifacts__contains=[sha])
            .exclude(pk=task.pk)
            .exclude(state__in=[FabricTaskState.DONE, FabricTaskState.FAILED])
            .exists()
        )
        if not still_needed:
            FabricArtifact.objects.filter(sha256=sha, produced_by__isnull=True).delete()


@completion_handler(TRAINING)
def file_trained_model(task: FabricTask) -> None:
    job = TrainingJob.objects.select_related("process__schema").filter(fabric_task=task).first()
    if job is None or job.state != TrainingJob.State.RUNNING:
        return
    try:
        if task.state == FabricTaskState.FAILED:
            error = task.error
            reason = error.split(": ", 1)[-1] if "TrainingRefused" in error else error
            services.fail_training_job(job, f"training failed on the fabric: {reason}")
            return
        try:
            with transaction.atomic():
                version = _file(job, task)
        except Exception as exc:
            log.exception("training job %s: the model from task %s was refused", job.pk, task.pk)
            services.fail_training_job(job, f"the trained model was refused: {exc}")
            return
    finally:
        _forget_dataset(task)
    services.finish_training_job(job, version)


def _stored(sha256: object, what: str) -> bytes:
    content = FabricArtifact.objects.filter(sha256=sha256).values_list("content", flat=True).first()
    if content is None:
        raise ValueError(f"the {what} {str(sha256)[:12]}… is not stored")
    content = bytes(content)
    if hashlib.sha256(content).hexdigest() != sha256:
        raise ValueError(f"the {what} does not match its SHA-256")
    return content


def _file(job: TrainingJob, task: FabricTask) -> ModelVersion:
    from apps.classifiers import learning  # scikit-learn: loaded where a model is filed

    result = task.result or {}
    content = _stored(result.get("model"), "node's model artefact")
    pipeline = learning.deserialise(content)  # refuse a model that would not load
    if sorted(pipeline.classes_) != sorted(result.get("labels") or []):
        raise ValueError("the node's model predicts other labels than it reported")
    # The snapshot is what was sent, not what is decided now (decisions go on meanwhile).
    [dataset_sha] = task.artifacts
    dataset = node_work.decode_dataset(_stored(dataset_sha, "training dataset"))
    ids, labels = list(dataset["ids"]), list(dataset["labels"])
    if len(ids) != result.get("rows"):
        raise ValueError(f"the node trained on {result.get('rows')} rows, {len(ids)} were sent")
    trained = learning.TrainedModel(
        pipeline=pipeline,
        algorithm=str(result.get("algorithm", "")),
        params=result.get("params") or {},
        labels=list(result.get("labels") or []),
        metrics=result.get("metrics") or {},
        cross_validation=result.get("cross_validation") or [],
        dropped_labels=result.get("dropped_labels") or {},
    )
    return services.store_version(
        job=job,
        content=content,
        trained=trained,
        ids=ids,
        labels=labels,
        seconds=float(result.get("seconds") or 0),
    )


# --- batch prediction: the queue's uncertainty ------------------------------------------------


def model_artifact_on_fabric(version: ModelVersion) -> str:
    """The promoted model's bytes as a fabric artefact (stored once by SHA-256)."""
    if not FabricArtifact.objects.filter(sha256=version.artifact_sha256).exists():
        content = bytes(
            ModelArtifact.objects.values_list("content", flat=True).get(
                sha256=version.artifact_sha256
            )
        )
        store_artifact(content=content, name=f"{version.process.slug} model v{version.version}")
    return version.artifact_sha256


def send_scoring(
    *, process: Process, case_ids: list[int] | None = None, only_unscored: bool = False
) -> list[FabricTask]:
    """Score open cases with the promoted model on the fabric, PREDICT_CHUNK cases per task;
    the handler stores their uncertainty. Returns the tasks (none without a promoted model)."""
    version = services.promoted_version(process=process)
    if version is None:
        return []
    cases = Case.objects.filter(process=process, status=CaseStatus.OPEN)
    if case_ids is not None:
        cases = cases.filter(pk__in=case_ids)
    if only_unscored:
        cases = cases.filter(uncertainty__isnull=True)
    rows = cases.order_by("pk").values_list("pk", "fields", "exception_reason", "exception_fields")
    model = model_artifact_on_fabric(version)
    specs: list[dispatch.TaskSpec] = []
    chunk: list[tuple] = []

    def flush() -> None:
        specs.append(
            dispatch.TaskSpec(
                kind="call",
                payload={
                    "function": "predict_batch",
                    "args": {
                        "model": model,
                        "ids": [r[0] for r in chunk],
                        "rows": [[r[1], r[2] or "", list(r[3] or [])] for r in chunk],
                    },
                },
                requirements=learning_requirements(),
                artifacts=(model,),
                on_done=UNCERTAINTY,
            )
        )

    for row in rows.iterator(chunk_size=PREDICT_CHUNK):
        chunk.append(row)
        if len(chunk) == PREDICT_CHUNK:
            flush()
            chunk = []
    if chunk:
        flush()
    if not specs:
        return []
    tasks = dispatch.submit_tasks(specs=specs)
    if case_ids is None and not only_unscored:
        Process.objects.filter(pk=process.pk).update(uncertainty_model_id=version.pk)
    return tasks


def refresh_uncertainty() -> dict[str, int]:
    """Every process with a promoted model: all its open cases scored again when the promoted
    version changed since the last full scoring, else only those still unscored. Skipped while
    earlier scoring is still out on the fabric (it would be sent twice). {slug: tasks sent}."""
    if FabricTask.objects.filter(on_done=UNCERTAINTY, handled_at__isnull=True).exists():
        return {}
    sent: dict[str, int] = {}
    promoted = ModelVersion.objects.filter(is_promoted=True).select_related("process")
    for version in promoted.defer("snapshot_ids"):
        process = version.process
        stale = process.uncertainty_model_id != version.pk
        sent[process.slug] = len(send_scoring(process=process, only_unscored=not stale))
    return sent


@completion_handler(UNCERTAINTY)
def store_uncertainty(task: FabricTask) -> None:
    from apps.classifiers.active import uncertainty_of, write_uncertainty

    if task.state != FabricTaskState.DONE:
        log.warning("scoring task %s failed: %s", task.pk, task.error[:200])
        return
    result = task.result or {}
    classes, ids = result.get("classes") or [], result.get("ids") or []
    values = [
        uncertainty_of(dict(zip(classes, row, strict=True)))
        for row in result.get("probabilities") or []
    ]
    if len(values) != len(ids):
        raise ValueError(f"scoring task {task.pk}: {len(ids)} ids but {len(values)} scores")
    started = time.perf_counter()
    changed = write_uncertainty(ids, values)
    log.debug(
        "task %s: %d uncertainties written in %.3f s",
        task.pk,
        changed,
        time.perf_counter() - started,
    )
