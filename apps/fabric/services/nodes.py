"""What admins do to nodes: approve, reject, drain, reclaim, retire, revoke, and edit them.
A node's owner may reclaim and release it and edit its availability too (apps.fabric.ownership).

Every action locks the node's row (heartbeats change state too), checks the state it needs, and
writes one history entry. A valid action the current state forbids raises NodeConflict (409).
"""

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.fabric import availability
from apps.fabric.errors import NodeConflict
from apps.fabric.models import ComputeNode, NodeClass, NodeEventKind, NodeState
from apps.fabric.services.heartbeats import MISSED_HEARTBEATS
from apps.fabric.services.history import record_event


def _locked(node: ComputeNode) -> ComputeNode:
    locked = ComputeNode.objects.select_for_update().get(pk=node.pk)
    if locked.state == NodeState.RETIRED:
        raise NodeConflict(f"{locked.name} is retired; enrol the machine again to use it.")
    return locked


def _apply(
    node: ComputeNode,
    *,
    actor: AbstractBaseUser | None,
    kind: str,
    message: str = "",
    change: Callable[[ComputeNode], None],
) -> ComputeNode:
    before = node.state
    change(node)
    node.save()
    record_event(
        node=node,
        kind=kind,
        actor=actor,
        from_state=before if node.state != before else "",
        to_state=node.state if node.state != before else "",
        message=message,
    )
    return node


@transaction.atomic
def approve_node(*, node: ComputeNode, actor: AbstractBaseUser) -> ComputeNode:
    """Let a pending node take work. It is online when it heartbeated recently, else offline."""
    node = _locked(node)
    if node.state != NodeState.PENDING:
        raise NodeConflict(f"{node.name} is not waiting for approval.")
    now = timezone.now()
    recent = now - timedelta(seconds=MISSED_HEARTBEATS * settings.ORCHCAP_HEARTBEAT_SECONDS)
    alive = node.last_heartbeat_at is not None and node.last_heartbeat_at >= recent

    def change(n: ComputeNode) -> None:
        n.state = NodeState.ONLINE if alive else NodeState.OFFLINE
        n.approved_by = actor
        n.approved_at = now

    return _apply(node, actor=actor, kind=NodeEventKind.APPROVED, change=change)


@transaction.atomic
def reject_node(*, node: ComputeNode, actor: AbstractBaseUser) -> ComputeNode:
    """Refuse a pending node: its credential dies and it is retired."""
    node = _locked(node)
    if node.state != NodeState.PENDING:
        raise NodeConflict(f"{node.name} is not waiting for approval; retire or revoke it.")

    def change(n: ComputeNode) -> None:
        n.state = NodeState.RETIRED
        n.revoked_at = timezone.now()

    return _apply(node, actor=actor, kind=NodeEventKind.REJECTED, change=change)


@transaction.atomic
def drain_node(*, node: ComputeNode, actor: AbstractBaseUser) -> ComputeNode:
    """No new work; current work finishes. Sticks across agent restarts until resumed."""
    node = _locked(node)
    if node.state == NodeState.PENDING:
        raise NodeConflict(f"{node.name} is not approved yet; there is nothing to drain.")
    if node.drain_requested:
        raise NodeConflict(f"{node.name} is already draining.")

    def change(n: ComputeNode) -> None:
        n.drain_requested = True
        if n.state == NodeState.ONLINE:
            n.state = NodeState.DRAINING

    return _apply(node, actor=actor, kind=NodeEventKind.DRAIN, change=change)


@transaction.atomic
def resume_node(*, node: ComputeNode, actor: AbstractBaseUser) -> ComputeNode:
    """Undo a drain (the node's own heartbeats then keep its state right)."""
    node = _locked(node)
    if not node.drain_requested and node.state != NodeState.DRAINING:
        raise NodeConflict(f"{node.name} is not draining.")

    def change(n: ComputeNode) -> None:
        n.drain_requested = False
        if n.state == NodeState.DRAINING:
            n.state = NodeState.ONLINE

    return _apply(node, actor=actor, kind=NodeEventKind.RESUMED, change=change)


def _set_reclaim(node: ComputeNode, value: bool) -> None:
    policy = dict(node.availability or {})
    policy["reclaim"] = value
    node.availability = policy


# Said in the history when the switch was pressed on the machine itself (`orchcap-agent reclaim`
# with the node's credential): no user is signed in there, but only the owner holds it.
AT_THE_MACHINE = "by the owner at the machine"


def _by(actor: AbstractBaseUser | None, message: str) -> str:
    return f"{message}, {AT_THE_MACHINE}" if actor is None else message


@transaction.atomic
def reclaim_node(*, node: ComputeNode, actor: AbstractBaseUser | None = None) -> ComputeNode:
    """The owner's "I need my machine": no new work from now on, until released. Work already
    running finishes. `actor` None means the owner at the machine (the node's credential).
    Raises NodeConflict when it is already reclaimed or retired."""
    node = _locked(node)
    if (node.availability or {}).get("reclaim"):
        raise NodeConflict(f"{node.name} is already reclaimed.")
    return _apply(
        node,
        actor=actor,
        kind=NodeEventKind.RECLAIMED,
        message=_by(actor, "no new work until released"),
        change=lambda n: _set_reclaim(n, True),
    )


@transaction.atomic
def release_node(*, node: ComputeNode, actor: AbstractBaseUser | None = None) -> ComputeNode:
    """Undo a reclaim: the node's windows and idle rule decide again. `actor` None means the
    owner at the machine. Raises NodeConflict when it isn't reclaimed or is retired."""
    node = _locked(node)
    if not (node.availability or {}).get("reclaim"):
        raise NodeConflict(f"{node.name} is not reclaimed.")
    return _apply(
        node,
        actor=actor,
        kind=NodeEventKind.RELEASED,
        message=_by(actor, "back to its usual hours"),
        change=lambda n: _set_reclaim(n, False),
    )


@transaction.atomic
def retire_node(*, node: ComputeNode, actor: AbstractBaseUser) -> ComputeNode:
    """Take the machine out of the fleet for good; its agent is refused from now on."""
    node = _locked(node)

    def change(n: ComputeNode) -> None:
        n.state = NodeState.RETIRED

    return _apply(node, actor=actor, kind=NodeEventKind.RETIRED, change=change)


@transaction.atomic
def revoke_node(*, node: ComputeNode, actor: AbstractBaseUser) -> ComputeNode:
    """Kill the node's credential at once (a stolen or leaked machine). The node is retired; the
    machine can enrol again with a new token as a new node."""
    node = ComputeNode.objects.select_for_update().get(pk=node.pk)
    if node.revoked_at is not None:
        raise NodeConflict(f"{node.name}'s credential is already revoked.")

    def change(n: ComputeNode) -> None:
        n.revoked_at = timezone.now()
        n.state = NodeState.RETIRED

    return _apply(
        node,
        actor=actor,
        kind=NodeEventKind.REVOKED,
        message="credential revoked",
        change=change,
    )


@transaction.atomic
def update_availability(
    *,
    node: ComputeNode,
    actor: AbstractBaseUser,
    windows: list[dict[str, object]],
    idle_minutes: int,
    node_timezone: str,
) -> ComputeNode:
    """Replace the node's weekly windows, idle rule and timezone; the reclaim switch is kept.
    Raises ValidationError naming the bad part."""
    node = _locked(node)
    data = {
        "windows": windows,
        "idle_minutes": idle_minutes,
        "reclaim": bool((node.availability or {}).get("reclaim", False)),
    }
    try:
        policy = availability.parse_policy(data, node_timezone)
    except availability.PolicyError as exc:
        raise ValidationError(str(exc)) from None

    def change(n: ComputeNode) -> None:
        n.availability = policy.to_json()
        n.timezone = node_timezone

    return _apply(
        node,
        actor=actor,
        kind=NodeEventKind.POLICY,
        message=availability.describe(policy),
        change=change,
    )


@transaction.atomic
def update_node_settings(
    *,
    node: ComputeNode,
    actor: AbstractBaseUser,
    name: str,
    purpose: str,
    node_class: str,
    max_concurrent_tasks: int,
    owner: AbstractBaseUser | None,
) -> ComputeNode:
    """Change a node's name, owner, purpose, class and slots; one history entry lists what
    changed."""
    node = _locked(node)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationError("name must be 1 to 120 characters")
    if node_class not in NodeClass.values:
        raise ValidationError(f"class must be one of {', '.join(NodeClass.values)}")
    if not 1 <= max_concurrent_tasks <= 256:
        raise ValidationError("max concurrent tasks must be from 1 to 256")
    changes = []
    for field, value in (
        ("name", name),
        ("purpose", purpose.strip()[:200]),
        ("node_class", node_class),
        ("max_concurrent_tasks", max_concurrent_tasks),
    ):
        if getattr(node, field) != value:
            changes.append(f"{field.replace('_', ' ')}: {getattr(node, field)} → {value}")
            setattr(node, field, value)
    if node.owner_id != (owner.pk if owner is not None else None):
        before = node.owner.get_username() if node.owner_id else "nobody"
        after = owner.get_username() if owner is not None else "nobody"
        changes.append(f"owner: {before} → {after}")
        node.owner = owner
    if not changes:
        return node
    return _apply(
        node,
        actor=actor,
        kind=NodeEventKind.SETTINGS,
        message="; ".join(changes),
        change=lambda n: None,
    )
