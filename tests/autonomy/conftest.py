"""A process with a promoted model, fast: the classifier is fitted once per session (the same
learning.fit_classifier the training task runs, on 150 invoices decided by invoice_policy) and
stored in each test's database as a promoted version."""

import hashlib
import zlib

import numpy as np
import pytest
from django.utils import timezone
from threadpoolctl import threadpool_limits

from tests.factories import INVOICE_FIELDS, invoice_policy, make_invoice_rows, make_process


@pytest.fixture(scope="session")
def fitted_model():
    from apps.classifiers import learning
    from apps.classifiers.features import CaseInput

    rows = make_invoice_rows(150, seed=3)
    inputs = [
        CaseInput(r["fields"], r["exception"]["reason"], r["exception"]["fields"]) for r in rows
    ]
    labels = [invoice_policy(r["fields"]["po_status"], r["fields"]["amount"]) for r in rows]
    # One OpenMP thread: on a busy 2-core machine oversubscribed threads make fitting 15x slower.
    with threadpool_limits(1):
        trained = learning.fit_classifier(INVOICE_FIELDS, inputs, labels, min_decisions=50)
    return trained, learning.serialise(trained.pipeline)


def store_promoted_model(process, fitted_model, *, case_ids=(), labels=()):
    """Register the session's fitted model as the process's promoted version."""
    from apps.classifiers import services
    from apps.classifiers.models import ModelArtifact, ModelVersion

    trained, content = fitted_model
    digest = hashlib.sha256(content).hexdigest()
    artifact, _ = ModelArtifact.objects.get_or_create(
        sha256=digest, defaults={"content": content, "size": len(content)}
    )
    ids, labels = list(case_ids), list(labels)
    version = ModelVersion.objects.create(
        process=process,
        version=(process.model_versions.count() + 1),
        algorithm=trained.algorithm,
        params=trained.params,
        labels=trained.labels,
        schema_version=process.schema,
        snapshot_size=len(ids),
        snapshot_hash=services.snapshot_hash(ids, labels),
        snapshot_ids=zlib.compress(np.asarray(ids, dtype=np.int64).tobytes()),
        decided_at_training=len(ids),
        metrics=trained.metrics,
        cross_validation=trained.cross_validation,
        artifact=artifact,
        artifact_sha256=digest,
        trained_at=timezone.now(),
    )
    return services.promote(version=version, actor=None)


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def trained_process(process, fitted_model):
    """A process whose promoted model predicts invoice_policy (about 0.89-0.98 confident)."""
    store_promoted_model(process, fitted_model)
    return process
