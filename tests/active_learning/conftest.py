import pytest

from tests.factories import make_decided_cases, make_process

# Training is deterministic (fixed seeds) and the fixture's data is the same in every test, so
# the fitted pipeline is computed once per session; everything else (storing, promoting,
# loading with the checksum) runs for real in each test.
_fitted: dict[str, object] = {}


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def trained_process(process, second_expert, monkeypatch):
    """A process with 150 decided invoices (labelled by eli) and a promoted model trained on them."""
    from apps.classifiers import learning, services

    fit = learning.fit_classifier

    def fit_once(specs, rows, labels, **kwargs):  # type: ignore[no-untyped-def]
        key = repr(
            (specs, [(r.fields, r.exception_reason, r.exception_fields) for r in rows], labels)
        )
        if key not in _fitted:
            _fitted[key] = fit(specs, rows, labels, **kwargs)
        return _fitted[key]

    monkeypatch.setattr(learning, "fit_classifier", fit_once)
    make_decided_cases(process, second_expert, 150, seed=3)
    job = services.start_training(process=process, requested_by=second_expert)
    job = services.run_training_job(job.pk)
    assert job.state == "succeeded", job.error
    services.promote(version=job.model_version, actor=second_expert)
    services.forget_loaded_models()
    # Experts see a model's suggestions from autonomy level 2 (suggest) on.
    from apps.autonomy.models import Level, ProcessAutonomy

    ProcessAutonomy.objects.update_or_create(process=process, defaults={"level": Level.SUGGEST})
    return process
