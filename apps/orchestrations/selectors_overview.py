"""The figures of the orchestrations list (the page and `GET /api/v1/orchestrations`): items
today, straight-through share, items waiting for people, SLA breaches and failing deliveries.

Three grouped queries whatever the number of orchestrations (one per table read: today's runs,
the cases of runs still with people or breached lately, the failing deliveries), so the list
costs the same for two orchestrations as for two hundred."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from apps.cases.models import CaseStatus
from apps.connectors.models import Delivery, DeliveryState
from apps.orchestrations.models import Orchestration, Outcome, Run, RunState

# SLA breaches are counted over this window (a breach is recorded once per case, when its first
# escalation step is taken): a list read every day shows the recent ones, not all of history.
SLA_WINDOW = timedelta(days=7)
WAITING_STATUSES = (CaseStatus.OPEN, CaseStatus.ADJUDICATION)
FAILING_STATES = (DeliveryState.FAILED, DeliveryState.DEAD)


@dataclass(frozen=True)
class OrchestrationFigures:
    items_today: int = 0  # runs received since local midnight
    finished_today: int = 0  # of them, those that reached an outcome
    straight_through_today: int = 0  # of those, standard or decided with no person involved
    waiting_for_people: int = 0  # runs whose case (routed or audited) is open or in adjudication
    sla_breaches: int = 0  # cases of its runs first breached within SLA_WINDOW
    failing_deliveries: int = 0  # deliveries of its runs failing (retrying) or dead
    dead_deliveries: int = 0  # of them, those whose retries are exhausted

    @property
    def straight_through_share(self) -> float | None:
        """Share of today's finished runs that no person touched; None before any finished."""
        if not self.finished_today:
            return None
        return self.straight_through_today / self.finished_today


def start_of_today(now: datetime | None = None) -> datetime:
    """Midnight of the current day in the site's time zone (TIME_ZONE)."""
    local = timezone.localtime(now or timezone.now())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def orchestration_figures(
    *, orchestrations: list[Orchestration], now: datetime | None = None
) -> dict[int, OrchestrationFigures]:
    """{orchestration id: figures} for `orchestrations` (every one gets an entry, zeros when it
    has no runs). Three queries, whatever their number; none without orchestrations."""
    if not orchestrations:
        return {}
    now = now or timezone.now()
    ids = [o.pk for o in orchestrations]
    today = start_of_today(now)
    straight = Q(outcome=Outcome.STANDARD) | (
        Q(outcome=Outcome.DECIDED) & ~Q(decided_by__startswith="expert:")
    )
    runs_today = {
        row["orchestration_id"]: row
        for row in Run.objects.filter(orchestration_id__in=ids, received_at__gte=today)
        .values("orchestration_id")
        .annotate(
            items=Count("pk"),
            finished=Count("pk", filter=Q(state=RunState.FINISHED)),
            straight=Count("pk", filter=Q(state=RunState.FINISHED) & straight),
        )
        .order_by()
    }
    waiting = Q(case__status__in=WAITING_STATUSES)
    breached = Q(case__sla_breached_at__gte=now - SLA_WINDOW)
    # From the cases' side: the open ones and the recently breached are few (partial indexes on
    # open cases, Run.case's index to join back).
    people = {
        row["orchestration_id"]: row
        for row in Run.objects.filter(orchestration_id__in=ids)
        .filter(waiting | breached)
        .values("orchestration_id")
        .annotate(waiting=Count("pk", filter=waiting), breaches=Count("pk", filter=breached))
        .order_by()
    }
    # Deliveries name their run by a plain id (connectors sits below orchestrations); the team's
    # connectors narrow the read to the (connector, state, created_at) index.
    deliveries = {
        row["orchestration"]: row
        for row in Delivery.objects.filter(
            state__in=FAILING_STATES,
            run_id__isnull=False,
            connector__team_id__in={o.team_id for o in orchestrations},
        )
        .annotate(
            orchestration=Subquery(
                Run.objects.filter(pk=OuterRef("run_id")).values("orchestration_id")[:1]
            )
        )
        .filter(orchestration__in=ids)
        .values("orchestration")
        .annotate(failing=Count("pk"), dead=Count("pk", filter=Q(state=DeliveryState.DEAD)))
        .order_by()
    }
    figures = {}
    for pk in ids:
        today_row = runs_today.get(pk, {})
        people_row = people.get(pk, {})
        delivery_row = deliveries.get(pk, {})
        figures[pk] = OrchestrationFigures(
            items_today=today_row.get("items", 0),
            finished_today=today_row.get("finished", 0),
            straight_through_today=today_row.get("straight", 0),
            waiting_for_people=people_row.get("waiting", 0),
            sla_breaches=people_row.get("breaches", 0),
            failing_deliveries=delivery_row.get("failing", 0),
            dead_deliveries=delivery_row.get("dead", 0),
        )
    return figures


def with_figures(
    orchestrations: list[Orchestration], now: datetime | None = None
) -> list[Orchestration]:
    """`orchestrations` with `.figures` set on each (see orchestration_figures); the same list."""
    figures = orchestration_figures(orchestrations=orchestrations, now=now)
    for orchestration in orchestrations:
        orchestration.figures = figures[orchestration.pk]
    return orchestrations
