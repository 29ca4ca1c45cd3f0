"""Artefacts: bytes a payload needs, stored once by SHA-256 and fetched by nodes by hash."""

import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.fabric.models import FabricArtifact


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
