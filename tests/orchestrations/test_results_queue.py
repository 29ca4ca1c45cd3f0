"""Finished fabric work is recorded from a queue of its own (orchcap/celery.py): a batch's
outcomes never wait behind the background work new cases start on `orchcap`, and every worker
of ours consumes that queue however it is started, or runs sent to the fabric would never finish.
"""

import json
import subprocess
import sys
import time

import pytest
from django.utils import timezone

from apps.autonomy.models import ProcessAutonomy
from apps.fabric.models import FabricTask
from apps.orchestrations.models import Run
from apps.orchestrations.services import change_stage, create_version
from orchcap.celery import RESULTS_QUEUE, app
from tests.autonomy.conftest import fitted_model, store_promoted_model  # noqa: F401
from tests.conftest import client_for
from tests.orchestrations.test_execution import wait_for_local_node
from tests.processes import ROOT, child_database_url, manage_env, stop_process

FIELDS = {"vendor": "Acme GmbH", "po_status": "matched"}


def test_recording_finished_fabric_work_is_routed_to_its_own_queue():
    route = app.amqp.router.route({}, "apps.fabric.tasks.handle_finished_tasks")
    assert route["queue"].name == RESULTS_QUEUE != app.conf.task_default_queue
    # The rest of the work stays on the default queue.
    other = app.amqp.router.route({}, "apps.cases.tasks.embed_cases")
    assert other["queue"].name == app.conf.task_default_queue


@pytest.mark.django_db(transaction=True)  # the worker sees what the test commits
def test_a_worker_started_as_up_starts_it_consumes_the_queue_and_finishes_batched_runs(
    manager,
    orchestration,
    process,
    fitted_model,  # noqa: F811
):
    model = store_promoted_model(process, fitted_model)
    ProcessAutonomy.objects.create(
        process=process, level=3, threshold=0.5, audit_rate=0.1, model_version=model
    )
    version = create_version(
        orchestration=orchestration, actor=manager,
        values={"model_version": model.version, "autonomy_level": 3, "threshold": 0.5},
    )  # fmt: skip
    change_stage(version=version, stage="live", actor=manager)
    # `manage.py up` names the default queue only; nothing else here runs the handlers (no beat,
    # no catch-up call): the runs finish only if this worker takes the results queue too.
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "orchcap", "worker", "--loglevel", "WARNING",
         "--hostname", "test-results@%h", "--queues", app.conf.task_default_queue,
         "--pool", "threads", "--concurrency", "2", "--without-gossip", "--without-mingle"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=manage_env(DATABASE_URL=child_database_url()), cwd=ROOT,
    )  # fmt: skip
    try:
        wait_for_local_node(worker, since=timezone.now())
        queues = {
            queue["name"]
            for answer in (app.control.inspect(timeout=5).active_queues() or {}).values()
            for queue in answer
        }
        assert {app.conf.task_default_queue, RESULTS_QUEUE} <= queues

        body = [
            {"external_id": f"Q-{i}", "fields": {**FIELDS, "amount": 10 + i}} for i in range(40)
        ]
        response = client_for(manager).post(
            "/api/v1/orchestrations/invoice-flow/items", json.dumps(body),
            content_type="application/json",
        )  # fmt: skip
        assert response.status_code == 202, response.content
        ids = response.json()["run_ids"]
        deadline = time.monotonic() + 120
        while Run.objects.filter(pk__in=ids).exclude(state="finished").exists():
            if time.monotonic() > deadline:
                states = set(Run.objects.filter(pk__in=ids).values_list("state", flat=True))
                tasks = list(FabricTask.objects.values_list("state", "handled_at", "error"))
                raise AssertionError((states, tasks, stop_process(worker)[-3000:]))
            assert worker.poll() is None, stop_process(worker)[-3000:]
            time.sleep(0.1)
    finally:
        stop_process(worker)
    executed = Run.objects.filter(pk__in=ids, steps__kind="executed")
    assert set(executed.values_list("steps__data__path", flat=True)) == {"fabric"}
