import json
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Count, Exists, QuerySet
from django.http import Http404
from django.utils import timezone

from apps.fabric import availability, scheduler
from apps.fabric.models import (
    OPEN_TASK_STATES,
    ComputeNode,
    EnrollmentToken,
    FabricArtifact,
    FabricTask,
    FabricTaskState,
    NodeEvent,
    NodeState,
)
from apps.people import selectors as people_selectors


def can_manage_fabric(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """The whole fleet (every node, the task pages, the fleet API) is organisation
    infrastructure: organisation admins manage it."""
    return people_selectors.is_org_admin(user=user)


# The teams whose nodes a person manages: None for all of them (an organisation admin).
Scope = frozenset[int] | None


def fleet_scope(*, user: AbstractBaseUser | AnonymousUser) -> Scope:
    """None for an organisation admin (every node); else the ids of the teams `user` is an admin
    of: a team admin manages the nodes enrolled for their teams (`ComputeNode.team`) and those
    teams' enrolment tokens, nothing else. Empty for everyone else."""
    if can_manage_fabric(user=user):
        return None
    return frozenset(people_selectors.administered_teams(user=user).values_list("pk", flat=True))


def can_see_fleet(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Organisation admins and admins of at least one team (who see their teams' nodes)."""
    return fleet_scope(user=user) != frozenset()


def _scoped(queryset: QuerySet, scope: Scope) -> QuerySet:
    return queryset if scope is None else queryset.filter(team_id__in=scope)


def fleet(*, include_retired: bool = False, scope: Scope = None) -> QuerySet[ComputeNode]:
    """Nodes for the fleet page and API, by name; retired ones only when asked; only the
    `scope` teams' when given."""
    nodes = _scoped(ComputeNode.objects.select_related("owner", "team", "approved_by"), scope)
    if not include_retired:
        nodes = nodes.exclude(state=NodeState.RETIRED)
    return nodes.order_by("name", "pk")


def managed_node(*, user: AbstractBaseUser | AnonymousUser, node_id: int) -> ComputeNode:
    """Node `node_id` if `user` manages it (see fleet_scope); Http404 otherwise, the same answer
    as for a node that doesn't exist."""
    node = _scoped(ComputeNode.objects.filter(pk=node_id), fleet_scope(user=user)).first()
    if node is None:
        raise Http404("No such node")
    return node


def approval_queue(*, scope: Scope = None) -> QuerySet[ComputeNode]:
    """Nodes waiting for an admin, oldest first."""
    return _scoped(
        ComputeNode.objects.filter(state=NodeState.PENDING, revoked_at__isnull=True)
        .select_related("owner", "team", "enrollment_token")
        .order_by("created_at", "pk"),
        scope,
    )


def open_enrollment_tokens(
    *, now: datetime | None = None, scope: Scope = None
) -> QuerySet[EnrollmentToken]:
    now = now or timezone.now()
    return _scoped(
        EnrollmentToken.objects.filter(
            used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).select_related("team", "created_by"),
        scope,
    )


def node_history(*, node: ComputeNode, limit: int = 100) -> QuerySet[NodeEvent]:
    return node.events.select_related("actor")[:limit]


def fleet_counts(*, scope: Scope = None) -> dict[str, int]:
    """{state: number of nodes} over all states (zeros included), of the `scope` teams' nodes
    when given."""
    counts = dict(
        _scoped(ComputeNode.objects.all(), scope)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    return {state: counts.get(state, 0) for state in NodeState.values}


def policy_of(*, node: ComputeNode) -> availability.Policy | None:
    """The node's parsed policy, or None when the stored JSON or timezone is unusable."""
    try:
        return availability.parse_policy(node.availability, node.timezone)
    except availability.PolicyError:
        return None


def describe_availability(*, node: ComputeNode) -> str:
    policy = policy_of(node=node)
    if policy is None:
        return "Unreadable availability policy: no work until an admin fixes it"
    return availability.describe(policy)


def work_decision(*, node: ComputeNode, now: datetime | None = None) -> availability.Availability:
    """Whether `node` should accept new work now, with the reason a person reads."""
    now = now or timezone.now()
    if node.revoked_at is not None or node.state == NodeState.RETIRED:
        return availability.Availability(False, "retired")
    if node.state == NodeState.PENDING:
        return availability.Availability(False, "waiting for an admin to approve it")
    if node.state == NodeState.DRAINING:
        return availability.Availability(False, "draining: finishing current work, taking none")
    if node.state == NodeState.PLANNED_OFFLINE:
        return availability.Availability(False, "planned offline")
    if node.state == NodeState.OFFLINE:
        return availability.Availability(False, "offline: heartbeats lost")
    policy = policy_of(node=node)
    if policy is None:
        return availability.Availability(False, "its availability policy is unreadable")
    return availability.evaluate(policy, now, node.idle_seconds)


def heartbeat_overdue(*, node: ComputeNode, now: datetime | None = None) -> bool:
    """More than one interval late (a warning on the page; the sweeper acts after three)."""
    if node.last_heartbeat_at is None:
        return True
    now = now or timezone.now()
    late = timedelta(seconds=2 * settings.ORCHCAP_HEARTBEAT_SECONDS)
    return now - node.last_heartbeat_at > late


def pending_count(*, scope: Scope = None) -> int:
    return approval_queue(scope=scope).count()


def _gigabytes(megabytes: object) -> str:
    if isinstance(megabytes, int | float) and not isinstance(megabytes, bool):
        return f"{megabytes / 1024:.1f} GB"
    return str(megabytes)


_DETECTED_LABELS = {
    "cpu_cores": ("CPU cores", str),
    "memory_mb": ("Memory", _gigabytes),
    "disk_free_mb": ("Free disk", _gigabytes),
    "os": ("OS", str),
    "os_release": ("OS release", str),
    "arch": ("Architecture", str),
    "python": ("Python", str),
    "hostname": ("Host name", str),
}


def capability_rows(*, node: ComputeNode) -> list[dict[str, object]]:
    """[{"name", "value", "declared"}] for the node page: detected first, then declared."""
    rows: list[dict[str, object]] = []
    for key, value in node.detected.items():
        if key == "gpus":
            for index, gpu in enumerate(value or []):
                gpu = gpu if isinstance(gpu, dict) else {"model": str(gpu)}
                memory = gpu.get("memory_mb")
                text = str(gpu.get("model", "GPU")) + (f" ({_gigabytes(memory)})" if memory else "")
                rows.append({"name": f"GPU {index}", "value": text, "declared": False})
            continue
        label, show = _DETECTED_LABELS.get(key, (key, str))
        rows.append({"name": label, "value": show(value), "declared": False})
    for key, value in node.declared.items():
        label, show = _DETECTED_LABELS.get(key, (key, str))
        rows.append({"name": label, "value": show(value), "declared": True})
    return rows


def capability_summary(*, node: ComputeNode) -> list[dict[str, object]]:
    """Short chips for the fleet table: cores, memory, GPUs; declared ones marked."""
    detected, declared = node.detected, node.declared
    chips: list[dict[str, object]] = []
    for key, text in (("cpu_cores", "{} CPU"), ("memory_mb", "{}")):
        if key in declared:
            value = declared[key]
            chips.append({"text": text.format(_gigabytes(value) if key == "memory_mb" else value),
                          "declared": True})  # fmt: skip
        elif key in detected:
            value = detected[key]
            chips.append({"text": text.format(_gigabytes(value) if key == "memory_mb" else value),
                          "declared": False})  # fmt: skip
    gpus = detected.get("gpus") or []
    if gpus:
        chips.append({"text": f"{len(gpus)} GPU", "declared": False})
    elif declared.get("gpus"):
        chips.append({"text": f"{declared['gpus']} GPU", "declared": True})
    return chips


_FACT_FIELDS = (
    "pk", "name", "node_class", "state", "approved_at", "revoked_at", "detected", "declared",
    "labels", "data_sources", "max_concurrent_tasks", "running_tasks", "timezone",
    "idle_seconds", "worker_ready", "not_consuming_since",
)  # fmt: skip


def _facts(
    row: dict[str, object],
    availability_text: str,
    leased: int | None,
    policies: dict[tuple[str, str], availability.Policy | None],
) -> scheduler.NodeFacts:
    detected = row["detected"] if isinstance(row["detected"], dict) else {}
    declared = row["declared"] if isinstance(row["declared"], dict) else {}

    def number(key: str) -> int:
        value = detected.get(key, declared.get(key, 0))
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    gpus = [g for g in detected.get("gpus") or [] if isinstance(g, dict)]
    gpu_count = len(gpus) or (
        declared["gpus"]
        if isinstance(declared.get("gpus"), int) and not isinstance(declared.get("gpus"), bool)
        else 0
    )
    gpu_memory = max((int(g.get("memory_mb") or 0) for g in gpus), default=0)
    if not gpu_memory:
        gpu_memory = number("gpu_memory_mb")
    key = (availability_text, str(row["timezone"]))
    if key not in policies:
        try:
            policies[key] = availability.parse_policy(json.loads(availability_text), key[1])
        except (availability.PolicyError, ValueError):
            policies[key] = None
    return scheduler.NodeFacts(
        node_id=int(row["pk"]),
        name=str(row["name"]),
        node_class=str(row["node_class"]),
        state=str(row["state"]),
        approved=row["approved_at"] is not None,
        revoked=row["revoked_at"] is not None,
        cpu_cores=number("cpu_cores"),
        memory_mb=number("memory_mb"),
        gpus=gpu_count,
        gpu_memory_mb=gpu_memory,
        labels=row["labels"] or {},
        data_sources=frozenset(row["data_sources"] or []),
        max_tasks=int(row["max_concurrent_tasks"]),
        running_tasks=int(row["running_tasks"]) if leased is None else leased,
        policy=policies[key],
        idle_seconds=row["idle_seconds"],
        worker_ready=bool(row["worker_ready"]),
        consuming=row["not_consuming_since"] is None,
    )


def node_facts(*, node: ComputeNode, leased: int | None = None) -> scheduler.NodeFacts:
    """What the scheduler needs to know about `node`; declared values fill what the probe
    didn't detect. `leased` is the number of tasks placed on or running on it (its used
    capacity; by default what its last heartbeat said)."""
    row = {field: getattr(node, field) for field in _FACT_FIELDS}
    return _facts(row, json.dumps(node.availability), leased, {})


def node_candidates() -> list[scheduler.NodeFacts]:
    """Every enrolled node that isn't retired, as scheduler input (ineligible ones included, so
    the placement can say why they were passed over). Used capacity is what the control plane
    leased to each node, not what its last heartbeat said.

    Read as plain rows (no model instances, not even a queryset to compile) and with one parsed
    policy per distinct policy: every placement pass reads the whole fleet."""
    nodes, tasks = ComputeNode._meta.db_table, FabricTask._meta.db_table
    with connection.cursor() as cursor:
        # A subquery on the partial index of open tasks (a join would walk every task a node ran).
        cursor.execute(
            "SELECT n.id, n.name, n.node_class, n.state, n.approved_at, n.revoked_at, "  # noqa: S608 (our tables)
            "n.detected::text, n.declared::text, n.labels::text, n.data_sources::text, "
            "n.max_concurrent_tasks, n.running_tasks, n.timezone, n.idle_seconds, "
            "n.worker_ready, n.not_consuming_since, n.availability::text, "
            f"(SELECT count(*) FROM {tasks} AS t WHERE t.node_id = n.id "
            "AND t.state = ANY(%s)) "
            f"FROM {nodes} AS n WHERE n.state <> %s ORDER BY n.id",
            [[str(state) for state in OPEN_TASK_STATES], str(NodeState.RETIRED)],
        )
        rows = cursor.fetchall()
    policies: dict[tuple[str, str], availability.Policy | None] = {}
    facts = []
    for row in rows:
        values = dict(zip(_FACT_FIELDS, row, strict=False))
        for key in ("detected", "declared", "labels", "data_sources"):
            values[key] = json.loads(values[key]) if values[key] is not None else None
        facts.append(_facts(values, row[-2], row[-1], policies))
    return facts


# --- tasks ------------------------------------------------------------------------------------


def task_list(*, state: str | None = None, limit: int = 200) -> QuerySet[FabricTask]:
    """Newest first; pending ones oldest first (the order they will be placed in)."""
    tasks = FabricTask.objects.select_related("node", "created_by")
    if state:
        tasks = tasks.filter(state=state)
    if state == FabricTaskState.PENDING:
        return tasks.order_by("created_at", "pk")[:limit]
    return tasks.order_by("-created_at", "-pk")[:limit]


def task_counts() -> dict[str, int]:
    counts = dict(FabricTask.objects.values_list("state").annotate(n=Count("pk")))
    return {state: counts.get(state, 0) for state in FabricTaskState.values}


def task_attempts(*, task: FabricTask) -> QuerySet:
    return task.attempt_log.select_related("node").order_by("number")


def node_open_tasks(*, node: ComputeNode) -> QuerySet[FabricTask]:
    return node.tasks.filter(state__in=OPEN_TASK_STATES).order_by("placed_at", "pk")


def node_recent_tasks(*, node: ComputeNode, limit: int = 20) -> QuerySet[FabricTask]:
    return (
        FabricTask.objects.filter(attempt_log__node=node)
        .distinct()
        .order_by("-created_at", "-pk")[:limit]
    )


def artifact_for_node(*, node: ComputeNode, sha256: str) -> FabricArtifact | None:
    """The artefact, only while `node` holds an open task that names it: a node can't fetch
    what another node's work uses."""
    needed = FabricTask.objects.filter(
        node=node, state__in=OPEN_TASK_STATES, artifacts__contains=[sha256]
    )
    return FabricArtifact.objects.filter(sha256=sha256).filter(Exists(needed)).first()


def node_hours(*, since: datetime | None = None) -> dict[str, list[dict[str, object]]]:
    """Hours of work nodes ran (finished attempts, started to finished), by class and by owner:
    the dormant power the fabric put to use. {"by_class": [...], "by_owner": [...]}."""
    from django.db.models import DurationField, ExpressionWrapper, F, Sum

    from apps.fabric.models import TaskAttempt

    attempts = TaskAttempt.objects.filter(
        finished_at__isnull=False, started_at__isnull=False, node__isnull=False
    )
    if since is not None:
        attempts = attempts.filter(finished_at__gte=since)
    spent = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())

    def grouped(field: str) -> list[dict[str, object]]:
        rows = (
            attempts.values(field)
            .annotate(total=Sum(spent), tasks=Count("pk"), nodes=Count("node", distinct=True))
            .order_by("-total")
        )
        return [
            {
                "key": row[field] or "(no owner)",
                "hours": row["total"].total_seconds() / 3600 if row["total"] else 0.0,
                "tasks": row["tasks"],
                "nodes": row["nodes"],
            }
            for row in rows
        ]

    return {"by_class": grouped("node__node_class"), "by_owner": grouped("node__owner__username")}
