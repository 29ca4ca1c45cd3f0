"""Each evidence kind on a small scenario whose figures are counted by hand in the comments."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.cases.models import Decision
from apps.cases.services.decisions import adjudicate_case, record_decision
from apps.cases.services.second_look import request_second_look
from apps.classifiers.models import ModelArtifact, ModelVersion, RegistryEvent
from apps.core.evidence_kinds import evidence_kind, evidence_kinds
from apps.fabric.models import ComputeNode, NodeEvent
from apps.orchestrations.services import change_stage, create_orchestration, create_version
from apps.rules.services.authoring import create_rule, enable_rule
from apps.rules.services.backtest import backtest_rule
from tests.factories import make_cases, make_decided_cases, make_process


def involved(key, *people):
    """The usernames among `people` the kind says it can count something for."""
    from apps.core.evidence_kinds import involved as ask

    found = ask([evidence_kind(key)], people)[key]
    return {person.username for person in people if person.pk in found}


def measure(key, person, since=None, **params):
    kind = evidence_kind(key)
    clean = {p.name: p.default for p in kind.params if p.default is not None} | params
    return kind.measure(person=person, params=clean, since=since, until=timezone.now())


def test_every_kind_the_brief_asks_for_is_registered_by_its_app():
    keys = {kind.key: kind.owner for kind in evidence_kinds()}
    assert keys == {
        "cases.decisions_agree": "cases",
        "cases.peer_kappa": "cases",
        "cases.adjudications_upheld": "cases",
        "rules.rules_authored": "rules",
        "rules.rationales_reused": "rules",
        "classifiers.models_trained": "classifiers",
        "classifiers.label_errors_resolved": "classifiers",
        "fabric.nodes_uptime": "fabric",
        "orchestrations.designed_live": "orchestrations",
        "skills.manual": "skills",
        "skills.practice_accuracy": "skills",
    }


@pytest.fixture
def disputes(team, expert, second_expert, manager):
    return make_disputes(team, expert, second_expert, manager)


def make_disputes(team, expert, second_expert, manager):
    """Overlap 2. A: both approve (decided approve). B: erin approve, eli reject, maya settles
    reject. C: erin reject only (open). D: both reject (decided reject)."""
    process = make_process(team, slug="double", overlap=2)
    a, b, c, d = make_cases(process, 4)
    record_decision(case=a, expert=expert, label="approve", reason_code="ok")
    record_decision(case=a, expert=second_expert, label="approve", reason_code="ok")
    record_decision(case=b, expert=expert, label="approve", reason_code="ok")
    record_decision(case=b, expert=second_expert, label="reject", reason_code="duplicate")
    adjudicate_case(case=b, adjudicator=manager, label="reject", reason_code="duplicate")
    record_decision(case=c, expert=expert, label="reject", reason_code="fraud")
    record_decision(case=d, expert=expert, label="reject", reason_code="fraud")
    record_decision(case=d, expert=second_expert, label="reject", reason_code="fraud")
    return process, (a, b, c, d)


def test_agreement_with_the_final_label_counts_decided_cases_only(disputes, expert, second_expert):
    # erin on decided cases: A agreed, B overturned, D agreed (C is open) → 3, 2/3.
    erin = measure("cases.decisions_agree", expert)
    assert (erin.count, erin.value) == (3, pytest.approx(2 / 3))
    # eli: A, B, D all agree with the final label.
    eli = measure("cases.decisions_agree", second_expert)
    assert (eli.count, eli.value) == (3, 1.0)
    assert len(erin.refs) == 3
    assert {ref.label.split(": ")[1] for ref in erin.refs} == {"agreed", "overturned"}


def test_agreement_per_label_and_process(disputes, expert, team):
    # "approve or not": A (approve/approve) and B (erin approve, final reject) → 2, 1/2.
    approve = measure("cases.decisions_agree", expert, label="approve")
    assert (approve.count, approve.value) == (2, 0.5)
    # "reject": B (final reject) and D (reject/reject) → 2, 1/2.
    reject = measure("cases.decisions_agree", expert, label="reject")
    assert (reject.count, reject.value) == (2, 0.5)
    make_process(team, slug="other")
    assert measure("cases.decisions_agree", expert, process="other").count == 0
    assert measure("cases.decisions_agree", expert, process="double").count == 3


def test_agreement_leaves_out_decisions_outside_the_period(disputes, expert):
    (a, *_rest) = disputes[1]
    Decision.objects.filter(case=a, expert=expert).update(
        decided_at=timezone.now() - timedelta(days=100)
    )
    recent = measure("cases.decisions_agree", expert, since=timezone.now() - timedelta(days=90))
    # B overturned and D agreed remain → 2, 1/2.
    assert (recent.count, recent.value) == (2, 0.5)


def test_peer_kappa_on_the_cases_others_labelled_too(disputes, expert):
    # Pairs (erin, eli): A (approve, approve), B (approve, reject), D (reject, reject).
    # p_o = 2/3; erin: approve 2, reject 1; eli: approve 1, reject 2;
    # p_e = (2·1 + 1·2) / 9 = 4/9; kappa = (2/3 - 4/9) / (1 - 4/9) = 0.4. C has no pair.
    result = measure("cases.peer_kappa", expert)
    assert result.count == 3
    assert result.value == pytest.approx(0.4)


def test_adjudications_upheld(disputes, expert, second_expert):
    # B is the only settled dispute: erin said approve (not upheld), eli reject (upheld).
    erin = measure("cases.adjudications_upheld", expert)
    eli = measure("cases.adjudications_upheld", second_expert)
    assert (erin.count, erin.value) == (1, 0.0)
    assert (eli.count, eli.value) == (1, 1.0)


@pytest.fixture
def invoices(team, expert):
    process = make_process(team)
    cases = make_decided_cases(process, expert, 40, seed=3)
    return process, cases


def _rule(process, owner, name, po_status, label, *, enable):
    rule = create_rule(
        process=process, owner=owner, name=name, action={"decide": label},
        condition={"field": "po_status", "op": "eq", "value": po_status},
    )  # fmt: skip
    backtest_rule(rule=rule)
    if enable:
        enable_rule(rule=rule)
    rule.refresh_from_db()
    return rule


def test_rules_authored_with_their_backtest_precision(invoices, manager):
    process, cases = invoices
    # The planted policy: missing → request_info, mismatch → reject (always right);
    # matched → approve unless the amount is 5,000 or more (then request_info).
    matched = [c for c in cases if c.fields["po_status"] == "matched"]
    right = sum(1 for c in matched if c.fields["amount"] < 5000)
    matched_precision = right / len(matched)
    assert 0 < matched_precision < 0.95  # the scenario needs an imprecise rule
    _rule(process, manager, "Missing", "missing", "request_info", enable=True)  # precision 1
    _rule(process, manager, "Matched", "matched", "approve", enable=True)
    _rule(process, manager, "Mismatch", "mismatch", "reject", enable=False)  # precision 1
    strict = measure("rules.rules_authored", manager, min_precision=0.95)
    assert (strict.count, strict.value) == (1, 1.0)
    lenient = measure("rules.rules_authored", manager, min_precision=0.0)
    assert lenient.count == 2
    assert lenient.value == pytest.approx((1 + matched_precision) / 2)
    disabled_too = measure("rules.rules_authored", manager, min_precision=0.95, enabled_only=False)
    assert disabled_too.count == 2
    assert "rule=" in strict.refs[0].url
    assert involved("rules.rules_authored", manager) == {manager.username}


def test_rationales_reused_as_a_rules_provenance(team, expert, second_expert, manager):
    process = make_process(team, slug="double", overlap=2)
    a, b, c = make_cases(process, 3)
    record_decision(case=a, expert=expert, label="request_info", rationale="PO missing, ask")
    record_decision(case=b, expert=expert, label="request_info")  # no rationale: not reused
    record_decision(case=c, expert=expert, label="request_info", rationale="no PO")  # not cited
    record_decision(case=a, expert=second_expert, label="request_info", rationale="same")
    create_rule(
        process=process, owner=manager, name="Drafted", action={"decide": "request_info"},
        condition={"field": "po_status", "op": "eq", "value": "missing"},
        provenance={"source": "chat-draft", "cases": [a.pk, b.pk]},
    )  # fmt: skip
    # erin: A (rationale, cited) → 1; B is cited but has no rationale; C not cited.
    assert measure("rules.rationales_reused", expert).count == 1
    assert measure("rules.rationales_reused", second_expert).count == 1
    assert measure("rules.rationales_reused", manager).count == 0
    users = (expert, second_expert, manager)
    assert involved("rules.rationales_reused", *users) == {expert.username, second_expert.username}


def _model_version(process, person, number, f1, *, promoted):
    content = f"model {process.pk} {number}".encode()
    digest = hashlib.sha256(content).hexdigest()
    artifact = ModelArtifact.objects.create(sha256=digest, content=content, size=len(content))
    version = ModelVersion.objects.create(
        process=process, version=number, algorithm="logistic_regression", labels=["a", "b"],
        schema_version=process.schema, snapshot_size=0, snapshot_hash="0" * 64,
        snapshot_ids=b"", metrics={"macro_f1": f1}, artifact=artifact, artifact_sha256=digest,
        trained_by=person, trained_at=timezone.now(),
    )  # fmt: skip
    if promoted:
        RegistryEvent.objects.create(
            process=process, model_version=version, kind="promoted", actor=person,
            at=timezone.now(),
        )  # fmt: skip
    return version


def test_models_trained_and_promoted(team, manager, expert):
    process = make_process(team)
    _model_version(process, manager, 1, 0.70, promoted=True)  # promoted once, rolled back since
    _model_version(process, manager, 2, 0.80, promoted=False)
    _model_version(process, expert, 3, 0.90, promoted=True)
    trained = measure("classifiers.models_trained", manager)
    assert (trained.count, trained.value) == (2, pytest.approx(0.75))
    promoted = measure("classifiers.models_trained", manager, promoted=True)
    assert (promoted.count, promoted.value) == (1, pytest.approx(0.70))
    assert promoted.refs[0].url.endswith(f"/processes/{process.slug}/models/1/")


def test_label_errors_resolved(team, expert, second_expert, manager):
    process = make_process(team)
    p, q, r = make_cases(process, 3)
    for case in (p, q, r):
        record_decision(case=case, expert=expert, label="approve", reason_code="ok")
        request_second_look(case=case, by=manager)
    # P: the second label agrees (confirmed). Q: it disagrees, maya settles reject (corrected).
    # R: still waiting for its second label (not resolved).
    record_decision(case=p, expert=second_expert, label="approve", reason_code="ok")
    record_decision(case=q, expert=second_expert, label="reject", reason_code="duplicate")
    adjudicate_case(case=q, adjudicator=manager, label="reject", reason_code="duplicate")
    result = measure("classifiers.label_errors_resolved", manager)
    assert (result.count, result.value) == (2, 0.5)
    assert measure("classifiers.label_errors_resolved", expert).count == 0


def _node(name, owner, events):
    node = ComputeNode.objects.create(
        name=name, owner=owner, node_class="server", credential_hash=hashlib.sha256(
            name.encode()).hexdigest(), fingerprint=name, state=events[-1][1],
        approved_at=events[0][0],
    )  # fmt: skip
    for at, state in events:
        NodeEvent.objects.create(node=node, kind="state", to_state=state, at=at)
    return node


def test_node_uptime_from_its_state_changes(admin):
    now = timezone.now()
    hours = lambda n: now - timedelta(hours=n)  # noqa: E731
    # Online 10 h ago, offline 6 h ago, online again 4 h ago.
    _node("gpu-1", admin, [(hours(10), "online"), (hours(6), "offline"), (hours(4), "online")])
    # Over its whole life: up 4 h + 4 h of 10 h = 0.8.
    whole = measure("fabric.nodes_uptime", admin)
    assert whole.count == 1
    assert whole.value == pytest.approx(0.8, abs=1e-3)
    # Over the last 8 h: up 2 h + 4 h of 8 h = 0.75.
    recent = measure("fabric.nodes_uptime", admin, since=hours(8))
    assert recent.value == pytest.approx(0.75, abs=1e-3)
    # A retired node is not counted.
    _node("old", admin, [(hours(10), "online"), (hours(1), "retired")])
    assert measure("fabric.nodes_uptime", admin).count == 1


def test_orchestrations_designed_and_live(team, manager, expert):
    process = make_process(team)
    live = create_orchestration(process=process, slug="flow", name="Flow", owner=manager)
    version = create_version(orchestration=live, actor=manager, values={})
    change_stage(version=version, stage="live", actor=manager, reason="go")
    draft = create_orchestration(process=process, slug="draft", name="Draft", owner=manager)
    create_version(orchestration=draft, actor=manager, values={})
    result = measure("orchestrations.designed_live", manager)
    assert result.count == 1
    assert result.refs[0].url == "/orchestrations/flow/"
    assert measure("orchestrations.designed_live", expert).count == 0
    assert involved("orchestrations.designed_live", manager, expert) == {manager.username}
