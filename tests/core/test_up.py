"""`manage.py up` as a user runs it: a real server on a free port in a fresh data dir."""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from orchcap.runtime.supervisor import state_path
from tests.processes import ROOT, free_port, manage_env, run_manage, stop_process

pytestmark = pytest.mark.slow


def start_up(data_dir, port) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=manage_env(ORCHCAP_DATA_DIR=str(data_dir), DATABASE_URL=None, CELERY_BROKER_URL=None),
        cwd=ROOT,
    )


def wait_until_serving(process, url, timeout=240, log: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log() if log else process.stdout.read() if process.stdout else ""
            pytest.fail("up exited early:\n" + output)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout}s")


def processes_of(data_dir) -> list[int]:
    """Processes still running with ORCHCAP_DATA_DIR=data_dir (up's web, worker and beat)."""
    wanted = f"ORCHCAP_DATA_DIR={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def gone(data_dir, timeout=30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_of(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def log_in(base, username, password) -> tuple[int, str]:
    """Log in through the real login form; returns the final status and page."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password}
    ).encode()
    request = urllib.request.Request(
        f"{base}/login/", data=data, headers={"Referer": f"{base}/login/"}
    )
    with opener.open(request, timeout=10) as response:
        return response.status, response.read().decode()


def test_up_serves_keeps_data_across_restarts_and_refuses_a_second_instance(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    first = start_up(data_dir, port)
    try:
        wait_until_serving(first, f"{base}/login/")
        logins = (data_dir / "demo-logins.txt").read_text().splitlines()
        assert len(logins) == 5
        for line in logins:
            role, username, password = line.split()
            status, page = log_in(base, username, password)
            assert status == 200
            assert "Hello, " in page, (role, username)
            assert "Log in</button>" not in page

        second = run_manage("up", "--port", str(free_port()), ORCHCAP_DATA_DIR=str(data_dir))
        assert second.returncode == 2
        assert "already running" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        output = stop_process(first, signal.SIGINT, timeout=60)
    assert first.returncode == 0, output
    assert "stopping web, beat and worker" in output
    assert "embedded engines stopped" in output
    assert "demo logins" in output
    assert gone(data_dir) == [], output

    again = start_up(data_dir, port)
    try:
        wait_until_serving(again, f"{base}/login/")
        assert (data_dir / "demo-logins.txt").read_text().splitlines() == logins
        role, username, password = logins[0].split()
        status, page = log_in(base, username, password)
        assert "Hello, " in page
    finally:
        output = stop_process(again, signal.SIGTERM, timeout=60)
    assert again.returncode == 0, output
    assert "Demo logins (shown once" not in output  # not seeded twice
    assert gone(data_dir) == [], output


def test_up_on_a_taken_port_says_so_in_one_line(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_manage("up", "--port", str(port), ORCHCAP_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "PORT=" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_killed_hard_takes_its_children_along_and_the_next_up_recovers(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    first = start_up(data_dir, port)
    try:
        wait_until_serving(first, f"http://127.0.0.1:{port}/login/")
    except BaseException:
        # Not serving in time: stop it properly, or its worker outlives the test.
        stop_process(first, signal.SIGINT, timeout=60)
        raise
    first.kill()  # SIGKILL: no cleanup runs in `up` itself
    first.wait(10)

    again = start_up(data_dir, port)  # same port: the dead instance's web server must be gone
    try:
        wait_until_serving(again, f"http://127.0.0.1:{port}/login/")
    finally:
        output = stop_process(again, signal.SIGINT, timeout=60)
    assert again.returncode == 0, output
    # Stopped means stopped: no web, worker or beat process of it is left behind.
    assert gone(data_dir) == [], output


# --- supervision: one `up` shared by the tests below, with short backoff and stability times ---

SUPERVISION = {
    "ORCHCAP_UP_BACKOFF_INITIAL": "1",
    "ORCHCAP_UP_BACKOFF_MAX": "2",
    "ORCHCAP_UP_STABLE_SECONDS": "15",
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
        "orchcap: worker died 6 times in a row, never staying up for 15s (last: killed by SIGKILL); giving up; stopping everything"
        in log
    )
    assert "embedded engines stopped" in log
    assert not state_path(supervised.data_dir).exists()
    assert gone(supervised.data_dir) == [], log[-5000:]
