"""Runs executed in micro-batches, in the request or on the compute fabric: placement by the
model's and the orchestration's requirements, one predict per batch, the trace saying where each
run ran, the sweeper re-sending what nothing evaluates, and each run finishing exactly once
(also when a real worker is SIGKILLed mid-run)."""

import json
import signal
import subprocess
import sys
import time

import pytest
from django.utils import timezone

from apps.autonomy.models import ProcessAutonomy
from apps.cases.models import Case
from apps.classifiers.models import ModelVersion
from apps.fabric.models import ComputeNode, FabricTask
from apps.fabric.services import completion, sweeper
from apps.orchestrations import execution, node_work
from apps.orchestrations.inbound import _record
from apps.orchestrations.models import Orchestration, Run, RunStep
from apps.orchestrations.services import change_stage, create_version
from tests.autonomy.conftest import fitted_model, store_promoted_model  # noqa: F401
from tests.conftest import client_for
from tests.fabric.local_node import ready_local_node, run_on_local
from tests.processes import ROOT, child_database_url, manage_env, stop_process

API = "/api/v1/orchestrations/invoice-flow"
FIELDS = {"vendor": "Acme GmbH", "amount": 40, "po_status": "matched"}


def items(count: int, prefix: str = "INV") -> list[dict]:
    return [
        {"external_id": f"{prefix}-{i}", "fields": {**FIELDS, "amount": 10 + i % 900}}
        for i in range(count)
    ]


@pytest.fixture
def model(process, fitted_model):  # noqa: F811
    version = store_promoted_model(process, fitted_model)
    ProcessAutonomy.objects.create(
        process=process, level=3, threshold=0.5, audit_rate=0.1, model_version=version
    )
    return version


def live(orchestration, manager, **values):
    version = create_version(orchestration=orchestration, actor=manager, values=values)
    return change_stage(version=version, stage="live", actor=manager)


def post(client, body, wait_ms=None):
    path = f"{API}/items" + (f"?wait_ms={wait_ms}" if wait_ms is not None else "")
    return client.post(path, json.dumps(body), content_type="application/json")


def test_a_waiting_caller_gets_its_batch_evaluated_in_the_request_with_one_predict(
    manager, orchestration, model, monkeypatch
):
    live(orchestration, manager, model_version=model.version, autonomy_level=3, threshold=0.5)
    predicts = []
    real = node_work.predictor

    def counting(load):
        predict = real(load)

        def wrapped(spec, rows):
            predicts.append(len(rows))
            return predict(spec, rows)

        return wrapped

    monkeypatch.setattr(node_work, "predictor", counting)
    response = post(client_for(manager), items(20), wait_ms=2000)

    assert response.status_code == 201, response.content
    runs = response.json()["runs"]
    assert {r["state"] for r in runs} == {"finished"}
    assert predicts == [20]  # one prediction over the whole batch
    executed = RunStep.objects.filter(kind="executed").values_list("data", flat=True)
    assert len(executed) == 20
    assert {(d["path"], d["batch_size"]) for d in executed} == {("in-request", 20)}
    assert len({d["batch"] for d in executed}) == 1
    assert not FabricTask.objects.exists()


def test_without_wait_runs_go_to_the_fabric_as_one_batch_and_local_runs_them(
    manager, orchestration, model
):
    node = ready_local_node()
    live(orchestration, manager, model_version=model.version, autonomy_level=3, threshold=0.5)
    response = post(client_for(manager), items(30))

    assert response.status_code == 202
    run_ids = response.json()["run_ids"]
    assert Run.objects.filter(pk__in=run_ids, state="running").count() == 30
    [task] = FabricTask.objects.all()
    assert task.node_id == node.pk
    assert task.payload["function"] == "evaluate_runs"
    assert len(task.payload["args"]["rows"]) == 30
    assert task.artifacts == [model.artifact_sha256]  # the model travels as an artefact

    assert run_on_local() == 1
    runs = Run.objects.filter(pk__in=run_ids)
    assert {r.state for r in runs} == {"finished"}
    executed = [
        r.steps.get(kind="executed").data for r in runs.prefetch_related("steps")
    ]  # fmt: skip
    assert {(d["path"], d["node"], d["task"], d["batch_size"]) for d in executed} == {
        ("fabric", "local", task.pk, 30)
    }
    routed = runs.filter(outcome="routed")
    assert Case.objects.filter(pk__in=routed.values("case_id")).count() == routed.count()


def test_a_gpu_only_model_and_a_site_are_placement_requirements_never_the_request(
    manager, orchestration, model
):
    ready_local_node()  # a control plane without a GPU, labelled role=control-plane
    ModelVersion.objects.filter(pk=model.pk).update(gpu_only=True)
    live(orchestration, manager, model_version=model.version, autonomy_level=3, threshold=0.5)

    response = post(client_for(manager), items(2), wait_ms=300)

    # The caller waited, but the request may not run a GPU-only model: 202, the work waits.
    assert response.status_code == 202
    [task] = FabricTask.objects.all()
    assert task.requirements == {"gpus": 1}
    assert task.state == "pending"
    assert "GPU" in task.placement["reason"] or "gpu" in task.placement["reason"]

    Orchestration.objects.filter(pk=orchestration.pk).update(site="branch-3")
    ModelVersion.objects.filter(pk=model.pk).update(gpu_only=False)
    post(client_for(manager), items(2, prefix="SITE"), wait_ms=300)
    task = FabricTask.objects.latest("pk")
    assert task.requirements == {"labels": {"site": "branch-3"}}
    assert not execution.may_run_in_request(task.requirements)
    ComputeNode.objects.filter(control_plane=True).update(
        labels={"role": "control-plane", "site": "branch-3"}
    )
    assert execution.may_run_in_request(task.requirements)


def test_the_sweeper_sends_runs_nothing_evaluates_and_a_run_finishes_once(
    manager, orchestration, model, settings
):
    ready_local_node()
    live(orchestration, manager, model_version=model.version)  # level 0: every item routed
    # Recorded, then the request died before sending them anywhere.
    received = _record(orchestration, items(5), "", "")
    ids = [r.pk for r in received.runs]
    assert execution.sweep_runs() == 0  # too young: the request may still be sending them

    settings.ORCHCAP_RUN_PICKUP_SECONDS = 0
    assert execution.sweep_runs(now=timezone.now()) == 5
    assert execution.sweep_runs(now=timezone.now()) == 0  # its task is out: not sent twice
    [task] = FabricTask.objects.all()
    # The same batch evaluated twice (a late request, a redelivery): recorded once.
    answer = node_work.evaluate_rows(
        task.payload["args"], execution.node_work.predictor(lambda _: model_pipeline(model))
    )
    first = execution.finish_runs(results=answer["results"], execution={"path": "test"})
    again = execution.finish_runs(results=answer["results"], execution={"path": "test"})
    assert (len(first), len(again)) == (5, 0)
    run_on_local()
    for run in Run.objects.filter(pk__in=ids):
        assert run.state == "finished"
        assert [s.kind for s in run.steps.all()].count("executed") == 1
    assert Case.objects.filter(process=orchestration.process).count() == 5


def threads_worker(**env):
    """The control plane's worker as `make run` starts it (a pool of threads): node `local`."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "orchcap", "worker", "--loglevel", "WARNING",
         "--hostname", "test-runs@%h", "--concurrency", "4", "--pool", "threads",
         "--without-gossip", "--without-mingle"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=manage_env(**env),
        cwd=ROOT,
    )  # fmt: skip


def wait_for_local_node(worker, *, since) -> None:
    deadline = time.monotonic() + 90
    node = ComputeNode.objects.filter(control_plane=True, worker_ready=True, state="online")
    while not node.filter(last_heartbeat_at__gt=since).exists():
        assert time.monotonic() < deadline, "no local node"
        assert worker.poll() is None, stop_process(worker)[-3000:]
        time.sleep(0.2)


def model_pipeline(model):
    from apps.classifiers.services import load_pipeline

    return load_pipeline(model)


def test_a_failed_evaluation_task_leaves_its_runs_to_the_sweeper(manager, orchestration, settings):
    ready_local_node()
    live(orchestration, manager)
    run_ids = post(client_for(manager), items(3)).json()["run_ids"]
    task = FabricTask.objects.get()
    FabricTask.objects.filter(pk=task.pk).update(
        state="failed", error="boom", finished_at=timezone.now()
    )
    completion.handle_finished([task.pk])

    runs = Run.objects.filter(pk__in=run_ids)
    assert {(r.state, r.fabric_task_id) for r in runs} == {("running", None)}
    assert all("boom" in r.error for r in runs)
    settings.ORCHCAP_RUN_PICKUP_SECONDS = 0
    assert execution.sweep_runs() == 3
    assert FabricTask.objects.count() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_leaves_every_run_finished_exactly_once(
    manager, orchestration, model, settings
):
    settings.ORCHCAP_HEARTBEAT_SECONDS = 2  # leases of 6 s: the kill is noticed quickly
    # ORCHCAP_FABRIC_PROBE_SECONDS stays 300 s: if a task left behind the dead worker gets `local`
    # flagged "not consuming", the sweep probes the flagged node within a lease.
    live(orchestration, manager, model_version=model.version)  # level 0: every item routed
    env = {"DATABASE_URL": child_database_url(), "ORCHCAP_HEARTBEAT_SECONDS": "2"}
    worker = threads_worker(**env)
    try:
        wait_for_local_node(worker, since=timezone.now())
        client = client_for(manager)
        total = 0
        # Four batches on four threads: the kill comes as soon as one finishes, with the last
        # still evaluating: posted last and the biggest (500, the most a request takes), it
        # takes far longer than the 50 ms poll (three of 150 items may all finish while the
        # next is posted, now that predicting a batch is quick). 2,000 took half the time.
        for batch, size in enumerate((150, 150, 150, 500)):
            assert post(client, items(size, prefix=f"B{batch}")).status_code == 202
            total += size
        deadline = time.monotonic() + 120
        while not Run.objects.filter(state="finished").exists():
            assert time.monotonic() < deadline, "nothing finished"
            assert worker.poll() is None, stop_process(worker)[-3000:]
            time.sleep(0.05)
    finally:
        stop_process(worker, signal.SIGKILL)
    at_kill = Run.objects.filter(state="finished").count()
    assert 0 < at_kill < total  # killed with work in flight

    worker = threads_worker(**env)
    try:
        # Beat's sweeps start once the new worker heartbeats (as under `up`, where they run
        # beside it): before, they would find the node silent and its queue untaken.
        wait_for_local_node(worker, since=timezone.now())
        deadline = time.monotonic() + 180
        while Run.objects.exclude(state="finished").exists():
            assert time.monotonic() < deadline, (
                Run.objects.exclude(state="finished").count(),
                list(FabricTask.objects.values_list("state", "attempts", "placement__reason")),
            )
            assert worker.poll() is None, stop_process(worker)[-3000:]
            # What beat does: lost leases moved, missed handlers run, idle runs sent again.
            sweeper.sweep()
            completion.handle_finished()
            execution.sweep_runs()
            time.sleep(0.5)
    finally:
        stop_process(worker)
    assert Run.objects.filter(state="finished").count() == total
    # One set of steps per run, one case per routed item.
    per_run = RunStep.objects.filter(kind="executed").values_list("run_id", flat=True)
    assert len(per_run) == len(set(per_run)) == total
    assert RunStep.objects.filter(kind="route").count() == total
    cases = Case.objects.filter(process=orchestration.process)
    assert cases.count() == total
    assert Run.objects.filter(case__isnull=True).count() == 0
    assert len(set(Run.objects.values_list("case_id", flat=True))) == total
