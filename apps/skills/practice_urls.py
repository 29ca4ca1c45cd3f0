from django.urls import path

from apps.skills import practice_views as views

urlpatterns = [
    path("skills/practice/", views.practice_home, name="practice_home"),
    path("skills/practice/<slug:slug>/", views.practice_queue, name="practice_queue"),
    path(
        "skills/practice/<slug:slug>/<int:gold_id>/answer",
        views.practice_answer,
        name="practice_answer",
    ),
    path("skills/gold/<slug:slug>/", views.gold_list, name="gold_list"),
    path("skills/gold/<slug:slug>/mark", views.gold_mark, name="gold_mark"),
    path("skills/gold/<slug:slug>/<int:case_id>/unmark", views.gold_unmark, name="gold_unmark"),
    path("skills/gold/<slug:slug>/setting", views.practice_setting, name="practice_setting"),
]
