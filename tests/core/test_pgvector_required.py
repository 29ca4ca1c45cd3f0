"""On a PostgreSQL without pgvector, startup and migrate stop with one clear line and write nothing.

Uses the machine's system PostgreSQL at 127.0.0.1:5432 (database `test`), which has no pgvector.
"""

import psycopg
import pytest

from tests.processes import free_port, run_manage, start_worker, stop_process

SYSTEM_PG = "postgres://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def system_postgres_without_pgvector():
    try:
        with psycopg.connect(SYSTEM_PG, connect_timeout=3) as conn:
            has_vector = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no system PostgreSQL at 127.0.0.1:5432 ({exc})")
    if has_vector:
        pytest.skip("the system PostgreSQL has pgvector; this test needs one without")
    return SYSTEM_PG


def _tables() -> set[str]:
    with psycopg.connect(SYSTEM_PG) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_migrate_stops_with_one_line_about_pgvector(system_postgres_without_pgvector):
    before = _tables()
    result = run_manage("migrate", DATABASE_URL=system_postgres_without_pgvector)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no pgvector extension" in lines[0]
    assert "unset DATABASE_URL" in lines[0]
    assert _tables() == before


def test_up_stops_with_the_same_line(system_postgres_without_pgvector, tmp_path):
    result = run_manage(
        "up",
        "--port",
        str(free_port()),
        DATABASE_URL=system_postgres_without_pgvector,
        ORCHCAP_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 2
    assert "no pgvector extension" in result.stderr
    assert "Traceback" not in result.stderr
    assert "django_migrations" not in _tables()


def test_a_worker_on_such_a_server_exits_2_instead_of_consuming(system_postgres_without_pgvector):
    worker = start_worker(DATABASE_URL=system_postgres_without_pgvector)
    try:
        worker.wait(60)
    finally:
        output = stop_process(worker)
    assert worker.returncode == 2
    assert "no pgvector extension" in output
