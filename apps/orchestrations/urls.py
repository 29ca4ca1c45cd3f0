from django.urls import path

from apps.orchestrations import views, views_evidence, views_upload

urlpatterns = [
    path("orchestrations/", views.orchestration_list, name="orchestration_list"),
    path(
        "orchestrations/<slug:orchestration_slug>/",
        views.orchestration_detail,
        name="orchestration_detail",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/versions",
        views.orchestration_new_version,
        name="orchestration_new_version",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/versions/<int:number>/stage",
        views.orchestration_stage,
        name="orchestration_stage",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/site",
        views.orchestration_site,
        name="orchestration_site",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/rollback",
        views.orchestration_rollback,
        name="orchestration_rollback",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/upload/",
        views_upload.orchestration_upload,
        name="orchestration_upload",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/challenger/",
        views_evidence.orchestration_challenger,
        name="orchestration_challenger",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/challenger/set",
        views_evidence.orchestration_challenger_set,
        name="orchestration_challenger_set",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/challenger/promote",
        views_evidence.orchestration_challenger_promote,
        name="orchestration_challenger_promote",
    ),
    path(
        "orchestrations/<slug:orchestration_slug>/runs/<int:run_id>/",
        views.orchestration_run,
        name="orchestration_run",
    ),
]
