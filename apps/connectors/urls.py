from django.urls import path

from apps.connectors import views

urlpatterns = [
    path("connectors/", views.connector_list, name="connector_list"),
    path("connectors/<int:connector_id>/", views.connector_detail, name="connector_detail"),
    path(
        "connectors/<int:connector_id>/rotate-secret",
        views.connector_rotate_secret,
        name="connector_rotate_secret",
    ),
    path(
        "connectors/<int:connector_id>/enabled", views.connector_enabled, name="connector_enabled"
    ),
    path("connectors/<int:connector_id>/replay", views.connector_replay, name="connector_replay"),
    path(
        "deliveries/<int:delivery_id>/redeliver",
        views.delivery_redeliver,
        name="delivery_redeliver",
    ),
]
