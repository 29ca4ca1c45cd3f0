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
  the moment the task started again on the other node (its recorded start). A fresh edge agent
  replaces the dead one for the next run.

All of the above runs in a child with 2 s heartbeats. A second child runs at the default
settings (no ORCHCAP_HEARTBEAT_SECONDS, ORCHCAP_FABRIC_SWEEP_SECONDS: 5 s and 4 s):

- Heartbeat cost at 1,000 nodes: 1,000 approved, online nodes heartbeat through gunicorn with
  their own credentials and the agent's body, from HEARTBEAT_CLIENTS threads as fast as the
  control plane answers, for HEARTBEAT_WINDOW seconds per run. Measured: heartbeats/s (target:
  the 200/s 1,000 nodes send at 5 s), CPU of gunicorn and PostgreSQL per heartbeat, and the share
  of one core 1,000 nodes cost at the default interval. Baseline: a request the same server
  refuses (401) before any database work. The same heartbeats also go, in the same rounds, to a
  second gunicorn with ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH=false (`…_full_api_path`): what the
  fast path (docs/fabric.md) saves, on the same database and load.
- Node death at the defaults, as above (target 20 s).

Every figure is the median of REPEATS runs (bench/measure.py).
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

from measure import REPEATS, figure

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT = 2
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
N_NODES = 1_000
N_DECISIONS = 500
N_ROUND_TRIPS = 100  # per round
HEARTBEAT_CLIENTS = 8  # threads sending heartbeats at once
HEARTBEAT_WINDOW = 5.0  # seconds per round
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
    """Two children on fresh data dirs: the fleet figures with 2 s heartbeats (fast enough to
    repeat the node death), then the heartbeat load and the failover at the default settings."""
    results: list[dict[str, object]] = []
    # BENCH_FABRIC picks children while working on one: "heartbeats" (only the heartbeat load at
    # the defaults, a few minutes), "defaults", "fast", or a comma-separated list.
    modes = os.environ.get("BENCH_FABRIC", "fast,defaults").split(",")
    for mode in modes:
        results += _run_child(data / mode, mode)
    return results


def _run_child(data: Path, mode: str) -> list[dict[str, object]]:
    out = data / "results.json"
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ORCHCAP_DATA_DIR": str(data), "DEBUG": "false"}
    env.update(SECRET_KEY=secrets.token_urlsafe(40), SECURE_SSL_REDIRECT="false",
               LOG_LEVEL="WARNING")  # fmt: skip
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "ORCHCAP_HEARTBEAT_SECONDS",
                 "ORCHCAP_FABRIC_SWEEP_SECONDS", "ORCHCAP_FABRIC_SCHEDULE_SECONDS",
                 "ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS",
                 "ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH"):  # fmt: skip
        env.pop(name, None)
    if mode == "fast":
        env["ORCHCAP_HEARTBEAT_SECONDS"] = str(HEARTBEAT)
    if _redis_reachable(REDIS_URL):
        env["CELERY_BROKER_URL"] = REDIS_URL
        env["BENCH_BROKER"] = "redis"
    else:
        env["BENCH_BROKER"] = "embedded"
    try:
        subprocess.run(  # noqa: S603 (this very file, our interpreter)
            [sys.executable, __file__, mode, str(out)], env=env, cwd=ROOT, check=True
        )
        return json.loads(out.read_text())
    finally:
        from orchcap.runtime.broker import EmbeddedBroker
        from orchcap.runtime.postgres import EmbeddedPostgres

        EmbeddedPostgres(data).stop()
        EmbeddedBroker(data).stop()


# --- the child side ----------------------------------------------------------------------------


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
    from django.db import connection

    loads, bare = [], []
    for _ in range(REPEATS):
        round_loads, round_bare = [], []
        for _ in range(20):
            start = time.perf_counter()
            facts = selectors.node_candidates()
            round_loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            with connection.cursor() as cursor:  # the bare read: every row, no shaping
                cursor.execute("SELECT * FROM fabric_computenode")
                cursor.fetchall()
            round_bare.append(time.perf_counter() - start)
        loads.append(statistics.median(round_loads) * 1000)
        bare.append(statistics.median(round_bare) * 1000)
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
    for _ in range(REPEATS):
        decisions = []
        for index in range(N_DECISIONS):
            requirements = wanted[index % len(wanted)]
            start = time.perf_counter()
            scheduler.filter_and_score(facts, requirements, timezone.now())
            decisions.append(time.perf_counter() - start)
        rounds.append(decisions)
    results.append(figure("fabric_scheduler_decision_1000_nodes_p95",
                          [_p(r, 0.95) * 1000 for r in rounds], "ms", 2.0, "lower"))  # fmt: skip
    results.append(figure("fabric_scheduler_decision_1000_nodes_p50",
                          [statistics.median(r) * 1000 for r in rounds], "ms", 2.0,
                          "lower"))  # fmt: skip
    results.append(figure("fabric_read_1000_node_candidates_p50", loads, "ms", 100.0, "lower",
                          baseline=("select_star_1000_nodes_p50", bare)))  # fmt: skip
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


def _start_web(**env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "orchcap.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", os.environ.get("BENCH_WEB_WORKERS", "2"),
         "--no-control-socket",
         *(["--access-logfile", os.environ["BENCH_ACCESS_LOG"], "--access-logformat",
            '%(U)s %(s)s %(D)s %(b)s'] if os.environ.get("BENCH_ACCESS_LOG") else [])],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, **env},
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


class Fleet:
    """gunicorn on the bench database and real agents, by node name; stopped on exit."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.web, self.url = _start_web()
        self.agents: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, node_class: str) -> None:
        self.agents[name] = _start_agent(self.url, self.work / name, name, "--class", node_class,
                                         "--max-tasks", str(SLOTS))  # fmt: skip

    def wait_ready(self, names: list[str]) -> None:
        from apps.fabric.models import ComputeNode

        ready = ComputeNode.objects.filter(name__in=names, worker_ready=True, state="online")
        _wait(lambda: ready.count() == len(names), 90, f"the workers of {', '.join(names)}")

    def kill(self, name: str) -> None:
        os.killpg(self.agents.pop(name).pid, signal.SIGKILL)

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: object) -> None:
        for agent in self.agents.values():
            try:
                os.killpg(agent.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for agent in self.agents.values():
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, signal.SIGKILL)
        os.killpg(self.web.pid, signal.SIGTERM)
        try:
            self.web.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.web.pid, signal.SIGKILL)


def _bench_user() -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "x" * 12)
    if os.environ.get("BENCH_BROKER") == "redis":
        _clean_redis_queues()


def bench_dispatch(results: list[dict], work: Path) -> None:
    from django.db import connection

    from apps.fabric.models import FabricTask, FabricTaskState
    from apps.fabric.services import dispatch

    _bench_user()
    with Fleet(work) as fleet:
        fleet.start("edge-a", "edge")
        fleet.start("server-b", "server")
        fleet.wait_ready(["edge-a", "server-b"])
        say(f"two agents consuming over {os.environ.get('BENCH_BROKER')}")

        # Round trip: one at a time.
        p50s, p95s = [], []
        for _ in range(REPEATS):
            trips = []
            for _ in range(N_ROUND_TRIPS):
                task = dispatch.submit_task(kind="probe", payload={"seconds": 0})
                done = FabricTask.objects.filter(pk=task.pk, state=FabricTaskState.DONE)
                _wait(done.exists, 30, "a round trip")
                created, finished = FabricTask.objects.values_list("created_at", "finished_at").get(
                    pk=task.pk
                )
                trips.append((finished - created).total_seconds() * 1000)
            p50s.append(statistics.median(trips))
            p95s.append(_p(trips, 0.95))
            say(f"round trip p50 {p50s[-1]:.1f} ms, p95 {p95s[-1]:.1f} ms")
        results.append(figure("fabric_dispatch_round_trip_p50", p50s, "ms", 50.0, "lower"))
        results.append(figure("fabric_dispatch_round_trip_p95", p95s, "ms", 100.0, "lower"))

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
        rates = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            ids = []
            for _ in range(N_THROUGHPUT // BATCH):
                ids += [t.pk for t in dispatch.submit_tasks(specs=[spec] * BATCH)]
            with connection.cursor() as cursor:  # what autovacuum does soon after such a batch
                cursor.execute("ANALYZE fabric_fabrictask, fabric_taskattempt")
            # Nodes pull the next pending tasks when they report results; nothing else needed.
            left = FabricTask.objects.filter(pk__gte=min(ids), state__in=["pending", "placed",
                                                                        "running"])  # fmt: skip
            _wait(lambda: not left.exists(), 600, "the throughput batch", every=0.05)  # noqa: B023
            rates.append(len(ids) / (time.perf_counter() - start))
            say(f"throughput {rates[-1]:.0f} tasks/s")
        results.append(figure("fabric_throughput_tasks_per_second", rates, "tasks/s", 500.0,
                              "higher"))  # fmt: skip
        results.append(figure("fabric_throughput_cases_per_second",
                              [r * CASES_PER_TASK for r in rates], "cases/s", 5000.0,
                              "higher"))  # fmt: skip

        deaths = [node_death(fleet, rep) for rep in range(REPEATS)]
        results.append(figure(f"fabric_node_death_to_rerun_elsewhere_heartbeat_{HEARTBEAT}s",
                              deaths, "s", 3 * HEARTBEAT + 5.0, "lower"))  # fmt: skip


def node_death(fleet: Fleet, rep: int) -> float:
    """A probe runs on a node, the node is killed (SIGKILL to all its processes), and the sweeper
    runs every ORCHCAP_FABRIC_SWEEP_SECONDS as beat would (at a random phase). Returns the
    seconds from the kill to the task's start on another node; an edge node replaces the dead
    one for the next round."""
    import random

    from django.conf import settings

    from apps.fabric.models import ComputeNode, FabricTask, FabricTaskState, TaskAttempt
    from apps.fabric.services import dispatch, sweeper

    # Long enough that a heartbeat reports it running (that is how the bench sees it started).
    seconds = 2 * settings.ORCHCAP_HEARTBEAT_SECONDS + 1
    task = dispatch.submit_task(kind="probe", payload={"seconds": seconds})
    _wait(
        lambda: TaskAttempt.objects.filter(task=task, state="running").exists(), 30,
        "the task to start",
    )  # fmt: skip
    victim = ComputeNode.objects.get(pk=TaskAttempt.objects.get(task=task, number=1).node_id)
    fleet.kill(victim.name)
    killed_at = time.time()
    sweep_every = settings.ORCHCAP_FABRIC_SWEEP_SECONDS
    done = FabricTask.objects.filter(pk=task.pk, state=FabricTaskState.DONE)
    next_sweep = time.monotonic() + random.uniform(0, sweep_every)  # beat's phase is arbitrary

    def rerun_done() -> bool:
        nonlocal next_sweep
        if time.monotonic() >= next_sweep:
            sweeper.sweep()
            next_sweep += sweep_every
        return done.exists()

    _wait(rerun_done, 120, "the task to run elsewhere")
    rerun = TaskAttempt.objects.get(task=task, number=2)
    recovery = rerun.started_at.timestamp() - killed_at
    say(
        f"death of {victim.name} to re-run on node {rerun.node_id}: {recovery:.1f} s "
        f"(heartbeat {settings.ORCHCAP_HEARTBEAT_SECONDS} s, sweep every {sweep_every} s)"
    )
    replacement = f"edge-r{rep}"
    fleet.start(replacement, "edge")
    fleet.wait_ready([replacement])
    return recovery


def bench_defaults(results: list[dict], work: Path) -> None:
    """At the default settings: what heartbeats of 1,000 nodes cost the control plane, and a
    node's death to its work running elsewhere."""
    from django.conf import settings

    _bench_user()
    heartbeat = settings.ORCHCAP_HEARTBEAT_SECONDS
    with Fleet(work) as fleet:
        bench_heartbeats(results, fleet.url, fleet.web.pid, heartbeat)
        fleet.start("edge-a", "edge")
        fleet.start("server-b", "server")
        fleet.wait_ready(["edge-a", "server-b"])
        deaths = [node_death(fleet, rep) for rep in range(REPEATS)]
    results.append(figure("fabric_node_death_to_rerun_elsewhere_at_defaults", deaths, "s",
                          20.0, "lower"))  # fmt: skip


def _post(url: str, body: bytes, authorization: str | None) -> int:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _server_cpu_seconds(web_pid: int) -> float:
    """CPU time used so far by gunicorn (master and workers) and this bench's PostgreSQL (the
    postmaster, its live backends and, through the postmaster, those that exited)."""
    import psutil

    data_dir = os.environ["ORCHCAP_DATA_DIR"]
    web = psutil.Process(web_pid)
    processes = [web, *web.children(recursive=True)]
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and data_dir in " ".join(
            process.info["cmdline"] or []
        ):
            processes += [process, *process.children(recursive=True)]
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _hammer(url: str, bodies: list[tuple[bytes, str | None]], seconds: float,
            web_pid: int) -> tuple[float, float]:  # fmt: skip
    """Send these requests round-robin from HEARTBEAT_CLIENTS threads for `seconds`; returns
    (requests/s answered, server CPU ms per request)."""
    import threading

    count = [0] * HEARTBEAT_CLIENTS
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        position = index
        while time.monotonic() < stop:
            body, authorization = bodies[position % len(bodies)]
            status = _post(url, body, authorization)
            assert status in (200, 401), status
            count[index] += 1
            position += HEARTBEAT_CLIENTS

    cpu = _server_cpu_seconds(web_pid)
    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(HEARTBEAT_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    used = _server_cpu_seconds(web_pid) - cpu
    total = sum(count)
    return total / elapsed, used / total * 1000


def bench_heartbeats(results: list[dict], url: str, web_pid: int, heartbeat: int) -> None:
    """1,000 approved, online nodes heartbeat as agents do (the same body, their own
    credentials), from HEARTBEAT_CLIENTS threads as fast as the control plane answers.
    Measured: heartbeats/s answered, and the CPU the control plane (gunicorn + PostgreSQL)
    spends per heartbeat. The baseline is the HTTP floor of the same server: a request the API
    refuses (401) before any database work. The share of one core that 1,000 nodes cost at the
    configured interval follows: CPU per heartbeat x 1,000 / interval."""
    from django.utils import timezone

    from apps.fabric.agent import __version__
    from apps.fabric.models import ComputeNode, NodeClass, NodeState
    from apps.fabric.services.enrollment import hash_secret

    now = timezone.now()
    secrets_by_name = {f"hb-{i:04d}": secrets.token_urlsafe(24) for i in range(N_NODES)}
    ComputeNode.objects.bulk_create(
        [ComputeNode(name=name, node_class=NodeClass.SERVER, state=NodeState.ONLINE,
                     approved_at=now, credential_hash=hash_secret(secret),
                     fingerprint=secrets.token_hex(32), worker_ready=True,
                     detected={"cpu_cores": 8, "memory_mb": 16_384, "gpus": []},
                     max_concurrent_tasks=4, last_heartbeat_at=now)
         for name, secret in secrets_by_name.items()],
        batch_size=500,
    )  # fmt: skip
    ids = dict(ComputeNode.objects.filter(name__startswith="hb-").values_list("name", "pk"))
    body = json.dumps({"status": "running", "running_tasks": 0, "tasks": [], "worker": "ready",
                       "software_version": __version__, "cpu_percent": 12.5,
                       "memory_percent": 40.0, "load_average": 0.7,
                       "idle_seconds": 30}).encode()  # fmt: skip
    beats = [(body, f"Node {ids[name]}:{secret}") for name, secret in secrets_by_name.items()]
    floor = [(b"{}", None)]
    # The same heartbeats through the whole API (middleware, ninja, the node read, then the
    # UPDATE): what the fast path saves, measured in the same run on the same database.
    full_web, full_url = _start_web(ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH="false")
    path = "/api/v1/fabric/heartbeat"
    try:
        _hammer(f"{url}{path}", beats, 2, web_pid)  # warm-up
        _hammer(f"{full_url}{path}", beats, 2, full_web.pid)
        runs: dict[str, list[tuple[float, float]]] = {"fast": [], "full": [], "floor": []}
        for _ in range(REPEATS):
            runs["fast"].append(_hammer(f"{url}{path}", beats, HEARTBEAT_WINDOW, web_pid))
            runs["full"].append(_hammer(f"{full_url}{path}", beats, HEARTBEAT_WINDOW, full_web.pid))
            runs["floor"].append(_hammer(f"{url}{path}", floor, HEARTBEAT_WINDOW, web_pid))
            say("heartbeats: " + ", ".join(f"{kind} {rate:.0f}/s at {cpu:.2f} ms CPU each"
                                           for kind, (rate, cpu) in
                                           ((k, v[-1]) for k, v in runs.items())))  # fmt: skip
    finally:
        os.killpg(full_web.pid, signal.SIGTERM)
        full_web.wait(30)
    rates, cpu_ms = [r for r, _ in runs["fast"]], [c for _, c in runs["fast"]]
    full_rates, full_cpu = [r for r, _ in runs["full"]], [c for _, c in runs["full"]]
    floor_rates, floor_cpu = [r for r, _ in runs["floor"]], [c for _, c in runs["floor"]]
    needed = N_NODES / heartbeat
    results.append(figure("fabric_heartbeats_per_second_1000_nodes", rates, "beats/s", needed,
                          "higher", baseline=("http_401_floor_per_second", floor_rates)))  # fmt: skip
    results.append(figure("fabric_heartbeat_server_cpu", cpu_ms, "ms", 2.5, "lower",
                          baseline=("http_401_floor_server_cpu", floor_cpu)))  # fmt: skip
    results.append(figure(f"fabric_heartbeat_cpu_share_1000_nodes_every_{heartbeat}s",
                          [c * needed / 1000 * 100 for c in cpu_ms], "% core", 50.0,
                          "lower"))  # fmt: skip
    # Without the fast path (ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH=false): for comparison only.
    results.append(figure("fabric_heartbeats_per_second_1000_nodes_full_api_path", full_rates,
                          "beats/s", needed, "higher",
                          baseline=("http_401_floor_per_second", floor_rates)))  # fmt: skip
    results.append(figure("fabric_heartbeat_server_cpu_full_api_path", full_cpu, "ms", 5.0,
                          "lower", baseline=("http_401_floor_server_cpu", floor_cpu)))  # fmt: skip
    ComputeNode.objects.filter(name__startswith="hb-").delete()


def child(mode: str, out: Path) -> None:
    import tempfile

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="orchcap-bench-agents-") as work:
        if mode == "fast":
            say("scheduler with 1,000 nodes…")
            bench_scheduler(results)
            say(f"dispatch with two local agents (heartbeat {HEARTBEAT} s)…")
            bench_dispatch(results, Path(work))
        elif mode == "heartbeats":
            say("heartbeats of 1,000 nodes at the default settings…")
            _bench_user()
            with Fleet(Path(work)) as fleet:
                bench_heartbeats(
                    results, fleet.url, fleet.web.pid, settings.ORCHCAP_HEARTBEAT_SECONDS
                )
        else:
            say("heartbeats of 1,000 nodes and failover at the default settings…")
            bench_defaults(results, Path(work))
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child(sys.argv[1], Path(sys.argv[2]))
