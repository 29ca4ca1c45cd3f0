from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from apps.fabric.models import ComputeNode, NodeEvent


def record_event(
    *,
    node: ComputeNode,
    kind: str,
    actor: AbstractBaseUser | None = None,
    from_state: str = "",
    to_state: str = "",
    message: str = "",
    at: datetime | None = None,
) -> NodeEvent:
    """Append one entry to the node's history (callers hold the node's row lock when it matters)."""
    return NodeEvent.objects.create(
        node=node,
        kind=kind,
        actor=actor if actor is not None and actor.is_authenticated else None,
        from_state=from_state,
        to_state=to_state,
        message=message[:300],
        at=at or timezone.now(),
    )
