"""Whether a node's worker takes what is sent to its queue.

A node can heartbeat while its worker is stuck or stopped consuming. The control plane notices
when work it sent (a task or the sweeper's 0-second probe) was not taken within a lease: the node
is flagged and gets no work until it takes some again (a later probe, or a task it reports).
"""

from datetime import datetime

from apps.fabric.models import ComputeNode, NodeEventKind
from apps.fabric.services.history import record_event


def flag_not_consuming(*, node: ComputeNode, now: datetime, why: str) -> bool:
    """Flag `node` (once); returns True when it was not flagged before."""
    updated = ComputeNode.objects.filter(pk=node.pk, not_consuming_since__isnull=True).update(
        not_consuming_since=now
    )
    if updated:
        node.not_consuming_since = now
        record_event(node=node, kind=NodeEventKind.NOT_CONSUMING, message=why, at=now)
    return bool(updated)


def mark_consuming(*, node: ComputeNode, now: datetime, why: str) -> bool:
    """Clear the flag; returns True when the node was flagged."""
    updated = ComputeNode.objects.filter(pk=node.pk, not_consuming_since__isnull=False).update(
        not_consuming_since=None
    )
    if updated:
        node.not_consuming_since = None
        record_event(node=node, kind=NodeEventKind.CONSUMING, message=why, at=now)
    return bool(updated)
