from django.urls import path

from apps.cases import views_export

urlpatterns = [
    path("processes/<slug:slug>/export/", views_export.process_export, name="process_export"),
]
