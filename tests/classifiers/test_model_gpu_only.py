"""GPU-only model versions: shown on the models pages and in the API, changed by the team's
managers and admins (experts 403, outsiders 404), each change in the registry's history; an
orchestration using the model then sends its items to GPU nodes."""

import pytest
from django.urls import reverse

from apps.classifiers.models import ModelVersion, RegistryEvent
from tests.conftest import client_for
from tests.orchestrations.table_model import store_table_model


@pytest.fixture
def trained_model(process):
    # A stand-in model stored as a real version (no training: these tests are about placement).
    return store_table_model(process, "champ")


def api_url(model):
    return f"/api/v1/processes/{model.process.slug}/models/{model.version}"


def test_a_manager_marks_a_version_gpu_only_on_its_page(manager, trained_model):
    model = trained_model
    client = client_for(manager)
    url = reverse("model_gpu_only", args=[model.process.slug, model.version])
    detail = reverse("model_detail", args=[model.process.slug, model.version])

    before = client.get(detail).content.decode()
    answer = client.post(url, {"gpu_only": "on"})
    after = client.get(detail).content.decode()
    listed = client.get(reverse("model_list", args=[model.process.slug])).content.decode()

    assert "Run only on GPU nodes" in before
    assert answer.status_code == 302
    assert ModelVersion.objects.get(pk=model.pk).gpu_only is True
    assert "GPU only" in after
    assert "Let any node run it" in after
    assert "GPU only" in listed
    event = RegistryEvent.objects.get(model_version=model, kind="gpu_only")
    assert event.actor == manager
    # Back to any node: a second event; the same value again records nothing.
    client.post(url, {"gpu_only": "off"})
    client.post(url, {"gpu_only": "off"})
    assert ModelVersion.objects.get(pk=model.pk).gpu_only is False
    assert RegistryEvent.objects.filter(model_version=model, kind="any_node").count() == 1


def test_the_api_shows_and_sets_gpu_only_for_managers(manager, expert, trained_model):
    model = trained_model

    shown = client_for(expert).get(api_url(model))
    refused = client_for(expert).patch(
        api_url(model), {"gpu_only": True}, content_type="application/json"
    )
    changed = client_for(manager).patch(
        api_url(model), {"gpu_only": True}, content_type="application/json"
    )
    bad = client_for(manager).patch(
        api_url(model), {"gpu_only": "sometimes"}, content_type="application/json"
    )

    assert shown.json()["gpu_only"] is False
    assert refused.status_code == 403
    assert "managers and admins" in refused.json()["detail"]
    assert changed.status_code == 200
    assert changed.json()["gpu_only"] is True
    assert bad.status_code == 422
    assert ModelVersion.objects.get(pk=model.pk).gpu_only is True


def test_experts_get_no_toggle_and_outsiders_404(expert, outsider, trained_model):
    model = trained_model
    detail = reverse("model_detail", args=[model.process.slug, model.version])
    url = reverse("model_gpu_only", args=[model.process.slug, model.version])

    page = client_for(expert).get(detail).content.decode()

    assert "Where it runs" in page
    assert "Run only on GPU nodes" not in page
    assert client_for(expert).post(url, {"gpu_only": "on"}).status_code == 403
    assert client_for(outsider).post(url, {"gpu_only": "on"}).status_code == 404
    assert (
        client_for(outsider)
        .patch(api_url(model), {"gpu_only": True}, content_type="application/json")
        .status_code
        == 404
    )
    assert ModelVersion.objects.get(pk=model.pk).gpu_only is False
