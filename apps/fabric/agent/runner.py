"""`orchcap-agent run`: heartbeat, run a worker on the node's queues, stop gracefully.

1. Heartbeat until the server hands out the broker URL and queues (it does once the node is
   approved; until then the agent only heartbeats).
2. Start the worker in the main thread; heartbeats go on in a thread, carrying the attempts the
   worker holds (that renews their leases) and whether it consumes.
3. SIGTERM/SIGINT: the worker stops taking messages and finishes what it runs; the agent
   reports `stopping` (the node drains), then `stopped` (planned offline), and exits 0. A
   credential the server refuses stops the worker too, and the agent exits 1.
"""

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from apps.fabric.agent import __version__
from apps.fabric.agent.client import ServerError, Unreachable, request_json
from apps.fabric.agent.config import AgentConfig
from apps.fabric.agent.probe import IdleTracker, detect_capabilities

log = logging.getLogger("orchcap-agent")
PROBE_EVERY_SECONDS = 600  # capabilities (free disk, GPUs) are re-sent this often
# Until the server's first reply says otherwise (its ORCHCAP_HEARTBEAT_SECONDS): the server's
# default, so that an agent that can't reach it yet retries as often as it would beat.
DEFAULT_INTERVAL_SECONDS = 5.0


class Worker(Protocol):
    ready: bool

    def serve(self, *, on_ready: Callable[[], None], on_shutdown: Callable[[], None]) -> int: ...
    def held(self) -> list[tuple[int, int, str]]: ...
    def stop(self, exitcode: int = 0) -> None: ...


WorkerFactory = Callable[[dict[str, Any]], Worker]


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        interval: float | None = None,
        worker_factory: WorkerFactory | None = None,
    ) -> None:
        self.config = config
        self.interval = interval  # None: as the server says
        self.worker_factory = worker_factory
        self.worker: Worker | None = None
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self.refused = False
        self.idle = IdleTracker()
        self._beat_lock = threading.Lock()
        self._last_probe = 0.0
        self._last_state: str | None = None
        self._unreachable_since: float | None = None
        self._current_interval = DEFAULT_INTERVAL_SECONDS
        self._nudge = threading.Event()  # report now rather than at the next interval

    def request_stop(self, signum: int = 0, frame: object = None) -> None:
        self.stopping.set()

    # --- heartbeats ---------------------------------------------------------------------------

    def _worker_status(self) -> str:
        if self.worker is None:
            return "none"
        return "ready" if self.worker.ready else "starting"

    def beat(self, status: str) -> dict[str, Any]:
        held = self.worker.held() if self.worker is not None else []
        body: dict[str, Any] = {
            "status": status,
            "running_tasks": len(held),
            "tasks": [{"task": t, "attempt": a, "token": k} for t, a, k in held],
            "worker": self._worker_status(),
            "software_version": __version__,
            **self.idle.sample(),
        }
        now = time.monotonic()
        if status == "running" and (
            not self._last_probe or now - self._last_probe > PROBE_EVERY_SECONDS
        ):
            body["detected"] = detect_capabilities()
            self._last_probe = now
        with self._beat_lock:  # the main thread and the heartbeat thread may both report
            return request_json(
                "POST",
                f"{self.config.server}/api/v1/fabric/heartbeat",
                body,
                authorization=self.config.authorization,
            )

    def _report(self, reply: dict[str, Any]) -> None:
        state = reply.get("state")
        accept = bool(reply.get("accept_work"))
        summary = (
            f"{state}, {'taking work' if accept else 'no new work: ' + str(reply.get('reason'))}"
        )
        if reply.get("consuming") is False:
            summary += " (the server saw work sent to this node not being taken)"
        if summary != self._last_state:
            log.info("node %s is %s", self.config.node_id, summary)
            self._last_state = summary
        self._current_interval = self.interval or float(
            reply.get("heartbeat_seconds") or self._current_interval
        )

    def _beat_once(self, status: str = "running") -> dict[str, Any] | None:
        """One heartbeat; None when it failed. Sets `refused` when the credential is refused."""
        try:
            reply = self.beat(status)
        except ServerError as exc:
            if exc.refused:
                log.error("the server refuses this node: %s", exc.detail)
                self.refused = True
            else:
                log.warning("heartbeat failed: %s", exc)
            return None
        except Unreachable as exc:
            if self._unreachable_since is None:
                self._unreachable_since = time.monotonic()
                log.warning("%s; retrying every %.0f s", exc, self._current_interval)
            return None
        if self._unreachable_since is not None:
            log.info("server reachable again")
            self._unreachable_since = None
        self._report(reply)
        return reply

    # --- run ----------------------------------------------------------------------------------

    def run(self) -> int:
        """Heartbeat, then work, until SIGTERM/SIGINT; 0 after a graceful stop, 1 when the
        server refuses this node's credential (revoked, retired)."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        log.info("agent %s for node %s at %s", __version__, self.config.node_id, self.config.server)
        self._current_interval = self.interval or DEFAULT_INTERVAL_SECONDS
        reply = None
        while not self.stopping.is_set():
            reply = self._beat_once()
            if self.refused:
                return 1
            if reply is not None and reply.get("broker_url") and self.worker_factory is not None:
                break
            self.stopping.wait(self._current_interval)
        if self.stopping.is_set() or reply is None:
            return self._stop_gracefully()
        return self._work(reply)

    def _work(self, reply: dict[str, Any]) -> int:
        assert self.worker_factory is not None
        self.worker = self.worker_factory(reply)
        log.info("consuming %s", ", ".join(reply.get("queues") or []))
        beats = threading.Thread(target=self._beat_loop, name="orchcap-heartbeat", daemon=True)
        beats.start()
        # The worker owns SIGTERM/SIGINT from here: a warm shutdown (finish current tasks).
        self.worker.serve(on_ready=self._wake, on_shutdown=self._on_worker_shutdown)
        self.finished.set()
        self.stopping.set()
        beats.join(timeout=30)
        if self.refused:
            return 1
        self._best_effort("stopped")
        log.info("stopped")
        return 0

    def _wake(self) -> None:
        if self.stopping.is_set() and self.worker is not None:
            # A signal that came before the worker took over its signals: stop it now.
            self.worker.stop(0)
        self._nudge.set()

    def _on_worker_shutdown(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping: finishing current work, taking no new work")
        self.stopping.set()
        self._nudge.set()

    def _beat_loop(self) -> None:
        """Heartbeats beside the worker. While it drains, `stopping` heartbeats go on: they keep
        the leases of the tasks it finishes and keep the node from being taken for lost."""
        while not self.finished.is_set():
            self._nudge.clear()
            self._beat_once("stopping" if self.stopping.is_set() else "running")
            if self.refused and self.worker is not None:
                self.worker.stop(1)
            self._nudge.wait(self._current_interval)

    def _stop_gracefully(self) -> int:
        log.info("stopping: no work was running")
        self._best_effort("stopping")
        self._best_effort("stopped")
        log.info("stopped")
        return 0

    def _best_effort(self, status: str) -> None:
        try:
            reply = self.beat(status)
        except (ServerError, Unreachable) as exc:
            log.warning("could not report %s: %s", status, exc)
        else:
            self._report(reply)
