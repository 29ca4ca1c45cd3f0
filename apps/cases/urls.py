from django.urls import include, path

from apps.cases import views

urlpatterns = [
    path("processes/", views.process_list, name="process_list"),
    path("processes/new/", views.process_create, name="process_create"),
    path("processes/<slug:slug>/", views.process_detail, name="process_detail"),
    path("processes/<slug:slug>/edit/", views.process_edit, name="process_edit"),
    path("processes/<slug:slug>/review/", views.review, name="review"),
    path(
        "processes/<slug:slug>/review/<int:case_id>/decide",
        views.review_decide,
        name="review_decide",
    ),
    path("processes/<slug:slug>/review/<int:case_id>/skip", views.review_skip, name="review_skip"),
    path(
        "processes/<slug:slug>/review/<int:case_id>/renew", views.review_renew, name="review_renew"
    ),
    path("processes/<slug:slug>/review/undo", views.review_undo, name="review_undo"),
    path("cases/<int:case_id>/", views.case_detail, name="case_detail"),
    path("", include("apps.cases.urls_quality")),
    path("", include("apps.cases.urls_upload")),
    path("", include("apps.cases.urls_export")),
    path("", include("apps.cases.urls_my_decisions")),
]
