"""One evaluation for the concurrent sync requests of a web process.

A sync request (`?wait_ms`) records its runs, then hands them here instead of evaluating them
alone. The first request to arrive while no evaluation runs leads: it waits a moment
(WINDOW_SECONDS) when it is alone, takes every run waiting by then, evaluates them as one batch
(execution.evaluate_here: one spec read, one predict_proba for all of them, one transaction to
record them) and wakes the others with their runs finished. Requests arriving while a batch runs
wait for it to end; one of them leads the next batch with everything that arrived meanwhile. So
under load the batch grows with the queue instead of each request paying for a whole predict and
transaction (a model's predict_proba costs about the same for 1 row as for 100).

Only requests outside a transaction take part: a run recorded inside one is invisible to the
leader's database connection until it commits, so those are evaluated by their own request.
Exactly-once recording is finish_runs' (it skips runs already finished): the collector adds no
state the database doesn't have.
"""

import threading
import time
from dataclasses import dataclass, field

from django.db import connection

from apps.orchestrations.models import Run

WINDOW_SECONDS = 0.002  # how long a lone leader waits for company


@dataclass(eq=False)
class _Waiting:
    runs: list[Run]
    done: bool = False
    finished: list[Run] = field(default_factory=list)
    error: BaseException | None = None


class Collector:
    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self._changed = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._busy = False

    def evaluate(self, runs: list[Run]) -> list[Run]:
        """Evaluate and record these (committed, unfinished) runs with whatever other requests
        of this process are waiting; the ones finished here (as execution.evaluate_here).
        Raises what the batch's evaluation raised."""
        mine = _Waiting(runs)
        with self._changed:
            self._waiting.append(mine)
            while self._busy and not mine.done:
                self._changed.wait()
            if not mine.done:
                self._busy = True
        if mine.done:
            return _answer(mine)
        batch: list[_Waiting] = []
        try:
            if self.window and len(self._waiting) == 1:
                time.sleep(self.window)
            with self._changed:
                batch, self._waiting = self._waiting, []
            every = [run for waiting in batch for run in waiting.runs]
            try:
                finished, error = _evaluate_all(every), None
            except Exception as exc:  # each request handles it as its own (inbound.py)
                finished, error = [], exc
            ids = {run.pk for run in finished}
            for waiting in batch:
                waiting.finished = [run for run in waiting.runs if run.pk in ids]
                waiting.error = error
        finally:
            with self._changed:
                for waiting in batch:
                    waiting.done = True
                if mine not in batch:  # something failed before the batch was taken
                    self._waiting = [w for w in self._waiting if w is not mine]
                    mine.done, mine.error = True, mine.error or RuntimeError("not evaluated")
                self._busy = False
                self._changed.notify_all()
        return _answer(mine)


def _answer(waiting: _Waiting) -> list[Run]:
    if waiting.error is not None:
        raise waiting.error
    return waiting.finished


_collector = Collector()


def evaluate_together(runs: list[Run]) -> list[Run]:
    """The in-request path for a sync request's runs: batched with the process's other waiting
    requests, unless the caller is in a transaction (its runs aren't visible to others yet)."""
    if not connection.in_atomic_block:
        return _collector.evaluate(runs)
    return _evaluate_all(runs)


def _evaluate_all(runs: list[Run]) -> list[Run]:
    """execution.evaluate_here over `runs`, BATCH_MAX at a time; the runs finished."""
    from apps.orchestrations.execution import BATCH_MAX, evaluate_here

    finished: list[Run] = []
    for start in range(0, len(runs), BATCH_MAX):
        finished += evaluate_here(runs[start : start + BATCH_MAX])
    return finished
