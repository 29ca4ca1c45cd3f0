"""Reads: who manages which connectors, their backlogs and delivery logs."""

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from apps.connectors.models import PENDING_STATES, Connector, Delivery, DeliveryAttempt
from apps.people.models import TEAM_MANAGER_ROLES, Membership, Team
from apps.people.selectors import AnyUser, is_org_admin


def managed_teams(*, user: AnyUser) -> QuerySet[Team]:
    """The teams whose connectors `user` manages: as their manager or admin (every team for an
    organisation admin)."""
    if not user.is_authenticated:
        return Team.objects.none()
    if is_org_admin(user=user):
        return Team.objects.order_by("name")
    return Team.objects.filter(
        pk__in=Membership.objects.filter(user=user, role__in=TEAM_MANAGER_ROLES).values("team_id")
    ).order_by("name")


def can_manage_connectors(*, user: AnyUser) -> bool:
    return managed_teams(user=user).exists()


def managed_team(*, user: AnyUser, slug: str) -> Team:
    """Team `slug` if `user` manages its connectors; Http404 otherwise (outsiders learn nothing)."""
    team = managed_teams(user=user).filter(slug=slug).first()
    if team is None:
        raise Http404("No such team")
    return team


def _with_counts(connectors: QuerySet[Connector]) -> QuerySet[Connector]:
    return connectors.select_related("team", "owner").annotate(
        backlog=Count("deliveries", filter=Q(deliveries__state__in=PENDING_STATES)),
        dead=Count("deliveries", filter=Q(deliveries__state="dead")),
    )


def connectors_for(*, user: AnyUser, team: Team | None = None) -> QuerySet[Connector]:
    """Connectors of the teams `user` manages (of `team` only, when given), with `backlog` and
    `dead` counts, by team and name."""
    connectors = Connector.objects.filter(team__in=managed_teams(user=user))
    if team is not None:
        connectors = connectors.filter(team=team)
    return _with_counts(connectors).order_by("team__name", "name")


def connector_for(*, user: AnyUser, connector_id: int) -> Connector:
    """The connector if `user` manages its team; Http404 otherwise."""
    connector = connectors_for(user=user).filter(pk=connector_id).first()
    if connector is None:
        raise Http404("No such connector")
    return connector


def delivery_for(*, user: AnyUser, delivery_id: int) -> Delivery:
    delivery = (
        Delivery.objects.select_related("connector", "connector__team")
        .filter(pk=delivery_id, connector__team__in=managed_teams(user=user))
        .first()
    )
    if delivery is None:
        raise Http404("No such delivery")
    return delivery


ATTEMPTS_SHOWN = 10


def delivery_log(
    *, connector: Connector, state: str | None = None, limit: int = 50, offset: int = 0
) -> list[Delivery]:
    """The connector's deliveries, newest first (only in `state` when given), each with its
    latest attempts in `recent_attempts`."""
    deliveries = Delivery.objects.filter(connector=connector)
    if state:
        deliveries = deliveries.filter(state=state)
    page = list(deliveries.order_by("-id")[offset : offset + limit])
    attempts: dict[int, list[DeliveryAttempt]] = {}
    for attempt in DeliveryAttempt.objects.filter(delivery__in=page).order_by("-started_at", "-id"):
        shown = attempts.setdefault(attempt.delivery_id, [])
        if len(shown) < ATTEMPTS_SHOWN:
            shown.append(attempt)
    for delivery in page:
        delivery.recent_attempts = attempts.get(delivery.pk, [])
    return page


def deliveries_of_run(*, run_id: int, attempts_shown: int = ATTEMPTS_SHOWN) -> list[Delivery]:
    """The deliveries made for one orchestration run, oldest first, with their connector and
    their latest attempts (oldest first) in `recent_attempts`."""
    deliveries = list(
        Delivery.objects.filter(run_id=run_id).select_related("connector").order_by("id")
    )
    attempts: dict[int, list[DeliveryAttempt]] = {}
    for attempt in DeliveryAttempt.objects.filter(delivery__in=deliveries).order_by(
        "-started_at", "-id"
    ):
        shown = attempts.setdefault(attempt.delivery_id, [])
        if len(shown) < attempts_shown:
            shown.append(attempt)
    for delivery in deliveries:
        delivery.recent_attempts = attempts.get(delivery.pk, [])[::-1]
    return deliveries
