"""Reads: who sees and manages which orchestrations, their versions, stage log and reuses."""

from datetime import datetime

from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from apps.cases.models import Process
from apps.orchestrations.models import (
    ComponentReuse,
    Orchestration,
    OrchestrationVersion,
    Run,
    Stage,
    StageChange,
)
from apps.people.models import TEAM_MANAGER_ROLES, Membership, Role, Team
from apps.people.selectors import AnyUser, is_org_admin, roles_of

VIEW_ROLES = frozenset({Role.EXPERT, Role.MANAGER, Role.ADMIN})


def _teams(user: AnyUser, roles: frozenset) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    if is_org_admin(user=user):
        return Team.objects.order_by("name")
    memberships = Membership.objects.filter(user=user, role__in=roles).values("team_id")
    return Team.objects.filter(pk__in=memberships).order_by("name")


def viewable_teams(*, user: AnyUser) -> QuerySet[Team]:
    """Teams whose orchestrations `user` reads: as expert, manager or admin (all for org admins)."""
    return _teams(user, VIEW_ROLES)


def managed_teams(*, user: AnyUser) -> QuerySet[Team]:
    """Teams whose orchestrations `user` creates and deploys: as manager or admin."""
    return _teams(user, TEAM_MANAGER_ROLES)


def can_view_orchestrations(*, user: AnyUser) -> bool:
    return viewable_teams(user=user).exists()


def can_manage(*, user: AnyUser, orchestration: Orchestration) -> bool:
    return is_org_admin(user=user) or bool(
        roles_of(user=user, team=orchestration.team) & TEAM_MANAGER_ROLES
    )


def managed_processes(*, user: AnyUser) -> QuerySet[Process]:
    return Process.objects.filter(team__in=managed_teams(user=user)).select_related("team")


def managed_process(*, user: AnyUser, slug: str) -> Process:
    """Process `slug` if `user` manages its team; Http404 otherwise."""
    process = managed_processes(user=user).filter(slug=slug).first()
    if process is None:
        raise Http404("No such process")
    return process


def orchestrations_for(*, user: AnyUser, team: Team | None = None) -> QuerySet[Orchestration]:
    """Orchestrations of the teams `user` reads, with `live_versions` (the live one, if any),
    `deployed_versions` (shadow, canary, live; newest first) and `version_count`, by team and
    name."""
    orchestrations = Orchestration.objects.filter(team__in=viewable_teams(user=user))
    if team is not None:
        orchestrations = orchestrations.filter(team=team)
    return (
        orchestrations.select_related("team", "process", "owner")
        .annotate(version_count=Count("versions"))
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=OrchestrationVersion.objects.filter(stage=Stage.LIVE),
                to_attr="live_versions",
            ),
            # What runs on traffic now (shadow, canary, live), for the list's stage column.
            Prefetch(
                "versions",
                queryset=OrchestrationVersion.objects.filter(
                    stage__in=(Stage.SHADOW, Stage.CANARY, Stage.LIVE)
                ).order_by("-number"),
                to_attr="deployed_versions",
            ),
        )
        .order_by("team__name", "name")
    )


def orchestration_for(*, user: AnyUser, slug: str) -> Orchestration:
    """The orchestration if `user` reads its team's; Http404 otherwise (outsiders learn nothing)."""
    orchestration = orchestrations_for(user=user).filter(slug=slug).first()
    if orchestration is None:
        raise Http404("No such orchestration")
    return orchestration


def live_version(*, orchestration: Orchestration) -> OrchestrationVersion | None:
    return orchestration.versions.filter(stage=Stage.LIVE).first()


def version_of(*, orchestration: Orchestration, number: int) -> OrchestrationVersion:
    version = orchestration.versions.select_related("model_version").filter(number=number).first()
    if version is None:
        raise Http404("No such version")
    return version


def versions_of(*, orchestration: Orchestration) -> QuerySet[OrchestrationVersion]:
    """Newest first."""
    return orchestration.versions.select_related("model_version", "created_by").order_by("-number")


def stage_log(*, orchestration: Orchestration, limit: int = 100) -> QuerySet[StageChange]:
    return orchestration.stage_changes.select_related("actor", "version")[:limit]


def component_reuse_counts(*, kind: str | None = None) -> list[dict]:
    """Components used by more than one orchestration: [{kind, component_id, orchestrations}],
    most reused first. A component used by several versions of one orchestration counts once."""
    reuses = ComponentReuse.objects.all()
    if kind is not None:
        reuses = reuses.filter(kind=kind)
    return list(
        reuses.values("kind", "component_id")
        .annotate(orchestrations=Count("orchestration", distinct=True))
        .filter(orchestrations__gt=1)
        .order_by("-orchestrations", "kind", "component_id")
    )


def runs_of(
    *,
    orchestration: Orchestration,
    external_id: str | None = None,
    outcome: str | None = None,
    version: int | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
) -> QuerySet[Run]:
    """Newest first; `before_id` pages on (the last id of the previous page)."""
    runs = Run.objects.filter(orchestration=orchestration).select_related("version")
    if external_id:
        runs = runs.filter(external_id=external_id)
    if outcome:
        runs = runs.filter(outcome=outcome)
    if version is not None:
        runs = runs.filter(version__number=version)
    if since is not None:
        runs = runs.filter(received_at__gte=since)
    if before_id is not None:
        runs = runs.filter(pk__lt=before_id)
    return runs.order_by("-id")


def run_of(*, orchestration: Orchestration, run_id: int) -> Run:
    run = (
        Run.objects.filter(orchestration=orchestration, pk=run_id)
        .select_related("version", "case")
        .prefetch_related("steps")
        .first()
    )
    if run is None:
        raise Http404("No such run")
    return run
