"""Rule induction from decided cases: candidates with support and precision, deduplicated."""

from apps.cases.services.decisions import record_decision
from tests.conftest import client_for
from tests.factories import make_cases


def induce(client, process):
    return client.post(
        f"/api/v1/processes/{process.slug}/rules/induce", content_type="application/json"
    )


def decided(process, expert, count, label, code="", **fields):
    for case in make_cases(process, count, **fields):
        record_decision(case=case, expert=expert, label=label, reason_code=code)


def test_induction_finds_the_policy_experts_follow(process, expert, second_expert):
    decided(process, second_expert, 15, "request_info", po_status="missing")
    decided(process, second_expert, 15, "approve", "ok", po_status="matched")
    response = induce(client_for(expert), process)
    assert response.status_code == 200, response.content
    candidates = response.json()["candidates"]
    assert candidates
    best = candidates[0]
    assert best["precision"] == 1.0
    assert best["support"] == 15
    assert best["action"]["decide"] in {"request_info", "approve"}
    assert "po_status" in str(best["condition"]) or "Po status" in best["sentence"]


def test_an_accepted_candidate_keeps_its_provenance_and_is_not_proposed_again(
    process, expert, second_expert
):
    decided(process, second_expert, 15, "request_info", po_status="missing")
    decided(process, second_expert, 15, "approve", "ok", po_status="matched")
    client = client_for(expert)
    first = induce(client, process).json()["candidates"]
    chosen = first[0]
    created = client.post(
        f"/api/v1/processes/{process.slug}/rules",
        {"name": "Induced", "condition": chosen["condition"], "action": chosen["action"],
         "provenance": {"source": "induced", "support": chosen["support"], "precision": chosen["precision"]}},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    assert created.json()["provenance"]["source"] == "induced"
    again = induce(client, process).json()["candidates"]
    assert chosen["condition"] not in [c["condition"] for c in again]


def test_too_few_decisions_or_a_single_label_is_a_clear_422(process, expert, second_expert):
    decided(process, second_expert, 5, "approve", "ok")
    response = induce(client_for(expert), process)
    assert response.status_code == 422
    assert "at least 20 decided cases" in response.json()["detail"]
    decided(process, second_expert, 20, "approve", "ok")
    response = induce(client_for(expert), process)
    assert response.status_code == 422
    assert "same label" in response.json()["detail"]


def test_staff_cannot_induce(process, staff):
    assert induce(client_for(staff), process).status_code == 403
