"""An orchestration never acts above what its process holds now, and the process's own autopilot
never decides an item an orchestration sent to people."""

import pytest

from apps.autonomy.models import ProcessAutonomy
from apps.cases.models import Case, CaseStatus, Decision
from apps.orchestrations.models import Run
from tests.autonomy.conftest import fitted_model, store_promoted_model  # noqa: F401
from tests.conftest import client_for
from tests.orchestrations.test_runs import live, send

pytestmark = pytest.mark.django_db(transaction=True)
ITEMS = [
    {"external_id": f"INV-{n}",
     "fields": {"vendor": "Acme GmbH", "amount": 40 + n, "po_status": "matched"}}
    for n in range(12)
]  # fmt: skip


@pytest.fixture
def deciding(manager, process, orchestration, fitted_model):  # noqa: F811
    """A live version at level 3 (threshold 0.5: the lowest a process may earn), no audits."""
    model = store_promoted_model(process, fitted_model)
    ProcessAutonomy.objects.create(
        process=process, level=3, threshold=0.5, audit_rate=0.0, model_version=model
    )
    return live(
        orchestration, manager, model_version=model.version, autonomy_level=3, threshold=0.5,
        audit_rate=0.0,
    )  # fmt: skip


def autonomy_step(run_id: int) -> dict:
    return Run.objects.get(pk=run_id).steps.get(kind="autonomy").data


def test_a_live_version_decides_no_more_once_its_process_is_demoted(manager, process, deciding):
    client = client_for(manager)
    before = send(client, ITEMS[:6]).json()["runs"]
    assert "decided" in {run["outcome"] for run in before}  # level 3 at work
    assert {autonomy_step(run["id"])["level"] for run in before} == {3}

    ProcessAutonomy.objects.filter(process=process).update(level=1)  # its audits failed
    after = send(client, ITEMS[6:]).json()["runs"]
    assert {run["outcome"] for run in after} == {"routed"}
    for run in after:
        step = autonomy_step(run["id"])
        assert (step["level"], step["pinned_level"], step["decides"]) == (1, 3, False)
        assert "level 1" in step["capped"]


def test_the_processs_autopilot_leaves_routed_items_to_people(manager, process, deciding):
    # The version routes everything (level 1) while the process may decide alone (level 3): the
    # cases it opens must stay open for the experts, not be decided by the process's autopilot.
    live(
        deciding.orchestration, manager, model_version=deciding.model_version.version,
        autonomy_level=1, threshold=0.5,
    )  # fmt: skip
    runs = send(client_for(manager), ITEMS[2:]).json()["runs"]
    assert {run["outcome"] for run in runs} == {"routed"}
    cases = Case.objects.filter(pk__in=Run.objects.values("case_id"))
    assert cases.count() == len(runs)
    assert set(cases.values_list("status", flat=True)) == {CaseStatus.OPEN}
    assert not Decision.objects.filter(case__in=cases).exists()
