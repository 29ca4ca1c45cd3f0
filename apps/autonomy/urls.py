from django.urls import path

from apps.autonomy import views

urlpatterns = [
    path("autonomy/", views.autonomy_overview, name="autonomy_overview"),
    path("processes/<slug:slug>/autonomy/", views.autonomy_process, name="autonomy_process"),
    path("processes/<slug:slug>/autonomy/shadow", views.autonomy_shadow, name="autonomy_shadow"),
    path(
        "processes/<slug:slug>/autonomy/stop-shadow",
        views.autonomy_stop_shadow,
        name="autonomy_stop_shadow",
    ),
    path("processes/<slug:slug>/autonomy/promote", views.autonomy_promote, name="autonomy_promote"),
    path("processes/<slug:slug>/autonomy/demote", views.autonomy_demote, name="autonomy_demote"),
    path(
        "processes/<slug:slug>/autonomy/backfill",
        views.autonomy_backfill,
        name="autonomy_backfill",
    ),
]
