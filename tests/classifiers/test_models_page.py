"""The models page: train, watch the job, read the metrics, promote, settings."""

from apps.classifiers import services
from apps.classifiers.models import LearningSettings, TrainingJob
from tests.conftest import client_for
from tests.factories import make_decided_cases


def test_the_page_says_why_training_is_not_possible_yet(process, expert):
    response = client_for(expert).get(f"/processes/{process.slug}/models/")
    assert response.status_code == 200
    assert "Cannot train yet: needs at least 50 decided cases" in response.text


def test_training_from_the_page_shows_progress_then_the_version(process, expert, second_expert):
    make_decided_cases(process, second_expert, 100, seed=7)
    client = client_for(expert)
    response = client.post(f"/processes/{process.slug}/models/train", follow=True)
    job = TrainingJob.objects.get()
    assert f"Training job {job.pk}" in response.text
    assert 'hx-trigger="every 1s"' in response.text
    services.run_training_job(job.pk)
    fragment = client.get(
        f"/processes/{process.slug}/models/jobs/{job.pk}", headers={"HX-Request": "true"}
    )
    assert fragment.headers["HX-Refresh"] == "true"
    assert "Version 1" in fragment.text
    page = client.get(f"/processes/{process.slug}/models/")
    assert 'id="model-versions"' in page.text
    assert "v1" in page.text
    detail = client.get(f"/processes/{process.slug}/models/1/")
    assert detail.status_code == 200
    assert "Confusion matrix" in detail.text
    version = services.promoted_version(process=process)
    assert version is None  # training never promotes by itself unless asked to


def test_managers_promote_from_the_page_and_change_settings(trained_process, manager, expert):
    slug = trained_process.slug
    job = services.run_training_job(
        services.start_training(process=trained_process, requested_by=expert).pk
    )
    assert client_for(expert).post(f"/processes/{slug}/models/2/promote").status_code == 403
    response = client_for(manager).post(f"/processes/{slug}/models/2/promote", follow=True)
    assert "Version 2 now suggests labels" in response.text
    assert services.promoted_version(process=trained_process).pk == job.model_version.pk
    saved = client_for(manager).post(
        f"/processes/{slug}/models/",
        {"min_decisions": 80, "retrain_after": 0, "label_error_confidence": 0.95},
    )
    assert saved.status_code == 302
    settings = LearningSettings.objects.get(process=trained_process)
    assert (settings.min_decisions, settings.retrain_after) == (80, 0)
    refused = client_for(manager).post(
        f"/processes/{slug}/models/",
        {"min_decisions": 3, "retrain_after": 0, "label_error_confidence": 0.95},
    )
    assert refused.status_code == 422
    assert "at least 20" in refused.text
    assert client_for(expert).post(f"/processes/{slug}/models/", {}).status_code == 403
