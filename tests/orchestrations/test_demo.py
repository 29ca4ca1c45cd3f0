"""The demo organisation's orchestration: live on the invoice process with a history (v1 retired,
v2 live, v3 in shadow), a connector for simulate_source's default port, and runs made through the
real inbound service (with their traces)."""

import time
from io import StringIO

import pytest
from django.core.management import call_command

from apps.connectors.models import Connector, Delivery
from apps.orchestrations import demo, simulator
from apps.orchestrations.demo import DEMO_SLUG, RUNS_ON_V1, RUNS_ON_V2, seed_orchestration_demo
from apps.orchestrations.models import Orchestration, Run, RunStep, StageChange


@pytest.mark.slow
def test_the_demo_has_a_live_orchestration_with_a_history_and_runs(db, capsys, monkeypatch):
    started = time.monotonic()
    call_command("seed_demo", stdout=StringIO())
    whole = time.monotonic() - started

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

    # Idempotent; and how long the orchestration part takes of the whole seed (made again).
    assert seed_orchestration_demo() == "Orchestrations demo: already present"
    assert Run.objects.count() == RUNS_ON_V1 + RUNS_ON_V2
    monkeypatch.setattr(demo, "DEMO_SLUG", "invoice-exceptions-again")
    again = time.monotonic()
    assert "v2 live" in seed_orchestration_demo()
    part = time.monotonic() - again
    assert Run.objects.count() == 2 * (RUNS_ON_V1 + RUNS_ON_V2)
    with capsys.disabled():
        print(f"\nseed_demo: {whole:.1f} s in all, the orchestration part {part:.2f} s")
