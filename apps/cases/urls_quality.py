from django.urls import path

from apps.cases import views_quality

urlpatterns = [
    path("processes/<slug:slug>/quality/", views_quality.process_quality, name="process_quality"),
    path(
        "processes/<slug:slug>/adjudication/",
        views_quality.adjudication_queue,
        name="adjudication_queue",
    ),
    path(
        "processes/<slug:slug>/adjudication/<int:case_id>/settle",
        views_quality.adjudication_settle,
        name="adjudication_settle",
    ),
]
