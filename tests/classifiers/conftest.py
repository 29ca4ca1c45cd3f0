import pytest

from tests.factories import make_decided_cases, make_process


@pytest.fixture
def process(team):
    return make_process(team)


@pytest.fixture
def trained_process(process, second_expert):
    """A process with 150 decided invoices and a promoted model trained on them."""
    from apps.classifiers import services

    make_decided_cases(process, second_expert, 150, seed=3)
    job = services.start_training(process=process, requested_by=second_expert)
    job = services.run_training_job(job.pk)
    assert job.state == "succeeded", job.error
    services.promote(version=job.model_version, actor=second_expert)
    return process
