"""Steady heartbeats' figures, written in batches: one UPDATE per web process and flush interval
instead of one per heartbeat.

Why: at the default 5 s interval 1,000 nodes send 200 heartbeats/s, and a committed UPDATE costs
PostgreSQL several times the CPU of the indexed read that authenticates the heartbeat (a new row
version, WAL, a commit flushed to disk). The fast path (record_steady_heartbeat) reads; this
buffer keeps each node's latest figures in the process and writes them all every
ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS (1 s by default, always less than one heartbeat
interval), from the next heartbeat that finds them due or, when none comes, from a timer thread.

What is stored is the heartbeat's own time, so the sweeper's "3 missed intervals" is counted from
when the node really spoke: failover timing doesn't change, only when the row shows it (at most
a flush interval later). A heartbeat that changes anything (state, capabilities, leases, worker)
takes the full path and is written at once. A web process killed with SIGKILL loses at most its
last flush interval of figures (the next heartbeats bring them again); a graceful stop flushes.
"""

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection

from apps.fabric.models import ComputeNode

log = logging.getLogger(__name__)
TIMER_TICK = 0.2  # seconds between the timer's looks at the buffer (a dict check)


@dataclass
class Seen:
    """A node's latest steady heartbeat not yet written, and how many it stands for."""

    at: datetime
    figures: dict[str, object]
    version: str
    beats: int = 1


class LastSeenBuffer:
    """Per process; thread-safe (a threaded web worker, the timer thread)."""

    def __init__(self, *, timer: bool = True) -> None:
        self._timer = timer  # False: only heartbeats and explicit calls flush (tests)
        self._lock = threading.Lock()
        self._pending: dict[int, Seen] = {}
        self._oldest = 0.0  # monotonic time of the oldest unwritten heartbeat
        self._timer_pid: int | None = None

    def add(self, *, node_id: int, at: datetime, figures: dict[str, object], version: str) -> None:
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            earlier = self._pending.get(node_id)
            beats = earlier.beats + 1 if earlier is not None else 1
            self._pending[node_id] = Seen(at=at, figures=figures, version=version, beats=beats)
        self._start_timer()

    def due(self) -> bool:
        interval = settings.ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS
        return bool(self._pending) and time.monotonic() - self._oldest >= interval

    def pending(self) -> dict[int, Seen]:
        with self._lock:
            return dict(self._pending)

    def flush(self) -> int:
        """Write every buffered heartbeat in one UPDATE; returns how many nodes it covered.
        On a database error the heartbeats go back in the buffer (a newer one wins)."""
        with self._lock:
            taken, self._pending = self._pending, {}
            taken_oldest = self._oldest
        if not taken:
            return 0
        try:
            write_seen(taken)
        except DatabaseError:
            with self._lock:
                if not self._pending:
                    self._oldest = taken_oldest
                self._oldest = min(self._oldest, taken_oldest)
                for node_id, seen in taken.items():
                    newer = self._pending.get(node_id)
                    if newer is not None:
                        newer.beats += seen.beats
                    else:
                        self._pending[node_id] = seen
            raise
        return len(taken)

    def _start_timer(self) -> None:
        # One per process: a gunicorn worker forked from a master that had one needs its own.
        if not self._timer or self._timer_pid == os.getpid():
            return
        with self._lock:
            if self._timer_pid == os.getpid():
                return
            self._timer_pid = os.getpid()
        threading.Thread(target=self._run_timer, name="orchcap-last-seen", daemon=True).start()

    def _run_timer(self) -> None:
        """Flush what heartbeats left when no later heartbeat came to this process to do it.
        Rare under load (heartbeats flush first), so it closes its connection after each write:
        an idle web process holds none."""
        while True:
            time.sleep(TIMER_TICK)
            if not self.due():
                continue
            try:
                self.flush()
            except Exception:
                log.exception("writing buffered heartbeats failed; retrying")
            finally:
                connection.close()  # this thread's own connection


def write_seen(seen: dict[int, Seen]) -> None:
    """One UPDATE for these nodes' latest heartbeats, rows locked in id order (as everywhere).

    A revoked node's figures are dropped, and a newer heartbeat already written (the full path,
    another process) is never overwritten by an older one."""
    ids = sorted(seen)
    rows = [seen[i] for i in ids]
    table = ComputeNode._meta.db_table
    with connection.cursor() as cursor:
        # Two processes may hold beats of the same nodes: locking in id order, no deadlock.
        cursor.execute(
            "WITH v AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::int[], "  # noqa: S608 (our table)
            "%s::float8[], %s::float8[], %s::float8[], %s::int[], %s::int[], %s::text[]) "
            "AS u(id, at, beats, cpu, memory, load, running, idle, version)), "
            f"locked AS (SELECT n.id FROM {table} AS n JOIN v ON n.id = v.id "
            "WHERE n.revoked_at IS NULL "
            "AND (n.last_heartbeat_at IS NULL OR n.last_heartbeat_at < v.at) "
            "ORDER BY n.id FOR UPDATE OF n) "
            f"UPDATE {table} AS n SET last_heartbeat_at = v.at, updated_at = v.at, "
            "heartbeat_count = n.heartbeat_count + v.beats, cpu_percent = v.cpu, "
            "memory_percent = v.memory, load_average = v.load, running_tasks = v.running, "
            "idle_seconds = v.idle, "
            "software_version = COALESCE(NULLIF(v.version, ''), n.software_version) "
            "FROM v JOIN locked ON locked.id = v.id WHERE n.id = v.id "
            # Re-checked on the locked row: a revocation or newer beat that landed meanwhile.
            "AND n.revoked_at IS NULL "
            "AND (n.last_heartbeat_at IS NULL OR n.last_heartbeat_at < v.at)",
            [
                ids,
                [r.at for r in rows],
                [r.beats for r in rows],
                [r.figures["cpu_percent"] for r in rows],
                [r.figures["memory_percent"] for r in rows],
                [r.figures["load_average"] for r in rows],
                [r.figures["running_tasks"] for r in rows],
                [r.figures["idle_seconds"] for r in rows],
                [r.version for r in rows],
            ],
        )


buffer = LastSeenBuffer()


def flush_if_due() -> None:
    """From a heartbeat: write the buffer when its oldest heartbeat waited a flush interval. A
    database error is logged, not raised: the heartbeats stay buffered, this one is answered."""
    if not buffer.due():
        return
    try:
        buffer.flush()
    except DatabaseError:
        log.exception("writing buffered heartbeats failed; retrying")


@atexit.register
def _flush_on_exit() -> None:  # a graceful stop (gunicorn's SIGTERM) loses nothing
    try:
        buffer.flush()
    except Exception:
        log.exception("writing buffered heartbeats at exit failed")
