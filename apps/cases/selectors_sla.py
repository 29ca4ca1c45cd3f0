"""SLA figures of routed cases (their due times come from the orchestration that routed them):
what the capital metrics count. One aggregate query."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from apps.cases.models import Case, CaseStatus


@dataclass(frozen=True)
class SlaFigures:
    with_due: int  # cases that carry a due time
    met: int  # decided by their due time
    missed: int  # decided after it, or still undecided past it
    pending: int  # undecided and not yet due: neither met nor missed so far
    breached: int  # escalated at least once (Case.sla_breached_at, set once per case)

    @property
    def attainment(self) -> float | None:
        """Met / (met + missed): the share settled within the SLA; None before any is settled."""
        settled = self.met + self.missed
        return self.met / settled if settled else None


def sla_figures(*, cases: QuerySet[Case] | None = None, now: datetime | None = None) -> SlaFigures:
    """SLA figures over `cases` (default: every case; filter it by process, team or arrival
    date first). A case is met when decided at or before its due time; missed when decided
    after it, or still open (or awaiting adjudication) past it."""
    now = now or timezone.now()
    rows = (cases if cases is not None else Case.objects.all()).filter(due_by__isnull=False)
    decided = Q(status=CaseStatus.DECIDED, decided_at__isnull=False)
    totals = rows.aggregate(
        with_due=Count("pk"),
        met=Count("pk", filter=decided & Q(decided_at__lte=F("due_by"))),
        late=Count("pk", filter=decided & Q(decided_at__gt=F("due_by"))),
        overdue=Count("pk", filter=~decided & Q(due_by__lt=now)),
        breached=Count("pk", filter=Q(sla_breached_at__isnull=False)),
    )
    missed = totals["late"] + totals["overdue"]
    return SlaFigures(
        with_due=totals["with_due"],
        met=totals["met"],
        missed=missed,
        pending=totals["with_due"] - totals["met"] - missed,
        breached=totals["breached"],
    )
