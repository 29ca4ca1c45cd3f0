"""The in-request path's batching (apps/orchestrations/collector.py): concurrent sync requests of
one process share one evaluation, each still gets its own outcome and every run finishes once;
and the statements a sync request costs don't grow with its items (bulk writes, no per-item
reads)."""

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.orchestrations import collector, execution, inbound
from apps.orchestrations.models import Run, RunStep
from tests.autonomy.conftest import fitted_model  # noqa: F401
from tests.orchestrations.test_execution import items, live, model  # noqa: F401


@pytest.mark.django_db(transaction=True)
def test_sync_requests_that_arrive_during_an_evaluation_share_the_next_one(
    manager,
    orchestration,
    model,  # noqa: F811
    monkeypatch,
):
    live(orchestration, manager, model_version=model.version, autonomy_level=3, threshold=0.5)
    monkeypatch.setattr(collector, "_collector", collector.Collector(window=0))
    release = threading.Event()
    real = execution.evaluate_here
    sizes: list[int] = []

    def held(runs):  # the first batch waits until the other requests queue behind it
        sizes.append(len(runs))
        if len(sizes) == 1:
            assert release.wait(60)
        return real(runs)

    monkeypatch.setattr(execution, "evaluate_here", held)
    answers: dict[str, list[Run]] = {}

    def send(name: str) -> None:
        try:
            received, _ = inbound.receive_items(
                orchestration=orchestration, items=items(1, prefix=name), wait_ms=5000
            )
            answers[name] = received.runs
        finally:
            connection.close()

    first = threading.Thread(target=send, args=("A",))
    first.start()
    deadline = time.monotonic() + 60
    while not sizes and time.monotonic() < deadline:
        time.sleep(0.01)
    others = [threading.Thread(target=send, args=(name,)) for name in ("B", "C", "D")]
    for thread in others:
        thread.start()
    while len(collector._collector._waiting) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(60)

    assert sizes == [1, 3]  # A alone, then B, C and D in one evaluation
    assert sorted(answers) == ["A", "B", "C", "D"]
    for name, [run] in answers.items():
        assert run.external_id == f"{name}-0"
        assert run.state == "finished"
        assert run.outcome in {"decided", "routed"}
    executed = list(RunStep.objects.filter(kind="executed").values_list("run_id", "data"))
    assert len(executed) == 4 == len({run_id for run_id, _ in executed})  # each run once
    by_run = dict(executed)
    batch_of = {name: by_run[run.pk]["batch"] for name, [run] in answers.items()}
    assert batch_of["B"] == batch_of["C"] == batch_of["D"] != batch_of["A"]
    assert {by_run[answers[n][0].pk]["batch_size"] for n in "BCD"} == {3}
    assert Run.objects.filter(state="finished").count() == 4


def test_a_failed_batch_evaluation_reaches_the_waiting_request(
    manager,
    orchestration,
    model,  # noqa: F811
    monkeypatch,
):
    live(orchestration, manager, model_version=model.version)
    [run] = inbound._record(orchestration, items(1), "", "").runs

    def broken(runs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(execution, "evaluate_here", broken)
    together = collector.Collector(window=0)
    with pytest.raises(RuntimeError, match="went away"):
        together.evaluate([run])
    assert not together._busy
    assert not together._waiting


def test_a_sync_request_costs_the_same_statements_for_one_item_as_for_fifty(
    manager,
    orchestration,
    model,  # noqa: F811
):
    # Level 0: every item is routed, so both requests do the same kinds of work.
    live(orchestration, manager, model_version=model.version, autonomy_level=0)
    counts = []
    for prefix, count in (("ONE", 1), ("FIFTY", 50)):
        with CaptureQueriesContext(connection) as queries:
            received, _ = inbound.receive_items(
                orchestration=orchestration, items=items(count, prefix=prefix), wait_ms=5000
            )
        assert {run.outcome for run in received.runs} == {"routed"}
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
    assert RunStep.objects.filter(run__external_id__startswith="FIFTY", number=1).count() == 50
