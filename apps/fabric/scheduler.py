"""Placement: which node should run a task, and why. Pure (no Django, no I/O).

`filter_and_score` rejects nodes that can't take the task (with every reason, not only the
first, so "why isn't it running?" gets a full answer) and ranks the rest:

1. data-local first: the node hosts the task's data source (+100);
2. keep GPUs free: a task that needs no GPU avoids GPU nodes (-50);
3. least loaded: the larger the share of free task slots, the better (up to +20);
4. cheapest class that fits: edge, then server, then workstation, then gpu (+3 … +0).

Ties go to the lower node id, so a decision can be replayed.
"""

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from apps.fabric.availability import Policy, evaluate

CLASS_PREFERENCE = {"edge": 3, "server": 2, "workstation": 1, "gpu": 0}
DATA_LOCAL_BONUS = 100.0
GPU_SPARING_PENALTY = 50.0
LOAD_WEIGHT = 20.0


class RequirementError(ValueError):
    """Malformed task requirements; the message names the bad part."""


@dataclass(frozen=True)
class Requirements:
    cpu_cores: int = 0
    memory_mb: int = 0
    gpus: int = 0
    gpu_memory_mb: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    data_source: str | None = None
    # The data must not leave its site: only nodes hosting `data_source` qualify.
    resident: bool = False

    @classmethod
    def from_json(cls, data: object) -> "Requirements":
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise RequirementError("requirements must be an object")
        known = {"cpu_cores", "memory_mb", "gpus", "gpu_memory_mb", "labels", "data_source",
                 "resident"}  # fmt: skip
        unknown = set(data) - known
        if unknown:
            raise RequirementError(f"unknown requirement(s): {', '.join(sorted(unknown))}")
        numbers = {}
        for key in ("cpu_cores", "memory_mb", "gpus", "gpu_memory_mb"):
            value = data.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RequirementError(f"{key} must be a whole number ≥ 0")
            numbers[key] = value
        labels = data.get("labels") or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise RequirementError("labels must be an object of text values")
        source = data.get("data_source")
        if source is not None and (not isinstance(source, str) or not source.strip()):
            raise RequirementError("data_source must be a name")
        resident = data.get("resident", False)
        if not isinstance(resident, bool):
            raise RequirementError("resident must be true or false")
        if resident and source is None:
            raise RequirementError("resident needs a data_source")
        return cls(**numbers, labels=dict(labels), data_source=source, resident=resident)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = dict(self.labels)
        return data


@dataclass(frozen=True)
class NodeFacts:
    """What the scheduler knows about a node (built from a ComputeNode by the selectors)."""

    node_id: int
    name: str
    node_class: str
    state: str
    approved: bool
    revoked: bool
    cpu_cores: int
    memory_mb: int
    gpus: int
    gpu_memory_mb: int  # of its largest GPU
    labels: Mapping[str, str]
    data_sources: frozenset[str]
    max_tasks: int
    running_tasks: int  # tasks leased to it (placed or running)
    policy: Policy | None  # None: unreadable, so never available
    idle_seconds: float | None = None
    worker_ready: bool = True  # its agent reports a worker consuming its queue
    consuming: bool = True  # False: a task or probe sent to it was not taken in time


# A placement keeps the best few candidates and the reasons of the first rejected nodes; the
# counts say how many there were (a 1,000-node fleet would otherwise write 1,000 reasons a task).
MAX_CANDIDATES_KEPT = 20
MAX_REJECTED_KEPT = 50


@dataclass
class Placement:
    node_id: int | None
    reason: str
    candidates: list[dict[str, Any]]  # best first: node_id, name, score, why
    rejected: list[dict[str, Any]]  # node_id, name, reasons
    candidate_count: int = 0
    rejected_count: int = 0

    def to_json(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies, and a placement is stored per task placed.
        return {
            "node_id": self.node_id,
            "reason": self.reason,
            "candidates": self.candidates,
            "rejected": self.rejected,
            "candidate_count": self.candidate_count,
            "rejected_count": self.rejected_count,
        }


class _AvailabilityCache:
    """One evaluation per policy object and idle time within one decision: a fleet shares a few
    policies (the selectors hand out one object per distinct policy)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.seen: dict[tuple[int, float | None], Any] = {}

    def check(self, policy: Policy, idle: float | None) -> Any:
        key = (id(policy), idle if policy.idle_minutes else None)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = evaluate(policy, self.now, idle)
        return found


def rejection_reasons(
    node: NodeFacts, req: Requirements, now: datetime, _cache: _AvailabilityCache | None = None
) -> list[str]:
    reasons = []
    if node.revoked:
        reasons.append("credential revoked")
    if not node.approved:
        reasons.append("not approved")
    if node.state != "online":
        reasons.append(f"{node.state.replace('_', ' ')}")
    elif node.policy is None:
        reasons.append("availability policy unreadable")
    else:
        cache = _cache or _AvailabilityCache(now)
        availability = cache.check(node.policy, node.idle_seconds)
        if not availability.available:
            reasons.append(availability.reason)
    if node.state == "online":
        if not node.worker_ready:
            reasons.append("its agent runs no worker yet")
        elif not node.consuming:
            reasons.append("not consuming: work sent to its queue was not taken")
    if node.running_tasks >= node.max_tasks:
        reasons.append(f"full: {node.running_tasks} of {node.max_tasks} tasks running")
    if node.cpu_cores < req.cpu_cores:
        reasons.append(f"needs {req.cpu_cores} CPU cores, has {node.cpu_cores}")
    if node.memory_mb < req.memory_mb:
        reasons.append(f"needs {req.memory_mb} MB memory, has {node.memory_mb}")
    if node.gpus < req.gpus:
        reasons.append(f"needs {req.gpus} GPU{'s' if req.gpus != 1 else ''}, has {node.gpus}")
    if req.gpu_memory_mb and node.gpu_memory_mb < req.gpu_memory_mb:
        reasons.append(f"needs {req.gpu_memory_mb} MB GPU memory, has {node.gpu_memory_mb}")
    for key, value in req.labels.items():
        if node.labels.get(key) != value:
            reasons.append(f"needs label {key}={value}, has {key}={node.labels.get(key, '(none)')}")
    if req.resident and req.data_source not in node.data_sources:
        reasons.append(f"data source {req.data_source} must stay at its site; not hosted here")
    return reasons


def _eligible(node: NodeFacts, req: Requirements, cache: _AvailabilityCache) -> bool:
    """The fast yes/no of rejection_reasons (no strings built): most of a fleet is decided here."""
    return (
        node.state == "online"
        and node.approved
        and not node.revoked
        and node.worker_ready
        and node.consuming
        and node.running_tasks < node.max_tasks
        and node.cpu_cores >= req.cpu_cores
        and node.memory_mb >= req.memory_mb
        and node.gpus >= req.gpus
        and (not req.gpu_memory_mb or node.gpu_memory_mb >= req.gpu_memory_mb)
        and (not req.resident or req.data_source in node.data_sources)
        and all(node.labels.get(k) == v for k, v in req.labels.items())
        and node.policy is not None
        and cache.check(node.policy, node.idle_seconds).available
    )


def _score_value(node: NodeFacts, req: Requirements) -> float:
    total = LOAD_WEIGHT * (1 - node.running_tasks / node.max_tasks) if node.max_tasks else 0.0
    if req.data_source and req.data_source in node.data_sources:
        total += DATA_LOCAL_BONUS
    if req.gpus == 0 and (node.gpus > 0 or node.node_class == "gpu"):
        total -= GPU_SPARING_PENALTY
    return total + CLASS_PREFERENCE.get(node.node_class, 0)


def score(node: NodeFacts, req: Requirements) -> tuple[float, dict[str, float]]:
    why: dict[str, float] = {}
    if req.data_source and req.data_source in node.data_sources:
        why["data_local"] = DATA_LOCAL_BONUS
    if req.gpus == 0 and (node.gpus > 0 or node.node_class == "gpu"):
        why["keeps_gpu_free"] = -GPU_SPARING_PENALTY
    free = 1 - node.running_tasks / node.max_tasks if node.max_tasks else 0
    why["free_slots"] = round(LOAD_WEIGHT * free, 3)
    why["class"] = float(CLASS_PREFERENCE.get(node.node_class, 0))
    return round(sum(why.values()), 3), why


def filter_and_score(
    nodes: Iterable[NodeFacts], requirements: Requirements, now: datetime
) -> Placement:
    """Choose a node for a task with `requirements` at `now` (timezone-aware), keeping every
    rejected node's reasons and the best candidates' scores for the task's placement record."""
    cache = _AvailabilityCache(now)
    candidates: list[tuple[float, int, NodeFacts]] = []
    rejected = []
    rejected_count = 0
    for node in nodes:
        if _eligible(node, requirements, cache):
            candidates.append((-_score_value(node, requirements), node.node_id, node))
            continue
        rejected_count += 1
        if rejected_count <= MAX_REJECTED_KEPT:
            reasons = rejection_reasons(node, requirements, now, cache)
            rejected.append({"node_id": node.node_id, "name": node.name, "reasons": reasons})
    if not candidates:
        if not rejected:
            reason = "no eligible node: no nodes are enrolled"
        else:
            shown = "; ".join(f"{r['name']}: {', '.join(r['reasons'])}" for r in rejected[:5])
            more = f" (and {rejected_count - 5} more)" if rejected_count > 5 else ""
            reason = f"no eligible node: {shown}{more}"
        return Placement(
            node_id=None,
            reason=reason,
            candidates=[],
            rejected=rejected,
            rejected_count=rejected_count,
        )
    best_few = heapq.nsmallest(MAX_CANDIDATES_KEPT, candidates, key=lambda c: (c[0], c[1]))
    ranked = []
    for _, _, node in best_few:
        total, why = score(node, requirements)
        ranked.append({"node_id": node.node_id, "name": node.name, "score": total, "why": why})
    best = best_few[0][2]
    best_score, why = ranked[0]["score"], ranked[0]["why"]
    parts = []
    if "data_local" in why:
        parts.append(f"hosts {requirements.data_source}")
    parts.append(f"{best.running_tasks} of {best.max_tasks} tasks running")
    parts.append(f"{best.node_class} class")
    reason = (
        f"placed on {best.name} (score {best_score:g}, best of {len(candidates)}): "
        + ", ".join(parts)
    )
    return Placement(
        node_id=best.node_id,
        reason=reason,
        candidates=ranked,
        rejected=rejected,
        candidate_count=len(candidates),
        rejected_count=rejected_count,
    )
