from django.urls import path

from apps.cases import views_my_decisions

urlpatterns = [
    path("my/decisions/", views_my_decisions.my_decisions_page, name="my_decisions"),
]
