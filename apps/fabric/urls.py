from django.urls import path

from apps.fabric import views

urlpatterns = [
    path("fabric/", views.fleet, name="fabric_fleet"),
    path("fabric/tokens", views.token_create, name="fabric_token_create"),
    path("fabric/tokens/<int:token_id>/revoke", views.token_revoke, name="fabric_token_revoke"),
    path("fabric/nodes/<int:node_id>/", views.node_detail, name="fabric_node"),
    path(
        "fabric/nodes/<int:node_id>/availability",
        views.node_availability,
        name="fabric_node_availability",
    ),
    path("fabric/nodes/<int:node_id>/settings", views.node_settings, name="fabric_node_settings"),
    path("fabric/nodes/<int:node_id>/probe", views.node_probe, name="fabric_node_probe"),
    path("fabric/nodes/<int:node_id>/<slug:action>", views.node_action, name="fabric_node_action"),
    path("fabric/mine/", views.my_nodes, name="fabric_my_nodes"),
    path(
        "fabric/mine/<int:node_id>/availability",
        views.my_node_availability,
        name="fabric_my_node_availability",
    ),
    path(
        "fabric/mine/<int:node_id>/<slug:action>",
        views.my_node_action,
        name="fabric_my_node_action",
    ),
    path("fabric/tasks/", views.task_list, name="fabric_tasks"),
    path("fabric/tasks/<int:task_id>/", views.task_detail, name="fabric_task"),
    path("metrics", views.metrics, name="metrics"),
]
