# ruff: noqa: RUF001 (the product writes hour ranges with an en dash)
"""Placement: filter nodes that can't take a task, rank the rest, keep the reasons."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from apps.fabric.availability import parse_policy
from apps.fabric.scheduler import NodeFacts, RequirementError, Requirements, filter_and_score
from apps.fabric.selectors import node_facts
from apps.fabric.services import nodes as node_services

NOON = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)  # a Wednesday
ANY_TIME = parse_policy({})


def facts(node_id: int, name: str, **fields: object) -> NodeFacts:
    base = {
        "node_id": node_id, "name": name, "node_class": "server", "state": "online",
        "approved": True, "revoked": False, "cpu_cores": 8, "memory_mb": 16_384, "gpus": 0,
        "gpu_memory_mb": 0, "labels": {}, "data_sources": frozenset(), "max_tasks": 4,
        "running_tasks": 0, "policy": ANY_TIME, "idle_seconds": None,
    }  # fmt: skip
    return NodeFacts(**{**base, **fields})


def test_gpu_task_goes_only_to_a_node_with_a_gpu():
    cpu = facts(1, "cpu-box")
    gpu = facts(2, "gpu-box", node_class="gpu", gpus=1, gpu_memory_mb=24_000, running_tasks=3)
    placement = filter_and_score([cpu, gpu], Requirements(gpus=1), NOON)
    assert placement.node_id == 2
    assert placement.rejected == [
        {"node_id": 1, "name": "cpu-box", "reasons": ["needs 1 GPU, has 0"]}
    ]


def test_cpu_task_keeps_the_gpu_node_free_even_when_it_is_less_loaded():
    busy_cpu = facts(1, "cpu-box", running_tasks=3)
    idle_gpu = facts(2, "gpu-box", node_class="gpu", gpus=1)
    placement = filter_and_score([busy_cpu, idle_gpu], Requirements(), NOON)
    assert placement.node_id == 1
    assert placement.candidates[1]["why"]["keeps_gpu_free"] == -50


def test_data_local_node_wins_and_resident_data_never_leaves_its_site():
    local = facts(1, "branch-3", data_sources=frozenset({"erp-branch-3"}), running_tasks=3)
    elsewhere = facts(2, "central")
    open_task = Requirements(data_source="erp-branch-3")
    assert filter_and_score([local, elsewhere], open_task, NOON).node_id == 1

    resident = Requirements(data_source="erp-branch-3", resident=True)
    full_local = replace(local, running_tasks=4)
    placement = filter_and_score([full_local, elsewhere], resident, NOON)
    assert placement.node_id is None
    assert "central: data source erp-branch-3 must stay at its site" in placement.reason
    assert "branch-3: full: 4 of 4 tasks running" in placement.reason


def test_least_loaded_then_cheapest_class_then_lowest_id():
    a = facts(1, "a", running_tasks=2)
    b = facts(2, "b", running_tasks=1)
    assert filter_and_score([a, b], Requirements(), NOON).node_id == 2
    server = facts(3, "server")
    edge = facts(4, "edge", node_class="edge")
    assert filter_and_score([server, edge], Requirements(), NOON).node_id == 4
    twin = facts(5, "twin")
    assert filter_and_score([twin, server], Requirements(), NOON).node_id == 3


def test_every_reason_a_node_is_passed_over_is_kept():
    nights = parse_policy(
        {"windows": [{"days": [0, 1, 2, 3, 4], "start": "19:00", "end": "07:00"}]}
    )
    node = facts(1, "desk", policy=nights, cpu_cores=2, labels={"site": "hq"})
    placement = filter_and_score(
        [node], Requirements(cpu_cores=4, labels={"site": "branch-3"}), NOON
    )
    assert placement.node_id is None
    assert placement.rejected[0]["reasons"] == [
        "outside its hours (Mon–Fri 19:00–07:00)",
        "needs 4 CPU cores, has 2",
        "needs label site=branch-3, has site=hq",
    ]


def test_nodes_that_are_not_online_and_approved_are_rejected():
    nodes = [
        facts(1, "pending", state="pending", approved=False),
        facts(2, "draining", state="draining"),
        facts(3, "lost", state="offline"),
        facts(4, "revoked", state="retired", revoked=True),
    ]
    placement = filter_and_score(nodes, Requirements(), NOON)
    assert placement.node_id is None
    assert [r["reasons"][-1] for r in placement.rejected] == [
        "pending", "draining", "offline", "retired",
    ]  # fmt: skip
    assert filter_and_score([], Requirements(), NOON).reason == (
        "no eligible node: no nodes are enrolled"
    )


def test_placement_reason_names_the_choice():
    placement = filter_and_score([facts(7, "edge-7", node_class="edge")], Requirements(), NOON)
    assert placement.reason == (
        "placed on edge-7 (score 23, best of 1): 0 of 4 tasks running, edge class"
    )
    assert placement.to_json()["candidates"][0]["node_id"] == 7


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"gpus": -1}, "gpus"),
        ({"cpu": 2}, "unknown requirement"),
        ({"resident": True}, "resident needs a data_source"),
        ({"labels": {"site": 3}}, "labels"),
    ],
)
def test_bad_requirements_are_refused(data, message):
    with pytest.raises(RequirementError, match=message):
        Requirements.from_json(data)


def test_node_facts_use_declared_gpus_when_none_were_detected(make_token, admin):
    from tests.fabric.conftest import enroll

    node = enroll(make_token(auto_approve=True), declared={"gpus": 1}).node
    node_services.drain_node(node=node, actor=admin)
    node.refresh_from_db()
    seen = node_facts(node=node)
    assert seen.gpus == 1
    assert seen.cpu_cores == 8
    assert seen.state == "draining"
    assert node.node_class == "gpu"
