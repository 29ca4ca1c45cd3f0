"""A stand-in classifier with hand-set answers, so a comparison can be counted by hand: it reads
the item's `note` field, e.g. "champ=approve@0.95 chall=reject@0.6", and answers its own part
(by `name`) with that label and confidence. It is pickled into a real ModelArtifact and loaded,
checksummed and asked through the same code as a trained model."""

import hashlib
import zlib

import numpy as np
from django.utils import timezone

LABELS = ["approve", "reject", "request_info"]


class TableModel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.classes_ = np.array(LABELS)

    def predict_proba(self, rows) -> np.ndarray:
        out = []
        for row in rows:
            parts = dict(part.split("=") for part in str(row.fields.get("note", "")).split())
            label, confidence = parts[self.name].split("@")
            rest = (1 - float(confidence)) / (len(LABELS) - 1)
            out.append([float(confidence) if c == label else rest for c in LABELS])
        return np.array(out)


def store_table_model(process, name: str):
    """Register TableModel(name) as the process's next model version (not promoted)."""
    from apps.classifiers import learning, services
    from apps.classifiers.models import ModelArtifact, ModelVersion

    content = learning.serialise(TableModel(name))
    digest = hashlib.sha256(content).hexdigest()
    artifact, _ = ModelArtifact.objects.get_or_create(
        sha256=digest, defaults={"content": content, "size": len(content)}
    )
    return ModelVersion.objects.create(
        process=process,
        version=process.model_versions.count() + 1,
        algorithm="table",
        params={"name": name},
        labels=LABELS,
        schema_version=process.schema,
        snapshot_size=0,
        snapshot_hash=services.snapshot_hash([], []),
        snapshot_ids=zlib.compress(np.asarray([], dtype=np.int64).tobytes()),
        metrics={},
        artifact=artifact,
        artifact_sha256=digest,
        trained_at=timezone.now(),
    )


def note(champ: str, chall: str) -> str:
    return f"champ={champ} chall={chall}"
