"""How every bench figure is made: the median of at least REPEATS runs, with their min and max,
and, where one exists, a bare-library baseline measured in the same run beside it.

A figure is a dict (one item of bench/results.json):

    {"name", "value", "unit", "target", "better": "lower"|"higher", "meets",
     "min", "max", "runs": [...],
     "baseline_name", "baseline_value", "baseline_min", "baseline_max", "ratio"}

`value` is the median of `runs`; `meets` compares the median with the target. `ratio` is
value / baseline_value, always "how many times the baseline's cost" (for rates, higher is
better, the ratio is baseline_value / value): 1.0 means no overhead over the bare library,
3.0 means three times what the bare library needs. The baseline fields are absent where no
bare-library equivalent exists.
"""

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# BENCH_REPEATS may raise it (never below 3: a median of fewer says nothing about spread).
REPEATS = max(3, int(os.environ.get("BENCH_REPEATS", "3")))


def _r(value: float) -> float:
    return round(float(value), 3 if abs(value) < 1000 else 1)


def figure(
    name: str,
    runs: list[float],
    unit: str,
    target: float,
    better: str,
    *,
    baseline: tuple[str, list[float]] | None = None,
) -> dict[str, object]:
    """One result from its runs (and the runs of its bare baseline, same unit)."""
    assert runs, name
    value = statistics.median(runs)
    meets = value <= target if better == "lower" else value >= target
    out: dict[str, object] = {
        "name": name,
        "value": _r(value),
        "unit": unit,
        "target": target,
        "better": better,
        "meets": meets,
        "min": _r(min(runs)),
        "max": _r(max(runs)),
        "runs": [_r(r) for r in runs],
    }
    if baseline is not None:
        base_name, base_runs = baseline
        base = statistics.median(base_runs)
        out["baseline_name"] = base_name
        out["baseline_value"] = _r(base)
        out["baseline_min"] = _r(min(base_runs))
        out["baseline_max"] = _r(max(base_runs))
        if base and value:
            cost = value / base if better == "lower" else base / value
            out["ratio"] = round(cost, 2)
    return out


def repeat(action: Callable[[], float], times: int = REPEATS) -> list[float]:
    """The values `action` returns, `times` times."""
    return [action() for _ in range(times)]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_in_child(
    script: str, data: Path, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> list[dict[str, object]]:
    """Run a bench module's child side (`script OUT`) on embedded engines of its own under
    `data`, as production runs (DEBUG off); its figures. `env` adds settings, `drop` removes
    inherited ones (external services are always dropped); the engines are stopped after."""
    out = data / "results.json"
    data.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "ORCHCAP_DATA_DIR": str(data), "DEBUG": "false"}
    child_env["SECRET_KEY"] = secrets.token_urlsafe(40)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", *drop):
        child_env.pop(name, None)
    child_env.update(env or {})
    try:
        subprocess.run(  # noqa: S603 (a bench module of ours, our interpreter)
            [sys.executable, script, str(out)],
            env=child_env,
            cwd=Path(__file__).resolve().parent.parent,
            check=True,
        )
        return json.loads(out.read_text())
    finally:
        from orchcap.runtime.broker import EmbeddedBroker
        from orchcap.runtime.postgres import EmbeddedPostgres

        EmbeddedPostgres(data).stop()
        EmbeddedBroker(data).stop()  # started by the first task a service queues
