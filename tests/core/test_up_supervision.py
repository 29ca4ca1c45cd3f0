"""How `manage.py up` supervises its children: one `up` shared by the tests of this module (a
real server in a fresh data dir), with short backoff and stability times. Split from
test_up.py so that the two halves (minutes each) can run on different test workers."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from orchcap.runtime.supervisor import state_path
from tests.core.test_up import gone, wait_until_serving
from tests.processes import ROOT, free_port, manage_env, stop_process

pytestmark = pytest.mark.slow

SUPERVISION = {
    "ORCHCAP_UP_BACKOFF_INITIAL": "1",
    "ORCHCAP_UP_BACKOFF_MAX": "2",
    "ORCHCAP_UP_STABLE_SECONDS": "8",  # each restart test waits it out once
    "ORCHCAP_UP_MAX_RESTARTS": "5",
    # Liveness: a child that answers no probe for about 24 s is hung (30 s x 4 by default); not
    # shorter, as a loaded machine can keep a healthy worker's answer to a ping late for seconds.
    "ORCHCAP_UP_PROBE_SECONDS": "3",
    "ORCHCAP_UP_PROBE_MISSES": "8",
    "ORCHCAP_HEALTH_WORKER_TIMEOUT": "1",
    "WEB_CONCURRENCY": "1",
    "ORCHCAP_WORKER_CONCURRENCY": "1",
}


@dataclass
class Supervised:
    process: subprocess.Popen[str]
    data_dir: Path
    base: str
    output: Path

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def child(self, name: str) -> dict:
        return json.loads(state_path(self.data_dir).read_text())["children"][name]


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    root = tmp_path_factory.mktemp("supervised")
    data_dir, port = root / "data", free_port()
    output = root / "up.out"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "up", "--no-demo", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=manage_env(
                ORCHCAP_DATA_DIR=str(data_dir), DATABASE_URL=None, CELERY_BROKER_URL=None,
                **SUPERVISION,
            ),
            cwd=ROOT,
        )  # fmt: skip
    running = Supervised(process, data_dir, f"http://127.0.0.1:{port}", output)
    try:
        wait_until_serving(process, f"{running.base}/login/", log=running.log)
        yield running
    finally:
        stop_process(process, signal.SIGINT, timeout=60)
        assert gone(data_dir) == [], running.log()


def health_status(base: str) -> str | None:
    """What /healthz tells an anonymous caller; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            return json.loads(response.read())["status"]
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        assert set(body) == {"status"}, body  # anonymous callers learn nothing else
        return body["status"]
    except OSError:
        return None


def wait_healthy(running: Supervised, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while health_status(running.base) != "ok":
        if running.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail("not healthy:\n" + running.log()[-5000:])
        time.sleep(0.5)


@pytest.mark.parametrize("name", ["worker", "beat", "web", "broker", "postgres"])
def test_a_child_killed_with_sigkill_is_restarted_and_healthz_says_degraded_until_it_is_stable(
    supervised, name
):
    wait_healthy(supervised)
    before = supervised.child(name)
    os.kill(before["pid"], signal.SIGKILL)

    seen: list[str | None] = []
    deadline = time.monotonic() + 150
    while True:
        status = health_status(supervised.base)
        if not seen or seen[-1] != status:
            seen.append(status)
        after = supervised.child(name)
        if status == "ok" and after["restarts"] > before["restarts"]:
            break
        if supervised.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{name}: healthz said {seen}\n" + supervised.log()[-5000:])
        time.sleep(0.5)

    assert "degraded" in seen, seen
    assert after["restarts"] == before["restarts"] + 1
    assert after["pid"] != before["pid"]
    assert after["state"] == "running"
    log = supervised.log()
    assert f"orchcap: {name} died (" in log
    assert f"orchcap: {name} restarted (pid {after['pid']}, restart 1)" in log
    assert supervised.process.poll() is None  # nothing else stopped


def test_a_hung_worker_is_killed_and_restarted(supervised):
    """Alive but of no use: SIGSTOP freezes the worker, which then answers no ping."""
    wait_healthy(supervised)
    before = supervised.child("worker")
    os.killpg(before["pid"], signal.SIGSTOP)

    deadline = time.monotonic() + 120
    while True:
        after = supervised.child("worker")
        if after["restarts"] > before["restarts"] and health_status(supervised.base) == "ok":
            break
        if supervised.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the hung worker was not restarted:\n" + supervised.log()[-5000:])
        time.sleep(0.5)

    assert after["pid"] != before["pid"]
    assert not psutil.pid_exists(before["pid"])  # killed, not left stopped behind its successor
    log = supervised.log()
    assert "orchcap: worker did not answer its probe (8 in a row)" in log
    assert "orchcap: worker died (hung: it did not answer 8 probes in a row)" in log
    assert supervised.process.poll() is None


def test_a_child_that_keeps_dying_makes_up_stop_everything_with_one_clear_line(supervised):
    wait_healthy(supervised)
    killed: set[int] = set()
    deadline = time.monotonic() + 120
    while supervised.process.poll() is None and time.monotonic() < deadline:
        try:
            worker = supervised.child("worker")
        except FileNotFoundError:  # up removes its state file as it stops
            break
        if worker["state"] != "restarting" and worker["pid"] not in killed:
            os.kill(worker["pid"], signal.SIGKILL)  # dies again before it is stable
            killed.add(worker["pid"])
        time.sleep(0.1)
    supervised.process.wait(60)
    log = supervised.log()
    assert supervised.process.returncode == 1, log[-5000:]
    assert len(killed) == 6  # the first death and 5 restarts that died again
    assert (
        "orchcap: worker died 6 times in a row, never staying up for 8s (last: killed by SIGKILL); giving up; stopping everything"
        in log
    )
    assert "embedded engines stopped" in log
    assert not state_path(supervised.data_dir).exists()
    assert gone(supervised.data_dir) == [], log[-5000:]
