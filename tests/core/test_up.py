"""`manage.py up` as a user runs it: a real server on a free port in a fresh data dir.

How `up` supervises its children (restarts, backoff, hung children) is in test_up_supervision.py:
a module of its own, so that the two halves (minutes each) can run on different test workers."""

import http.cookiejar
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
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, manage_env, run_manage, stop_process

pytestmark = pytest.mark.slow


def start_up(data_dir, port, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port), *options],
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
    # Without the demo: seeding it is the test above's; this one is about the processes.
    first = start_up(data_dir, port, "--no-demo")
    try:
        wait_until_serving(first, f"http://127.0.0.1:{port}/login/")
    except BaseException:
        # Not serving in time: stop it properly, or its worker outlives the test.
        stop_process(first, signal.SIGINT, timeout=60)
        raise
    first.kill()  # SIGKILL: no cleanup runs in `up` itself
    first.wait(10)

    again = start_up(data_dir, port, "--no-demo")  # same port: the dead one's server must be gone
    try:
        wait_until_serving(again, f"http://127.0.0.1:{port}/login/")
    finally:
        output = stop_process(again, signal.SIGINT, timeout=60)
    assert again.returncode == 0, output
    # Stopped means stopped: no web, worker or beat process of it is left behind.
    assert gone(data_dir) == [], output
