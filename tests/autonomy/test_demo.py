"""The demo hook: one process at level 2 on labelled backfilled evidence, one in shadow towards 3."""

from apps.autonomy.demo import seed_autonomy_demo
from apps.autonomy.models import AutonomyChange, ProcessAutonomy, ShadowPrediction
from apps.cases.models import CaseStatus
from tests.autonomy.conftest import store_promoted_model
from tests.factories import make_cases, make_decided_cases, make_process


def test_demo_promotes_one_process_on_backfilled_evidence_and_shadows_another(
    team, expert, fitted_model
):
    busy = make_process(team, slug="demo-invoices", is_synthetic=True)
    decided = make_decided_cases(busy, expert, 230, seed=7)
    store_promoted_model(
        busy, fitted_model, case_ids=[c.pk for c in decided], labels=["x"] * len(decided)
    )
    quiet = make_process(team, slug="demo-quiet", name="Quiet", is_synthetic=True)
    store_promoted_model(quiet, fitted_model)
    open_cases = make_cases(quiet, 7)
    make_process(team, slug="real", name="Real")  # not synthetic, no model: left alone

    message = seed_autonomy_demo()

    assert "level 2 (suggest) on 230 backfilled predictions" in message
    first = ProcessAutonomy.objects.get(process=busy)
    assert (first.level, first.target) == (2, None)
    promotion = AutonomyChange.objects.get(process=busy, kind="promote")
    assert promotion.evidence["backfilled"] == promotion.evidence["decided"] == 230
    assert "backfilled" in promotion.evidence["note"]
    assert promotion.evidence["backfill"]["in_sample"] is True  # the model was trained on them
    assert "not shadow predictions made beforehand" in promotion.reason
    assert "optimistic" in promotion.reason
    assert ShadowPrediction.objects.filter(process=busy, backfilled=True).count() == 230
    second = ProcessAutonomy.objects.get(process=quiet)
    assert (second.level, second.target) == (0, 3)
    assert ShadowPrediction.objects.filter(case__in=open_cases, backfilled=False).count() == 7
    assert all(c.status == CaseStatus.OPEN for c in open_cases)
    assert not ProcessAutonomy.objects.filter(process__slug="real").exists()

    changes = AutonomyChange.objects.count()
    assert "already seeded" in seed_autonomy_demo()
    assert AutonomyChange.objects.count() == changes


def test_backfilled_evidence_never_counts_for_a_normal_promotion(team, expert, fitted_model):
    process = make_process(team, slug="demo-one", is_synthetic=True)
    decided = make_decided_cases(process, expert, 210, seed=8)
    store_promoted_model(
        process, fitted_model, case_ids=[c.pk for c in decided], labels=["x"] * 210
    )
    seed_autonomy_demo(processes=[process])
    autonomy = ProcessAutonomy.objects.get(process=process)
    assert (autonomy.level, autonomy.target) == (2, 3)  # one process: level 2 and earning 3
    from apps.autonomy.services.gate import evaluate

    assert evaluate(process=process, target=3)["decided"] == 0
    assert evaluate(process=process, target=3, include_backfilled=True)["decided"] == 210
