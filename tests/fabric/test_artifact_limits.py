"""Artefact uploads are bounded by ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES, not by the smaller
DATA_UPLOAD_MAX_MEMORY_SIZE meant for JSON bodies; beyond their own limit they are a JSON 413."""

from django.test import override_settings

from apps.fabric.models import FabricArtifact, TaskAttempt
from apps.fabric.services import dispatch
from tests.api.conftest import token_client
from tests.fabric.conftest import node_client

LIMITS = {
    "DATA_UPLOAD_MAX_MEMORY_SIZE": 10_000,
    "FILE_UPLOAD_MAX_MEMORY_SIZE": 10_000,
    "ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES": 100_000,
}
BETWEEN = bytes(range(256)) * 200  # 51,200 bytes: over the first two, under the third


@override_settings(**LIMITS)
def test_an_admin_uploads_an_artefact_between_the_two_limits(admin):
    response = token_client(admin).post(
        "/api/v1/fabric/artifacts?name=model.bin", BETWEEN, content_type="application/octet-stream"
    )
    assert response.status_code == 201, response.content
    assert bytes(FabricArtifact.objects.get().content) == BETWEEN


@override_settings(**LIMITS)
def test_a_node_uploads_a_task_output_between_the_two_limits(ready_node):
    node, credential = ready_node("a")
    task = dispatch.submit_task(kind="probe")
    attempt = TaskAttempt.objects.get(task=task)
    response = node_client(node, credential).post(
        f"/api/v1/fabric/tasks/{task.pk}/artifacts?attempt=1&token={attempt.token}&name=model",
        BETWEEN,
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.content
    assert FabricArtifact.objects.get().size == len(BETWEEN)


@override_settings(**LIMITS)
def test_an_artefact_over_its_own_limit_is_a_json_413(admin):
    response = token_client(admin).post(
        "/api/v1/fabric/artifacts", b"x" * 100_001, content_type="application/octet-stream"
    )
    assert response.status_code == 413
    assert response.json() == {
        "detail": "the body is larger than 100,000 bytes (ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES)"
    }
    assert not FabricArtifact.objects.exists()
