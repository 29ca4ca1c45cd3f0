"""orchcap benchmarks: `make bench` prints a table and writes bench/results.json.

Each result: {"name", "value", "unit", "target", "better": "lower"|"higher", "meets"}.
Everything runs in a throwaway data dir on this machine; nothing here is asserted in tests.
The knowledge-capture benchmarks (a process with a million cases) live in bench/cases.py.
"""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PG = os.environ.get("BENCH_SYSTEM_PG", "postgres://postgres@127.0.0.1:5432/postgres")
sys.path.insert(0, str(ROOT))

from cases import bench_cases  # noqa: E402 (bench/cases.py, beside this file)
from classifiers import bench_classifiers  # noqa: E402
from fabric import bench_fabric  # noqa: E402

from orchcap.runtime.broker import EmbeddedBroker  # noqa: E402
from orchcap.runtime.postgres import EmbeddedPostgres  # noqa: E402


def result(name: str, value: float, unit: str, target: float, better: str) -> dict[str, object]:
    meets = value <= target if better == "lower" else value >= target
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "target": target,
        "better": better,
        "meets": meets,
    }


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_engines(data: Path) -> list[dict[str, object]]:
    postgres = EmbeddedPostgres(data)
    first = timed(postgres.ensure_running)  # initdb + start + database + pgvector
    postgres.stop()
    restart = timed(postgres.ensure_running)
    warm_check = statistics.median(timed(postgres.ensure_running) for _ in range(50)) * 1000

    import psycopg

    with psycopg.connect(**postgres.connection_kwargs()) as conn:
        socket_query_us = _select1_p50_us(conn)
    postgres.stop()
    peer = []
    try:  # the machine's own PostgreSQL, when there is one, as a peer baseline
        with psycopg.connect(SYSTEM_PG, connect_timeout=2) as conn:
            system_query_us = _select1_p50_us(conn)
        peer = [
            result("system_postgres_select1_over_tcp_p50", system_query_us, "us", 500.0, "lower"),
            result(
                "embedded_vs_system_select1_ratio",
                socket_query_us / system_query_us,
                "x",
                1.5,
                "lower",
            ),
        ]
    except psycopg.OperationalError:
        pass

    broker = EmbeddedBroker(data)
    broker_start = timed(broker.ensure_running)
    broker.stop()
    return [
        result("embedded_postgres_first_start", first, "s", 10.0, "lower"),
        result("embedded_postgres_restart", restart, "s", 3.0, "lower"),
        result("embedded_postgres_already_running_check", warm_check, "ms", 5.0, "lower"),
        result("embedded_postgres_select1_over_socket_p50", socket_query_us, "us", 500.0, "lower"),
        result("embedded_broker_start", broker_start, "s", 2.0, "lower"),
        *peer,
    ]


def _select1_p50_us(conn) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(2000):
        start = time.perf_counter()
        conn.execute("SELECT 1").fetchone()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("`manage.py up` exited early")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (local URL)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def bench_up(data: Path) -> list[dict[str, object]]:
    env = {**os.environ, "ORCHCAP_DATA_DIR": str(data)}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    times = []
    latencies: list[float] = []
    for run in range(2):  # first start (migrate + demo), then a restart on the same data
        port = _free_port()
        start = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/login/", process)
            times.append(time.perf_counter() - start)
            if run == 1:
                for _ in range(200):
                    begin = time.perf_counter()
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/login/", timeout=5
                    ) as response:
                        response.read()
                    latencies.append(time.perf_counter() - begin)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(90)
    return [
        result("up_first_start_to_login_page", times[0], "s", 60.0, "lower"),
        result("up_restart_to_login_page", times[1], "s", 20.0, "lower"),
        result(
            "login_page_p50_via_gunicorn", statistics.median(latencies) * 1000, "ms", 50.0, "lower"
        ),
    ]


def main() -> None:
    results: list[dict[str, object]] = []
    work = Path(tempfile.mkdtemp(prefix="orchcap-bench-"))
    try:
        print("engines…", flush=True)
        results += bench_engines(work / "engines")
        print("up…", flush=True)
        results += bench_up(work / "up")
        print("knowledge capture (a process with a million cases; about 5 minutes)…", flush=True)
        results += bench_cases(work / "cases")
        print("rules and classifiers (100,000 decisions; about 5 minutes)…", flush=True)
        results += bench_classifiers(work / "classifiers")
        print("compute fabric (1,000 nodes, two real agents)…", flush=True)
        results += bench_fabric(work / "fabric")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    width = max(len(str(r["name"])) for r in results)
    print(f"{'benchmark':<{width}}  {'value':>10}  {'unit':<7}  {'target':>8}  meets")
    for r in results:
        sign = "<=" if r["better"] == "lower" else ">="
        print(
            f"{r['name']:<{width}}  {r['value']:>10}  {r['unit']:<7}  {sign}{r['target']:>6}  {'yes' if r['meets'] else 'NO'}"
        )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
