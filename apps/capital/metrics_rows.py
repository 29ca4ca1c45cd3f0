"""The rows that make a figure (the dashboard's drill-down): cases, runs, nodes, decisions,
processes or orchestration versions, with the same filters as the metric's SQL."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from apps.capital.metrics import fabric_nodes, team_processes
from apps.capital.metrics_definitions import Definition, Drill
from apps.cases.models import Case, Decision
from apps.orchestrations.models import OrchestrationVersion, Run
from apps.people.models import Team

LIMIT = 100


@dataclass
class Row:
    label: str
    url: str
    cells: list[str]


@dataclass
class Rows:
    headings: list[str]
    rows: list[Row]
    note: str = ""


def _at(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "—"


def _case_rows(cases: list[Case], extra: dict[int, str] | None = None) -> list[Row]:
    return [
        Row(
            label=case.external_id or f"#{case.pk}",
            url=reverse("case_detail", kwargs={"case_id": case.pk}),
            cells=[
                case.process.name,
                case.get_status_display(),
                case.final_label or "—",
                _at(case.created_at),
                _at(case.decided_at),
                (extra or {}).get(case.pk, ""),
            ],
        )
        for case in cases
    ]


CASE_HEADINGS = ["Case", "Process", "Status", "Final label", "Received", "Decided", "Why"]


def rows_for(*, definition: Definition, team: Team, start: datetime, end: datetime) -> Rows:
    """At most LIMIT rows behind `definition`'s figure for [start, end) (states at `end`)."""
    key = definition.key
    team_cases = Case.objects.filter(process__team=team).select_related("process")
    if key in ("hours_saved", "automatic_decisions", "overturns"):
        disagreeing = (
            Decision.objects.filter(case_id=OuterRef("case_id"), retracted_at__isnull=True)
            .exclude(pk=OuterRef("pk"))
            .exclude(label=OuterRef("label"))
        )
        decisions = (
            Decision.objects.filter(
                case__process__team=team,
                source="model",
                retracted_at__isnull=True,
                decided_at__gte=start,
                decided_at__lt=end,
            )
            .annotate(disagreed=Exists(disagreeing))
            .select_related("case__process")
            .order_by("decided_at", "pk")
        )
        why: dict[int, str] = {}
        cases = []
        for decision in decisions[: LIMIT * 2]:
            case = decision.case
            overturned = (
                case.status != "decided" or case.final_label != decision.label or decision.disagreed
            )
            if overturned != (key == "overturns"):
                continue
            why[case.pk] = f"model said {decision.label}; overturned" if overturned else "credited"
            cases.append(case)
        note = ""
        if key != "overturns":
            note = "Runs decided by an orchestration count too: see Straight-through share."
        else:
            note = "Audit samples decided against the model count too (autonomy page)."
        return Rows(CASE_HEADINGS, _case_rows(cases[:LIMIT], why), note)
    if key == "errors_prevented":
        cases = list(
            team_cases.filter(
                audit__correct=True, audit__decided_at__gte=start, audit__decided_at__lt=end
            ).order_by("pk")[:LIMIT]
        )
        return Rows(
            CASE_HEADINGS,
            _case_rows(cases, dict.fromkeys([c.pk for c in cases], "audit confirmed the model")),
        )
    if key in ("backlog", "backlog_age_days"):
        cases = list(
            team_cases.filter(created_at__lt=end)
            .filter(Q(decided_at__isnull=True) | Q(decided_at__gte=end))
            .order_by("created_at", "pk")[:LIMIT]
        )
        return Rows(CASE_HEADINGS, _case_rows(cases), "Oldest first.")
    if key == "sla_attainment":
        cases = list(
            team_cases.filter(due_by__gte=start, due_by__lt=end).order_by("due_by", "pk")[:LIMIT]
        )
        why = {
            case.pk: "met"
            if case.decided_at is not None and case.decided_at <= case.due_by
            else "missed"
            if case.decided_at is not None or case.due_by < end
            else "pending"
            for case in cases
        }
        return Rows(CASE_HEADINGS, _case_rows(cases, why))
    if key == "time_to_decision_hours":
        cases = list(
            team_cases.filter(status="decided", decided_at__gte=start, decided_at__lt=end).order_by(
                "decided_at", "pk"
            )[:LIMIT]
        )
        return Rows(CASE_HEADINGS, _case_rows(cases))
    if definition.drill == Drill.RUNS:
        runs = (
            Run.objects.filter(orchestration__team=team, state="finished")
            .filter(
                Q(finished_at__gte=start, finished_at__lt=end)
                | Q(due_by__gte=start, due_by__lt=end)
            )
            .select_related("orchestration")
            .order_by("-finished_at", "-pk")[:LIMIT]
        )
        return Rows(
            ["Run", "Orchestration", "Outcome", "Decided by", "Finished", "Due"],
            [
                Row(
                    run.external_id,
                    reverse(
                        "orchestration_run",
                        kwargs={"orchestration_slug": run.orchestration.slug, "run_id": run.pk},
                    ),
                    [
                        run.orchestration.name,
                        run.outcome or run.state,
                        run.decided_by or "—",
                        _at(run.finished_at),
                        _at(run.due_by),
                    ],
                )
                for run in runs
            ],
        )
    if definition.drill == Drill.DECISIONS:
        decisions = (
            Decision.objects.filter(
                case__process__team=team,
                seconds_spent__isnull=False,
                decided_at__gte=start,
                decided_at__lt=end,
            )
            .select_related("case__process", "expert")
            .order_by("decided_at", "pk")[:LIMIT]
        )
        return Rows(
            ["Case", "Process", "Expert", "Label", "Seconds", "Decided", "Undone"],
            [
                Row(
                    decision.case.external_id or f"#{decision.case_id}",
                    reverse("case_detail", kwargs={"case_id": decision.case_id}),
                    [
                        decision.case.process.name,
                        decision.expert.get_username(),
                        decision.label,
                        f"{decision.seconds_spent:.0f}",
                        _at(decision.decided_at),
                        "yes" if decision.retracted_at else "",
                    ],
                )
                for decision in decisions
            ],
        )
    if definition.drill == Drill.NODES:
        nodes = fabric_nodes(team_id=team.pk, end=end)
        return Rows(
            ["Node", "Class", "Hours enrolled (7 days)", "Hours online", "Takes part"],
            [
                Row(
                    node.name,
                    reverse("fabric_node", kwargs={"node_id": node.id}),
                    [
                        node.node_class,
                        f"{node.enrolled_hours:.1f}",
                        f"{node.online_hours:.1f}",
                        "yes" if node.participates else "no",
                    ],
                )
                for node in nodes[:LIMIT]
            ],
            "Listed assets not enrolled yet count in the denominator (assessment).",
        )
    if definition.drill == Drill.VERSIONS:
        versions = (
            OrchestrationVersion.objects.filter(orchestration__team=team, created_at__lt=end)
            .select_related("orchestration")
            .prefetch_related("components")
            .order_by("created_at", "pk")[:LIMIT]
        )
        return Rows(
            ["Version", "Orchestration", "Stage now", "Components"],
            [
                Row(
                    f"v{version.number}",
                    reverse(
                        "orchestration_detail",
                        kwargs={"orchestration_slug": version.orchestration.slug},
                    ),
                    [
                        version.orchestration.name,
                        version.get_stage_display(),
                        ", ".join(f"{c.kind} {c.component_id}" for c in version.components.all())
                        or "—",
                    ],
                )
                for version in versions
            ],
        )
    processes = team_processes(team_id=team.pk, end=end)
    return Rows(
        ["Process", "Minutes per case", "Source of that figure"],
        [
            Row(
                process.name,
                reverse("process_detail", kwargs={"slug": process.slug}),
                [f"{process.seconds_per_case / 60:.2f}", process.minutes_source],
            )
            for process in processes[:LIMIT]
        ],
    )
