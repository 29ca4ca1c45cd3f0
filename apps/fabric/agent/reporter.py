"""Results back to the server: `POST /api/v1/fabric/results`, batched, with the node credential.

A payload's result is handed to the process's reporter, which posts everything that finished
while its previous POST was on the way in one request: one result at a time under light load
(lowest latency), large batches under heavy load (fewest requests). A bundle hands over all its
results at once (`deliver_many`), and when other tasks of this process are still running the
reporter lingers a few milliseconds for them, so work that finishes together travels together.
The task waits until its result was delivered before its message is acknowledged, so a message
is only taken off the queue once the server has the result; if the server stays unreachable,
the lease expires and the control plane sends the work elsewhere.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from apps.fabric.agent.client import ServerError, Unreachable, request_json

log = logging.getLogger("orchcap-agent")
MAX_BATCH = 500
LINGER_SECONDS = 0.01


@dataclass
class _Pending:
    bodies: list[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    outcomes: list[dict[str, Any] | None] = field(default_factory=list)


class ResultReporter:
    def __init__(self, server: str, authorization: str, *, retry_seconds: float = 1.0) -> None:
        self.url = f"{server}/api/v1/fabric/results"
        self.authorization = authorization
        self.retry_seconds = retry_seconds
        self._queue: list[_Pending] = []
        self._queued = 0  # results in _queue
        self._running = 0  # tasks of this process started and not yet handed over
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="orchcap-results", daemon=True)
        self._thread.start()

    def started(self) -> None:
        """A task of this process started: its result will come (see the linger above)."""
        with self._wake:
            self._running += 1

    def deliver(self, body: dict[str, Any], *, timeout: float = 60) -> dict[str, Any] | None:
        """Queue one result ({task, attempt, ok, result, error, duration_seconds}) and wait until
        the server answered for it; returns its outcome, or None when it timed out."""
        return self.deliver_many([body], timeout=timeout)[0]

    def deliver_many(
        self, bodies: list[dict[str, Any]], *, timeout: float = 60
    ) -> list[dict[str, Any] | None]:
        """deliver() for several results that travel together (a bundle's): one wait, one
        request (unless there are more than MAX_BATCH). Outcomes in the order of `bodies`."""
        if not bodies:
            return []
        item = _Pending(list(bodies))
        with self._wake:
            self._running = max(0, self._running - len(bodies))
            self._queue.append(item)
            self._queued += len(bodies)
            self._wake.notify()
        if not item.done.wait(timeout):
            return [None] * len(bodies)
        return item.outcomes

    def _take(self) -> list[_Pending]:
        with self._wake:
            while not self._queue:
                self._wake.wait()
            deadline = time.monotonic() + LINGER_SECONDS
            while self._running and self._queued < MAX_BATCH:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            batch, size = [], 0
            while self._queue and (not batch or size + len(self._queue[0].bodies) <= MAX_BATCH):
                item = self._queue.pop(0)
                batch.append(item)
                size += len(item.bodies)
            self._queued -= size
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            results = [body for item in batch for body in item.bodies]
            while True:
                try:
                    reply = request_json(
                        "POST",
                        self.url,
                        {"results": results},
                        authorization=self.authorization,
                        timeout=60,
                    )
                except Unreachable as exc:
                    log.warning("%s; %d result(s) kept, retrying", exc, len(results))
                    time.sleep(self.retry_seconds)
                    continue
                except ServerError as exc:
                    if exc.status >= 500:
                        log.warning("the server failed (%s); retrying", exc)
                        time.sleep(self.retry_seconds)
                        continue
                    # Refused (credential) or malformed: retrying can't help.
                    log.error("results refused: %s", exc.detail)
                    reply = {"outcomes": []}
                break
            outcomes = reply.get("outcomes") or []
            index = 0
            for item in batch:
                item.outcomes = [
                    outcomes[i] if i < len(outcomes) else None
                    for i in range(index, index + len(item.bodies))
                ]
                index += len(item.bodies)
                item.done.set()


_reporter: ResultReporter | None = None
_reporter_pid = 0
_reporter_lock = threading.Lock()


def reporter_for(server: str, authorization: str) -> ResultReporter:
    """One reporter per process: a forked pool process starts its own (threads don't survive a
    fork)."""
    global _reporter, _reporter_pid
    with _reporter_lock:
        if _reporter is None or _reporter_pid != os.getpid():
            _reporter = ResultReporter(server, authorization)
            _reporter_pid = os.getpid()
        return _reporter
