"""The autonomy pages: managers act, experts read, others 403 (outsiders 404)."""

from django.urls import reverse

from apps.autonomy.models import AutonomyChange, ProcessAutonomy
from tests.autonomy.helpers import arrive, import_labels, set_autonomy, wrong_label
from tests.conftest import client_for
from tests.factories import make_team


def page(process):
    return reverse("autonomy_process", args=[process.slug])


def test_manager_sees_evidence_sweep_and_buttons(trained_process, manager, expert):
    set_autonomy(trained_process, target=2, min_shadow=10, threshold=0.6, target_precision=0.9)
    cases, _ = arrive(trained_process, 12, seed=90)
    import_labels(trained_process, expert, cases[:3], label_of=wrong_label)
    import_labels(trained_process, expert, cases[3:])
    response = client_for(manager).get(page(trained_process))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Gate for level 2 (suggest)" in html
    assert "12 shadow predictions decided by experts afterwards" in html
    assert "&lt; target 0.90 at threshold 0.6" in html  # what is missing
    assert 'id="sweep"' in html
    # The chart component: its data for Chart.js, and the same numbers as a table.
    assert 'id="sweep-chart-data"' in html
    assert "Precision and coverage by confidence threshold: the numbers" in html
    assert reverse("autonomy_shadow", args=[trained_process.slug]) in html
    assert reverse("autonomy_promote", args=[trained_process.slug]) not in html  # gate fails
    assert 'name="threshold"' in html  # settings form


def test_promote_button_appears_when_the_gate_passes_and_works(trained_process, manager, expert):
    set_autonomy(trained_process, target=2, min_shadow=10, threshold=0.6, target_precision=0.9)
    cases, _ = arrive(trained_process, 12, seed=91)
    import_labels(trained_process, expert, cases)
    client = client_for(manager)
    html = client.get(page(trained_process)).content.decode()
    assert reverse("autonomy_promote", args=[trained_process.slug]) in html
    response = client.post(
        reverse("autonomy_promote", args=[trained_process.slug]), {"level": "2", "reason": "good"}
    )
    assert response.status_code == 302
    assert ProcessAutonomy.objects.get(process=trained_process).level == 2
    html = client.get(page(trained_process)).content.decode()
    assert "is now at level 2 (Suggest)" in html
    assert "Promoted: 0 → 2" in html
    assert "maya" in html


def test_a_refused_promotion_says_what_is_missing(trained_process, manager):
    client = client_for(manager)
    response = client.post(
        reverse("autonomy_promote", args=[trained_process.slug]), {"level": "1"}, follow=True
    )
    assert "needs 200 more shadow predictions" in response.content.decode()
    assert not AutonomyChange.objects.filter(kind="promote").exists()


def test_start_shadow_and_demote_from_the_page(trained_process, manager):
    client = client_for(manager)
    client.post(reverse("autonomy_shadow", args=[trained_process.slug]), {"target": "3"})
    autonomy = ProcessAutonomy.objects.get(process=trained_process)
    assert autonomy.target == 3
    set_autonomy(trained_process, level=2)
    response = client.post(
        reverse("autonomy_demote", args=[trained_process.slug]), {"level": "1", "reason": "drift"}
    )
    assert response.status_code == 302
    autonomy.refresh_from_db()
    assert autonomy.level == 1
    demotion = AutonomyChange.objects.get(kind="demote")
    assert (demotion.actor, demotion.reason) == (manager, "drift")


def test_invalid_settings_re_render_with_errors(trained_process, manager):
    form = {"threshold": "0.9", "target_precision": "0.95", "min_shadow": "100",
            "audit_rate": "0.1", "audit_window": "10", "min_audits": "20",
            "route:approve": "somewhere"}  # fmt: skip
    response = client_for(manager).post(page(trained_process), form)
    assert response.status_code == 422
    html = response.content.decode()
    assert "routes.approve: expected" in html
    make_team("fast-lane", "Fast lane")
    form["route:approve"] = "team:fast-lane"
    form["min_audits"] = "5"
    assert client_for(manager).post(page(trained_process), form).status_code == 302
    autonomy = ProcessAutonomy.objects.get(process=trained_process)
    assert (autonomy.min_shadow, autonomy.routes) == (100, {"approve": "team:fast-lane"})


def test_expert_reads_without_buttons(trained_process, expert):
    response = client_for(expert).get(page(trained_process))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Gate for level 1 (route)" in html
    assert reverse("autonomy_shadow", args=[trained_process.slug]) not in html
    assert 'name="threshold"' not in html
    response = client_for(expert).post(
        reverse("autonomy_shadow", args=[trained_process.slug]), {"target": "1"}
    )
    assert response.status_code == 403


def test_staff_get_403_and_outsiders_404(trained_process, staff, outsider):
    assert client_for(staff).get(page(trained_process)).status_code == 403
    assert client_for(staff).get(reverse("autonomy_overview")).status_code == 403
    assert client_for(outsider).get(page(trained_process)).status_code == 404
    response = client_for(outsider).post(
        reverse("autonomy_demote", args=[trained_process.slug]), {"level": "0", "reason": "x"}
    )
    assert response.status_code == 404


def test_overview_lists_the_processes_with_their_next_gate(trained_process, manager):
    set_autonomy(trained_process, level=1, target=3)
    response = client_for(manager).get(reverse("autonomy_overview"))
    assert response.status_code == 200
    html = response.content.decode()
    assert trained_process.name in html
    assert "1</strong> · Route" in html
    assert "3 · Decide" in html
    assert "level 3 (decide):" in html
    assert "needs 200 more" in html


def test_nav_item_and_manager_home_section(trained_process, manager, expert):
    set_autonomy(trained_process, level=2)
    html = client_for(manager).get(reverse("home")).content.decode()
    assert 'href="/autonomy/"' in html
    assert 'id="autonomy-levels"' in html
    assert "level 2 (suggest)" in html
    assert 'id="autonomy-levels"' not in client_for(expert).get(reverse("home")).content.decode()


def test_level_three_page_shows_audits(trained_process, manager):
    set_autonomy(trained_process, level=3, threshold=0.5, audit_rate=0.5)
    arrive(trained_process, 10, seed=92)
    html = client_for(manager).get(page(trained_process)).content.decode()
    assert "Audits at level 3" in html
    assert "decided automatically since the promotion" in html
    assert "at the highest level" in html


def test_predict_open_cases_now_backfills_shadow_predictions(trained_process, manager, expert):
    from apps.autonomy.models import ShadowPrediction
    from tests.factories import make_cases

    make_cases(trained_process, 4)
    assert (
        client_for(expert)
        .post(reverse("autonomy_backfill", args=[trained_process.slug]))
        .status_code
        == 403
    )
    response = client_for(manager).post(
        reverse("autonomy_backfill", args=[trained_process.slug]), follow=True
    )
    assert "4 open cases predicted in shadow mode" in response.content.decode()
    assert ShadowPrediction.objects.filter(backfilled=False).count() == 4
