"""The orchestration pages: the list per team, an orchestration's page (versions, stage log,
diff against live), its stage, rollback and new-draft buttons, and who may see what."""

from django.urls import reverse

from apps.orchestrations.models import Orchestration, OrchestrationVersion
from apps.orchestrations.services import change_stage, create_version
from tests.conftest import client_for


def detail_url(orchestration):
    return reverse("orchestration_detail", args=[orchestration.slug])


def test_a_manager_adds_an_orchestration_from_the_list(manager, process):
    client = client_for(manager)
    answer = client.post(
        reverse("orchestration_list"),
        {"process": process.pk, "name": "Invoice flow", "slug": "invoice-flow"},
    )

    assert answer.status_code == 302
    orchestration = Orchestration.objects.get(slug="invoice-flow")
    assert answer["Location"] == detail_url(orchestration)
    page = client.get(reverse("orchestration_list"))
    assert b"Invoice flow" in page.content
    again = client.post(
        reverse("orchestration_list"), {"process": process.pk, "name": "x", "slug": "invoice-flow"}
    )
    assert again.status_code == 422
    assert b"already exists" in again.content


def test_the_page_shows_versions_stage_log_and_the_diff_against_live(
    manager, orchestration, connector
):
    first = create_version(orchestration=orchestration, actor=manager, values={})
    change_stage(version=first, stage="live", actor=manager, reason="first go")
    create_version(
        orchestration=orchestration, actor=manager, values={"connectors": [connector.pk]}
    )
    client = client_for(manager)

    page = client.get(detail_url(orchestration))
    listed = client.get(reverse("orchestration_list"))
    fragment = client.get(
        detail_url(orchestration),
        {"from": 2, "to": 1},
        headers={"HX-Request": "true", "HX-Target": "version-diff"},
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert "Changes from v1 to v2" in html
    assert f"connector {connector.pk}" in html
    assert "first go" in html
    assert "Make live" in html
    assert b"v1 live" in listed.content
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert b"Changes from v2 to v1" in fragment.content


def test_stage_and_rollback_buttons_change_the_stage(manager, orchestration):
    first = create_version(orchestration=orchestration, actor=manager, values={})
    create_version(orchestration=orchestration, actor=manager, values={"sla_minutes": 30})
    client = client_for(manager)
    stage_url = reverse("orchestration_stage", args=[orchestration.slug, 1])

    client.post(stage_url, {"stage": "live"})
    client.post(reverse("orchestration_stage", args=[orchestration.slug, 2]), {"stage": "live"})
    refused = client.post(stage_url, {"stage": "canary", "canary_share": "1"}, follow=True)
    client.post(reverse("orchestration_rollback", args=[orchestration.slug]), {"to": 1, "reason": "SLA too short"})  # fmt: skip

    assert b"Stage not changed" in refused.content
    stages = dict(OrchestrationVersion.objects.values_list("number", "stage"))
    assert stages == {1: "live", 2: "retired"}
    first.refresh_from_db()
    assert first.stage_changes.filter(rollback=True, reason="SLA too short").exists()
    client.post(
        reverse("orchestration_new_version", args=[orchestration.slug]), {"from_version": 2}
    )
    assert OrchestrationVersion.objects.get(number=3).sla_minutes == 30


def test_experts_read_without_buttons_and_others_are_kept_out(
    expert, staff, outsider, manager, orchestration
):
    create_version(orchestration=orchestration, actor=manager, values={})
    as_expert = client_for(expert)

    page = as_expert.get(detail_url(orchestration))
    post = as_expert.post(reverse("orchestration_stage", args=[orchestration.slug, 1]), {"stage": "live"})  # fmt: skip

    assert page.status_code == 200
    assert b"Make live" not in page.content
    assert post.status_code == 403
    assert as_expert.get(reverse("orchestration_list")).status_code == 200
    assert client_for(staff).get(reverse("orchestration_list")).status_code == 403
    assert client_for(outsider).get(detail_url(orchestration)).status_code == 404
    assert OrchestrationVersion.objects.get(number=1).stage == "draft"
