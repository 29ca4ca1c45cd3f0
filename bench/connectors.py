"""Outbound webhook benchmarks (issue 12, "Speed").

`bench_connectors(data)` runs this file in a subprocess on a fresh data dir (Django must see
ORCHCAP_DATA_DIR before `django.setup()`), like bench/classifiers.py. The child starts a real
Celery worker with beat (`celery -A orchcap worker -B`, 4 threads, the default webhook settings
but for ORCHCAP_WEBHOOK_ALLOWED_HOSTS=127.0.0.1) and a receiver on loopback (Python's
ThreadingHTTPServer, keep-alive, answering 200; tests/connectors/receiver.py).

- Deliveries/s: N_DELIVERIES (2,000) events for one connector committed in one transaction (one
  drain task sent on commit); measured from the commit to the last delivery
  recorded as delivered in the database (polled every 20 ms): signing, sending in order over a
  kept-alive connection, the attempt rows and state updates included. Target ≥ 500/s.
  Baseline: a bare `requests.Session` POST loop of the same bodies and headers to the same
  receiver (keep-alive too), in the same run.
- Backlog after an outage: the receiver stops; for BENCH_WEBHOOK_OUTAGE seconds (60) an event
  is committed every 0.1 s (the first fails and waits for its 5 s, then 5-minute retry; the
  others wait behind it); the receiver comes back. Measured: from its return to the last of the
  backlog recorded as delivered — beat's sweep and the probe (every ORCHCAP_WEBHOOK_PROBE_SECONDS)
  at their defaults, not the retry schedule. Target ≤ 30 s.

Every figure is the median of REPEATS runs (bench/measure.py).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from measure import REPEATS, figure, run_in_child

ROOT = Path(__file__).resolve().parent.parent
N_DELIVERIES = int(os.environ.get("BENCH_WEBHOOK_DELIVERIES", "2000"))
OUTAGE = float(os.environ.get("BENCH_WEBHOOK_OUTAGE", "60"))
_started = time.monotonic()


def say(message: str) -> None:
    print(f"  connectors [{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def bench_connectors(data: Path) -> list[dict[str, object]]:
    # The webhook settings at their defaults (but the loopback receiver allowed).
    tuned = tuple(k for k in os.environ if k.startswith("ORCHCAP_WEBHOOK_"))
    env = {"SECURE_SSL_REDIRECT": "false", "LOG_LEVEL": "WARNING", "ORCHCAP_LOCAL_NODE": "false",
           "ORCHCAP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}  # fmt: skip
    return run_in_child(__file__, data, env=env, drop=tuned)


# --- the child side ----------------------------------------------------------------------------


def _start_worker() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "orchcap", "worker", "-B", "--loglevel", "WARNING",
         "--pool", "threads", "--concurrency", "4", "--hostname", "bench-webhooks@%h",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def _wait_delivered(connector, count: int, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Polls until `count` of the connector's deliveries are delivered; returns when (monotonic)."""
    from apps.connectors.models import Delivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Delivery.objects.filter(connector=connector, state="delivered").count()
        if done >= count:
            return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError(f"only {done} of {count} delivered within {timeout} s")


def _connector(team, user, receiver, name: str):  # type: ignore[no-untyped-def]
    from apps.connectors.services.connectors import create_connector

    return create_connector(
        team=team, name=name, url=receiver.url, event_types=["item.decided"], owner=user
    )


PAYLOAD = {
    "external_id": "INV-2026-000123",
    "outcome": "decided",
    "label": "approve",
    "reason_code": "po_matched",
    "by": {"kind": "model", "version": 7},
    "confidence": 0.973,
    "orchestration": {"slug": "ap-invoices", "version": 3},
}


def bench_throughput(team, user, receiver, results: list[dict]) -> None:  # type: ignore[no-untyped-def]
    import requests
    from django.db import transaction

    from apps.connectors.services.deliveries import enqueue_event, message_body, message_headers

    rates, baseline = [], []
    for run in range(REPEATS):
        connector = _connector(team, user, receiver, f"throughput-{run}")
        before = len(receiver.posts)
        commit: list[float] = []
        with transaction.atomic():
            # Registered first, so it runs first on commit: the moment the rows become visible.
            transaction.on_commit(lambda commit=commit: commit.append(time.monotonic()))
            sent = [
                enqueue_event(team=team, event_type="item.decided", payload={**PAYLOAD, "n": n})[0]
                for n in range(N_DELIVERIES)
            ]
        committed = commit[0]
        done = _wait_delivered(connector, N_DELIVERIES, timeout=300)
        rates.append(N_DELIVERIES / (done - committed))
        assert len(receiver.posts) - before == N_DELIVERIES, "each delivery exactly once"
        # Baseline: the same bodies and headers, POSTed in a bare keep-alive loop.
        messages = [
            (body, message_headers(connector=connector, delivery=d, body=body))
            for d in sent
            for body in [message_body(d)]
        ]
        with requests.Session() as session:
            start = time.perf_counter()
            for body, headers in messages:
                session.post(
                    receiver.url, data=body, headers=headers, timeout=15
                ).raise_for_status()
            baseline.append(len(messages) / (time.perf_counter() - start))
        team.connectors.filter(pk=connector.pk).update(enabled=False)
        say(f"run {run + 1}: {rates[-1]:.0f} deliveries/s, bare requests loop {baseline[-1]:.0f}/s")
    results.append(
        figure("webhook_deliveries_per_s", rates, "deliveries/s", 500.0, "higher",
               baseline=("requests_session_post_loop_per_s", baseline))
    )  # fmt: skip


def bench_backlog_after_outage(team, user, receiver, results: list[dict]) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction

    from apps.connectors.services.deliveries import enqueue_event

    seconds = []
    for run in range(REPEATS):
        connector = _connector(team, user, receiver, f"outage-{run}")
        receiver.stop()
        count = 0
        end = time.monotonic() + OUTAGE
        while time.monotonic() < end:
            with transaction.atomic():
                enqueue_event(team=team, event_type="item.decided", payload={**PAYLOAD, "n": count})
            count += 1
            time.sleep(0.1)
        receiver.start()
        back = time.monotonic()
        done = _wait_delivered(connector, count, timeout=120)
        seconds.append(done - back)
        team.connectors.filter(pk=connector.pk).update(enabled=False)
        say(
            f"run {run + 1}: backlog of {count} delivered {seconds[-1]:.1f} s after the receiver's return"
        )
    results.append(figure("webhook_backlog_after_outage_s", seconds, "s", 30.0, "lower"))


def child(out: Path) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.people import services as people
    from apps.people.models import Role
    from tests.connectors.receiver import Receiver

    call_command("migrate", verbosity=0)
    team = people.create_team(slug="ap", name="Accounts Payable")
    user = get_user_model().objects.create_user(username="bench", email="bench@localhost")
    people.add_member(team=team, user=user, role=Role.MANAGER)
    receiver = Receiver().start()
    worker = _start_worker()
    try:
        # Warm-up: the worker consumes and delivers before any clock starts.
        from apps.connectors.services.deliveries import enqueue_event

        warm = _connector(team, user, receiver, "warm-up")
        enqueue_event(team=team, event_type="item.decided", payload=PAYLOAD)
        _wait_delivered(warm, 1, timeout=120)
        team.connectors.filter(pk=warm.pk).update(enabled=False)
        say("worker ready")
        results: list[dict] = []
        bench_throughput(team, user, receiver, results)
        bench_backlog_after_outage(team, user, receiver, results)
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.stop()
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child(Path(sys.argv[1]))
