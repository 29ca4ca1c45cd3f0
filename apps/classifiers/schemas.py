from datetime import datetime
from typing import Any

from ninja import Field, Schema
from pydantic import ConfigDict


class ErrorOut(Schema):
    detail: str


class TrainingJobOut(Schema):
    id: int
    process: str
    state: str
    progress: int
    stage: str
    fabric_task: int | None = None  # the compute-fabric task training it
    error: str
    trigger: str
    model_version: int | None
    requested_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelVersionOut(Schema):
    version: int
    algorithm: str
    labels: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    cross_validation: list[dict[str, Any]]
    snapshot_size: int
    snapshot_hash: str
    artifact_sha256: str
    schema_version: int
    trained_by: str | None
    trained_at: datetime
    training_seconds: float
    is_promoted: bool
    promoted_by: str | None
    promoted_at: datetime | None
    gpu_only: bool = Field(
        description="Predicts only on GPU nodes of the compute fabric: orchestration items "
        "reaching it are never evaluated in the web request."
    )


class ModelVersionPatchIn(Schema):
    model_config = ConfigDict(extra="forbid")
    gpu_only: bool = Field(description="Keep the version to GPU nodes (true) or any node.")


class ModelListOut(Schema):
    versions: list[ModelVersionOut]
    jobs: list[TrainingJobOut] = Field(description="Recent training jobs, newest first")


class ExceptionIn(Schema):
    model_config = ConfigDict(extra="forbid")
    reason: str = ""
    fields: list[str] = []


class PredictCaseIn(Schema):
    model_config = ConfigDict(extra="forbid")
    fields: dict[str, Any]
    exception: ExceptionIn | None = None


class PredictIn(Schema):
    model_config = ConfigDict(extra="forbid")
    cases: list[PredictCaseIn] = Field(default=[], description="Cases to classify (≤ 10,000)")
    case_ids: list[int] = Field(default=[], description="Or ids of cases of this process")
    explain: bool = Field(default=False, description="Add the top contributing fields (slower)")


class ContributionOut(Schema):
    field: str
    effect: float


class PredictionOut(Schema):
    case_id: int | None = None
    label: str
    confidence: float
    probabilities: dict[str, float]
    contributions: list[ContributionOut] | None = None


class PredictOut(Schema):
    model_version: int
    predictions: list[PredictionOut]
