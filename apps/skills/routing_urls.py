from django.urls import path

from apps.skills import routing_views

urlpatterns = [
    path("skills/routing/", routing_views.routing_index, name="skills_routing_index"),
    path("skills/routing/<slug:slug>/", routing_views.routing_page, name="skills_routing"),
]
