"""Capital metrics API: a team's figures for a period with their definitions and baselines, and
the daily history as CSV. Managers and admins of the team (and organisation admins) only."""

import csv
import io
import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError

from apps.capital import metrics_summary as summary
from apps.capital.metrics import Raw
from apps.capital.metrics_definitions import BY_KEY, definition_as_dict
from apps.core.api import reason_of
from apps.people.models import Team

router = Router(tags=["capital"])


class ErrorOut(Schema):
    detail: str


class BaselineOut(Schema):
    value: float | None
    source: str
    text: str


class FigureOut(Schema):
    key: str
    family: str
    name: str
    unit: str
    value: float | None
    previous: float | None
    trend: str
    baseline: BaselineOut
    details: dict
    definition: dict


class MoneyRateOut(Schema):
    process: str | None  # null: the team's default, for processes without their own
    per_hour: float | None
    per_case: float | None
    currency: str
    set_by: str | None
    set_at: str


class CapitalOut(Schema):
    team: str
    period_from: str
    period_to: str
    previous_from: str
    previous_to: str
    figures: list[FigureOut]
    money_rates: list[MoneyRateOut]  # empty: no value set, so no money figure


def money_rates_out(*, team: Team) -> list[MoneyRateOut]:
    return [
        MoneyRateOut(
            process=rate.process.slug if rate.process else None,
            per_hour=float(rate.per_hour) if rate.per_hour is not None else None,
            per_case=float(rate.per_case) if rate.per_case is not None else None,
            currency=rate.currency,
            set_by=rate.set_by.get_username() if rate.set_by else None,
            set_at=rate.set_at.isoformat(),
        )
        for rate in summary.current_money_rates(team=team)
    ]


_ERRORS = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _team(request: HttpRequest, slug: str) -> Team:
    try:
        return summary.capital_team(user=request.user, slug=slug)
    except PermissionDenied as error:
        raise HttpError(403, str(error)) from error


def _period(request: HttpRequest) -> summary.Period:
    try:
        return summary.parse_period(start=request.GET.get("from"), end=request.GET.get("to"))
    except ValidationError as error:
        raise HttpError(422, reason_of(error)) from error


@router.get(
    "/teams/{slug}/capital",
    response={200: CapitalOut, **_ERRORS},
    summary="A team's capability, value and compound metrics for a period",
    description="Query `from` and `to` (YYYY-MM-DD, both included; default the last 28 days). "
    "Each figure is measured now from the recorded decisions, runs, nodes and logs (states at "
    "the end of `to`), beside the previous period of the same length, its baseline (measured "
    "over the first 28 days of snapshots, or a manager's override, which says so) and its "
    "definition (formula, source tables, exclusions). `money_rates` are the values per hour and per "
    "case in force (empty: none set, and the money figure is null with a note saying so).",
)
def team_capital(request: HttpRequest, slug: str) -> CapitalOut:
    team = _team(request, slug)
    period = _period(request)
    views = summary.figures_live(team=team, period=period)
    return CapitalOut(
        team=team.slug,
        period_from=period.start.isoformat(),
        period_to=period.end.isoformat(),
        previous_from=period.previous.start.isoformat(),
        previous_to=period.previous.end.isoformat(),
        figures=[
            FigureOut(
                key=view.definition.key,
                family=str(view.definition.family),
                name=view.definition.name,
                unit=view.definition.unit,
                value=view.value,
                previous=view.previous,
                trend=view.trend,
                baseline=BaselineOut(
                    value=view.baseline.value,
                    source=view.baseline.source,
                    text=view.baseline.text,
                ),
                details=view.details,
                definition=definition_as_dict(view.definition),
            )
            for view in views
        ],
        money_rates=money_rates_out(team=team),
    )


def history_csv(*, team: Team, period: summary.Period) -> str:
    """One line per day, process (empty: the whole team) and metric: value, numerator and
    denominator as stored."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["day", "team", "process", "metric", "value", "numerator", "denominator",
                     "details"])  # fmt: skip
    for row in summary.history(team=team, period=period):
        for key, stored in sorted(row.figures.items()):
            definition = BY_KEY.get(key)
            if definition is None:
                continue
            raw = Raw(stored["num"], stored.get("den"))
            value = summary.display(definition, raw)
            writer.writerow([
                row.day.isoformat(), team.slug, row.process.slug if row.process else "", key,
                "" if value is None else round(value, 6), stored["num"],
                "" if stored.get("den") is None else stored["den"],
                json.dumps(stored["details"], sort_keys=True) if stored.get("details") else "",
            ])  # fmt: skip
    return out.getvalue()


@router.get(
    "/teams/{slug}/capital/history.csv",
    response={200: None, **_ERRORS},
    summary="The daily capital snapshots of a team as CSV",
    description="Query `from` and `to` as for the figures; one line per day, process (empty: "
    "the team) and metric.",
)
def team_capital_history(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team(request, slug)
    period = _period(request)
    response = HttpResponse(history_csv(team=team, period=period), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="capital-{team.slug}-{period.start}-{period.end}.csv"'
    )
    return response
