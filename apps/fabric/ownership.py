"""Reads for a machine's owner: the nodes they lend, and what those nodes did.

Owners aren't fleet admins: they see and switch only their own machines (the "My machines" page),
so every query here starts from `owner=user`.
"""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import Http404

from apps.fabric.models import (
    OPEN_TASK_STATES,
    ComputeNode,
    FabricTask,
    NodeState,
    TaskAttempt,
)


def owned_nodes(*, user: AbstractBaseUser | AnonymousUser) -> list[ComputeNode]:
    """The user's nodes that aren't retired, by name (none for an anonymous user)."""
    if not user.is_authenticated:
        return []
    return list(
        ComputeNode.objects.filter(owner=user)
        .exclude(state=NodeState.RETIRED)
        .select_related("owner", "team")
        .order_by("name", "pk")
    )


def owned_node(*, user: AbstractBaseUser | AnonymousUser, node_id: int) -> ComputeNode:
    """The user's non-retired node `node_id`; Http404 for anyone else's (one answer for "no such
    node" and "not yours", so a user learns nothing about machines they don't own)."""
    if user.is_authenticated:
        node = (
            ComputeNode.objects.filter(pk=node_id, owner=user)
            .exclude(state=NodeState.RETIRED)
            .select_related("owner", "team")
            .first()
        )
        if node is not None:
            return node
    raise Http404("No such machine of yours")


def shows_my_machines(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the navigation offers "My machines": the user owns a non-retired node and isn't
    an organisation admin (superuser: they have the whole fleet, see
    apps.people.selectors.is_org_admin). A team's admin who lends a machine sees both."""
    if not user.is_authenticated or not user.is_active or user.is_superuser:
        return False
    return ComputeNode.objects.filter(owner=user).exclude(state=NodeState.RETIRED).exists()


def open_tasks_by_node(*, nodes: list[ComputeNode]) -> dict[int, list[FabricTask]]:
    """{node id: tasks placed on or running there now, oldest first}, in one query."""
    found: dict[int, list[FabricTask]] = {node.pk: [] for node in nodes}
    tasks = FabricTask.objects.filter(node__in=nodes, state__in=OPEN_TASK_STATES).order_by(
        "placed_at", "pk"
    )
    for task in tasks:
        found[task.node_id].append(task)
    return found


def hours_by_node(
    *, nodes: list[ComputeNode], since: datetime | None = None
) -> dict[int, dict[str, float | int]]:
    """{node id: {"hours", "tasks"}}: finished attempts on each node, start to finish (what the
    fleet page's node-hours count), since `since` when given."""
    spent = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    when = Q(finished_at__gte=since) if since is not None else Q()
    rows = (
        TaskAttempt.objects.filter(
            when, node__in=nodes, finished_at__isnull=False, started_at__isnull=False
        )
        .values("node")
        .annotate(total=Sum(spent), tasks=Count("pk"))
        .order_by()
    )
    found: dict[int, dict[str, float | int]] = {
        node.pk: {"hours": 0.0, "tasks": 0} for node in nodes
    }
    for row in rows:
        total = row["total"]
        found[row["node"]] = {
            "hours": total.total_seconds() / 3600 if total else 0.0,
            "tasks": row["tasks"],
        }
    return found
