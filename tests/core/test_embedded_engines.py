"""The embedded engines recover from crashes and double starts without losing data."""

import os
import signal
import threading
import time

import psutil
import psycopg
import pytest
import redis

from orchcap.runtime.broker import EmbeddedBroker
from orchcap.runtime.postgres import EmbeddedPostgres
from tests.processes import run_manage

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres(tmp_path):
    server = EmbeddedPostgres(tmp_path / "data")  # durable settings, as `up` runs it
    server.ensure_running()
    yield server
    server.stop()


@pytest.fixture
def broker(tmp_path):
    server = EmbeddedBroker(tmp_path / "data")
    server.ensure_running()
    yield server
    server.stop()


def _kill_hard(pid: int) -> None:
    process = psutil.Process(pid)
    children = process.children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    psutil.wait_procs([process, *children], timeout=15)


def _runs_in(proc: psutil.Process, directory) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE and proc.cwd() == str(directory)
    except psutil.Error:
        return False


def test_postgres_starts_once_creates_database_and_pgvector(postgres):
    pid = postgres._postmaster_pid()
    postgres.ensure_running()  # a second start is a no-op
    assert postgres._postmaster_pid() == pid
    with psycopg.connect(**postgres.connection_kwargs()) as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()


def test_postgres_recovers_after_a_crash_with_its_data(postgres):
    with psycopg.connect(**postgres.connection_kwargs(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    _kill_hard(postgres._postmaster_pid())
    assert (postgres.pgdata / "postmaster.pid").exists()  # stale, naming a dead process
    assert not postgres.is_running()

    postgres.ensure_running()
    with psycopg.connect(**postgres.connection_kwargs()) as conn:
        assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)


def test_postgres_restarts_after_its_postmaster_is_killed_while_a_query_still_runs(postgres):
    def long_query() -> None:
        try:
            with psycopg.connect(**postgres.connection_kwargs()) as conn:
                conn.execute("SELECT count(*) FROM generate_series(1, 5000000000)")
        except psycopg.Error:
            pass  # its server process is ended below

    query = threading.Thread(target=long_query, daemon=True)
    query.start()
    time.sleep(1)  # the backend is busy counting
    os.kill(postgres._postmaster_pid(), signal.SIGKILL)  # only the postmaster, as a crash would
    time.sleep(0.5)
    # The busy backend outlives its postmaster and keeps the shared memory block attached.
    assert any(_runs_in(proc, postgres.pgdata) for proc in psutil.process_iter())

    postgres.ensure_running()
    with psycopg.connect(**postgres.connection_kwargs()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    query.join(10)
    assert not query.is_alive()


def test_broker_recovers_after_a_crash_with_its_queue(broker):
    client = redis.Redis(unix_socket_path=str(broker.socket))
    client.rpush("orchcap", "queued task")
    client.execute_command("BGREWRITEAOF")
    time.sleep(1.5)  # appendfsync everysec
    _kill_hard(broker._pid())
    assert broker.socket.exists()  # stale socket left by the crash
    assert not broker.is_running()

    broker.ensure_running()
    client = redis.Redis(unix_socket_path=str(broker.socket))
    assert client.lrange("orchcap", 0, -1) == [b"queued task"]


def test_engines_command_reports_and_stops(tmp_path):
    data = str(tmp_path / "data")
    started = run_manage(
        "engines", "start", ORCHCAP_DATA_DIR=data, DATABASE_URL=None, CELERY_BROKER_URL=None
    )
    assert started.returncode == 0, started.stderr
    assert "postgres: running" in started.stdout
    assert "broker: running" in started.stdout
    stopped = run_manage(
        "engines", "stop", ORCHCAP_DATA_DIR=data, DATABASE_URL=None, CELERY_BROKER_URL=None
    )
    assert "postgres: stopped" in stopped.stdout
    assert "broker: stopped" in stopped.stdout
    assert not EmbeddedPostgres(tmp_path / "data").is_running()
