"""GET /api/v1/fabric/nodes: the fleet, for organisation admins only."""

from django.test import Client

from apps.people import services as people_services
from tests.conftest import client_for


def test_admin_lists_nodes_with_token_and_sees_declared_apart(online_node, admin):
    _, raw = people_services.create_api_token(user=admin, name="ops")
    response = Client().get("/api/v1/fabric/nodes", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    [node] = response.json()
    assert node["name"] == "build-1"
    assert node["state"] == "online"
    assert node["detected"]["cpu_cores"] == 8
    assert node["declared"] == {}
    assert node["accept_work"] is True
    assert node["availability"] == "Any time"


def test_retired_nodes_are_listed_only_when_asked(online_node, admin):
    from apps.fabric.services import nodes as node_services

    node, _ = online_node
    node_services.retire_node(node=node, actor=admin)
    client = client_for(admin)
    assert client.get("/api/v1/fabric/nodes").json() == []
    assert [n["state"] for n in client.get("/api/v1/fabric/nodes?retired=true").json()] == [
        "retired"
    ]


def test_others_are_refused(online_node, manager, expert):
    for user in (manager, expert):
        response = client_for(user).get("/api/v1/fabric/nodes")
        assert response.status_code == 403
    assert Client().get("/api/v1/fabric/nodes").status_code == 401


def test_a_node_credential_does_not_open_the_admin_api(online_node):
    node, credential = online_node
    response = Client().get(
        "/api/v1/fabric/nodes", HTTP_AUTHORIZATION=f"Node {node.pk}:{credential}"
    )
    assert response.status_code == 401


def test_api_docs_show_enrolment_open_and_heartbeat_behind_the_node_credential(admin):
    schema = client_for(admin).get("/api/v1/openapi.json").json()
    assert "security" not in schema["paths"]["/api/v1/fabric/enroll"]["post"]
    assert schema["paths"]["/api/v1/fabric/heartbeat"]["post"]["security"] == [{"NodeAuth": []}]
    node_auth = schema["components"]["securitySchemes"]["NodeAuth"]
    assert (node_auth["type"], node_auth["in"], node_auth["name"]) == (
        "apiKey", "header", "Authorization",
    )  # fmt: skip
