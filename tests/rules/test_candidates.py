"""Proposed rules: accept, edit in the builder first, or reject with a reason (not proposed again)."""

import json
import re

from django.urls import reverse

from apps.cases.services.decisions import record_decision
from apps.rules.models import RejectedCandidate, Rule
from tests.conftest import client_for
from tests.factories import make_cases

HTMX = {"HTTP_HX_REQUEST": "true"}


def _words(html: str) -> str:
    """The page's text without tags: rule sentences carry field names and codes as tooltips."""
    return re.sub(r"<[^>]+>", "", html)


def decided(process, expert, count, label, code="", **fields):
    for case in make_cases(process, count, **fields):
        record_decision(case=case, expert=expert, label=label, reason_code=code)


def policy(process, expert):
    decided(process, expert, 15, "request_info", po_status="missing")
    decided(process, expert, 15, "approve", "ok", po_status="matched")


def candidates_page(client, process, method="tree"):
    return client.get(reverse("rule_induce", args=[process.slug]), {"method": method})


def reject_data(row, reason):
    return {
        "id": row["id"],
        "sentence": row["sentence"],
        "condition": row["condition"],
        "action": row["action"],
        "evidence": row["evidence"],
        "method": "tree",
        "reason": reason,
    }


def test_a_rejected_candidate_is_stored_with_why_and_not_proposed_again(
    process, expert, second_expert
):
    policy(process, second_expert)
    client = client_for(expert)
    page = candidates_page(client, process)
    rows = page.context["rows"]
    chosen = rows[0]
    response = client.post(
        reverse("candidate_reject", args=[process.slug]),
        reject_data(chosen, "Missing POs need a human: the vendor may send it late"),
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="candidate-{chosen["id"]}"')
    assert "Missing POs need a human" in html
    assert "erin" in html
    rejection = RejectedCandidate.objects.get()
    assert rejection.condition == chosen["candidate"].condition
    assert rejection.rejected_by == expert
    assert rejection.evidence["method"] == "tree"
    assert rejection.fingerprint == chosen["candidate"].fingerprint
    again = candidates_page(client, process)
    assert chosen["candidate"].condition not in [
        r["candidate"].condition for r in again.context["rows"]
    ]
    listed = again.content.decode()
    assert "Rejected rules" in listed
    assert "Missing POs need a human" in listed


def test_rejecting_needs_a_reason(process, expert, second_expert):
    policy(process, second_expert)
    client = client_for(expert)
    row = candidates_page(client, process).context["rows"][0]
    response = client.post(
        reverse("candidate_reject", args=[process.slug]), reject_data(row, "  "), **HTMX
    )
    assert response.status_code == 422
    assert response["HX-Retarget"] == f"#reject-{row['id']}"
    assert "reason: say why the rule is rejected" in response.content.decode()
    plain = client.post(
        reverse("candidate_reject", args=[process.slug]), reject_data(row, ""), follow=True
    )
    assert "Not rejected: reason: say why" in plain.content.decode()
    assert not RejectedCandidate.objects.exists()


def test_without_htmx_rejecting_goes_back_to_the_candidates(process, expert, second_expert):
    policy(process, second_expert)
    client = client_for(expert)
    row = candidates_page(client, process).context["rows"][0]
    response = client.post(
        reverse("candidate_reject", args=[process.slug]), reject_data(row, "not our policy")
    )
    assert response.status_code == 302
    assert response["Location"].endswith("?method=tree")
    assert RejectedCandidate.objects.get().reason == "not our policy"


def test_a_candidate_opens_in_the_builder_and_keeps_its_provenance(process, expert, second_expert):
    policy(process, second_expert)
    client = client_for(expert)
    page = candidates_page(client, process)
    assert "Edit, then accept" in page.content.decode()
    row = page.context["rows"][0]
    opened = client.post(reverse("rule_builder", args=[process.slug]), {"seed": row["seed"]})
    html = opened.content.decode()
    assert opened.status_code == 200
    assert row["candidate"].sentence.split(" → ")[0] in _words(html)
    state = opened.context["builder"]["state"]
    assert state.provenance["source"] == "induced"
    assert state.name.startswith("Induced: ")
    # Save it from the builder as it was posted back: fields plus the signed provenance.
    data = {
        "c.0.kind": "all",
        "action.kind": "decide",
        "action.decide": row["candidate"].action["decide"],
        "action.reason_code": row["candidate"].action.get("reason_code", ""),
        "name": "Edited induced rule",
        "priority": "7",
        "target": "new",
        "provenance": opened.context["builder"]["provenance"],
        "do": "save",
    }
    condition = row["candidate"].condition
    tests = condition.get("all", [condition])
    for index, test in enumerate(tests):
        assert "field" in test  # the tree's candidates here are plain comparisons
        data.update({f"c.0.{index}.kind": "cmp", f"c.0.{index}.field": test["field"],
                     f"c.0.{index}.op": test["op"], f"c.0.{index}.value": test["value"]})  # fmt: skip
    response = client.post(reverse("rule_builder", args=[process.slug]), data)
    assert response.status_code == 302, response.content.decode()
    rule = Rule.objects.get()
    assert rule.provenance["source"] == "induced"
    assert rule.current.provenance["source"] == "induced"
    assert rule.current.condition == condition


def test_a_tampered_seed_opens_an_empty_builder(process, expert):
    client = client_for(expert)
    seed = json.dumps({"condition": {"field": "amount", "op": "gt", "value": 1}})
    response = client.post(reverse("rule_builder", args=[process.slug]), {"seed": seed})
    assert response.context["builder"]["state"].provenance == {}
    assert "condition.all[0].field: pick a field" in response.content.decode()


def test_candidates_need_an_author(process, staff):
    assert candidates_page(client_for(staff), process).status_code == 403
    assert (
        client_for(staff)
        .post(reverse("candidate_reject", args=[process.slug]), {"reason": "x"})
        .status_code
        == 403
    )


# --- API -------------------------------------------------------------------------------------


def api(process, suffix):
    return f"/api/v1/processes/{process.slug}/rules{suffix}"


def test_rejections_through_the_api(process, expert, second_expert, staff):
    policy(process, second_expert)
    client = client_for(expert)
    induced = client.post(api(process, "/induce"), {}, content_type="application/json").json()
    chosen = induced["candidates"][0]
    body = {"condition": chosen["condition"], "action": chosen["action"], "reason": "too broad",
            "evidence": {"method": "tree", "support": chosen["support"]}}  # fmt: skip
    created = client.post(api(process, "/rejections"), body, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["fingerprint"] == chosen["fingerprint"]
    assert created.json()["rejected_by"] == "erin"
    repeat = client.post(api(process, "/rejections"), body, content_type="application/json")
    assert repeat.status_code == 409
    assert "already rejected by erin" in repeat.json()["detail"]
    listed = client_for(staff).get(api(process, "/rejections")).json()
    assert [(r["reason"], r["evidence"]["support"]) for r in listed] == [
        ("too broad", chosen["support"])
    ]
    again = client.post(api(process, "/induce"), {}, content_type="application/json").json()
    assert chosen["fingerprint"] not in [c["fingerprint"] for c in again["candidates"]]


def test_api_rejections_need_a_reason_a_valid_rule_and_an_author(process, expert, staff):
    client = client_for(expert)
    body = {"condition": {"field": "po_status", "op": "eq", "value": "missing"},
            "action": {"decide": "request_info"}, "reason": ""}  # fmt: skip
    blank = client.post(api(process, "/rejections"), body, content_type="application/json")
    assert blank.status_code == 422
    assert "reason" in blank.json()["detail"]
    bad = {**body, "reason": "no", "condition": {"field": "nope", "op": "eq", "value": 1}}
    invalid = client.post(api(process, "/rejections"), bad, content_type="application/json")
    assert invalid.status_code == 422
    assert "condition.field: unknown field 'nope'" in invalid.json()["detail"]
    body["reason"] = "no"
    forbidden = client_for(staff).post(
        api(process, "/rejections"), body, content_type="application/json"
    )
    assert forbidden.status_code == 403
    assert not RejectedCandidate.objects.exists()
