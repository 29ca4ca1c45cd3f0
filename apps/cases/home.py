"""What knowledge capture puts on the home page: review work for experts, process health for
managers, disagreements for adjudicators."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Model, Q
from django.utils import timezone

from apps.cases import selectors
from apps.cases.models import CaseStatus, Decision, Process
from apps.people.models import Membership, Role


def _named(through: type[Model], processes: list[Process]) -> dict[int, set[int]]:
    """{process id: the ids of the people named in `through`} for `processes`, in one query."""
    named: dict[int, set[int]] = {}
    rows = through.objects.filter(process_id__in=[p.pk for p in processes])
    for process_id, person_id in rows.values_list("process_id", "user_id"):
        named.setdefault(process_id, set()).add(person_id)
    return named


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
    # The same answers as selectors.can_review / can_adjudicate / can_manage_process, from one
    # query for the user's roles and one per list of named people: asking the selectors for each
    # process cost four to five queries per process.
    roles: dict[int, set[str]] = {}
    for team_id, role in Membership.objects.filter(user=user).values_list("team_id", "role"):
        roles.setdefault(team_id, set()).add(role)
    named_reviewers = _named(Process.reviewers.through, processes)
    named_adjudicators = _named(Process.adjudicators.through, processes)
    rows = []
    for process in processes:
        team_roles = roles.get(process.team_id, set())
        reviewers = named_reviewers.get(process.pk, set())
        adjudicators = named_adjudicators.get(process.pk, set())
        rows.append(
            {
                "process": process,
                "can_review": Role.EXPERT in team_roles and (not reviewers or user.pk in reviewers),
                "can_adjudicate": (user.pk in adjudicators and bool(team_roles))
                if adjudicators
                else Role.MANAGER in team_roles,
                "can_manage": bool(team_roles & {Role.MANAGER, Role.ADMIN}),
                "decided_today": mine_today.get(process.pk, 0),
            }
        )
    return {
        "review_rows": [row for row in rows if row["can_review"]],
        "adjudication_rows": [
            row for row in rows if row["can_adjudicate"] and row["process"].adjudication_count
        ],
        "managed_rows": [row for row in rows if row["can_manage"]],
        "all_rows": rows,
    }
