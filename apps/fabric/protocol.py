"""What the control plane and the agents agree on: queue names, the task name, the message.

No Django here: the agent imports this module on machines without orchcap's settings.

A dispatched task is one Celery message named RUN_TASK on the node's own queue `node.<id>`,
with these keyword arguments:

    {"task": 42, "attempt": 1, "token": "9f…", "kind": "probe", "payload": {"seconds": 2},
     "artifacts": []}

`token` is random per attempt; the result and the heartbeats echo it. Its Celery task id is
`fabric-<task>-<attempt>-<token>`.

A pull task goes to a capability queue instead (`fabric.gpu`, `fabric.class.<class>`) with
`"pull": true` in its message; the node that takes it asks the server to claim it first
(`POST /api/v1/fabric/tasks/<id>/claim`) and runs it only when the claim is granted.

Short tasks submitted with `bundle` travel together: one message `{"bundle": [message, …]}` per
node and placement pass (at most BUNDLE_MAX tasks), which the agent runs side by side. Either way
`attempts_in(kwargs)` lists the (task, attempt, token)s a message carries.
"""

import re

from kombu import Exchange, Queue

RUN_TASK = "orchcap.fabric.run"
BUNDLE_MAX = 50
LEASE_HEARTBEATS = 3  # a lease lasts this many heartbeat intervals, like lost-node detection
_CELERY_ID = re.compile(r"^fabric-(\d+)-(\d+)-([0-9a-f]{1,32})$")


def node_queue_name(node_id: int) -> str:
    return f"node.{node_id}"


def capability_queue_names(*, node_class: str, gpus: int) -> list[str]:
    """Shared queues a node also consumes, e.g. `fabric.class.edge` and `fabric.gpu`: pull
    tasks wait there for the first free node of that kind, which claims each before running
    it (see docs/fabric.md)."""
    names = [f"fabric.class.{node_class}"]
    if gpus > 0:
        names.append("fabric.gpu")
    return names


def pull_queue_name(*, gpus: int, node_class: str) -> str:
    """The capability queue a pull task goes to: GPU work to `fabric.gpu`, other work to the
    queue of the class the scheduler ranked best for it."""
    return "fabric.gpu" if gpus > 0 else f"fabric.class.{node_class}"


def queue(name: str) -> Queue:
    """A durable queue that outlives its consumers: a node that is away finds its work waiting.
    Publishers and the agent declare it with exactly these arguments (RabbitMQ refuses a
    redeclaration with different ones)."""
    exchange = Exchange(name, type="direct", durable=True, auto_delete=False)
    return Queue(name, exchange, routing_key=name, durable=True, auto_delete=False)


def celery_task_id(task_id: int, attempt: int, token: str) -> str:
    return f"fabric-{task_id}-{attempt}-{token}"


def held_attempt(celery_id: str) -> tuple[int, int, str] | None:
    """(task id, attempt, token) from a Celery task id made by celery_task_id, else None."""
    match = _CELERY_ID.match(celery_id or "")
    return (int(match.group(1)), int(match.group(2)), match.group(3)) if match else None


def message(
    *,
    task_id: int,
    attempt: int,
    token: str,
    kind: str,
    payload: dict,
    artifacts: list[str],
    pull: bool = False,
) -> dict[str, object]:
    body: dict[str, object] = {
        "task": task_id,
        "attempt": attempt,
        "token": token,
        "kind": kind,
        "payload": payload,
        "artifacts": list(artifacts),
    }
    if pull:
        body["pull"] = True  # taken from a shared queue: claim it before running it
    return body


def bundle_message(messages: list[dict[str, object]]) -> dict[str, object]:
    return {"bundle": messages}


def items_of(kwargs: object) -> list[dict[str, object]]:
    """The task messages a Celery message's kwargs carry (one, or a bundle's)."""
    if not isinstance(kwargs, dict):
        return []
    bundle = kwargs.get("bundle")
    if isinstance(bundle, list):
        return [item for item in bundle if isinstance(item, dict)]
    return [kwargs]


def attempts_in(kwargs: object) -> list[tuple[int, int, str]]:
    refs = []
    for item in items_of(kwargs):
        task, attempt, token = item.get("task"), item.get("attempt"), item.get("token")
        if isinstance(task, int) and isinstance(attempt, int) and isinstance(token, str):
            refs.append((task, attempt, token))
    return refs
