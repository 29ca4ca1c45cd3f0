"""What `seed_demo` loads, seeded once for all these checks (the seed takes a minute or two): the
demo processes (idempotent, synthetic, following their documented policy), the demo
orchestration and the capital history."""

import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from apps.capital.models import MetricSnapshot
from apps.capital.snapshots import today
from apps.cases.demo import AP_SLUG, CLAIMS_SLUG, apply_invoice_policy, claim_rule
from apps.cases.models import Case, CaseStatus, Decision, Process
from apps.cases.services.similarity import similar_cases
from apps.classifiers.models import ModelVersion
from apps.connectors.models import Connector, Delivery
from apps.orchestrations import demo, simulator
from apps.orchestrations.demo import DEMO_SLUG, RUNS_ON_V1, RUNS_ON_V2, seed_orchestration_demo
from apps.orchestrations.evidence import challenger_comparison, default_period
from apps.orchestrations.models import Orchestration, Run, RunStep, StageChange
from apps.people.models import Team
from tests.conftest import client_for

User = get_user_model()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seed once for the module, inside a transaction rolled back at the end: the seed takes
    seconds, and the rest of the session must not see its rows. Each test's own transaction
    nests inside as a savepoint."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", verbosity=0)
        yield
        transaction.set_rollback(True)


def _generated(process: Process):
    """The process's generated cases: not those the demo orchestration routed to people (which
    carry no exception reason, and are embedded after the seed's commit)."""
    return process.cases.exclude(external_id__startswith=f"{DEMO_SLUG}/")


def _counts() -> dict[str, int]:
    return {
        "processes": Process.objects.count(),
        "cases": Case.objects.count(),
        "decisions": Decision.objects.count(),
        "decided": Case.objects.filter(status=CaseStatus.DECIDED).count(),
    }


def test_seeding_twice_leaves_the_same_counts(seeded, db, capsys):
    before = _counts()
    capsys.readouterr()
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert f"{AP_SLUG} already present" in out
    assert f"{CLAIMS_SLUG} already present" in out
    assert _counts() == before
    assert before["cases"] >= 3000


def test_demo_cases_are_marked_synthetic_and_embedded(seeded, db):
    for slug in (AP_SLUG, CLAIMS_SLUG):
        process = Process.objects.get(slug=slug)
        assert process.is_synthetic
        assert not process.cases.filter(is_synthetic=False).exists()
        assert not _generated(process).filter(embedding__isnull=True).exists()


def test_demo_has_decided_open_and_adjudication_cases(seeded, db):
    ap = Process.objects.get(slug=AP_SLUG)
    claims = Process.objects.get(slug=CLAIMS_SLUG)
    ap_decided = ap.cases.filter(status=CaseStatus.DECIDED).count()
    assert 0.5 < ap_decided / ap.cases.count() < 0.7
    assert ap.cases.filter(status=CaseStatus.OPEN).count() > 1000
    assert claims.cases.filter(status=CaseStatus.DECIDED).count() >= 24
    assert claims.cases.filter(status=CaseStatus.OPEN).exists()
    disputed = claims.cases.filter(status=CaseStatus.ADJUDICATION)
    assert disputed.exists()
    for case in disputed:
        assert len({d.label for d in case.decisions.all()}) == 2
    experts = set(
        Decision.objects.filter(case__process=ap).values_list("expert__username", flat=True)
    )
    assert experts == {"erin", "eli"}


def test_decided_cases_follow_the_documented_policy(seeded, db):
    ap = Process.objects.get(slug=AP_SLUG)
    cases = list(_generated(ap).order_by("external_id"))
    rules = apply_invoice_policy(case.fields for case in cases)
    decided = [(c, r) for c, r in zip(cases, rules, strict=True) if c.status == CaseStatus.DECIDED]
    follows = sum(
        (case.final_label, case.final_reason_code) == (rule.label, rule.reason_code)
        for case, rule in decided
    )
    assert follows / len(decided) >= 0.85
    assert follows < len(decided)  # the noise is there too
    # Every case shows the exception its data explains.
    for case, rule in zip(cases, rules, strict=True):
        assert (case.exception_reason, case.exception_fields) == (
            rule.exception,
            list(rule.at_fault),
        )
    assert {rule.reason_code for rule in rules} == {
        code for option in ap.schema.decisions for code in option["reason_codes"]
    }
    claims = Process.objects.get(slug=CLAIMS_SLUG)
    claim_cases = claims.cases.filter(status=CaseStatus.DECIDED)
    claim_follows = sum(claim_rule(c.fields).label == c.final_label for c in claim_cases)
    assert claim_follows / len(claim_cases) >= 0.8


def test_precedents_of_a_decided_case_share_its_vendor(seeded, db):
    ap = Process.objects.get(slug=AP_SLUG)
    sample = list(ap.cases.filter(status=CaseStatus.DECIDED).order_by("external_id")[:300:5])
    all_same_vendor = 0
    for case in sample:
        precedents = list(similar_cases(case=case, k=5))
        assert len(precedents) == 5
        assert all(p.status == CaseStatus.DECIDED and p.pk != case.pk for p in precedents)
        nearest = precedents[0]
        assert (nearest.fields["vendor"], nearest.exception_reason) == (
            case.fields["vendor"],
            case.exception_reason,
        )
        all_same_vendor += {p.fields["vendor"] for p in precedents} == {case.fields["vendor"]}
    assert all_same_vendor / len(sample) >= 0.9


def test_decision_history_spreads_over_the_last_ninety_days(seeded, db):
    ap = Process.objects.get(slug=AP_SLUG)
    decided = ap.cases.filter(status=CaseStatus.DECIDED)
    oldest = decided.order_by("decided_at").first()
    newest = decided.order_by("-decided_at").first()
    assert (newest.decided_at - oldest.decided_at).days >= 60
    assert all(c.decided_at >= c.created_at for c in decided[:200])
    rationales = Decision.objects.filter(case__process=ap).values_list("rationale", flat=True)
    assert all(text and "{" not in text for text in rationales)  # every template filled in


def test_the_demo_has_a_live_orchestration_with_a_history_and_runs(seeded, db, capsys, monkeypatch):
    # Live on the invoice process with a history (v1 retired, v2 live, v3 in shadow), a connector
    # for simulate_source's default port, runs made through the real inbound service.

    orchestration = Orchestration.objects.get(slug=DEMO_SLUG)
    stages = dict(orchestration.versions.values_list("number", "stage"))
    assert stages == {1: "retired", 2: "live", 3: "shadow"}
    assert StageChange.objects.filter(version__orchestration=orchestration).count() == 4
    runs = Run.objects.filter(orchestration=orchestration)
    assert runs.count() == RUNS_ON_V1 + RUNS_ON_V2
    assert runs.filter(version__number=1).count() == RUNS_ON_V1
    # Evaluated by the real pipeline: finished, with outcomes of more than one kind and a trace;
    # v2's runs carry the shadow version's answer too.
    assert set(runs.values_list("state", flat=True)) == {"finished"}
    assert len(set(runs.values_list("outcome", flat=True))) >= 2
    v2_run = runs.filter(version__number=2).first()
    kinds = list(RunStep.objects.filter(run=v2_run).values_list("kind", flat=True))
    assert kinds[0] == "received"
    assert "shadow" in kinds
    # Routed runs are cases in the invoice process's review queue.
    routed = runs.filter(outcome="routed")
    assert all(r.case_id for r in routed)
    # The connector simulate_source finds by its URL; only the shadow version pins it, so the
    # seeded runs sent nothing to a receiver that isn't running.
    connector = Connector.objects.get(team=orchestration.team)
    assert connector.url == (f"http://127.0.0.1:{simulator.DEFAULT_PORT}{simulator.RECEIVER_PATH}")
    assert orchestration.versions.get(number=3).connector_ids == [connector.pk]
    assert orchestration.versions.get(number=2).connector_ids == []
    assert Delivery.objects.filter(connector=connector).count() == 0

    # Idempotent; and how long the orchestration part of the seed takes (made again).
    assert seed_orchestration_demo() == "Orchestrations demo: already present"
    assert Run.objects.count() == RUNS_ON_V1 + RUNS_ON_V2
    monkeypatch.setattr(demo, "DEMO_SLUG", "invoice-exceptions-again")
    models = ModelVersion.objects.count()
    again = time.monotonic()
    assert "v2 live" in seed_orchestration_demo()
    part = time.monotonic() - again
    assert Run.objects.count() == 2 * (RUNS_ON_V1 + RUNS_ON_V2)
    # The challenger is reused, not trained again.
    assert ModelVersion.objects.count() == models
    second = Orchestration.objects.get(slug="invoice-exceptions-again")
    assert second.challenger_id == orchestration.challenger_id is not None
    with capsys.disabled():
        print(f"\nthe orchestration part of seed_demo: {part:.2f} s")


def test_the_demo_orchestration_has_a_challenger_with_real_comparison_figures(seeded, db, capsys):
    # A retrained model of the invoice process (never promoted) challenges v2's in shadow; the
    # demo's experts decided most of the routed items, so the comparison has expert outcomes.
    orchestration = Orchestration.objects.select_related("challenger").get(slug=DEMO_SLUG)
    retrained = orchestration.challenger
    assert retrained is not None
    assert not retrained.is_promoted
    assert retrained.version != orchestration.versions.get(number=2).model_version.version
    since, until = default_period()
    comparison = challenger_comparison(orchestration=orchestration, since=since, until=until)
    assert comparison["items"] > 0
    assert comparison["agreement"].total == comparison["both_predicted"] > 0
    assert comparison["expert_outcomes"] > 0
    for side in ("champion", "challenger"):
        assert comparison[side]["precision"].total > 0
        assert comparison[side]["coverage"].total == comparison[side]["predicted"] > 0
    # Every third routed item still waits for people: the list has work to show.
    waiting = Run.objects.filter(orchestration=orchestration, case__status=CaseStatus.OPEN)
    assert waiting.exists()
    page = client_for(User.objects.get(username="maya")).get(
        reverse("orchestration_challenger", args=[DEMO_SLUG])
    )
    assert page.status_code == 200
    assert f"v{retrained.version}" in page.content.decode()
    with capsys.disabled():
        print(f"\nthe demo challenger's training: {retrained.training_seconds:.2f} s")


def test_the_demo_has_weeks_of_capital_snapshots_that_agree_with_its_cases(seeded, db):
    # The demo's capital history is measured from what seed_demo recorded, nothing typed in.
    ap = Team.objects.get(slug="ap")
    days = MetricSnapshot.objects.filter(team=ap, process__isnull=True).count()
    # The demo's decisions reach back about 90 days: so does the history.
    assert days >= 60
    last = MetricSnapshot.objects.get(team=ap, process__isnull=True, day=today())
    waiting = Case.objects.filter(process__team=ap).exclude(status="decided").count()
    assert last.figures["backlog"]["num"] == waiting
    decided = sum(
        row.figures["time_to_decision_hours"]["den"]
        for row in MetricSnapshot.objects.filter(team=ap, process__isnull=True)
    )
    assert decided > 100  # the imported history's decided cases, day by day
    # Running the backfill again changes no figure.
    before = {
        row.pk: row.figures for row in MetricSnapshot.objects.filter(team=ap).exclude(day=today())
    }
    call_command("capital_backfill", "--team", "ap", stdout=StringIO())
    after = {
        row.pk: row.figures for row in MetricSnapshot.objects.filter(team=ap).exclude(day=today())
    }
    assert after == before


def test_the_demo_skills_matrix_shows_one_single_point_of_failure(seeded, db):
    # docs/skills.md: in ap, only maya (who trained the demo's models) practises training models;
    # both experts decide both processes, so no process rests on one person.
    from apps.skills.matrix import team_matrix

    data = team_matrix(team=Team.objects.get(slug="ap"))
    assert [(s.skill.slug, s.holder.username, s.level.name) for s in data.skill_spofs] == [
        ("training-models", "maya", "Practising")
    ]
    assert data.process_spofs == []
    assert data.spof_count == 1
