"""What knowledge capture puts on the home page: review work for experts, process health for
managers, disagreements for adjudicators."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q
from django.utils import timezone

from apps.cases import selectors
from apps.cases.models import CaseStatus, Decision


def home_context(user: AbstractBaseUser) -> dict[str, object] | None:
    processes = list(
        selectors.processes_for(user=user).annotate(
            open_count=Count("cases", filter=Q(cases__status=CaseStatus.OPEN)),
            adjudication_count=Count("cases", filter=Q(cases__status=CaseStatus.ADJUDICATION)),
            decided_count=Count("cases", filter=Q(cases__status=CaseStatus.DECIDED)),
        )
    )
    if not processes:
        return None
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine_today = dict(
        Decision.objects.filter(
            expert=user, decided_at__gte=start_of_day, retracted_at__isnull=True
        )
        .values_list("case__process_id")
        .annotate(n=Count("id"))
        .values_list("case__process_id", "n")
    )
    rows = [
        {
            "process": process,
            "can_review": selectors.can_review(user=user, process=process),
            "can_adjudicate": selectors.can_adjudicate(user=user, process=process),
            "can_manage": selectors.can_manage_process(user=user, process=process),
            "decided_today": mine_today.get(process.pk, 0),
        }
        for process in processes
    ]
    return {
        "review_rows": [row for row in rows if row["can_review"]],
        "adjudication_rows": [
            row for row in rows if row["can_adjudicate"] and row["process"].adjudication_count
        ],
        "managed_rows": [row for row in rows if row["can_manage"]],
        "all_rows": rows,
    }
