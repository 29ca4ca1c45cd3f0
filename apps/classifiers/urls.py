from django.urls import path

from apps.classifiers import views, views_label_errors

urlpatterns = [
    path("processes/<slug:slug>/models/", views.model_list, name="model_list"),
    path("processes/<slug:slug>/models/train", views.model_train, name="model_train"),
    path("processes/<slug:slug>/models/rollback", views.model_rollback, name="model_rollback"),
    path(
        "processes/<slug:slug>/models/jobs/<int:job_id>",
        views.training_job,
        name="training_job",
    ),
    path("processes/<slug:slug>/models/<int:version>/", views.model_detail, name="model_detail"),
    path(
        "processes/<slug:slug>/models/<int:version>/promote",
        views.model_promote,
        name="model_promote",
    ),
    path(
        "processes/<slug:slug>/models/<int:version>/gpu-only",
        views.model_gpu_only,
        name="model_gpu_only",
    ),
]

# Active learning: likely label errors and a second look.

urlpatterns += [
    path(
        "processes/<slug:slug>/label-errors/",
        views_label_errors.label_errors,
        name="label_errors",
    ),
    path(
        "processes/<slug:slug>/label-errors/<int:case_id>/second-look",
        views_label_errors.second_look,
        name="label_error_second_look",
    ),
]
