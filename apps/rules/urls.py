from django.urls import path

from apps.rules import views, views_builder

urlpatterns = [
    path("processes/<slug:slug>/rules/", views.rule_list, name="rule_list"),
    path("processes/<slug:slug>/rules/builder", views_builder.rule_builder, name="rule_builder"),
    path("processes/<slug:slug>/rules/draft", views_builder.rule_draft, name="rule_draft"),
    path("processes/<slug:slug>/rules/induce", views.rule_induce, name="rule_induce"),
    path(
        "processes/<slug:slug>/rules/candidates/reject",
        views.candidate_reject,
        name="candidate_reject",
    ),
    path("processes/<slug:slug>/rationales/", views.rationale_summary, name="rationale_summary"),
    path(
        "processes/<slug:slug>/rules/<int:rule_id>/backtest",
        views.rule_backtest,
        name="rule_backtest",
    ),
    path("processes/<slug:slug>/rules/<int:rule_id>/toggle", views.rule_toggle, name="rule_toggle"),
]
