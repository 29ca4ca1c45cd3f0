"""Skill evidence from the compute fabric (registered for `skills`, see
apps/core/evidence_kinds.py).

- `fabric.nodes_uptime`: approved nodes the person owns (enrolled with their token) or approved,
  not retired; the figure is their mean uptime over the period: the share of the time since the
  node's first event (or the period's start) that it spent online or draining, read from the
  state changes in its history. Measures a list of people at once (the nodes and their histories
  in two reads).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q

from apps.core.evidence_kinds import (
    MAX_REFS,
    EvidenceKind,
    Measurement,
    Ref,
    group_by_first,
    register_evidence_kind,
    url_maker,
)
from apps.fabric.models import LIVE_STATES, ComputeNode, NodeEvent, NodeState


def _state_changes(node_ids: list[int], until: datetime) -> dict[int, list[tuple]]:
    """(at, to_state) of each node's state changes before `until`, oldest first."""
    return group_by_first(
        NodeEvent.objects.filter(node_id__in=node_ids, at__lt=until)
        .exclude(to_state="")
        .order_by("node_id", "at", "pk")
        .values_list("node_id", "at", "to_state")
    )


def uptime_share(
    changes: Sequence[tuple[datetime, str]], since: datetime | None, until: datetime
) -> float | None:
    """The share of [since, until) spent in a live state given a node's state `changes` before
    `until`, oldest first (None without history)."""
    if not changes:
        return None
    start = changes[0][0] if since is None or since < changes[0][0] else since
    if start >= until:
        return None
    state, live_seconds, cursor = NodeState.PENDING.value, 0.0, start
    for at, to_state in changes:
        if at > cursor:
            if state in LIVE_STATES:
                live_seconds += (at - cursor).total_seconds()
            cursor = at
        state = to_state
    if state in LIVE_STATES:
        live_seconds += (until - cursor).total_seconds()
    return live_seconds / (until - start).total_seconds()


def node_uptime(node: ComputeNode, since: datetime | None, until: datetime) -> float | None:
    """The share of [since, until) that `node` spent in a live state, from its history (None
    when the node has no history before `until`)."""
    return uptime_share(_state_changes([node.pk], until).get(node.pk, []), since, until)


def nodes_uptime(
    *, people: list[int], params: dict[str, Any], since: datetime | None, until: datetime
) -> dict[int, Measurement]:
    nodes = list(
        ComputeNode.objects.filter(Q(owner_id__in=people) | Q(approved_by_id__in=people))
        .filter(approved_at__isnull=False, control_plane=False)
        .exclude(state=NodeState.RETIRED)
        .order_by("name", "pk")
    )
    history = _state_changes([node.pk for node in nodes], until)
    wanted = set(people)
    measured: dict[int, list[tuple[ComputeNode, float]]] = {}
    for node in nodes:  # by name
        uptime = uptime_share(history.get(node.pk, []), since, until)
        if uptime is None:
            continue
        for person_id in {node.owner_id, node.approved_by_id} & wanted:
            measured.setdefault(person_id, []).append((node, uptime))
    node_url = url_maker("fabric_node", "node_id")
    return {
        person_id: Measurement(
            count=len(mine),
            value=sum(u for _, u in mine) / len(mine),
            refs=[
                Ref(f"node {node.name}: {uptime:.0%} up", node_url(node.pk))
                for node, uptime in mine[:MAX_REFS]
            ],
        )
        for person_id, mine in measured.items()
    }


register_evidence_kind(
    EvidenceKind(
        key="fabric.nodes_uptime",
        label="Nodes you enrolled or approved, kept healthy",
        value_label="mean uptime",
        measure_many=nodes_uptime,
        involves=lambda: (
            Q(Exists(ComputeNode.objects.filter(owner_id=OuterRef("pk"))))
            | Q(Exists(ComputeNode.objects.filter(approved_by_id=OuterRef("pk"))))
        ),
        todo="enrol or approve {n} more nodes",
        owner="fabric",
    )
)
