"""One measurement answers the gate of every level: passes_at() on the evidence measured for one
target agrees with a fresh evaluate() for each other target (the autonomy page relies on it)."""

from apps.autonomy.models import Level
from apps.autonomy.selectors import autonomy_of
from apps.autonomy.services import gate
from tests.autonomy.helpers import arrive, import_labels, set_autonomy


def test_one_measurement_answers_each_levels_gate(trained_process, expert):
    # Enough for level 2, not for 1 (no routes) nor 3 (too few confident predictions to audit).
    set_autonomy(
        trained_process, target=2, min_shadow=20, threshold=0.6, target_precision=0.9,
        min_audits=80, audit_window=100,
    )  # fmt: skip
    cases, _ = arrive(trained_process, 25, seed=46)
    import_labels(trained_process, expert, cases)
    autonomy = autonomy_of(process=trained_process)
    measured = gate.evaluate(process=trained_process, target=Level.ROUTE)
    answers = {
        level: gate.passes_at(autonomy=autonomy, evidence=measured, target=level)
        for level in (Level.ROUTE, Level.SUGGEST, Level.DECIDE)
    }
    expected = {
        level: gate.evaluate(process=trained_process, target=level)["passed"]
        for level in (Level.ROUTE, Level.SUGGEST, Level.DECIDE)
    }
    assert answers == expected
    assert answers == {Level.ROUTE: False, Level.SUGGEST: True, Level.DECIDE: False}


def test_autonomy_page_measures_once(
    trained_process, manager, expert, django_assert_max_num_queries
):
    from django.urls import reverse

    from tests.conftest import client_for

    set_autonomy(trained_process, target=2, min_shadow=10, threshold=0.6, target_precision=0.9)
    cases, _ = arrive(trained_process, 12, seed=91)
    import_labels(trained_process, expert, cases)
    client = client_for(manager)
    url = reverse("autonomy_process", args=[trained_process.slug])
    # Measuring again for each higher level cost about six queries per level.
    with django_assert_max_num_queries(30):
        page = client.get(url)
    assert page.status_code == 200
    assert reverse("autonomy_promote", args=[trained_process.slug]) in page.content.decode()
