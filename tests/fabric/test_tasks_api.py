"""The task API (admins send and read tasks), results and artefacts (nodes)."""

import hashlib

from django.test import Client

from apps.fabric.models import FabricTask, TaskAttempt
from apps.fabric.services import dispatch
from apps.people import services as people_services
from tests.conftest import client_for
from tests.fabric.conftest import node_client


def admin_api(admin) -> Client:
    _, raw = people_services.create_api_token(user=admin, name="ops")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_an_admin_sends_a_probe_and_reads_it_back(ready_node, admin):
    node, credential = ready_node("gpu-1", declared={"gpus": 1})
    api = admin_api(admin)
    response = api.post(
        "/api/v1/fabric/tasks",
        {"kind": "probe", "requirements": {"gpus": 1}, "seconds": 2},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["state"] == "placed"
    assert created["node"] == {"id": node.pk, "name": "gpu-1"}
    assert created["reason"].startswith("placed on gpu-1")
    assert created["attempts"][0]["state"] == "dispatched"

    attempt = TaskAttempt.objects.get(task_id=created["id"])
    reported = node_client(node, credential).post(
        f"/api/v1/fabric/tasks/{created['id']}/result",
        {"attempt": 1, "token": attempt.token, "ok": True, "result": {"hostname": "gpu-1"},
         "duration_seconds": 2.0},
        content_type="application/json",
    )  # fmt: skip
    assert reported.json() == {"task": created["id"], "recorded": True, "reason": "recorded"}

    task = api.get(f"/api/v1/fabric/tasks/{created['id']}").json()
    assert (task["state"], task["result"], task["attempt"]) == ("done", {"hostname": "gpu-1"}, 1)
    assert task["attempts"][0]["duration_seconds"] == 2.0
    assert task["placement"]["candidates"][0]["name"] == "gpu-1"


def test_a_pending_task_says_why_in_the_api(ready_node, admin):
    ready_node("cpu-1")
    api = admin_api(admin)
    created = api.post(
        "/api/v1/fabric/tasks",
        {"kind": "probe", "requirements": {"data_source": "erp-3", "resident": True}},
        content_type="application/json",
    ).json()
    assert created["state"] == "pending"
    assert created["reason"] == (
        "no eligible node: cpu-1: data source erp-3 must stay at its site; not hosted here"
    )
    listed = api.get("/api/v1/fabric/tasks?state=pending").json()
    assert [t["id"] for t in listed] == [created["id"]]


def test_call_tasks_and_bad_ones(ready_node, admin):
    ready_node()
    api = admin_api(admin)
    ok = api.post(
        "/api/v1/fabric/tasks",
        {"kind": "call", "function": "echo", "args": {"hello": "world"},
         "idempotency_key": "k-1"},
        content_type="application/json",
    )  # fmt: skip
    assert ok.status_code == 201
    assert FabricTask.objects.get().payload == {"function": "echo", "args": {"hello": "world"}}
    bad = api.post("/api/v1/fabric/tasks", {"kind": "probe", "seconds": -1},
                   content_type="application/json")  # fmt: skip
    assert bad.status_code == 422
    assert bad.json() == {"detail": "probe: seconds must be from 0 to 3600"}
    assert api.get("/api/v1/fabric/tasks/999999").status_code == 404


def test_only_admins_send_or_read_tasks(ready_node, admin, manager, expert):
    ready_node()
    task = dispatch.submit_task(kind="probe")
    for user in (manager, expert):
        client = client_for(user)
        assert client.post("/api/v1/fabric/tasks", {"kind": "probe"},
                           content_type="application/json").status_code == 403  # fmt: skip
        assert client.get(f"/api/v1/fabric/tasks/{task.pk}").status_code == 403
    assert Client().get(f"/api/v1/fabric/tasks/{task.pk}").status_code == 401
    node, credential = ready_node("other")
    # A node credential is not an admin's: it can't send work.
    assert (
        node_client(node, credential)
        .post("/api/v1/fabric/tasks", {"kind": "probe"}, content_type="application/json")
        .status_code
        == 401
    )


def test_results_come_in_batches_from_the_agent(ready_node):
    node, credential = ready_node(max_concurrent_tasks=4)
    tasks = dispatch.submit_tasks(specs=[dispatch.TaskSpec(kind="probe") for _ in range(3)])
    body = []
    for task in tasks:
        attempt = TaskAttempt.objects.get(task=task)
        body.append({"task": task.pk, "attempt": 1, "token": attempt.token, "ok": True,
                     "result": task.pk})  # fmt: skip
    body.append({"task": 999999, "attempt": 1, "token": "00", "ok": True})
    reply = node_client(node, credential).post(
        "/api/v1/fabric/results", {"results": body}, content_type="application/json"
    )
    assert reply.status_code == 200
    assert [o["recorded"] for o in reply.json()["outcomes"]] == [True, True, True, False]
    assert reply.json()["outcomes"][3]["reason"] == "unknown task"
    assert sorted(FabricTask.objects.values_list("result", flat=True)) == sorted(
        t.pk for t in tasks
    )


def test_a_node_fetches_only_the_artefacts_its_current_tasks_name(ready_node, admin):
    content = b"\x00model\xff" * 100
    upload = admin_api(admin).post(
        "/api/v1/fabric/artifacts?name=model.bin", content, content_type="application/octet-stream"
    )
    assert upload.status_code == 201
    sha = upload.json()["sha256"]
    assert sha == hashlib.sha256(content).hexdigest()

    holder, holder_credential = ready_node("holder", node_class="edge")
    other, other_credential = ready_node("other")
    dispatch.submit_task(
        kind="call",
        payload={"function": "artifact_digest", "args": {"artifact": sha}},
        artifacts=[sha],
    )
    url = f"/api/v1/fabric/artifacts/{sha}"
    fetched = node_client(holder, holder_credential).get(url)
    assert fetched.status_code == 200
    assert fetched.content == content
    assert fetched["X-Content-SHA256"] == sha

    refused = node_client(other, other_credential).get(url)
    assert refused.status_code == 404
    assert refused.json() == {"detail": "Not Found"}  # one 404 body for every API answer
    unknown = node_client(holder, holder_credential).get(f"/api/v1/fabric/artifacts/{'0' * 64}")
    assert unknown.status_code == 404
    assert Client().get(url).status_code == 401
    # An admin's token is not a node credential either.
    assert admin_api(admin).get(url).status_code == 401


def test_only_admins_store_artefacts(admin, expert):
    response = client_for(expert).post(
        "/api/v1/fabric/artifacts", b"x", content_type="application/octet-stream"
    )
    assert response.status_code == 403
    empty = admin_api(admin).post(
        "/api/v1/fabric/artifacts", b"", content_type="application/octet-stream"
    )
    assert empty.status_code == 422
