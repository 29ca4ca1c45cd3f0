"""Artefacts: bytes a payload needs, stored once by SHA-256 and fetched by nodes by hash."""

import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.fabric.errors import NodeConflict
from apps.fabric.models import (
    OPEN_TASK_STATES,
    ComputeNode,
    FabricArtifact,
    FabricTask,
    TaskAttempt,
)


def store_artifact(
    *, content: bytes, name: str = "", created_by: AbstractBaseUser | None = None
) -> FabricArtifact:
    """Keep `content` under its SHA-256 (the same bytes twice are one artefact). Raises
    ValidationError when it is empty or larger than ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES."""
    if not content:
        raise ValidationError("an artefact can't be empty")
    limit = settings.ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES
    if len(content) > limit:
        raise ValidationError(f"an artefact can be at most {limit} bytes, got {len(content)}")
    sha = hashlib.sha256(content).hexdigest()
    found = FabricArtifact.objects.filter(sha256=sha).first()
    if found is not None:
        return found
    user = created_by if created_by is not None and created_by.is_authenticated else None
    try:
        with transaction.atomic():
            return FabricArtifact.objects.create(
                sha256=sha, name=name.strip()[:200], size=len(content), content=content,
                created_by=user,
            )  # fmt: skip
    except IntegrityError:  # stored by someone else meanwhile
        return FabricArtifact.objects.get(sha256=sha)


def store_task_output(
    *, node: ComputeNode, task_id: int, attempt: int, token: str, content: bytes, name: str = ""
) -> FabricArtifact:
    """Keep bytes a node produced for its current attempt of `task_id` (a trained model).
    NodeConflict unless the node holds that very attempt, still open: a node can't fill the
    server with bytes, nor answer for another node's task."""
    holds = TaskAttempt.objects.filter(
        task_id=task_id,
        number=attempt,
        token=token,
        node=node,
        task__node=node,
        task__attempts=attempt,
        task__state__in=OPEN_TASK_STATES,
    ).exists()
    if not holds:
        raise NodeConflict("this node holds no open attempt of that task with that token")
    artifact = store_artifact(content=content, name=name or f"output of task {task_id}")
    FabricArtifact.objects.filter(pk=artifact.pk, produced_by__isnull=True).update(
        produced_by=FabricTask(pk=task_id)
    )
    return artifact
