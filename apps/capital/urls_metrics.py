from django.urls import path

from apps.capital import views_metrics

urlpatterns = [
    path("capital/", views_metrics.dashboards, name="capital_dashboards"),
    path("capital/definitions/", views_metrics.definitions, name="capital_definitions"),
    path("teams/<slug:team_slug>/capital/", views_metrics.dashboard, name="capital_dashboard"),
    path("teams/<slug:team_slug>/capital/money/", views_metrics.money_rates, name="capital_money"),
    path(
        "teams/<slug:team_slug>/capital/history.csv",
        views_metrics.history_export,
        name="capital_history_csv",
    ),
    path(
        "teams/<slug:team_slug>/capital/figures/<slug:metric>/",
        views_metrics.figure_rows,
        name="capital_figure_rows",
    ),
    path(
        "teams/<slug:team_slug>/capital/figures/<slug:metric>/baseline",
        views_metrics.baseline_override,
        name="capital_baseline_override",
    ),
]
