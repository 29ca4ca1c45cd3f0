"""orchcap benchmarks: `make bench` prints a table and writes bench/results.json.

Every figure is the median of at least 3 runs (bench/measure.py), with min and max beside it and,
where a bare-library equivalent exists, that baseline measured in the same run and the ratio to
it; the load average is printed at the start and the end. How to read it: bench/README.md.
Everything runs in throwaway data dirs on this machine; nothing here is asserted in tests.
`bench/run.py fabric cases` runs only those parts (and leaves bench/results.json alone); `pages`
measures every page's server time on the demo data (bench/pages.py).
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

from capital import bench_capital  # noqa: E402 (bench/capital.py, beside this file)
from cases import bench_cases  # noqa: E402
from classifiers import bench_classifiers  # noqa: E402
from connectors import bench_connectors  # noqa: E402
from fabric import bench_fabric  # noqa: E402
from measure import REPEATS, figure, timed  # noqa: E402
from orchestrations import bench_orchestrations  # noqa: E402
from pages import bench_pages  # noqa: E402
from precedents import bench_precedents  # noqa: E402
from skills import bench_skills  # noqa: E402

from orchcap.runtime.broker import EmbeddedBroker  # noqa: E402
from orchcap.runtime.postgres import EmbeddedPostgres  # noqa: E402


def bench_engines(data: Path) -> list[dict[str, object]]:
    import psycopg

    firsts, restarts, checks, socket_us, broker_starts, system_us = [], [], [], [], [], []
    for run in range(REPEATS):
        postgres = EmbeddedPostgres(data / f"pg{run}")
        firsts.append(timed(postgres.ensure_running))  # initdb + start + database + pgvector
        postgres.stop()
        restarts.append(timed(postgres.ensure_running))
        checks.append(statistics.median(timed(postgres.ensure_running) for _ in range(50)) * 1000)
        with psycopg.connect(**postgres.connection_kwargs()) as conn:
            socket_us.append(_select1_p50_us(conn))
        postgres.stop()
        try:  # the machine's own PostgreSQL, when there is one: the bare-server baseline
            with psycopg.connect(SYSTEM_PG, connect_timeout=2) as conn:
                system_us.append(_select1_p50_us(conn))
        except psycopg.OperationalError:
            pass
        broker = EmbeddedBroker(data / f"broker{run}")
        broker_starts.append(timed(broker.ensure_running))
        broker.stop()
    system = ("system_postgres_select1_over_tcp_p50", system_us) if system_us else None
    return [
        figure("embedded_postgres_first_start", firsts, "s", 10.0, "lower"),
        figure("embedded_postgres_restart", restarts, "s", 3.0, "lower"),
        figure("embedded_postgres_already_running_check", checks, "ms", 5.0, "lower"),
        figure(
            "embedded_postgres_select1_over_socket_p50",
            socket_us,
            "us",
            500.0,
            "lower",
            baseline=system,
        ),
        figure("embedded_broker_start", broker_starts, "s", 2.0, "lower"),
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


def _start_up(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, float]:
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
    except BaseException:
        _stop_up(process)
        raise
    return process, port, time.perf_counter() - start


def _stop_up(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(90)


def bench_up(data: Path) -> list[dict[str, object]]:
    firsts, restarts, pages = [], [], []
    for run in range(REPEATS):
        # A fresh data dir each time: the first start migrates and loads the demo.
        env = {**os.environ, "ORCHCAP_DATA_DIR": str(data / f"up{run}")}
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)
        process, _, took = _start_up(env)
        firsts.append(took)
        _stop_up(process)
        process, port, took = _start_up(env)  # a restart on the same data
        restarts.append(took)
        try:
            latencies = []
            for _ in range(200):
                begin = time.perf_counter()
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/login/", timeout=5
                ) as response:
                    response.read()
                latencies.append(time.perf_counter() - begin)
            pages.append(statistics.median(latencies) * 1000)
        finally:
            _stop_up(process)
    return [
        figure("up_first_start_to_login_page", firsts, "s", 60.0, "lower"),
        figure("up_restart_to_login_page", restarts, "s", 20.0, "lower"),
        figure("login_page_p50_via_gunicorn", pages, "ms", 50.0, "lower"),
    ]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100_000 else f"{value:g}"
    return "" if value is None else str(value)


def print_table(results: list[dict[str, object]]) -> None:
    """One line per figure: median, min..max over the runs, target, and the bare baseline with
    the ratio to it where there is one."""
    rows = [("benchmark", "median", "min..max", "unit", "target", "meets", "baseline", "ratio")]
    for r in results:
        sign = "<=" if r["better"] == "lower" else ">="
        base = ""
        if "baseline_name" in r:
            base = f"{r['baseline_name']} {_cell(r['baseline_value'])}"
        rows.append(
            (
                str(r["name"]),
                _cell(r["value"]),
                f"{_cell(r['min'])}..{_cell(r['max'])}",
                str(r["unit"]),
                f"{sign} {_cell(r['target'])}",
                "yes" if r["meets"] else "NO",
                base,
                f"{r['ratio']}x" if "ratio" in r else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {1, 2, 4, 7}
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def main() -> None:
    args = sys.argv[1:]
    # `--merge`: a partial run replaces its parts' figures in bench/results.json, keeping the rest.
    merge = "--merge" in args
    only = set(args) - {"--merge"}  # e.g. `bench/run.py fabric` while working on one part
    parts = [
        ("engines", "engines…", bench_engines),
        ("up", "up (first start and restart, each 3 times)…", bench_up),
        ("cases", "knowledge capture (a process with a million cases; about 8 minutes)…", bench_cases),
        ("classifiers", "rules and classifiers (100,000 decisions; about 8 minutes)…", bench_classifiers),
        ("precedents", "precedents: same decision as the case? (generated demo processes; about 4 minutes)…", bench_precedents),
        ("fabric", "compute fabric (1,000 nodes, real agents, failover at default settings)…", bench_fabric),
        ("pages", "every page's server time on the demo data (about 2 minutes)…", bench_pages),
        ("connectors", "outbound webhooks (a real worker and beat, a loopback receiver, a 60 s outage; about 6 minutes)…", bench_connectors),
        ("orchestrations", "orchestrations: sync answers (20 clients) and batched inbound, served by gunicorn with a worker (about 5 minutes)…", bench_orchestrations),
        ("capital", "capital metrics (a team with 1M cases, 50k runs, 1,000 nodes; 100 teams' snapshot)…", bench_capital),
        ("skills", "skills: evidence and expertise refresh (1,000 people, 1M decisions), routing among 200 experts…", bench_skills),
    ]  # fmt: skip
    results: list[dict[str, object]] = []
    failed: list[str] = []
    load_start = _load()
    print(
        f"load average at start: {load_start}; every figure is the median of {REPEATS} runs",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="orchcap-bench-"))
    try:
        for key, title, bench in parts:
            if only and key not in only:
                continue
            print(title, flush=True)
            try:
                figures = bench(work / key)
            except Exception as exc:  # one broken part must not cost the others' figures
                failed.append(key)
                print(f"  {key} FAILED: {exc!r}", flush=True)
                continue
            stamp = {"part": key, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            results += [{**item, **stamp} for item in figures]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_end = _load()
    out = ROOT / "bench" / "results.json"
    ran = {key for key, *_ in parts if (not only or key in only) and key not in failed}
    if (merge or failed) and out.exists():
        # Figures of the parts that didn't run (or failed) stay as they were measured last.
        previous = json.loads(out.read_text())
        results = [item for item in previous if item.get("part") not in (None, *ran)] + results
    if not only or merge:  # a plain partial run doesn't overwrite the full results
        out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print_table(results)
    print(f"\nload average at start: {load_start}")
    print(f"load average at end:   {load_end}")
    written = not only or merge
    print(f"written to {out}" if written else "(a partial run: bench/results.json left as it was)")
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (their last figures kept in {out.name})")


if __name__ == "__main__":
    main()
