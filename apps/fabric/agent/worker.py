"""The agent's Celery worker: consumes the node's queues and runs payloads.

It runs in the agent's main thread (Celery wants the main thread for its signal handling); the
heartbeats go on in a thread beside it. Messages are acknowledged late, after the result reached
the server, and a pool process that dies mid-task puts its message back on the node's queue
(`task_reject_on_worker_lost`). Remote control is off: nodes share a broker, and no node should
be able to tell another node's worker to stop or cancel its consumers.
"""

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from celery import Celery, signals
from celery.worker import state as worker_state

from apps.fabric import payloads, protocol
from apps.fabric.agent.artifacts import ArtifactCache
from apps.fabric.agent.client import ServerError, Unreachable, request_json
from apps.fabric.agent.config import AgentConfig
from apps.fabric.agent.reporter import reporter_for

log = logging.getLogger("orchcap-agent")
POOLS = ("prefork", "threads", "solo")
RESULT_DELIVERY_TIMEOUT = 120.0

# Set before the worker starts; forked pool processes inherit it.
_runtime: dict[str, Any] = {}


def run_payload(**kwargs: object) -> None:
    """The body of protocol.RUN_TASK on the node: run the payload(s), deliver the results.

    A bundle's tasks run side by side (they are short by contract) and their results travel
    to the server together, in one request; the message is acknowledged once they were
    delivered."""
    items = protocol.items_of(kwargs)
    if len(items) == 1:
        bodies = [_run_one(items[0])]
    else:
        bodies = list(_executor().map(_run_one, items))
    delivered = [body for body in bodies if body is not None]
    if not delivered:
        return
    config: AgentConfig = _runtime["config"]
    reporter = reporter_for(config.server, config.authorization)
    outcomes = reporter.deliver_many(delivered, timeout=RESULT_DELIVERY_TIMEOUT)
    for body, outcome in zip(delivered, outcomes, strict=True):
        if outcome is not None and not outcome.get("recorded"):
            log.info(
                "result of task %s attempt %s not recorded: %s",
                body["task"], body["attempt"], outcome.get("reason"),
            )  # fmt: skip


def _executor() -> ThreadPoolExecutor:
    """One pool per process (a forked pool process makes its own)."""
    pid = os.getpid()
    if _runtime.get("executor_pid") != pid:
        _runtime["executor"] = ThreadPoolExecutor(
            max_workers=max(1, int(_runtime.get("concurrency", 4))),
            thread_name_prefix="orchcap-bundle",
        )
        _runtime["executor_pid"] = pid
    return _runtime["executor"]


def _run_one(item: dict[str, Any]) -> dict[str, Any] | None:
    """Run one task's payload; its result to deliver, or None when there is nothing to report
    (a malformed message, a pull task this node may not run)."""
    task, attempt, token = item.get("task"), item.get("attempt"), item.get("token")
    kind, payload, artifacts = item.get("kind"), item.get("payload"), item.get("artifacts")
    if not (
        isinstance(task, int)
        and isinstance(attempt, int)
        and isinstance(token, str)
        and isinstance(kind, str)
    ):
        log.error("dropped a malformed message: task=%r attempt=%r kind=%r", task, attempt, kind)
        return None
    config: AgentConfig = _runtime["config"]
    if item.get("pull") is True and not _claim(config, task, attempt, token):
        return None  # the server places it on a node that may run it
    cache: ArtifactCache = _runtime["artifacts"]
    reporter_for(config.server, config.authorization).started()
    names = tuple(a for a in artifacts if isinstance(a, str)) if isinstance(artifacts, list) else ()
    context = payloads.Context(
        node_id=config.node_id,
        task_id=task,
        attempt=attempt,
        artifacts=names,
        fetch=cache.fetch,
        store=lambda data, name: cache.upload(
            task=task, attempt=attempt, token=token, data=data, name=name
        ),
    )
    started = time.monotonic()
    try:
        value = payloads.execute(kind, payload if isinstance(payload, dict) else {}, context)
        ok, error = True, ""
    except Exception as exc:  # the payload's failure is the task's result, not the worker's
        value, ok, error = None, False, f"{type(exc).__name__}: {exc}"
    return {
        "task": task,
        "attempt": attempt,
        "token": token,
        "ok": ok,
        "result": value,
        "error": error[:20_000],
        "duration_seconds": round(time.monotonic() - started, 6),
    }


def _claim(config: AgentConfig, task: int, attempt: int, token: str) -> bool:
    """A pull task from a shared queue runs only once the server agreed this node may run it."""
    try:
        reply = request_json(
            "POST",
            f"{config.server}/api/v1/fabric/tasks/{task}/claim",
            {"attempt": attempt, "token": token},
            authorization=config.authorization,
            timeout=30,
        )
    except (Unreachable, ServerError) as exc:  # its lease runs out; the server places it again
        log.warning("could not claim pull task %s: %s", task, exc)
        return False
    if not reply.get("claimed"):
        log.info("pull task %s not for this node: %s", task, reply.get("reason"))
        return False
    return True


def held_attempts() -> list[tuple[int, int, str]]:
    """(task, attempt, token) of every task this worker holds (running or reserved)."""
    for _ in range(5):
        try:  # the worker's sets change while we read them from the heartbeat thread
            requests = list(worker_state.active_requests) + list(worker_state.reserved_requests)
            break
        except RuntimeError:
            continue
    else:
        return []
    held: set[tuple[int, int, str]] = set()
    for request in requests:
        held.update(protocol.attempts_in(getattr(request, "kwargs", None)))
    return sorted(held)


def build_app(*, broker_url: str, queues: list[str]) -> Celery:
    # No Django fixup: with DJANGO_SETTINGS_MODULE in its environment (a machine that also runs
    # orchcap) Celery would set Django up in the agent, and the control plane's worker signals
    # would run in it (the agent enrolling itself as node `local`).
    app = Celery("orchcap-agent", set_as_current=False, fixups=[])
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_enable_remote_control=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_disable_rate_limits=True,
        task_queues=[protocol.queue(name) for name in queues],
        task_default_queue=queues[0],
        task_ignore_result=True,
        result_backend=None,
        accept_content=["json"],
        task_serializer="json",
    )
    app.task(name=protocol.RUN_TASK, acks_late=True, reject_on_worker_lost=True)(run_payload)
    return app


def _leave_logging_alone(**kwargs: object) -> None:
    """Connected to Celery's setup_logging: the agent configured logging itself."""


class CeleryWorker:
    def __init__(
        self,
        config: AgentConfig,
        config_dir: Path,
        *,
        broker_url: str,
        queues: list[str],
        concurrency: int,
        pool: str = "prefork",
    ) -> None:
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}")
        self.config = config
        self.config_dir = config_dir
        self.broker_url = broker_url
        self.queues = queues
        self.concurrency = max(1, concurrency)
        self.pool = pool
        self.ready = False

    def serve(self, *, on_ready: Callable[[], None], on_shutdown: Callable[[], None]) -> int:
        """Consume until a shutdown (SIGTERM/SIGINT: finish current tasks first, or stop());
        returns the worker's exit code."""
        _runtime["config"] = self.config
        _runtime["concurrency"] = self.concurrency
        _runtime["artifacts"] = ArtifactCache(
            self.config_dir / "artifacts", self.config.server, self.config.authorization
        )
        app = build_app(broker_url=self.broker_url, queues=self.queues)

        def ready(**kwargs: object) -> None:
            self.ready = True
            on_ready()

        def shutting_down(**kwargs: object) -> None:
            self.ready = False
            on_shutdown()

        signals.setup_logging.connect(_leave_logging_alone, weak=False)
        signals.worker_ready.connect(ready, weak=False)
        signals.worker_shutting_down.connect(shutting_down, weak=False)
        logging.getLogger("celery").setLevel(logging.WARNING)
        worker = app.Worker(
            hostname=f"node-{self.config.node_id}@%h",
            pool_cls=self.pool,
            concurrency=self.concurrency,
            queues=self.queues,
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
            quiet=True,
            loglevel="WARNING",
        )
        worker.start()
        self.ready = False
        return int(worker.exitcode or 0)

    def held(self) -> list[tuple[int, int, str]]:
        return held_attempts()

    def stop(self, exitcode: int = 0) -> None:
        """Ask for a warm shutdown from any thread: stop consuming, finish what runs."""
        worker_state.should_stop = exitcode
