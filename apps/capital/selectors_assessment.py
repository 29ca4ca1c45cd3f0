"""Reads for the reality assessment: a team's four pillars measured from orchcap's own tables, and
who may see and edit them (the gaps and the recorded versions are in selectors_gaps.py).

Every figure is plain JSON (numbers rounded for display), because a recorded assessment stores
exactly what the page showed."""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Count, Max, Q
from django.utils import timezone

from apps.capital.models import (
    CandidateProcess,
    DataSource,
    ListedAsset,
)
from apps.cases.models import Case, CaseStatus, Decision, DecisionSource, Process
from apps.cases.selectors_quality import process_agreement
from apps.fabric.models import ComputeNode, NodeState, TaskAttempt
from apps.people.models import Membership, Role, Team
from apps.people.selectors import can_manage_team, is_org_admin, team_for_member

AnyUser = AbstractBaseUser | AnonymousUser

# Expert decisions: what people decided (a model's own decisions at autonomy level 3 are not).
EXPERT_SOURCES = (
    DecisionSource.REVIEW,
    DecisionSource.API,
    DecisionSource.IMPORT,
    DecisionSource.ADJUDICATION,
)
VOLUME_DAYS = 28  # exception volume: cases received in the last 4 weeks, per week
ACTIVITY_DAYS = 30  # an expert is active with a decision in the last 30 days
FABRIC_DAYS = 30  # node-hours: the last 30 days
MEASURED_DAYS = 90  # review time: decisions of the last 90 days
MIN_MEASURED = 10  # fewer timed reviews than this: the configured estimate is used
# Field types whose values are well bounded (the "clear boundaries" of the first battle).
TYPED_FIELDS = frozenset({"number", "money", "category", "date", "datetime", "boolean"})


# --- who may see and edit -----------------------------------------------------------------------


def capital_team(*, user: AnyUser, slug: str) -> Team:
    """The team `slug` for its members (any role) and organisation admins; Http404 otherwise."""
    return team_for_member(user=user, slug=slug)


def can_edit_capital(*, user: AnyUser, team: Team) -> bool:
    """The team's managers and admins (and organisation admins) edit its assessment, first
    battle and roadmap; its experts and staff read them."""
    return can_manage_team(user=user, team=team)


def can_edit_criteria(*, user: AnyUser) -> bool:
    """Phase criteria hold for the whole organisation: only its admins edit them."""
    return is_org_admin(user=user)


def capital_teams(*, user: AnyUser) -> list[Team]:
    """The teams whose capital pages `user` may open (members; every team for org admins)."""
    if is_org_admin(user=user):
        return list(Team.objects.order_by("name"))
    if not user.is_authenticated:
        return []
    return list(Team.objects.filter(memberships__user=user).distinct().order_by("name"))


# --- measurements -------------------------------------------------------------------------------


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def measured_minutes(*, process_ids: list[int], since: datetime) -> dict[int, dict[str, Any]]:
    """{process id: {"minutes": median minutes per case, "reviews": n}} from the seconds experts
    spent on review decisions since `since` (median per decision times the process's overlap: a
    case takes `overlap` reviews). Processes with no timed review are absent."""
    if not process_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.process_id,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY d.seconds_spent),
                   count(*)
            FROM cases_decision d JOIN cases_case c ON c.id = d.case_id
            WHERE c.process_id = ANY(%s) AND d.source = %s AND d.retracted_at IS NULL
              AND d.seconds_spent IS NOT NULL AND d.decided_at >= %s
            GROUP BY c.process_id
            """,
            [process_ids, DecisionSource.REVIEW, since],
        )
        rows = cursor.fetchall()
    overlap = dict(Process.objects.filter(pk__in=process_ids).values_list("pk", "overlap"))
    return {
        pid: {"minutes": median / 60 * overlap[pid], "reviews": count}
        for pid, median, count in rows
    }


def process_figures(*, team: Team, now: datetime) -> list[dict[str, Any]]:
    """One row per connected process of `team`: volume, minutes (measured and configured),
    backlog and its age, decisions, schema shape and field completeness."""
    processes = list(Process.objects.filter(team=team).select_related("schema").order_by("name"))
    ids = [p.pk for p in processes]
    volume_since = now - timedelta(days=VOLUME_DAYS)
    cases = {
        row["process"]: row
        for row in Case.objects.filter(process_id__in=ids)
        .values("process")
        .annotate(
            total=Count("pk"),
            recent=Count("pk", filter=Q(created_at__gte=volume_since)),
            backlog=Count("pk", filter=~Q(status=CaseStatus.DECIDED)),
        )
        .order_by()
    }
    ages = _backlog_ages(ids, now)
    decisions = {
        row["case__process"]: row
        for row in Decision.objects.filter(
            case__process_id__in=ids, retracted_at__isnull=True, source__in=EXPERT_SOURCES
        )
        .values("case__process")
        .annotate(
            total=Count("pk"),
            recent=Count("pk", filter=Q(decided_at__gte=volume_since)),
            experts=Count(
                "expert",
                distinct=True,
                filter=Q(decided_at__gte=now - timedelta(days=ACTIVITY_DAYS)),
            ),
        )
        .order_by()
    }
    measured = measured_minutes(process_ids=ids, since=now - timedelta(days=MEASURED_DAYS))
    completeness = _field_completeness(processes)
    candidates = {
        c.process_id: c
        for c in CandidateProcess.objects.filter(process_id__in=ids).select_related("owner")
    }
    rows = []
    for process in processes:
        case_row = cases.get(process.pk, {})
        decision_row = decisions.get(process.pk, {})
        schema = process.schema
        fields = list(schema.fields) if schema else []
        labels = list(schema.labels) if schema else []
        timed = measured.get(process.pk)
        candidate = candidates.get(process.pk)
        owner = candidate.owner if candidate else None
        rows.append(
            {
                "slug": process.slug,
                "name": process.name,
                "cases": case_row.get("total", 0),
                "cases_per_week": _round(case_row.get("recent", 0) / (VOLUME_DAYS / 7), 2),
                "minutes_configured": _round(process.minutes_per_case, 2),
                "minutes_measured": _round(timed["minutes"], 2) if timed else None,
                "timed_reviews": timed["reviews"] if timed else 0,
                "backlog": case_row.get("backlog", 0),
                "backlog_age_days": _round(ages.get(process.pk, {}).get("mean"), 2),
                "oldest_open_days": _round(ages.get(process.pk, {}).get("oldest")),
                "decisions": decision_row.get("total", 0),
                "decisions_per_week": _round(decision_row.get("recent", 0) / (VOLUME_DAYS / 7), 2),
                "active_experts": decision_row.get("experts", 0),
                "labels": len(labels),
                "fields": len(fields),
                "typed_fields": sum(1 for f in fields if f.get("type") in TYPED_FIELDS),
                "field_completeness": _round(completeness.get(process.pk), 3),
                "overlap": process.overlap,
                "owner": owner.get_username() if owner else None,
            }
        )
    return rows


def minutes_used(row: dict[str, Any]) -> tuple[float, str]:
    """The minutes per case a ranking uses, and where they come from: measured review time when
    at least MIN_MEASURED reviews were timed, else the configured estimate."""
    if row.get("minutes_measured") is not None and row.get("timed_reviews", 0) >= MIN_MEASURED:
        return float(row["minutes_measured"]), "measured"
    return float(row.get("minutes_configured") or 0), "configured"


def _backlog_ages(process_ids: list[int], now: datetime) -> dict[int, dict[str, float]]:
    """{process id: {"mean": days, "oldest": days}} of the cases not decided yet."""
    if not process_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT process_id,
                   avg(extract(epoch FROM %s - created_at)) / 86400,
                   max(extract(epoch FROM %s - created_at)) / 86400
            FROM cases_case WHERE process_id = ANY(%s) AND status <> %s
            GROUP BY process_id
            """,
            [now, now, process_ids, CaseStatus.DECIDED],
        )
        return {pid: {"mean": mean, "oldest": oldest} for pid, mean, oldest in cursor.fetchall()}


COMPLETENESS_SAMPLE = 1000


def _field_completeness(processes: list[Process]) -> dict[int, float]:
    """{process id: share of schema fields filled} over the process's latest 1,000 cases (a value
    that is missing, null or an empty string is not filled)."""
    result: dict[int, float] = {}
    for process in processes:
        names = [f["name"] for f in (process.schema.fields if process.schema else [])]
        if not names:
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT count(*), sum((
                    SELECT count(*) FROM unnest(%s::text[]) AS name
                    WHERE coalesce(c.fields ->> name, '') <> ''
                ))
                FROM (SELECT fields FROM cases_case WHERE process_id = %s
                      ORDER BY created_at DESC, id DESC LIMIT %s) c
                """,
                [names, process.pk, COMPLETENESS_SAMPLE],
            )
            count, filled = cursor.fetchone()
        if count:
            result[process.pk] = float(filled or 0) / (count * len(names))
    return result


def _online_hours(nodes: list[ComputeNode], since: datetime, now: datetime) -> float:
    """Hours the nodes spent online since `since`, from their state history (NodeEvent rows
    with a new state): the hours they offered the fabric."""
    from apps.fabric.models import NodeEvent

    total = 0.0
    for node in nodes:
        events = list(
            NodeEvent.objects.filter(node=node)
            .exclude(to_state="")
            .order_by("at", "pk")
            .values_list("at", "to_state")
        )
        state = NodeState.PENDING
        cursor_at = since
        for at, to_state in events:
            if at <= since:
                state = to_state
                continue
            if state == NodeState.ONLINE:
                total += (at - cursor_at).total_seconds()
            state, cursor_at = to_state, at
        if state == NodeState.ONLINE:
            total += (now - cursor_at).total_seconds()
    return total / 3600


def infrastructure_figures(*, team: Team, now: datetime) -> dict[str, Any]:
    nodes = list(ComputeNode.objects.filter(team=team).order_by("name"))
    by_class: dict[tuple[str, str], int] = defaultdict(int)
    for node in nodes:
        by_class[(node.node_class, node.state)] += 1
    since = now - timedelta(days=FABRIC_DAYS)
    used = (
        TaskAttempt.objects.filter(
            node__team=team,
            started_at__isnull=False,
            finished_at__isnull=False,
            finished_at__gte=since,
        )
        .values_list("started_at", "finished_at")
        .iterator()
    )
    used_hours = sum((end - start).total_seconds() for start, end in used) / 3600
    active = [n for n in nodes if n.state != NodeState.RETIRED]
    assets = list(ListedAsset.objects.filter(team=team).select_related("node").order_by("name"))
    shared_online = ComputeNode.objects.filter(
        team__isnull=True, state=NodeState.ONLINE, approved_at__isnull=False
    ).count()
    return {
        "nodes": [
            {"class": cls, "state": state, "count": count}
            for (cls, state), count in sorted(by_class.items())
        ],
        "nodes_enrolled": sum(1 for n in active if n.approved_at is not None),
        "nodes_online": sum(1 for n in active if n.state == NodeState.ONLINE),
        "shared_nodes_online": shared_online,
        "node_hours_offered": _round(_online_hours(active, since, now)),
        "node_hours_used": _round(used_hours),
        "assets": [
            {
                "name": a.name,
                "class": a.asset_class,
                "site": a.site,
                "enrolled": a.node_id is not None and a.node.state != NodeState.RETIRED,
                "node": a.node.name if a.node_id else None,
            }
            for a in assets
        ],
        "assets_listed": len(assets),
        "assets_not_enrolled": sum(1 for a in assets if a.node_id is None),
    }


def reachable_sources(*, team: Team) -> dict[str, list[str]]:
    """{data source name (lower case): [node names]} hosted by approved, non-retired nodes of the
    team or of no team (shared): those orchestrations can reach."""
    hosting: dict[str, list[str]] = defaultdict(list)
    nodes = ComputeNode.objects.filter(
        Q(team=team) | Q(team__isnull=True), approved_at__isnull=False, revoked_at__isnull=True
    ).exclude(state=NodeState.RETIRED)
    for name, sources in nodes.values_list("name", "data_sources"):
        for source in sources or []:
            hosting[str(source).lower()].append(name)
    return hosting


def data_figures(*, team: Team) -> dict[str, Any]:
    hosting = reachable_sources(team=team)
    sources = [
        {
            "name": s.name,
            "system": s.system,
            "site": s.site,
            "reachable": bool(hosting.get(s.name.lower())),
            "via": sorted(hosting.get(s.name.lower(), [])),
        }
        for s in DataSource.objects.filter(team=team).order_by("name")
    ]
    return {
        "sources": sources,
        "listed": len(sources),
        "reachable": sum(1 for s in sources if s["reachable"]),
    }


def people_figures(*, team: Team, now: datetime) -> dict[str, Any]:
    since = now - timedelta(days=ACTIVITY_DAYS)
    experts = sorted(
        set(
            Membership.objects.filter(team=team, role=Role.EXPERT).values_list(
                "user__username", flat=True
            )
        )
    )
    activity = {
        row["expert__username"]: row
        for row in Decision.objects.filter(
            case__process__team=team, retracted_at__isnull=True, source__in=EXPERT_SOURCES
        )
        .values("expert__username")
        .annotate(
            total=Count("pk"),
            recent=Count("pk", filter=Q(decided_at__gte=since)),
            last=Max("decided_at"),
        )
        .order_by()
    }
    knowledge: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for process, label, username, count in (
        Decision.objects.filter(
            case__process__team=team, retracted_at__isnull=True, source__in=EXPERT_SOURCES
        )
        .values_list("case__process__slug", "label", "expert__username")
        .annotate(n=Count("pk"))
        .order_by("case__process__slug", "label", "expert__username")
    ):
        knowledge[(process, label)][username] = count
    agreement = []
    for process in Process.objects.filter(team=team).order_by("name"):
        measured = process_agreement(process=process)
        agreement.append(
            {
                "process": process.slug,
                "name": process.name,
                "percent": _round(measured.percent, 3),
                "kappa": _round(measured.overall, 3),
                "method": measured.method_name,
                "cases_compared": measured.cases_compared,
            }
        )
    people = sorted(set(experts) | set(activity))
    return {
        "experts": [
            {
                "username": name,
                "is_member": name in experts,
                "decisions": activity.get(name, {}).get("total", 0),
                "decisions_30d": activity.get(name, {}).get("recent", 0),
                "last_decision": (
                    activity[name]["last"].date().isoformat() if name in activity else None
                ),
            }
            for name in people
        ],
        "active_experts": sum(1 for name in people if activity.get(name, {}).get("recent", 0)),
        "agreement": agreement,
        "knowledge": [
            {"process": process, "label": label, "by_expert": by_expert}
            for (process, label), by_expert in knowledge.items()
        ],
    }


def named_processes(*, team: Team) -> list[dict[str, Any]]:
    """Processes the team names but has not connected, with the manager's estimates (one named
    like a connected process is that process, linked when the roadmap is next brought up to
    date)."""
    connected = {
        name.lower() for name in Process.objects.filter(team=team).values_list("name", flat=True)
    }
    return [
        {
            "name": c.name,
            "owner": c.owner.get_username() if c.owner else None,
            "cases_per_week": c.cases_per_week,
            "minutes_per_case": c.minutes_per_case,
            "backlog": c.backlog,
            "labels": len(c.labels or []),
            "fields": len(c.fields or []),
        }
        for c in CandidateProcess.objects.filter(team=team, process__isnull=True)
        .select_related("owner")
        .order_by("name")
        if c.name.lower() not in connected
    ]


def assessment_figures(*, team: Team, now: datetime | None = None) -> dict[str, Any]:
    """The four pillars of `team` as measured now (plain JSON, what a recorded assessment keeps)."""
    now = now or timezone.now()
    return {
        "measured_at": now.isoformat(),
        "infrastructure": infrastructure_figures(team=team, now=now),
        "process": {
            "processes": process_figures(team=team, now=now),
            "named": named_processes(team=team),
        },
        "data": data_figures(team=team),
        "people": people_figures(team=team, now=now),
    }
