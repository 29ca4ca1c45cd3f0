"""Skill evidence from the compute fabric (registered for `skills`, see
apps/core/evidence_kinds.py).

- `fabric.nodes_uptime`: approved nodes the person owns (enrolled with their token) or approved,
  not retired; the figure is their mean uptime over the period: the share of the time since the
  node's first event (or the period's start) that it spent online or draining, read from the
  state changes in its history.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.urls import reverse

from apps.core.evidence_kinds import (
    MAX_REFS,
    EvidenceKind,
    Measurement,
    Ref,
    register_evidence_kind,
)
from apps.fabric.models import LIVE_STATES, ComputeNode, NodeEvent, NodeState


def node_uptime(node: ComputeNode, since: datetime | None, until: datetime) -> float | None:
    """The share of [since, until) that `node` spent in a live state, from its history (None
    when the node has no history before `until`)."""
    changes = list(
        NodeEvent.objects.filter(node=node, at__lt=until)
        .exclude(to_state="")
        .order_by("at", "pk")
        .values_list("at", "to_state")
    )
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


def nodes_uptime(
    *, person: AbstractBaseUser, params: dict[str, Any], since: datetime | None, until: datetime
) -> Measurement:
    nodes = (
        ComputeNode.objects.filter(Q(owner=person) | Q(approved_by=person))
        .filter(approved_at__isnull=False, control_plane=False)
        .exclude(state=NodeState.RETIRED)
        .order_by("name", "pk")
    )
    measured = [(node, node_uptime(node, since, until)) for node in nodes]
    measured = [(node, uptime) for node, uptime in measured if uptime is not None]
    refs = [
        Ref(
            f"node {node.name}: {uptime:.0%} up",
            reverse("fabric_node", kwargs={"node_id": node.pk}),
        )
        for node, uptime in measured[:MAX_REFS]
    ]
    mean = sum(u for _, u in measured) / len(measured) if measured else None
    return Measurement(count=len(measured), value=mean, refs=refs)


register_evidence_kind(
    EvidenceKind(
        key="fabric.nodes_uptime",
        label="Nodes you enrolled or approved, kept healthy",
        value_label="mean uptime",
        measure=nodes_uptime,
        todo="enrol or approve {n} more nodes",
        owner="fabric",
    )
)
