"""The demo processes `seed_demo` loads: idempotent, synthetic, following their documented policy."""

import pytest
from django.core.management import call_command
from django.db import transaction

from apps.cases.demo import AP_SLUG, CLAIMS_SLUG, apply_invoice_policy, claim_rule
from apps.cases.models import Case, CaseStatus, Decision, Process
from apps.cases.services.similarity import similar_cases
from apps.orchestrations.demo import DEMO_SLUG


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
