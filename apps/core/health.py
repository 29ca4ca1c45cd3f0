"""Health of what orchcap depends on: the database, pgvector, the broker and at least one worker,
plus what `up`'s supervisor says about the processes it restarted."""

import hmac
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from orchcap.runtime.supervisor import read_state


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            (version,) = cursor.fetchone()
    except Exception as exc:  # anything here means "down", with its reason
        return Check("database", False, _one_line(exc))
    return Check("database", True, version.split(" on ")[0])


def check_pgvector() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
    except Exception as exc:
        return Check("pgvector", False, _one_line(exc))
    if row is None:
        return Check("pgvector", False, "the vector extension is not installed in this database")
    return Check("pgvector", True, f"vector {row[0]}")


def check_broker() -> Check:
    from orchcap.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:
        return Check("broker", False, _one_line(exc))
    return Check("broker", True, f"{transport} broker reachable")


def check_worker() -> Check:
    from orchcap.celery import app

    try:
        replies = app.control.ping(timeout=settings.ORCHCAP_HEALTH_WORKER_TIMEOUT)
    except Exception as exc:
        return Check("worker", False, _one_line(exc))
    if not replies:
        return Check("worker", False, "no Celery worker answered a ping")
    names = sorted(name for reply in replies for name in reply)
    return Check("worker", True, f"{len(names)} worker(s): {', '.join(names)}")


def run_checks() -> list[Check]:
    database = check_database()
    pgvector = check_pgvector() if database.ok else Check("pgvector", False, "database is down")
    broker = check_broker()
    worker = check_worker() if broker.ok else Check("worker", False, "broker is down")
    return [database, pgvector, broker, worker]


@dataclass(frozen=True)
class Supervision:
    degraded: list[str]  # children restarting, or restarted and not yet stable
    children: dict[str, dict[str, Any]]


def supervision() -> Supervision | None:
    """What the `up` running on this data dir reports, or None when no `up` supervises it."""
    state = read_state(settings.DATA_DIR)
    if state is None:
        return None
    now = time.time()
    children = state.get("children") or {}
    degraded = sorted(
        name
        for name, child in children.items()
        if child.get("state") != "running" or now < float(child.get("degraded_until") or 0)
    )
    return Supervision(degraded=degraded, children=children)


def may_see_details(request: HttpRequest) -> bool:
    """Staff, superusers and holders of the metrics token see what failed; others only a status."""
    user = request.user
    if user.is_authenticated and (user.is_staff or user.is_superuser):
        return True
    token = settings.ORCHCAP_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
