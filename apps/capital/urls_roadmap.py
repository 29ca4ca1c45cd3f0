from django.urls import path

from apps.capital import views_roadmap as views

urlpatterns = [
    path("capital/roadmaps/", views.roadmaps_page, name="capital_roadmaps"),
    path("capital/criteria/", views.criteria_page, name="capital_criteria"),
    path(
        "teams/<slug:team_slug>/capital/assessment/",
        views.assessment_page,
        name="capital_assessment",
    ),
    path(
        "teams/<slug:team_slug>/capital/assessment/v<int:number>/",
        views.assessment_version_page,
        name="capital_assessment_version",
    ),
    path("teams/<slug:team_slug>/capital/battle/", views.battle_page, name="capital_battle"),
    path("teams/<slug:team_slug>/capital/roadmap/", views.roadmap_page, name="capital_roadmap"),
    path("teams/<slug:team_slug>/capital/report/", views.report_page, name="capital_report"),
]
