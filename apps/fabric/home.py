"""What the fabric puts on an admin's home page (the nav can't be filtered by role yet)."""

from django.contrib.auth.models import AbstractBaseUser

from apps.fabric import selectors
from apps.fabric.models import NodeState


def home_context(user: AbstractBaseUser) -> dict[str, object] | None:
    scope = selectors.fleet_scope(user=user)
    if scope == frozenset():
        return None
    counts = selectors.fleet_counts(scope=scope)
    return {
        "online": counts[NodeState.ONLINE],
        "offline": counts[NodeState.OFFLINE],
        "pending": counts[NodeState.PENDING],
        "total": sum(n for state, n in counts.items() if state != NodeState.RETIRED),
    }
