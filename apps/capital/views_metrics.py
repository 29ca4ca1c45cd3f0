"""Capital metrics pages: the team dashboard, the definitions, a figure's rows, the CSV."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.capital import metrics_services
from apps.capital import metrics_summary as summary
from apps.capital.api_metrics import history_csv
from apps.capital.forms_metrics import MoneyRateForm
from apps.capital.metrics_definitions import (
    BASELINE_TEXT,
    BY_KEY,
    DEFINITIONS,
    FAMILY_LABELS,
    Definition,
    Family,
    definitions_of,
)
from apps.capital.metrics_rows import rows_for
from apps.capital.snapshots import day_bounds
from apps.core.api import reason_of
from apps.core.charts import Series, chart
from apps.core.http import HtmxHttpRequest
from apps.people.models import Team


def _period_or_422(request: HtmxHttpRequest) -> tuple[summary.Period | None, str]:
    try:
        return summary.parse_period(
            start=request.GET.get("from") or None, end=request.GET.get("to") or None
        ), ""
    except ValidationError as error:
        return None, " ".join(error.messages)


@login_required
def dashboards(request: HtmxHttpRequest) -> HttpResponse:
    """The teams whose capital the user may read; with one, its dashboard directly."""
    teams = list(summary.capital_dashboard_teams(user=request.user))
    if len(teams) == 1:
        return redirect("capital_dashboard", team_slug=teams[0].slug)
    if not teams:
        raise PermissionDenied("Only managers and admins of a team see its capital metrics.")
    return render(request, "capital/dashboards.html", {"teams": teams})


@login_required
def dashboard(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    team = summary.capital_team(user=request.user, slug=team_slug)
    period, error = _period_or_422(request)
    if period is None:
        period = summary.parse_period(start=None, end=None)
    views = summary.figures_from_snapshots(team=team, period=period)
    labels = [day.strftime("%d %b") for day, _ in views[0].series] if views else []
    families = []
    for family, items in summary.by_family(views):
        cards = [
            {
                "view": view,
                "value": value_text(view.value, view.definition.unit),
                "previous": value_text(view.previous, view.definition.unit),
                "baseline": value_text(view.baseline.value, view.definition.unit),
                "chart": chart(
                    element_id=f"spark-{view.definition.key}",
                    title=view.definition.name,
                    labels=labels,
                    series=[Series(view.definition.name, [v for _, v in view.series])],
                    unit=_unit(view.definition.unit),
                    decimals=2,
                    sparkline=True,
                ),
            }
            for view in items
        ]
        families.append({"family": family, "label": FAMILY_LABELS[family], "cards": cards})
    hours = next(v for v in views if v.definition.key == "hours_saved")
    invested = next(v for v in views if v.definition.key == "investment_hours")
    main_chart = chart(
        element_id="capital-hours",
        title="Hours saved and invested per day",
        labels=labels,
        series=[
            Series("Hours saved", [v for _, v in hours.series]),
            Series("Hours invested", [v for _, v in invested.series]),
        ],
        unit="hours",
        decimals=2,
    )
    has_data = any(v for view in views for _, v in view.series if v is not None)
    return render(
        request,
        "capital/dashboard.html",
        {
            "team": team,
            "period": period,
            "families": families,
            "main_chart": main_chart,
            "has_data": has_data,
            "error": error,
            "money_rates": summary.current_money_rates(team=team),
        },
        status=422 if error else 200,
    )


def value_text(value: float | None, unit: str) -> str:
    """A figure as the dashboard shows it."""
    if value is None:
        return "—"
    if unit == "share":
        return f"{value:.1f} %"
    if unit == "hours":
        return f"{value:,.1f} h"
    if unit == "days":
        return f"{value:.1f} days"
    if unit == "seconds":
        return f"{value:.0f} s"
    if unit == "ratio":
        return f"{value:.2f} \u00d7"
    if unit == "money":
        return f"{value:,.2f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _unit(unit: str) -> str:
    return {"share": "%", "money": ""}.get(unit, unit)


@login_required
def definitions(request: HtmxHttpRequest) -> HttpResponse:
    """Every metric's formula, sources and exclusions (open to every signed-in user: it holds
    no team's figures)."""
    return TemplateResponse(
        request,
        "capital/definitions.html",
        {
            "families": [
                {"label": FAMILY_LABELS[family], "definitions": definitions_of(family)}
                for family in Family
            ],
            "baseline_text": BASELINE_TEXT,
            "count": len(DEFINITIONS),
        },
    )


@login_required
def figure_rows(request: HtmxHttpRequest, team_slug: str, metric: str) -> HttpResponse:
    team = summary.capital_team(user=request.user, slug=team_slug)
    definition = BY_KEY.get(metric)
    if definition is None:
        raise Http404("No such metric")
    return _figure_rows_page(request, team, definition)


def _figure_rows_page(
    request: HtmxHttpRequest,
    team: Team,
    definition: Definition,
    *,
    form_error: str = "",
    status: int = 200,
) -> HttpResponse:
    period, error = _period_or_422(request)
    if period is None:
        period = summary.parse_period(start=None, end=None)
    start, _ = day_bounds(period.start)
    _, end = day_bounds(period.end)
    end = min(end, timezone.now())
    rows = rows_for(definition=definition, team=team, start=start, end=end)
    baseline = summary.baselines(team=team)[definition.key]
    return render(
        request,
        "capital/figure_rows.html",
        {
            "team": team,
            "definition": definition,
            "period": period,
            "rows": rows,
            "error": error,
            "form_error": form_error,
            "baseline": baseline,
            "baseline_text": value_text(baseline.value, definition.unit),
        },
        status=422 if error else status,
    )


@login_required
@require_POST
def baseline_override(request: HtmxHttpRequest, team_slug: str, metric: str) -> HttpResponse:
    """Set (or, with `clear`, drop) the manager's baseline of one team figure."""
    team = summary.capital_team(user=request.user, slug=team_slug)
    definition = BY_KEY.get(metric)
    if definition is None:
        raise Http404("No such metric")
    if request.POST.get("clear"):
        metrics_services.clear_baseline(team=team, metric=metric)
        messages.success(request, f"{definition.name}: back to the measured baseline.")
        return redirect("capital_figure_rows", team_slug=team.slug, metric=metric)
    try:
        metrics_services.set_baseline(
            team=team,
            metric=metric,
            value=request.POST.get("value", ""),
            reason=request.POST.get("reason", ""),
            by=request.user,
        )
    except ValidationError as error:
        return _figure_rows_page(
            request, team, definition, form_error=" ".join(error.messages), status=422
        )
    messages.success(request, f"{definition.name}: baseline set; the figure says it was.")
    return redirect("capital_figure_rows", team_slug=team.slug, metric=metric)


@login_required
def history_export(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    team = summary.capital_team(user=request.user, slug=team_slug)
    period, error = _period_or_422(request)
    if period is None:
        return HttpResponse(error, status=422, content_type="text/plain")
    response = HttpResponse(history_csv(team=team, period=period), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="capital-{team.slug}-{period.start}-{period.end}.csv"'
    )
    return response


@login_required
def money_rates(request: HtmxHttpRequest, team_slug: str) -> HttpResponse:
    """The values per expert hour and per case that turn hours saved and automatic decisions
    into money: the ones in force, their history, and the form to set one (managers)."""
    team = summary.capital_team(user=request.user, slug=team_slug)
    form = MoneyRateForm(request.POST if request.method == "POST" else None, team=team)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                rate = metrics_services.set_money_rate(
                    team=team,
                    by=request.user,
                    per_hour=form.cleaned_data["per_hour"],
                    per_case=form.cleaned_data["per_case"],
                    currency=form.cleaned_data["currency"],
                    process=form.process_object(),
                )
            except ValidationError as error:
                form.add_error(None, reason_of(error))
            else:
                target = rate.process.name if rate.process else team.name
                messages.success(
                    request,
                    f"Values for {target} saved: the dashboard shows money from the next "
                    "snapshot (hourly); the API measures it now.",
                )
                return redirect("capital_money", team_slug=team.slug)
        status = 422
    return render(
        request,
        "capital/money.html",
        {
            "team": team,
            "form": form,
            "rates": summary.current_money_rates(team=team),
            "history": summary.money_rate_history(team=team),
        },
        status=status,
    )
