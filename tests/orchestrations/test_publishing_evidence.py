"""Publishing evidence: a shadow version's would-be answers and a canary's own runs, against
experts' outcomes on the same items, on the orchestration page and in the API, counted by hand."""

import pytest

from apps.cases.models import Case
from apps.cases.services.decisions import record_decision
from apps.orchestrations.inbound import receive_items
from apps.orchestrations.models import Run
from apps.orchestrations.services import change_stage, create_version
from apps.rules.models import Rule
from tests.conftest import client_for
from tests.orchestrations.table_model import note, store_table_model

API = "/api/v1/orchestrations/invoice-flow"
PAGE = "/orchestrations/invoice-flow/"
CODES = {"approve": "ok", "reject": "fraud", "request_info": ""}


def item(i: int, po_status: str, champ: str) -> dict:
    return {
        "external_id": f"INV-{i}",
        "fields": {"vendor": "Acme GmbH", "amount": 100 + i, "po_status": po_status,
                   "note": note(champ, "approve@0.5")},
    }  # fmt: skip


def decide(run, expert, label):
    record_decision(
        case=Case.objects.get(pk=run.case_id), expert=expert, label=label,
        reason_code=CODES[label],
    )  # fmt: skip


def share(figure):
    return figure["count"], figure["of"]


@pytest.fixture
def versions(orchestration, manager, process, rule):
    """v1 live: the table model, level 0 (every item routed to experts). v2: the same plus the
    rule that decides request_info when the PO is missing."""
    Rule.objects.filter(pk=rule.pk).update(enabled=True)
    model = store_table_model(process, "champ")
    v1 = create_version(
        orchestration=orchestration, actor=manager, values={"model_version": model.version}
    )
    change_stage(version=v1, stage="live", actor=manager)
    v2 = create_version(
        orchestration=orchestration, actor=manager, base=v1, values={"rules": [{"rule": rule.pk}]}
    )
    return v1, v2


def test_a_shadow_version_is_compared_with_experts_on_the_live_items_it_saw(
    manager, expert, orchestration, versions
):
    _, v2 = versions
    change_stage(version=v2, stage="shadow", actor=manager)
    empty = client_for(manager).get(f"{API}/versions/2/evidence").json()
    assert (empty["shadow"], empty["canary"]) == (None, None)
    runs = receive_items(
        orchestration=orchestration,
        items=[item(0, "missing", "approve@0.7"), item(1, "missing", "approve@0.7"),
               item(2, "missing", "approve@0.7"), item(3, "matched", "approve@0.95"),
               item(4, "matched", "approve@0.95")],
    )[0].runs  # fmt: skip
    assert [r.outcome for r in runs] == ["routed"] * 5  # the shadow acted on nothing
    for run, label in zip(
        runs, ["request_info", "request_info", "reject", "approve"], strict=False
    ):
        decide(run, expert, label)

    # An expert's decision settles the run (its outcome and label become the expert's, as the
    # events of apps/orchestrations/people.py do): the live answer is read from the trace.
    for run, label in zip(
        runs, ["request_info", "request_info", "reject", "approve"], strict=False
    ):
        Run.objects.filter(pk=run.pk).update(outcome="decided", label=label)

    data = client_for(expert).get(f"{API}/versions/2/evidence").json()

    s = data["shadow"]
    assert (data["stage"], s["items"], s["expert_outcomes"]) == ("shadow", 5, 4)
    # v2 decided the three missing-PO items (request_info) and routed the two others like live.
    assert s["outcomes"] == {"standard": 0, "decided": 3, "routed": 2}
    assert s["live_outcomes"] == {"standard": 0, "decided": 0, "routed": 5}
    assert share(s["same_as_live"]) == (2, 5)
    assert share(s["decided"]) == (3, 5)
    assert share(s["live_decided"]) == (0, 5)
    # Its three decisions were judged: right on INV-0 and INV-1, wrong on INV-2 (reject).
    assert share(s["decisions_precision"]) == (2, 3)
    # Labels against the four expert outcomes: v2 request_info twice right, INV-2 wrong, INV-3
    # approve right; live said approve on all four, right only on INV-3.
    assert share(s["precision"]) == (3, 4)
    assert share(s["live_precision"]) == (1, 4)
    assert s["precision"]["small_sample"] is True
    assert sorted(s["runs_differing"]) == sorted(r.pk for r in runs[:3])
    assert data["canary"] is None

    html = client_for(expert).get(PAGE).content.decode()
    assert "Evidence for publishing" in html
    assert "Version 2 (shadow)" in html
    assert "2 of 3" in html
    assert "3 of 4" in html
    assert "1 of 4" in html


def test_a_canary_is_compared_with_the_live_runs_of_the_same_period(
    manager, expert, orchestration, versions
):
    _, v2 = versions
    change_stage(version=v2, stage="canary", actor=manager, canary_share=0.5)
    runs = receive_items(
        orchestration=orchestration,
        items=[item(i, "missing", "request_info@0.8") for i in range(16)],
    )[0].runs
    on_canary = [r for r in runs if r.version_id == v2.pk]
    on_live = [r for r in runs if r.version_id != v2.pk]
    assert on_canary
    assert on_live
    # Experts decide every live item request_info, as the live model said, except the first.
    for n, run in enumerate(on_live):
        decide(run, expert, "reject" if n == 0 else "request_info")
        Run.objects.filter(pk=run.pk).update(outcome="decided")  # settled (people.py)

    c = client_for(manager).get(f"{API}/versions/2/evidence").json()["canary"]

    assert c["share"] == 0.5
    assert c["live_versions"] == [1]
    n_c, n_l = len(on_canary), len(on_live)
    assert c["candidate"]["runs"] == n_c
    assert c["candidate"]["outcomes"]["decided"] == n_c  # the rule decides every one
    assert share(c["candidate"]["straight_through"]) == (n_c, n_c)
    assert c["candidate"]["expert_outcomes"] == 0
    assert share(c["candidate"]["precision"]) == (0, 0)
    assert c["live"]["runs"] == n_l
    assert share(c["live"]["straight_through"]) == (0, n_l)
    assert c["live"]["expert_outcomes"] == n_l
    assert share(c["live"]["precision"]) == (n_l - 1, n_l)

    # Once it is live, its canary period is over: new items don't change the canary figures.
    change_stage(version=v2, stage="live", actor=manager)
    receive_items(orchestration=orchestration, items=[item(99, "missing", "approve@0.9")])
    after = client_for(manager).get(f"{API}/versions/2/evidence").json()["canary"]
    assert (after["candidate"]["runs"], after["live"]["runs"]) == (n_c, n_l)


def test_a_candidate_without_items_says_so_and_others_get_404(
    manager, staff, outsider, orchestration, versions
):
    _, v2 = versions
    change_stage(version=v2, stage="shadow", actor=manager)
    page = client_for(manager).get(PAGE)
    assert page.status_code == 200
    assert "No items yet" in page.content.decode()
    assert client_for(manager).get(f"{API}/versions/9/evidence").status_code == 404
    for user in (staff, outsider):
        assert client_for(user).get(f"{API}/versions/2/evidence").status_code == 404
