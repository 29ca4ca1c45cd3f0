from django.urls import path

from apps.cases import views_upload

urlpatterns = [
    path("processes/<slug:slug>/upload/", views_upload.process_upload, name="process_upload"),
    path(
        "processes/<slug:slug>/upload/<int:job_id>/",
        views_upload.upload_mapping,
        name="upload_mapping",
    ),
    path(
        "processes/<slug:slug>/upload/<int:job_id>/discard",
        views_upload.upload_discard,
        name="upload_discard",
    ),
    path("processes/<slug:slug>/imports/<int:job_id>/", views_upload.import_job, name="import_job"),
    path(
        "processes/<slug:slug>/imports/<int:job_id>/errors.csv",
        views_upload.import_job_errors,
        name="import_job_errors",
    ),
]
