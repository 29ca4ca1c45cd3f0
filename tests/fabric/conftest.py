import pytest

from apps.fabric.services import enrollment

DETECTED = {
    "cpu_cores": 8,
    "memory_mb": 16384,
    "disk_free_mb": 200_000,
    "os": "Linux",
    "arch": "x86_64",
    "python": "3.12.3",
    "gpus": [],
}
FINGERPRINT = "ab" * 32


def enroll(raw_token: str, name: str = "build-1", **fields: object) -> enrollment.Enrolment:
    fields.setdefault("detected", DETECTED)
    fields.setdefault("fingerprint", FINGERPRINT)
    return enrollment.enroll_node(raw_token=raw_token, name=name, **fields)


@pytest.fixture
def make_token(admin):
    def make(**fields: object) -> str:
        _, raw = enrollment.create_enrollment_token(created_by=admin, **fields)
        return raw

    return make


@pytest.fixture
def online_node(make_token):
    """An approved node that just heartbeated, with its raw credential."""
    result = enroll(make_token(auto_approve=True))
    return result.node, result.credential


@pytest.fixture
def pending_node(make_token):
    result = enroll(make_token())
    return result.node, result.credential


@pytest.fixture
def ready_node(make_token):
    """make(name, **enrol fields) → (node, credential): approved, online, its worker consuming."""
    from apps.fabric.models import ComputeNode

    def make(name: str = "build-1", **fields: object):
        result = enroll(make_token(auto_approve=True), name=name, **fields)
        ComputeNode.objects.filter(pk=result.node.pk).update(worker_ready=True)
        result.node.refresh_from_db()
        return result.node, result.credential

    return make


def node_client(node, credential):
    """A test client that sends the node's credential."""
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Node {node.pk}:{credential}")
