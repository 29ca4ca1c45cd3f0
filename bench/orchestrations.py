"""Orchestration benchmarks (issue 12, "Speed"): the sync answer and batched inbound.

`bench_orchestrations(data)` runs this file in a subprocess on a fresh data dir (like
bench/connectors.py). The child builds an invoice process with a trained model (150 decided
invoices, the tests' fitted pipeline), an enabled rule and a live orchestration (exception filter
`amount > 50`, the rule, the model at autonomy level 3 with threshold 0.6, routes), and serves
orchcap with gunicorn on loopback ($BENCH_WEB_WORKERS workers, 2, of $BENCH_WEB_THREADS
threads, 4) beside the control plane's Celery worker (node `local`, 4 threads).

- Sync answer: BENCH_SYNC_CLIENTS (20) concurrent clients, each a kept-alive HTTP connection
  posting one item at a time with `?wait_ms=5000` and waiting for its answer (a closed loop, no
  think time); p95 of BENCH_SYNC_REQUESTS (1,000) answers per run. These runs take the in-request
  path (execution.py): record, exception filter, rules, model, autonomy, the trace, in the
  request. Target p95 ≤ 30 ms. Baseline: the bare model's predict_proba on one row (p95 of 500
  calls) in the same run, in this process.
- Batched inbound: BENCH_BATCH_ITEMS (20,000) items posted in requests of 500 without waiting
  by 4 concurrent clients; measured from the first POST to the last run finished (polled every
  20 ms): the runs go to the fabric as `evaluate_runs` tasks run by `local`, and routed items
  become cases. Target ≥ 2,000 items/s. Baseline: case intake alone (`create_cases` of the same
  rows, 500 per call, in this process, after the measured runs so that the background work its
  cases start is not on the worker during one), the floor of a routed item's cost.

- Breakdown (printed, not a figure): after the batched runs, with the worker stopped, 4,000 items
  through each stage of the batched path in this process one after another (validation,
  recording, sending to the fabric, `local`'s evaluation, the handler recording the outcomes):
  wall time, this process's CPU and its PostgreSQL backend's CPU per item (batch_breakdown).

Every figure is the median of REPEATS runs (bench/measure.py). BENCH_ORCHESTRATIONS_PARTS
(`sync,batched,breakdown`) picks the parts to run.
"""

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

from measure import REPEATS, figure, run_in_child

ROOT = Path(__file__).resolve().parent.parent
SYNC_CLIENTS = int(os.environ.get("BENCH_SYNC_CLIENTS", "20"))
SYNC_REQUESTS = int(os.environ.get("BENCH_SYNC_REQUESTS", "1000"))
BATCH_ITEMS = int(os.environ.get("BENCH_BATCH_ITEMS", "20000"))
BATCH_SIZE = 500
BREAKDOWN_BATCHES = 8
_started = time.monotonic()


def say(message: str) -> None:
    print(f"  orchestrations [{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def bench_orchestrations(data: Path) -> list[dict[str, object]]:
    env = {"SECURE_SSL_REDIRECT": "false", "LOG_LEVEL": "WARNING"}
    return run_in_child(__file__, data, env=env)


# --- the child side ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_web() -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "orchcap.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", os.environ.get("BENCH_WEB_WORKERS", "2"),
         "--threads", os.environ.get("BENCH_WEB_THREADS", "4"), "--worker-class", "gthread",
         "--backlog", "256", "--no-control-socket"],
        cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True,
        stderr=(Path(os.environ["ORCHCAP_DATA_DIR"]) / "gunicorn.log").open("w"),
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/orchestrations", timeout=5
            ):
                return process, port
        except urllib.error.HTTPError:
            return process, port
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("gunicorn did not answer")


def _start_worker() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "orchcap", "worker", "--loglevel", "WARNING",
         "--pool", "threads", "--concurrency", "4", "--hostname", "bench-runs@%h",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def _setup():  # type: ignore[no-untyped-def]
    """A manager's API token and a live orchestration deciding by rule and by model."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.autonomy.models import ProcessAutonomy
    from apps.classifiers import learning
    from apps.classifiers.features import CaseInput
    from apps.orchestrations.services import change_stage, create_orchestration, create_version
    from apps.people import services as people
    from apps.people.models import Role
    from apps.rules.models import Rule
    from apps.rules.services.authoring import create_rule
    from tests.autonomy.conftest import store_promoted_model
    from tests.factories import INVOICE_FIELDS, invoice_policy, make_invoice_rows, make_process

    call_command("migrate", verbosity=0)
    team = people.create_team(slug="ap", name="Accounts Payable")
    user = get_user_model().objects.create_user(username="bench", email="bench@localhost")
    people.add_member(team=team, user=user, role=Role.MANAGER)
    _, token = people.create_api_token(user=user, name="bench")
    process = make_process(team)
    rows = make_invoice_rows(150, seed=3)  # the tests' fitted model (tests/autonomy/conftest.py)
    fitted = learning.fit_classifier(
        INVOICE_FIELDS,
        [CaseInput(r["fields"], r["exception"]["reason"], r["exception"]["fields"]) for r in rows],
        [invoice_policy(r["fields"]["po_status"], r["fields"]["amount"]) for r in rows],
        min_decisions=50,
    )
    trained = (fitted, learning.serialise(fitted.pipeline))
    model = store_promoted_model(process, trained)
    ProcessAutonomy.objects.create(
        process=process, level=3, threshold=0.6, audit_rate=0.1, model_version=model
    )
    rule = create_rule(
        process=process, owner=user, name="No PO", action={"decide": "request_info"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
    )  # fmt: skip
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    orchestration = create_orchestration(
        process=process, slug="invoice-flow", name="Invoice flow", owner=user
    )
    version = create_version(
        orchestration=orchestration, actor=user,
        values={"exception_filter": {"field": "amount", "op": "gt", "value": 50},
                "rules": [{"rule": rule.pk}], "model_version": model.version,
                "autonomy_level": 3, "threshold": 0.6, "routes": {"reject": "team:ap"},
                "sla_minutes": 240},
    )  # fmt: skip
    change_stage(version=version, stage="live", actor=user, reason="bench")
    return token, process, model, trained


def _item(external_id: str, rng: random.Random) -> dict:
    return {
        "external_id": external_id,
        "fields": {
            "vendor": rng.choice(["Acme GmbH", "Globex", "Initech", "Umbrella AG"]),
            "amount": round(rng.uniform(0, 2000), 2),
            "po_status": rng.choice(["matched", "missing", "mismatch"]),
        },
    }


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def _sync_client(
    port: int, headers: dict, run: int, index: int, count: int, latencies: list[float],
    errors: list[str], lock: threading.Lock,
) -> None:  # fmt: skip
    """One client: `count` single items, each answer awaited (wait_ms), on a kept-alive
    connection; its latencies added to `latencies`."""
    rng = random.Random(run * 1000 + index)
    connection = HTTPConnection("127.0.0.1", port, timeout=30)
    mine = []
    for n in range(count):
        body = json.dumps(_item(f"S{run}-{index}-{n}", rng))
        start = time.perf_counter()
        connection.request(
            "POST", "/api/v1/orchestrations/invoice-flow/items?wait_ms=5000", body, headers
        )
        response = connection.getresponse()
        answer = response.read()
        mine.append(time.perf_counter() - start)
        if response.status != 201:
            errors.append(f"{response.status} {answer[:200]!r}")
    connection.close()
    with lock:
        latencies.extend(mine)


def _batch_client(
    port: int, headers: dict, queue: list[str], lock: threading.Lock, errors: list[str]
) -> None:
    """One client posting batches from `queue` until it is empty (no waiting: 202)."""
    connection = HTTPConnection("127.0.0.1", port, timeout=120)
    while True:
        with lock:
            if not queue:
                break
            body = queue.pop()
        connection.request("POST", "/api/v1/orchestrations/invoice-flow/items", body, headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 202:
            errors.append(f"{response.status} {answer[:200]!r}")
    connection.close()


def bench_sync(port: int, token: str, trained, results: list[dict]) -> None:  # type: ignore[no-untyped-def]
    from apps.classifiers import learning
    from apps.classifiers.features import CaseInput

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    p95s, bare = [], []
    pipeline = trained[0].pipeline
    row = CaseInput({"vendor": "Acme GmbH", "amount": 420.0, "po_status": "matched"}, "", [])
    for run in range(REPEATS + 1):  # the first run warms the workers up (imports, model load)
        latencies: list[float] = []
        lock = threading.Lock()
        per_client = max(1, SYNC_REQUESTS // SYNC_CLIENTS) if run else 5
        errors: list[str] = []

        threads = [
            threading.Thread(
                target=_sync_client,
                args=(port, headers, run, i, per_client, latencies, errors, lock),
            )
            for i in range(SYNC_CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise RuntimeError(f"{len(errors)} sync answers were not 201: {errors[:3]}")
        if not run:
            continue
        p95s.append(_p95(latencies) * 1000)
        samples = []
        for _ in range(500):
            start = time.perf_counter()
            learning.predict(pipeline, [row])
            samples.append(time.perf_counter() - start)
        bare.append(_p95(samples) * 1000)
        say(
            f"sync run {run}: p95 {p95s[-1]:.1f} ms, p50 "
            f"{statistics.median(latencies) * 1000:.1f} ms over {len(latencies)} answers, "
            f"{len(latencies) / sum(latencies) * SYNC_CLIENTS:.0f}/s; bare predict p95 "
            f"{bare[-1]:.2f} ms"
        )
    results.append(
        figure(f"orchestrations_sync_answer_p95_{SYNC_CLIENTS}_clients", p95s, "ms", 30.0,
               "lower", baseline=("model_predict_proba_one_row_p95", bare))
    )  # fmt: skip


def bench_batched(port: int, token: str, process, results: list[dict]) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection as db

    from apps.cases.services.intake import create_cases
    from apps.orchestrations.models import Run

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rates, intake = [], []
    for run in range(REPEATS):
        rng = random.Random(run)
        bodies = [
            json.dumps([_item(f"B{run}-{b}-{i}", rng) for i in range(BATCH_SIZE)])
            for b in range(BATCH_ITEMS // BATCH_SIZE)
        ]
        before = Run.objects.filter(external_id__startswith=f"B{run}-").count()
        assert before == 0
        queue = list(bodies)
        lock = threading.Lock()
        errors: list[str] = []

        start = time.perf_counter()
        threads = [
            threading.Thread(target=_batch_client, args=(port, headers, queue, lock, errors))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        posted = time.perf_counter() - start
        if errors:
            raise RuntimeError(f"{len(errors)} batches refused: {errors[:3]}")
        total = len(bodies) * BATCH_SIZE
        deadline = time.monotonic() + 600
        while True:
            done = Run.objects.filter(external_id__startswith=f"B{run}-", state="finished").count()
            if done >= total:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {total} runs finished in 600 s")
            time.sleep(0.02)
            db.close()  # each poll sees the latest commit
        took = time.perf_counter() - start
        rates.append(total / took)
        say(
            f"batched run {run + 1}: {total} items finished in {took:.2f} s ({rates[-1]:.0f}/s; "
            f"accepted in {posted:.2f} s, {total / posted:.0f}/s)"
        )
    # Baseline: case intake of the same rows alone, 500 per call, after the measured runs: the
    # cases it makes start the process's own background work (its autopilot deciding them at
    # level 3, scoring), which would otherwise run on the worker during the next measured run.
    for run in range(REPEATS):
        rng = random.Random(run)
        rows = [
            _item(f"I{run}-{b}-{i}", rng)
            for b in range(BATCH_ITEMS // BATCH_SIZE)
            for i in range(BATCH_SIZE)
        ]
        start = time.perf_counter()
        for at in range(0, len(rows), BATCH_SIZE):
            create_cases(process=process, rows=rows[at : at + BATCH_SIZE], embed=False)
        intake.append(len(rows) / (time.perf_counter() - start))
        say(f"case intake alone, run {run + 1}: {intake[-1]:.0f}/s")
    results.append(
        figure("orchestrations_batched_inbound_items_per_s", rates, "items/s", 2000.0, "higher",
               baseline=("case_intake_create_cases_per_s", intake))
    )  # fmt: skip


def batch_breakdown(process_, token: str) -> None:  # type: ignore[no-untyped-def]
    """Where a batched item's time goes, in this process, after the measured runs and with the
    worker stopped: BREAKDOWN_BATCHES requests' worth of items through each stage in turn
    (validation, recording, sending to the fabric, the `local` node's evaluation and result,
    the completion handler recording the outcomes), each stage's wall time and this process's
    CPU per item. Printed, not a figure: the stages run one after another here, not side by
    side as under load; the broker's and other backends' CPU (case intake's background work is
    not run here) are in no column."""
    import json as json_

    from django.db import connection
    from django.utils import timezone

    from apps.fabric import protocol
    from apps.fabric.models import ComputeNode, FabricTask, TaskAttempt
    from apps.fabric.services import completion, local
    from apps.orchestrations import inbound
    from apps.orchestrations.models import Orchestration, Run

    orchestration = Orchestration.objects.select_related("team", "process__schema").get(
        slug="invoice-flow"
    )
    # `local` as a running worker leaves it (this process runs its messages), with a slot per
    # batch so that every batch is placed at once.
    local.ensure_local_node(concurrency=BREAKDOWN_BATCHES)
    ComputeNode.objects.filter(control_plane=True).update(
        state="online", worker_ready=True, last_heartbeat_at=timezone.now(),
        max_concurrent_tasks=BREAKDOWN_BATCHES,
    )  # fmt: skip
    rng = random.Random(99)
    bodies = [
        json_.dumps([_item(f"P-{b}-{i}", rng) for i in range(BATCH_SIZE)]).encode()
        for b in range(BREAKDOWN_BATCHES)
    ]
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    db_cpu: dict[str, float] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [backend] = cursor.fetchone()

    def backend_cpu() -> float:
        """CPU seconds of this connection's PostgreSQL backend so far (/proc: same machine)."""
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stage(name: str, action, *args, **kwargs):  # type: ignore[no-untyped-def]
        started, used, db_used = time.perf_counter(), time.process_time(), backend_cpu()
        value = action(*args, **kwargs)
        wall[name] = wall.get(name, 0.0) + time.perf_counter() - started
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - used
        db_cpu[name] = db_cpu.get(name, 0.0) + backend_cpu() - db_used
        return value

    for body in bodies:
        items = stage("parse JSON", json_.loads, body)
        clean = stage("validate", inbound.validate_items, orchestration=orchestration, items=items)
        received = stage(
            "record runs", inbound._record, orchestration, clean, "", "", ids_only=True
        )
        stage("send to the fabric", inbound.send_to_fabric,
              run_ids=[run.pk for run in received.runs], pending=received.pending)  # fmt: skip
    tasks = list(
        FabricTask.objects.filter(state="placed", payload__function="evaluate_runs").order_by("pk")
    )
    for task in tasks:
        attempt = TaskAttempt.objects.get(task=task, number=task.attempts)
        message = protocol.message(
            task_id=task.pk, attempt=attempt.number, token=attempt.token, kind=task.kind,
            payload=task.payload, artifacts=task.artifacts,
        )  # fmt: skip
        stage("evaluate on local + its result", local.run_message, message)
    stage("record outcomes (handler)", completion.handle_finished, [t.pk for t in tasks])
    total = BREAKDOWN_BATCHES * BATCH_SIZE
    finished = Run.objects.filter(external_id__startswith="P-", state="finished").count()
    say(f"per item, {total} items in {BREAKDOWN_BATCHES} batches ({finished} finished), "
        f"load {os.getloadavg()[0]:.2f}:")  # fmt: skip
    for name in wall:
        say(f"  {name:32s} {wall[name] / total * 1e6:7.0f} us wall, "
            f"{cpu[name] / total * 1e6:6.0f} us CPU here, "
            f"{db_cpu[name] / total * 1e6:6.0f} us PostgreSQL CPU")  # fmt: skip
    say(f"  {'all stages':32s} {sum(wall.values()) / total * 1e6:7.0f} us wall, "
        f"{sum(cpu.values()) / total * 1e6:6.0f} us CPU here, "
        f"{sum(db_cpu.values()) / total * 1e6:6.0f} us PostgreSQL CPU")  # fmt: skip


def child(out: Path) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    django.setup()
    token, process, _, trained = _setup()
    web, port = _start_web()
    worker = _start_worker()
    results: list[dict] = []
    try:
        say(f"serving on 127.0.0.1:{port}; load {os.getloadavg()[0]:.2f}")
        parts = os.environ.get("BENCH_ORCHESTRATIONS_PARTS", "sync,batched,breakdown").split(",")
        if "sync" in parts:
            bench_sync(port, token, trained, results)
        if "batched" in parts:
            bench_batched(port, token, process, results)
        if "breakdown" in parts:
            worker.terminate()  # the stages run here, one after another
            worker.wait(60)
            batch_breakdown(process, token)
    finally:
        for process_ in (worker, web):
            process_.terminate()
            try:
                process_.wait(30)
            except subprocess.TimeoutExpired:
                process_.kill()
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child(Path(sys.argv[1]))
