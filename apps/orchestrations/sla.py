"""The SLA of items routed to people: their due time, telling the people they are routed to,
and escalating the overdue ones (docs/orchestrations.md#sla-and-escalation).

A routed item's case is due `sla_minutes` after receipt (the version's SLA; `Run.due_by`). Each
time a step comes due while the case is still open, the sweep (`escalate_overdue`, a beat task)
takes the next step, one SLA period apart:

1. **next expert**, at the due time: the case goes first to another expert who may review the
   process (its named reviewers, or the team's experts) with the fewest open cases routed to
   them (ties: the earliest account), and is counted as breached (`Case.sla_breached_at`, once);
   the new expert and the one it was routed to are told, and the version's connectors get the
   `sla.breached` event;
2. **team**, one period later: the case is routed to no one in particular: the whole team's
   queue, whose experts are told;
3. **managers**, one more period later: the team's managers (or, without any, its admins) are
   told; the case stays in the team's queue and no step is left.

Each step is an `sla_breached` step of the run's trace and an `sla_escalated` event of the
case. Idempotent: a step is taken under the case's row lock only while `escalate_at` is due, and
taking it moves `escalate_at` on, so a second sweep (or two at once) takes it once.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from apps.cases.models import Case, CaseStatus, Process
from apps.cases.services import sla as case_sla
from apps.connectors.models import EventType
from apps.core.display import format_due, format_duration
from apps.notifications.models import Kind
from apps.notifications.services import notify
from apps.orchestrations import events
from apps.orchestrations.models import Orchestration, Run, RunStep, StepKind
from apps.people.models import Membership, Role

log = logging.getLogger(__name__)

NEXT_EXPERT, TEAM, MANAGERS = 1, 2, 3
STEP_NAMES = {NEXT_EXPERT: "next_expert", TEAM: "team", MANAGERS: "managers"}
# A due time without a version SLA (not expected): the steps are this far apart.
DEFAULT_STEP = timedelta(hours=1)
SWEEP_LIMIT = 500


# --- people -------------------------------------------------------------------------------------


def reviewers_of(process: Process) -> list[AbstractBaseUser]:
    """Who may review `process`: its named reviewers (experts of the team), or the team's
    experts; active accounts, by id."""
    users = get_user_model().objects.filter(
        is_active=True, memberships__team_id=process.team_id, memberships__role=Role.EXPERT
    )
    named = process.reviewers.values_list("pk", flat=True)
    if named.exists():
        users = users.filter(pk__in=named)
    return list(users.distinct().order_by("pk"))


def managers_of(process: Process) -> list[AbstractBaseUser]:
    """The team's managers; a team without one (it then has an admin) tells its admins."""
    for role in (Role.MANAGER, Role.ADMIN):
        users = list(
            get_user_model()
            .objects.filter(
                is_active=True, memberships__team_id=process.team_id, memberships__role=role
            )
            .distinct()
            .order_by("pk")
        )
        if users:
            return users
    return []


def _team_experts(slug: str) -> list[AbstractBaseUser]:
    user_ids = Membership.objects.filter(team__slug=slug, role=Role.EXPERT).values("user_id")
    return list(get_user_model().objects.filter(pk__in=user_ids, is_active=True).order_by("pk"))


def least_loaded(candidates: list[AbstractBaseUser]) -> AbstractBaseUser | None:
    """The candidate with the fewest open cases routed to them (ties: the earliest account)."""
    if not candidates:
        return None
    loads = dict(
        Case.objects.filter(status=CaseStatus.OPEN, routed_to__in=candidates)
        .values("routed_to")
        .annotate(n=Count("id"))
        .values_list("routed_to", "n")
    )
    return min(candidates, key=lambda user: (loads.get(user.pk, 0), user.pk))


# --- routing ------------------------------------------------------------------------------------


def _when(due_by: datetime | None) -> str:
    if due_by is None:
        return ""
    text, _ = format_due(due_by)
    return f"{text} ({timezone.localtime(due_by):%Y-%m-%d %H:%M %Z})"


def on_routed(*, orchestration: Orchestration, runs: list[Run]) -> None:
    """Routed runs whose cases were just opened (in the receiving transaction): each case takes
    the run's due time, and the people it is routed to are told (`expert:<name>`: that expert;
    `team:<slug>`: that team's experts; no route: nobody, it waits in the queue like any case),
    one notification per person for the whole batch."""
    with_case = [run for run in runs if run.case_id is not None]
    case_sla.set_due(due={run.case_id: run.due_by for run in with_case if run.due_by})
    by_route: dict[str, list[Run]] = {}
    for run in with_case:
        if run.routed_to:
            by_route.setdefault(run.routed_to, []).append(run)
    if not by_route:
        return
    experts = {
        u.username: u
        for u in get_user_model().objects.filter(
            username__in=[r.partition(":")[2] for r in by_route if r.startswith("expert:")],
            is_active=True,
        )
    }
    told: dict[int, tuple[AbstractBaseUser, list[Run], str]] = {}
    for route, routed in by_route.items():
        kind, _, name = route.partition(":")
        people = [experts[name]] if kind == "expert" and name in experts else []
        if kind == "team":
            people = _team_experts(name)
        for person in people:
            entry = told.setdefault(person.pk, (person, [], route))
            entry[1].extend(routed)
    process = orchestration.process
    messages: dict[tuple[str, str], list[AbstractBaseUser]] = {}
    for person, routed, route in told.values():
        soonest = min((r.due_by for r in routed if r.due_by), default=None)
        to = "you" if route.startswith("expert:") else f"your team ({route.partition(':')[2]})"
        if len(routed) == 1:
            title = f"{orchestration.name}: {routed[0].external_id} routed to {to}"
        else:
            title = f"{orchestration.name}: {len(routed)} items routed to {to}"
        body = f"In the review queue of {process.name}"
        if soonest:
            body += f"; {'it is' if len(routed) == 1 else 'the first is'} {_when(soonest)}"
        body += "."
        messages.setdefault((title, body), []).append(person)
    # One call per distinct message: a team route tells its experts in one insert.
    review_url = reverse("review", args=[process.slug])
    for (title, body), people in messages.items():
        notify(recipients=people, kind=Kind.CASE_ROUTED, title=title, body=body, url=review_url)


# --- escalation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Escalated:
    case_id: int
    run_id: int | None
    level: int
    to: str | None


def escalate_overdue(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> list[Escalated]:
    """Take the escalation step that is due for each open case (oldest case first), each in its
    own transaction holding that one case; returns the steps taken."""
    now = now or timezone.now()
    due = list(
        Case.objects.filter(status=CaseStatus.OPEN, escalate_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    taken = []
    for case_id in due:
        try:
            step = escalate_case(case_id=case_id, now=now)
        except Exception:
            # One case's failure must not stop the others; it is tried again next sweep.
            log.exception("SLA escalation of case %s failed", case_id)
            continue
        if step is not None:
            taken.append(step)
    return taken


@transaction.atomic
def escalate_case(*, case_id: int, now: datetime | None = None) -> Escalated | None:
    """The next escalation step of one case if it is due at `now` (None: nothing to do)."""
    now = now or timezone.now()
    case = case_sla.lock_due_case(case_id=case_id, now=now)
    if case is None:
        return None
    # The run after the case (the same order as every path that holds both).
    run = (
        Run.objects.select_for_update(of=("self",))
        .select_related("version", "orchestration")
        .filter(case_id=case.pk)
        .order_by("pk")
        .first()
    )
    level = case.escalation_level + 1
    process = case.process
    period = (
        timedelta(minutes=run.version.sla_minutes)
        if run is not None and run.version.sla_minutes
        else DEFAULT_STEP
    )
    due_by = case.due_by or now
    next_at = due_by + level * period if level < MANAGERS else None
    overdue = max(0, int((now - due_by).total_seconds()))
    name = run.external_id if run is not None else (case.external_id or str(case.pk))
    where = f"{run.orchestration.name}: {name}" if run is not None else f"{process.name}: {name}"
    late = format_due(due_by, now)[0]
    url = reverse("case_detail", args=[case.pk])
    previous = case.routed_to
    to: str | None = None
    told: list[tuple[list[AbstractBaseUser], str, str, str]] = []  # people, kind, title, body
    routed_to: AbstractBaseUser | bool | None = False

    if level == NEXT_EXPERT:
        others = [u for u in reviewers_of(process) if u.pk != case.routed_to_id]
        chosen = least_loaded(others)
        if chosen is not None:
            routed_to, to = chosen, f"expert:{chosen.get_username()}"
            told.append(([chosen], Kind.CASE_ROUTED, f"{where} escalated to you ({late})",
                         f"It passed its SLA; it is first in your queue of {process.name}."))  # fmt: skip
        if previous is not None:
            told.append(([previous], Kind.SLA_BREACHED, f"{where} passed its SLA ({late})",
                         f"It went to {chosen.get_username() if chosen else 'nobody else: no other expert'}."))  # fmt: skip
    elif level == TEAM:
        routed_to, to = None, f"team:{process.team.slug}"
        told.append((reviewers_of(process), Kind.SLA_BREACHED, f"{where} is {late}: now in your team's queue",
                     f"Any expert of {process.team.name} may take it in the queue of {process.name}."))  # fmt: skip
    else:
        managers = managers_of(process)
        to = "managers"
        told.append((managers, Kind.SLA_BREACHED, f"{where} is {late} and still open",
                     f"Escalated to the next expert, then to the whole queue of {process.name}, "
                     "and still undecided."))  # fmt: skip

    data = {
        "level": level,
        "step": STEP_NAMES[level],
        "to": to,
        "from": f"expert:{previous.get_username()}" if previous is not None else None,
        "due_by": due_by.isoformat(),
        "overdue_seconds": overdue,
        "next_step_at": next_at.isoformat() if next_at else None,
    }
    case_sla.record_escalation(
        case=case, level=level, next_at=next_at, routed_to=routed_to, data=data, now=now
    )
    notified: list[str] = []
    for people, kind, title, body in told:
        notify(recipients=people, kind=kind, title=title, body=body, url=url)
        notified += [person.get_username() for person in people]
    if run is not None:
        RunStep.objects.create(
            run=run, number=events.next_step_numbers([run.pk])[run.pk], kind=StepKind.SLA_BREACHED,
            data={**data, "notified": sorted(set(notified))},
        )  # fmt: skip
        if level == NEXT_EXPERT:
            _send_breach_event(run, case, data)
    return Escalated(case_id=case.pk, run_id=run.pk if run else None, level=level, to=to)


def _send_breach_event(run: Run, case: Case, data: dict) -> None:
    """`sla.breached` to the version's connectors and the item's own callback, once: at the
    first step."""
    payload = {
        "run_id": run.pk,
        "orchestration": run.orchestration.slug,
        "version": run.version.number,
        "external_id": run.external_id,
        "case": case.pk,
        "routed_to": run.routed_to,
        "due_by": events.iso(case.due_by),
        "overdue_seconds": data["overdue_seconds"],
        "escalated_to": data["to"],
    }
    events.send(orchestration=run.orchestration, events=[(run, EventType.SLA_BREACHED, payload)])


def step_summary(data: dict) -> str:
    """One sentence for an `sla_breached` trace step, from what it recorded."""
    late = format_duration(data.get("overdue_seconds"))
    where = {
        NEXT_EXPERT: f"to {data.get('to')}" if data.get("to") else "nowhere: no other expert",
        TEAM: "to the whole team's queue",
        MANAGERS: "to the team's managers",
    }.get(data.get("level"), "")
    told = ", ".join(data.get("notified") or []) or "nobody"
    return (
        f"SLA breached, overdue {late}: escalation step {data.get('level')} of 3, {where}. "
        f"Told: {told}."
    )
