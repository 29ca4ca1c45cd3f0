"""pytest plugin (`-p orchcap.runtime.testing`): one embedded PostgreSQL + broker per test session.

Loaded before pytest-django reads the settings, so the whole session runs on a fresh data dir and
never touches var/. Set ORCHCAP_TEST_DATA_DIR to keep the dir (and its engines) for inspection.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_kept = bool(os.environ.get("ORCHCAP_TEST_DATA_DIR"))
TEST_DATA_DIR = Path(
    os.environ.get("ORCHCAP_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="orchcap-test-")
)
os.environ["ORCHCAP_DATA_DIR"] = str(TEST_DATA_DIR)
os.environ.setdefault("DEBUG", "true")
# Children (manage.py, workers, servers) inherit it, so they verify the same hashes.
os.environ["ORCHCAP_TEST_FAST_HASHING"] = "true"
# Steady heartbeats written at once, so a test reads what it sent; their batching (a thread
# writing on its own connection, outside the test's transaction) is tested on its own.
os.environ.setdefault("ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS", "0")
for _external in ("DATABASE_URL", "CELERY_BROKER_URL"):
    # The suite runs on its own embedded engines; a developer's external services stay untouched.
    os.environ.pop(_external, None)


def pytest_configure(config: pytest.Config) -> None:
    from orchcap.runtime.broker import EmbeddedBroker
    from orchcap.runtime.postgres import EmbeddedPostgres

    TEST_DATA_DIR.mkdir(parents=True, exist_ok=True)
    EmbeddedPostgres(TEST_DATA_DIR, fast=True).ensure_running()
    EmbeddedBroker(TEST_DATA_DIR).ensure_running()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _kept:
        return
    from orchcap.runtime.broker import EmbeddedBroker
    from orchcap.runtime.postgres import EmbeddedPostgres

    EmbeddedBroker(TEST_DATA_DIR).stop()
    EmbeddedPostgres(TEST_DATA_DIR).stop()
    shutil.rmtree(TEST_DATA_DIR, ignore_errors=True)
