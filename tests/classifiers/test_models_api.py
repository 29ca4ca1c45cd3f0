"""The classifiers API: train, follow the job, list, promote, roll back, predict."""

from apps.classifiers import services
from apps.classifiers.models import TrainingJob
from tests.conftest import client_for
from tests.factories import make_decided_cases, make_invoice_rows


def _train(client, process):
    return client.post(f"/api/v1/processes/{process.slug}/models", content_type="application/json")


def test_training_returns_a_job_that_the_task_completes(process, expert, second_expert):
    make_decided_cases(process, second_expert, 120, seed=5)
    client = client_for(expert)
    response = _train(client, process)
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["state"] == "queued"
    assert _train(client, process).status_code == 409  # one training at a time
    services.run_training_job(job["id"])
    followed = client.get(f"/api/v1/processes/{process.slug}/models/jobs/{job['id']}").json()
    assert followed["state"] == "succeeded"
    assert followed["progress"] == 100
    assert followed["model_version"] == 1
    listed = client.get(f"/api/v1/processes/{process.slug}/models").json()
    [version] = listed["versions"]
    assert version["trained_by"] == "erin"
    assert version["is_promoted"] is False
    assert 0 < version["metrics"]["macro_f1"] <= 1
    assert version["metrics"]["confusion"]["labels"] == version["labels"]


def test_training_without_enough_decisions_is_a_clear_422(process, expert, second_expert):
    make_decided_cases(process, second_expert, 12, seed=6)
    response = _train(client_for(expert), process)
    assert response.status_code == 422
    assert "at least 50 decided cases" in response.json()["detail"]
    assert not TrainingJob.objects.exists()


def test_staff_cannot_train_and_experts_cannot_promote(trained_process, staff, expert):
    assert _train(client_for(staff), trained_process).status_code == 403
    response = client_for(expert).post(f"/api/v1/processes/{trained_process.slug}/models/1/promote")
    assert response.status_code == 403


def test_promote_and_roll_back_through_the_api(trained_process, manager):
    client = client_for(manager)
    job = services.run_training_job(
        services.start_training(process=trained_process, requested_by=manager).pk
    )
    slug = trained_process.slug
    promoted = client.post(f"/api/v1/processes/{slug}/models/{job.model_version.version}/promote")
    assert promoted.status_code == 200
    assert promoted.json()["is_promoted"] is True
    assert promoted.json()["promoted_by"] == "maya"
    back = client.post(f"/api/v1/processes/{slug}/models/rollback")
    assert back.status_code == 200
    assert back.json()["version"] == 1
    versions = client.get(f"/api/v1/processes/{slug}/models").json()["versions"]
    assert [v["version"] for v in versions if v["is_promoted"]] == [1]


def test_batch_prediction_with_explanations(trained_process, expert):
    rows = make_invoice_rows(3, seed=11)
    rows[0]["fields"]["po_status"] = "mismatch"
    cases = [{"fields": r["fields"], "exception": r["exception"]} for r in rows]
    response = client_for(expert).post(
        f"/api/v1/processes/{trained_process.slug}/predict",
        {"cases": cases, "explain": True},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model_version"] == 1
    assert len(body["predictions"]) == 3
    first = body["predictions"][0]
    assert first["label"] == "reject"
    assert first["confidence"] == max(first["probabilities"].values())
    assert "po_status" in [c["field"] for c in first["contributions"]]


def test_prediction_by_case_ids(trained_process, expert):
    from apps.cases.models import Case

    ids = list(Case.objects.filter(process=trained_process).values_list("pk", flat=True)[:5])
    response = client_for(expert).post(
        f"/api/v1/processes/{trained_process.slug}/predict",
        {"case_ids": ids},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert [p["case_id"] for p in response.json()["predictions"]] == ids


def test_prediction_requests_with_missing_or_extra_fields_are_422(trained_process, expert):
    client = client_for(expert)
    url = f"/api/v1/processes/{trained_process.slug}/predict"
    missing = client.post(
        url, {"cases": [{"fields": {"amount": 10}}]}, content_type="application/json"
    )
    assert missing.status_code == 422
    assert "cases[0]: vendor: is required" in missing.json()["detail"]
    extra = client.post(
        url,
        {"cases": [{"fields": {"vendor": "A", "amount": 1, "colour": "red"}}]},
        content_type="application/json",
    )
    assert extra.status_code == 422
    assert "colour: unknown field" in extra.json()["detail"]
    extra_key = client.post(
        url,
        {"cases": [{"fields": {"vendor": "A", "amount": 1}, "priority": 3}]},
        content_type="application/json",
    )
    assert extra_key.status_code == 422
    assert "priority" in extra_key.json()["detail"]
    wrong_type = client.post(
        url,
        {"cases": [{"fields": {"vendor": "A", "amount": "lots"}}]},
        content_type="application/json",
    )
    assert wrong_type.status_code == 422
    assert "amount: expected a number" in wrong_type.json()["detail"]


def test_prediction_without_a_promoted_model_is_409(process, expert):
    response = client_for(expert).post(
        f"/api/v1/processes/{process.slug}/predict",
        {"cases": [{"fields": {"vendor": "A", "amount": 1}}]},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert "no promoted model" in response.json()["detail"]


def test_prediction_with_a_tampered_artifact_is_refused(trained_process, expert):
    from apps.classifiers.models import ModelArtifact

    services.forget_loaded_models()
    ModelArtifact.objects.update(content=b"not the model")
    response = client_for(expert).post(
        f"/api/v1/processes/{trained_process.slug}/predict",
        {"cases": [{"fields": {"vendor": "A", "amount": 1}}]},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert "SHA-256" in response.json()["detail"]
