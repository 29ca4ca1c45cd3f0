"""The fabric in Prometheus' text exposition format (version 0.0.4), written by hand.

`snapshot()` reads the database (a few aggregate queries); `render()` is pure. Served at
`GET /metrics` (see views.metrics for who may read it).
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone

from apps.fabric.models import (
    OPEN_TASK_STATES,
    AttemptState,
    ComputeNode,
    FabricTask,
    FabricTaskState,
    NodeClass,
    NodeState,
    TaskAttempt,
)

# Submit → start on a node, in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class Snapshot:
    nodes: dict[tuple[str, str], int] = field(default_factory=dict)  # (state, class) → count
    not_consuming: int = 0
    slots: int = 0  # task slots of online nodes
    leased: int = 0  # tasks placed on or running on a node
    tasks: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    latency_buckets: list[tuple[float, int]] = field(default_factory=list)  # cumulative
    latency_count: int = 0
    latency_sum: float = 0.0
    oldest_pending_seconds: float = 0.0
    node_seconds: dict[str, float] = field(default_factory=dict)  # by class


def snapshot() -> Snapshot:
    snap = Snapshot()
    for row in ComputeNode.objects.values("state", "node_class").annotate(n=Count("pk")):
        snap.nodes[(row["state"], row["node_class"])] = row["n"]
    online = ComputeNode.objects.filter(state=NodeState.ONLINE)
    snap.not_consuming = online.filter(not_consuming_since__isnull=False).count()
    snap.slots = online.aggregate(s=Sum("max_concurrent_tasks"))["s"] or 0
    snap.tasks = dict(FabricTask.objects.values_list("state").annotate(n=Count("pk")))
    snap.leased = sum(snap.tasks.get(state, 0) for state in OPEN_TASK_STATES)
    snap.attempts = dict(TaskAttempt.objects.values_list("state").annotate(n=Count("pk")))

    latency = ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField())
    started = FabricTask.objects.filter(started_at__isnull=False, system=False).annotate(
        latency=latency
    )
    buckets = {
        f"le_{index}": Count("pk", filter=Q(latency__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(LATENCY_BUCKETS)
    }
    totals = started.aggregate(n=Count("pk"), total=Sum("latency"), **buckets)
    snap.latency_count = totals["n"] or 0
    snap.latency_sum = totals["total"].total_seconds() if totals["total"] else 0.0
    snap.latency_buckets = [
        (bound, totals[f"le_{index}"] or 0) for index, bound in enumerate(LATENCY_BUCKETS)
    ]
    oldest = FabricTask.objects.filter(state=FabricTaskState.PENDING).aggregate(
        at=Min("created_at")
    )["at"]
    if oldest is not None:
        snap.oldest_pending_seconds = (timezone.now() - oldest).total_seconds()

    spent = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    worked = TaskAttempt.objects.filter(
        finished_at__isnull=False, started_at__isnull=False, node__isnull=False
    )
    for row in worked.values("node__node_class").annotate(total=Sum(spent)):
        snap.node_seconds[row["node__node_class"]] = row["total"].total_seconds()
    return snap


def _labels(**labels: str) -> str:
    inner = ",".join(
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in labels.items()
    )
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(snap: Snapshot) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("orchcap_fabric_nodes", "gauge", "Enrolled nodes by state and class.")
    for state in NodeState.values:
        for node_class in NodeClass.values:
            count = snap.nodes.get((state, node_class), 0)
            lines.append(
                f"orchcap_fabric_nodes{_labels(state=state, node_class=node_class)} {count}"
            )
    family(
        "orchcap_fabric_nodes_not_consuming",
        "gauge",
        "Online nodes whose worker did not take work sent to its queue.",
    )
    lines.append(f"orchcap_fabric_nodes_not_consuming {snap.not_consuming}")
    family(
        "orchcap_fabric_slots", "gauge", "Task slots of online nodes, and slots leased to tasks."
    )
    lines.append(f'orchcap_fabric_slots{{kind="capacity"}} {snap.slots}')
    lines.append(f'orchcap_fabric_slots{{kind="leased"}} {snap.leased}')
    family("orchcap_fabric_tasks", "gauge", "Fabric tasks by state.")
    lines.extend(
        f"orchcap_fabric_tasks{_labels(state=state)} {snap.tasks.get(state, 0)}"
        for state in FabricTaskState.values
    )
    family(
        "orchcap_fabric_attempts_total",
        "counter",
        "Dispatches of tasks to nodes by outcome (lost: moved elsewhere).",
    )
    lines.extend(
        f"orchcap_fabric_attempts_total{_labels(state=state)} {snap.attempts.get(state, 0)}"
        for state in AttemptState.values
    )
    family(
        "orchcap_fabric_dispatch_latency_seconds",
        "histogram",
        "From submission to the start on a node (the current attempt), for user tasks.",
    )
    for bound, count in snap.latency_buckets:
        lines.append(
            f"orchcap_fabric_dispatch_latency_seconds_bucket{_labels(le=_number(bound))} {count}"
        )
    lines.append(
        f'orchcap_fabric_dispatch_latency_seconds_bucket{{le="+Inf"}} {snap.latency_count}'
    )
    lines.append(f"orchcap_fabric_dispatch_latency_seconds_sum {_number(snap.latency_sum)}")
    lines.append(f"orchcap_fabric_dispatch_latency_seconds_count {snap.latency_count}")
    family(
        "orchcap_fabric_oldest_pending_seconds",
        "gauge",
        "Age of the oldest task no node has taken yet (0 when none waits).",
    )
    lines.append(
        f"orchcap_fabric_oldest_pending_seconds {_number(round(snap.oldest_pending_seconds, 3))}"
    )
    family(
        "orchcap_fabric_node_seconds_total",
        "counter",
        "Seconds of work nodes ran, by class: the dormant power put to use.",
    )
    for node_class in NodeClass.values:
        seconds = round(snap.node_seconds.get(node_class, 0.0), 3)
        lines.append(
            f"orchcap_fabric_node_seconds_total{_labels(node_class=node_class)} {_number(seconds)}"
        )
    return "\n".join(lines) + "\n"
