"""Admin pages for work: pending tasks with reasons, a task's placement, a node's tasks,
node-hours; and /metrics."""

from datetime import timedelta

from django.test import Client

from apps.fabric.models import AttemptState, ComputeNode, FabricTask, TaskAttempt
from apps.fabric.services import dispatch, results
from tests.conftest import client_for


def test_only_admins_see_task_pages(ready_node, admin, manager):
    ready_node()
    task = dispatch.submit_task(kind="probe")
    for url in ("/fabric/tasks/", f"/fabric/tasks/{task.pk}/"):
        assert client_for(manager).get(url).status_code == 403
        assert client_for(admin).get(url).status_code == 200
    assert Client().get("/fabric/tasks/").status_code == 302


def test_pending_tasks_say_why_on_the_fleet_and_task_list(ready_node, admin):
    ready_node("cpu-1")
    task = dispatch.submit_task(kind="probe", requirements={"gpus": 1})
    client = client_for(admin)
    fleet = client.get("/fabric/").content.decode()
    assert "Waiting for a node" in fleet
    assert "no eligible node: cpu-1: needs 1 GPU, has 0" in fleet
    listing = client.get("/fabric/tasks/?state=pending").content.decode()
    assert f"#{task.pk}" in listing
    assert "needs 1 GPU, has 0" in listing
    rows = client.get("/fabric/tasks/?state=pending", HTTP_HX_REQUEST="true").content.decode()
    assert rows.lstrip().startswith('<tbody id="task-rows"')
    assert "<html" not in rows


def test_the_task_page_shows_the_placement_and_the_attempts(ready_node, admin):
    _edge, _ = ready_node("edge-1", node_class="edge")
    ready_node("gpu-1", declared={"gpus": 1})
    task = dispatch.submit_task(kind="probe", payload={"seconds": 1})
    page = client_for(admin).get(f"/fabric/tasks/{task.pk}/").content.decode()
    assert "Why this node" in page
    assert "placed on edge-1" in page
    assert "keeps_gpu_free -50" in page  # the GPU node's score, explained
    assert "Sent to the node" in page  # the attempt
    assert "&quot;seconds&quot;: 1" in page  # the payload, escaped


def test_the_node_page_shows_its_current_work_and_sends_a_probe(ready_node, admin):
    node, _ = ready_node("box")
    task = dispatch.submit_task(kind="probe", payload={"seconds": 30})
    client = client_for(admin)
    page = client.get(f"/fabric/nodes/{node.pk}/").content.decode()
    assert f"#{task.pk}" in page
    assert f"consumes <code>node.{node.pk}</code>" in page
    response = client.post(f"/fabric/nodes/{node.pk}/probe")
    probe = FabricTask.objects.exclude(pk=task.pk).get()
    assert response.status_code == 302
    assert response["Location"] == f"/fabric/tasks/{probe.pk}/"
    assert (probe.kind, probe.node_id, probe.state) == ("probe", node.pk, "placed")

    ComputeNode.objects.filter(pk=node.pk).update(worker_ready=False)
    refused = client.post(f"/fabric/nodes/{node.pk}/probe")
    assert refused.status_code == 409
    assert "runs no worker yet" in refused.content.decode()


def test_node_hours_are_counted_by_class_and_by_owner(ready_node, admin):
    node, _ = ready_node("edge-1", node_class="edge")
    task = dispatch.submit_task(kind="probe")
    attempt = TaskAttempt.objects.get(task=task)
    results.record_results(
        node=node,
        results=[results.ResultIn(task_id=task.pk, attempt=1, token=attempt.token, ok=True,
                                  duration_seconds=5400)],
    )  # fmt: skip
    fleet = client_for(admin).get("/fabric/").content.decode()
    assert "Dormant power activated" in fleet
    assert "<td>edge</td><td>1.5 h</td><td>1.5 h</td><td>1</td>" in fleet
    assert "<td>ada</td><td>1.5 h</td>" in fleet


def test_a_short_task_reads_in_seconds_not_as_zero_hours(ready_node, admin):
    node, _ = ready_node("edge-1", node_class="edge")
    task = dispatch.submit_task(kind="probe")
    attempt = TaskAttempt.objects.get(task=task)
    results.record_results(
        node=node,
        results=[results.ResultIn(task_id=task.pk, attempt=1, token=attempt.token, ok=True,
                                  duration_seconds=2)],
    )  # fmt: skip
    fleet = client_for(admin).get("/fabric/").content.decode()
    assert "<td>edge</td><td>2 s</td><td>2 s</td><td>1</td>" in fleet
    assert "0.00 h" not in fleet


def test_metrics_in_prometheus_text_format(ready_node, settings):
    settings.DEBUG = True  # no token: open while DEBUG is on
    _node, _ = ready_node("edge-1", node_class="edge")
    task = dispatch.submit_task(kind="probe")
    dispatch.submit_task(kind="probe", requirements={"gpus": 2})
    FabricTask.objects.filter(pk=task.pk).update(
        started_at=task.created_at + timedelta(milliseconds=40)
    )
    TaskAttempt.objects.filter(task=task).update(state=AttemptState.RUNNING)
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = response.content.decode().splitlines()
    assert 'orchcap_fabric_nodes{state="online",node_class="edge"} 1' in lines
    assert 'orchcap_fabric_tasks{state="pending"} 1' in lines
    assert 'orchcap_fabric_tasks{state="placed"} 1' in lines
    assert 'orchcap_fabric_slots{kind="leased"} 1' in lines
    assert 'orchcap_fabric_dispatch_latency_seconds_bucket{le="0.025"} 0' in lines
    assert 'orchcap_fabric_dispatch_latency_seconds_bucket{le="0.05"} 1' in lines
    assert "orchcap_fabric_dispatch_latency_seconds_count 1" in lines
    assert "# TYPE orchcap_fabric_dispatch_latency_seconds histogram" in lines
    assert 'orchcap_fabric_attempts_total{state="running"} 1' in lines


def test_metrics_need_the_token_when_one_is_set_and_are_closed_in_production(db, settings):
    settings.ORCHCAP_METRICS_TOKEN = "s3cret-metrics"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    assert ok.status_code == 200
    settings.ORCHCAP_METRICS_TOKEN = ""
    settings.DEBUG = False
    closed = Client().get("/metrics")
    assert closed.status_code == 403
    assert b"ORCHCAP_METRICS_TOKEN" in closed.content
