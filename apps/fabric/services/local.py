"""The control plane's own worker as node `local`.

The Celery worker `make run` starts enrols itself (no token: it has the database) when it starts,
consumes the node's queue `node.<id>` beside its own, heartbeats straight into the database and
runs payloads in-process, recording their results directly. So a single machine runs fabric work
(classifier training, batch prediction) with no agent, and enrolled machines share that work as
soon as they are online. An admin can drain, reclaim or retire `local` like any node; retired or
revoked, the worker stops taking fabric work. Only the first control-plane worker to start is
`local`; more control-plane workers (a cluster) heartbeat it too and share its queue.
"""

import logging
import secrets
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from apps.fabric import payloads, protocol
from apps.fabric.models import ComputeNode, FabricArtifact, NodeClass, NodeEventKind, NodeState
from apps.fabric.services.artifacts import store_task_output
from apps.fabric.services.consumption import mark_consuming
from apps.fabric.services.enrollment import hash_secret
from apps.fabric.services.heartbeats import (
    AgentStatus,
    WorkerStatus,
    record_heartbeat,
    renew_leases,
)
from apps.fabric.services.history import record_event
from apps.fabric.services.pull import claim_task

log = logging.getLogger(__name__)
LOCAL_NODE_NAME = "local"


def local_node_enabled() -> bool:
    """On unless ORCHCAP_LOCAL_NODE=0, and only when nodes' work travels on the control plane's
    own broker (the worker consumes that one)."""
    return bool(settings.ORCHCAP_LOCAL_NODE) and (
        settings.ORCHCAP_NODE_BROKER_URL == settings.CELERY_BROKER_URL
    )


def _software_version() -> str:
    from apps.fabric.agent import __version__

    return __version__


def queues_of(node: ComputeNode) -> list[str]:
    """What the control plane's worker consumes for `local`: its own queue and its capability
    queues, like an agent."""
    names = [protocol.node_queue_name(node.pk)]
    return names + protocol.capability_queue_names(node_class=node.node_class, gpus=node.gpu_count)


def ensure_local_node(*, concurrency: int) -> ComputeNode | None:
    """The control plane's node, enrolled on first use and its capabilities refreshed; None when
    an admin retired or revoked it (the worker then takes no fabric work)."""
    from apps.fabric.agent import probe

    detected = probe.detect_capabilities(settings.DATA_DIR)
    slots = max(1, min(int(concurrency), 256))
    with transaction.atomic():
        node = ComputeNode.objects.select_for_update().filter(control_plane=True).first()
        if node is None:
            now = timezone.now()
            node = ComputeNode.objects.create(
                name=LOCAL_NODE_NAME,
                purpose="the control plane's own worker",
                node_class=NodeClass.SERVER,
                detected=detected,
                labels={"role": "control-plane"},
                max_concurrent_tasks=slots,
                state=NodeState.ONLINE,
                approved_at=now,
                software_version=_software_version()[:40],
                # Nobody holds this secret: `local` never talks to the API.
                credential_hash=hash_secret(secrets.token_urlsafe(32)),
                fingerprint=probe.fingerprint(),
                timezone=settings.TIME_ZONE,
                last_heartbeat_at=now,
                control_plane=True,
            )
            record_event(
                node=node,
                kind=NodeEventKind.ENROLLED,
                to_state=node.state,
                message="the control plane's worker enrolled itself",
                at=now,
            )
            return node
        if node.revoked_at is not None or node.state == NodeState.RETIRED:
            return None
        node.detected = detected
        node.max_concurrent_tasks = slots
        node.software_version = _software_version()[:40]
        node.save(update_fields=["detected", "max_concurrent_tasks", "software_version"])
    if node.not_consuming_since is not None:
        # The flag was about the worker before (e.g. one that was killed): this one consumes.
        mark_consuming(node=node, now=timezone.now(), why="the control plane's worker started")
    return node


# --- running payloads in the control plane's worker -------------------------------------------


def _fetch(sha256: str) -> bytes:
    content = FabricArtifact.objects.filter(sha256=sha256).values_list("content", flat=True).first()
    if content is None:
        raise payloads.PayloadError(f"artefact {sha256[:12]}… is not stored")
    return bytes(content)


def _storer(node: ComputeNode, task_id: int, attempt: int, token: str):  # type: ignore[no-untyped-def]
    """Outputs of `local`'s attempt, kept under the same rule as an agent's upload."""

    def store(data: bytes, name: str) -> str:
        return store_task_output(
            node=node, task_id=task_id, attempt=attempt, token=token, content=data, name=name
        ).sha256

    return store


def run_message(kwargs: dict[str, Any]) -> None:
    """The body of protocol.RUN_TASK on `local`: run each payload the message carries and record
    its result (only the current attempt's, as for any node)."""
    from apps.fabric.services import results

    node = ComputeNode.objects.filter(control_plane=True).first()
    if node is None:
        log.error("a fabric message reached the control plane, which is not a node (any more)")
        return
    for item in protocol.items_of(kwargs):
        refs = protocol.attempts_in(item)
        if not refs:
            log.error("dropped a malformed fabric message: %r", sorted(item)[:6])
            continue
        [(task_id, attempt, token)] = refs
        if item.get("pull") is True:
            claim = claim_task(node=node, task_id=task_id, attempt=attempt, token=token)
            if not claim.claimed:
                log.info("pull task %s not for the control plane: %s", task_id, claim.reason)
                continue
        renew_leases(node=node, held=refs, now=timezone.now())
        artifacts = item.get("artifacts")
        context = payloads.Context(
            node_id=node.pk,
            task_id=task_id,
            attempt=attempt,
            artifacts=tuple(a for a in artifacts if isinstance(a, str))
            if isinstance(artifacts, list)
            else (),
            fetch=_fetch,
            store=_storer(node, task_id, attempt, token),
        )
        payload = item.get("payload")
        started = time.monotonic()
        try:
            value = payloads.execute(
                str(item.get("kind")), payload if isinstance(payload, dict) else {}, context
            )
            ok, error = True, ""
        except Exception as exc:  # the payload's failure is the task's result
            value, ok, error = None, False, f"{type(exc).__name__}: {exc}"
        [outcome] = results.record_results(
            node=node,
            results=[
                results.ResultIn(
                    task_id=task_id,
                    attempt=attempt,
                    token=token,
                    ok=ok,
                    result=value,
                    error=error,
                    duration_seconds=round(time.monotonic() - started, 6),
                )
            ],
        )
        if not outcome.recorded:
            log.info(
                "result of task %s attempt %s not recorded: %s", task_id, attempt, outcome.reason
            )


# --- heartbeats from the worker ----------------------------------------------------------------


class LocalHeartbeats:
    """A thread in the worker's main process that heartbeats `local` with the attempts the
    worker holds. `stopping()` may be called from a signal handler: it only wakes the thread,
    which reports the node draining (no database work in a signal handler: the interrupted code
    may hold a lock it needs). `stop()`, once the worker has stopped, sends the planned-offline
    heartbeat."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="orchcap-local-node", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def beat(self, status: str = AgentStatus.RUNNING) -> None:
        import psutil

        from apps.fabric.agent.worker import held_attempts

        close_old_connections()
        node = ComputeNode.objects.filter(pk=self.node_id).first()
        if node is None:
            return
        try:
            load = psutil.getloadavg()[0]
        except (AttributeError, OSError):
            load = None
        record_heartbeat(
            node=node,
            status=status,
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_percent=psutil.virtual_memory().percent,
            load_average=load,
            tasks=held_attempts(),
            worker=WorkerStatus.READY if status == AgentStatus.RUNNING else WorkerStatus.NONE,
            software_version=_software_version(),
        )

    def _loop(self) -> None:
        while not self._stopped.is_set():
            status = AgentStatus.STOPPING if self._stopping.is_set() else AgentStatus.RUNNING
            try:
                self.beat(status)
            except Exception:  # a database restart must not end the heartbeats for good
                log.exception("the local node's heartbeat failed")
            self._wake.wait(settings.ORCHCAP_HEARTBEAT_SECONDS)
            self._wake.clear()
        close_old_connections()

    def stopping(self) -> None:
        """Signal-safe: the worker got SIGTERM/SIGINT and finishes what it runs."""
        self._stopping.set()
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=10)
        try:
            self.beat(AgentStatus.STOPPED)
        except Exception:
            log.exception("the local node's last heartbeat failed")
