"""Executing runs: where a recorded run is evaluated, in micro-batches, and how its outcome is
recorded exactly once.

A run is recorded first (state `received`, pinned version, in the request's transaction), then
evaluated by one of two paths, both running pipeline.evaluate_batch over a batch of runs:

- **in the request** (`in-request`): when the caller waits for the answer (`?wait_ms`) and the
  runs' placement allows the control plane (their model is not GPU-only, and the orchestration
  is pinned to no site, or to the control plane's own site label). The request's items are one
  batch: one model load (cached per process), one predict_proba.
- **on the compute fabric** (`fabric`): otherwise. The runs of a request (or of a sweep) go out
  as `evaluate_runs` tasks of up to BATCH_MAX runs, placed by their requirements (a GPU-only
  model: `gpus: 1`; a site: `labels: {site: …}`); on one machine node `local` runs them. The
  node sends back the results; the completion handler records them.

Either way `finish_runs` records the outcome, locking the runs in id order and skipping those
already finished, in one transaction with the steps, the case of a routed item and (for the
fabric) the task's handled mark: a run finishes once, whichever evaluation comes first. The
trace's `executed` step says where it ran (path, node) and in which batch.

Durability: the sweeper (`sweep_runs`, Celery beat every ORCHCAP_RUN_SWEEP_SECONDS) sends to the
fabric every unfinished run that nothing is evaluating (never dispatched, its request died, or
its task failed) once it is ORCHCAP_RUN_PICKUP_SECONDS old. A fabric task lost with its node or
broker message is moved by the fabric itself (leases, docs/fabric.md).
"""

import json
import logging
import os
import socket
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.autonomy.models import ProcessAutonomy
from apps.classifiers.models import ModelVersion
from apps.classifiers.services import load_pipeline
from apps.fabric.models import (
    FINISHED_TASK_STATES,
    ComputeNode,
    FabricArtifact,
    FabricTask,
    FabricTaskState,
)
from apps.fabric.services import dispatch
from apps.fabric.services.completion import completion_handler
from apps.orchestrations import node_work
from apps.orchestrations.models import (
    Orchestration,
    OrchestrationVersion,
    Outcome,
    Run,
    RunState,
    RunStep,
    StepKind,
)
from apps.orchestrations.pipeline import Result
from apps.rules.models import RuleVersion

log = logging.getLogger(__name__)
EVALUATE = "orchestrations.evaluate"  # the completion handler of `evaluate_runs` tasks
BATCH_MAX = 500
SWEEP_BATCH = 2_000
IN_REQUEST = "in-request"
FABRIC = "fabric"
_WEB_NODE = f"web {socket.gethostname()}:{os.getpid()}"


# --- specs and placement ------------------------------------------------------------------------


def _rule_pins(version: OrchestrationVersion) -> list[dict[str, Any]]:
    pins = [(p["rule"], p["version"]) for p in version.rules]
    found = {}
    if pins:
        rows = RuleVersion.objects.filter(rule_id__in=[r for r, _ in pins]).select_related("rule")
        found = {(rv.rule_id, rv.version): rv for rv in rows}
    out = []
    for rule, number in pins:
        rv = found.get((rule, number))
        if rv is None:
            out.append({"rule": rule, "version": number, "missing": True})
        else:
            out.append(
                {"rule": rule, "version": number, "name": rv.rule.name, "enabled": rv.rule.enabled,
                 "condition": rv.condition, "action": rv.action}
            )  # fmt: skip
    return out


def _earned_level(version: OrchestrationVersion, cache: dict) -> int:
    """The level the version's process holds now: a process demoted since the version was
    deployed caps it (the check at deploy time can't see a later demotion)."""
    key = ("earned", version.orchestration_id)
    if key not in cache:
        level = (
            ProcessAutonomy.objects.filter(process__orchestrations__id=version.orchestration_id)
            .values_list("level", flat=True)
            .first()
        )
        cache[key] = int(level or 0)
    return cache[key]


def spec_of(version: OrchestrationVersion, cache: dict | None = None) -> dict[str, Any]:
    """The version's pinned components as the pure pipeline reads them (rules inlined with
    their enabled flag as it is now; a disabled rule is skipped, as a run's trace records)."""
    cache = cache if cache is not None else {}
    key = ("spec", version.pk)
    if key not in cache:
        model = version.model_version
        cache[key] = {
            "version": version.number,
            "exception_filter": version.exception_filter,
            "rules": _rule_pins(version),
            "model": {"version": model.version, "sha256": model.artifact_sha256}
            if model is not None
            else None,
            "autonomy_level": version.autonomy_level,
            "earned_level": _earned_level(version, cache),
            "threshold": version.threshold,
            "routes": version.routes,
            "sla_minutes": version.sla_minutes,
        }
    return cache[key]


@dataclass(frozen=True, slots=True)
class Pending:
    """A run as sending it to the fabric reads it: its pins and fields, without a model instance
    (Django builds one for about 100 us; a batch has 500 runs)."""

    pk: int
    orchestration: Orchestration
    version: OrchestrationVersion
    shadow: OrchestrationVersion | None
    fields: dict


def pending_of(run: Run) -> Pending:
    return Pending(run.pk, run.orchestration, run.version, run.shadow_version, run.fields)


def pins_requirements(
    orchestration: Orchestration,
    version: OrchestrationVersion,
    shadow: OrchestrationVersion | None,
) -> dict[str, Any]:
    """Fabric requirements of runs with these pins: a GPU for a GPU-only model (the version's
    or the shadow version's), the site label of a site-pinned orchestration."""
    requirements: dict[str, Any] = {}
    models = [v.model_version for v in (version, shadow) if v is not None]
    if any(m is not None and m.gpu_only for m in models):
        requirements["gpus"] = 1
    if orchestration.site:
        requirements["labels"] = {"site": orchestration.site}
    return requirements


def requirements_of(run: Run) -> dict[str, Any]:
    """Fabric requirements of a run (pins_requirements of its pins)."""
    return pins_requirements(run.orchestration, run.version, run.shadow_version)


def may_run_in_request(requirements: dict[str, Any]) -> bool:
    """Whether the control plane itself may evaluate runs with these requirements: no GPU, and
    any labels are the control plane's node's own (its `local` node, when there is one)."""
    if requirements.get("gpus"):
        return False
    labels = requirements.get("labels") or {}
    if not labels:
        return True
    own = ComputeNode.objects.filter(control_plane=True).values_list("labels", flat=True).first()
    return bool(own) and all(own.get(k) == v for k, v in labels.items())


def load_runs(ids: list[int], *, unfinished: bool = False) -> list[Run]:
    """These runs in id order, each with its orchestration (process, schema), version and shadow
    version (model versions) attached. A batch has a handful of those: they are read once and
    shared, not joined into each of up to 500 rows and built again for each."""
    runs = Run.objects.filter(pk__in=ids)
    if unfinished:
        runs = runs.exclude(state=RunState.FINISHED)
    loaded = list(runs.order_by("pk"))
    if not loaded:
        return []
    orchestrations = Orchestration.objects.select_related("process__schema").in_bulk(
        {run.orchestration_id for run in loaded}
    )
    versions = OrchestrationVersion.objects.select_related("model_version").in_bulk(
        {run.version_id for run in loaded}
        | {run.shadow_version_id for run in loaded if run.shadow_version_id is not None}
    )
    for run in loaded:
        run.orchestration = orchestrations[run.orchestration_id]
        run.version = versions[run.version_id]
        run.shadow_version = versions.get(run.shadow_version_id)  # type: ignore[arg-type]
    return loaded


def pending_runs(ids: list[int]) -> list[Pending]:
    """These runs as Pending, in id order: plain rows, their few orchestrations and versions
    read once (as load_runs)."""
    rows = list(
        Run.objects.filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", "orchestration_id", "version_id", "shadow_version_id", "fields")
    )
    if not rows:
        return []
    orchestrations = Orchestration.objects.select_related("process__schema").in_bulk(
        {row[1] for row in rows}
    )
    versions = OrchestrationVersion.objects.select_related("model_version").in_bulk(
        {row[2] for row in rows} | {row[3] for row in rows if row[3] is not None}
    )
    return [
        Pending(pk, orchestrations[o], versions[v], versions.get(s) if s else None, fields)
        for pk, o, v, s, fields in rows
    ]


# --- dispatch -----------------------------------------------------------------------------------


def dispatch_runs(
    *, run_ids: list[int] | None = None, runs: list[Run] | None = None, wait: bool
) -> list[Run]:
    """Evaluate newly recorded runs (`runs` as just recorded, or their ids): in this process
    when the caller waits and their placement allows it, else on the fabric. Call after the
    runs are committed. Returns the runs finished here."""
    if runs is None:
        runs = load_runs(run_ids or [], unfinished=True)
    if not runs:
        return []
    here: list[Run] = []
    away: list[int] = []
    allowed: dict[str, bool] = {}
    for run in runs:
        requirements = requirements_of(run)
        key = repr(sorted(requirements.items()))
        if key not in allowed:
            allowed[key] = wait and may_run_in_request(requirements)
        (here.append(run) if allowed[key] else away.append(run))
    finished: list[Run] = []
    if here:
        from apps.orchestrations.collector import evaluate_together

        # Batched with this process's other sync requests waiting now (collector.py).
        finished = evaluate_together(here)
    if away:
        send_to_fabric(run_ids=[run.pk for run in away], pending=[pending_of(r) for r in away])
    return finished


def _model_versions(runs: list[Pending]) -> dict[str, ModelVersion]:
    out: dict[str, ModelVersion] = {}
    pins = {(run.version.pk, run.shadow.pk if run.shadow else None): run for run in runs}
    for run in pins.values():
        for version in (run.version, run.shadow):
            if version is not None and version.model_version is not None:
                out[version.model_version.artifact_sha256] = version.model_version
    return out


def _payload(runs: list[Pending], cache: dict) -> dict[str, Any]:
    specs: dict[str, dict] = {}
    rows = []
    for run in runs:
        key = str(run.version.pk)
        if key not in specs:
            specs[key] = spec_of(run.version, cache)
        shadow = None
        if run.shadow is not None:
            shadow = str(run.shadow.pk)
            if shadow not in specs:
                specs[shadow] = spec_of(run.shadow, cache)
        rows.append([run.pk, key, shadow, run.fields])
    return {
        "schema": runs[0].orchestration.process.schema.fields,
        "specs": specs,
        "rows": rows,
        "now": timezone.now().isoformat(),
    }


def evaluate_here(runs: list[Run]) -> list[Run]:
    """The in-request path: evaluate the batch in this process and record it."""
    if not runs:
        return []
    models = _model_versions([pending_of(run) for run in runs])
    predict = node_work.predictor(lambda sha256: load_pipeline(models[sha256]))
    by_orchestration: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_orchestration[run.orchestration_id].append(run)
    finished: list[Run] = []
    cache: dict = {}
    for group in by_orchestration.values():
        answer = node_work.evaluate_rows(_payload([pending_of(r) for r in group], cache), predict)
        batch = f"request {uuid.uuid4().hex[:12]}"
        finished += finish_runs(
            results=answer["results"],
            execution={"path": IN_REQUEST, "node": _WEB_NODE, "batch": batch,
                       "batch_size": len(group), "seconds": answer["seconds"]},
            loaded={run.pk: run for run in group},
        )  # fmt: skip
    return finished


def _models_on_fabric(models: dict[str, ModelVersion]) -> tuple[str, ...]:
    """The models' artefacts, stored for the fabric when they are not yet (one query)."""
    from apps.classifiers.fabric import model_artifact_on_fabric

    stored = set(
        FabricArtifact.objects.filter(sha256__in=list(models)).values_list("sha256", flat=True)
    )
    for sha256, version in models.items():
        if sha256 not in stored:
            model_artifact_on_fabric(version)
    return tuple(sorted(models))


_LOCK_UNFINISHED = """
SELECT id FROM {runs} WHERE id = ANY(%s::bigint[]) AND state <> %s ORDER BY id
FOR UPDATE SKIP LOCKED
"""
_MARK_SENT = """
UPDATE {runs} AS r SET state = %s, fabric_task_id = v.task, dispatched_at = %s,
       dispatch_attempts = r.dispatch_attempts + 1
FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, task) WHERE r.id = v.id
"""


def _pins_of(run: Pending) -> tuple[int, int, int | None]:
    return (run.orchestration.pk, run.version.pk, run.shadow.pk if run.shadow else None)


def send_to_fabric(
    *, run_ids: list[int], now: datetime | None = None, pending: list[Pending] | None = None
) -> list[FabricTask]:
    """Send these unfinished runs to the fabric as `evaluate_runs` tasks of up to BATCH_MAX runs
    (one per orchestration and requirements). Runs another transaction holds are skipped (it is
    sending or finishing them). `pending`: the runs as the caller holds them (just recorded),
    saving a read. Returns the tasks."""
    now = now or timezone.now()
    table = Run._meta.db_table
    with transaction.atomic():
        # Locked in id order (and skipped when taken): two senders never send a run twice. The
        # ids travel as one array (Django's pk__in binds and quotes each of up to 500 in Python).
        with dispatch.bound_cursor() as cursor:
            cursor.execute(_LOCK_UNFINISHED.format(runs=table), [run_ids, RunState.FINISHED])
            locked = [row[0] for row in cursor.fetchall()]
        held = {run.pk: run for run in pending or ()}
        if all(pk in held for pk in locked):
            runs = [held[pk] for pk in locked]
        else:
            runs = pending_runs(locked)
        if not runs:
            return []
        groups: dict[tuple, list[Pending]] = defaultdict(list)
        requirements_by_key: dict[tuple, dict[str, Any]] = {}
        for run in runs:
            pins = _pins_of(run)
            if pins not in requirements_by_key:
                requirements_by_key[pins] = pins_requirements(
                    run.orchestration, run.version, run.shadow
                )
            requirements = requirements_by_key[pins]
            groups[(run.orchestration.pk, repr(sorted(requirements.items())))].append(run)
        cache: dict = {}
        specs: list[dispatch.TaskSpec] = []
        chunks: list[list[Pending]] = []
        for group in groups.values():
            requirements = requirements_by_key[_pins_of(group[0])]
            for start in range(0, len(group), BATCH_MAX):
                chunk = group[start : start + BATCH_MAX]
                artifacts = _models_on_fabric(_model_versions(chunk))
                specs.append(
                    dispatch.TaskSpec(
                        kind="call",
                        payload={"function": "evaluate_runs", "args": _payload(chunk, cache)},
                        requirements=requirements,
                        artifacts=artifacts,
                        on_done=EVALUATE,
                    )
                )
                chunks.append(chunk)
        tasks = dispatch.submit_tasks(specs=specs)
        sent = [
            (run.pk, task.pk) for task, chunk in zip(tasks, chunks, strict=True) for run in chunk
        ]
        with dispatch.bound_cursor() as cursor:
            cursor.execute(
                _MARK_SENT.format(runs=table),
                [RunState.RUNNING, now, [pk for pk, _ in sent], [task for _, task in sent]],
            )
    return tasks


@completion_handler(EVALUATE)
def record_evaluation(task: FabricTask) -> None:
    """A finished `evaluate_runs` task: its runs' results recorded, or (failed) the runs left
    for the sweeper to send again."""
    if task.state != FabricTaskState.DONE:
        Run.objects.filter(fabric_task=task).exclude(state=RunState.FINISHED).update(
            fabric_task=None, error=f"evaluation failed on the fabric: {task.error}"[:300]
        )
        return
    node = ComputeNode.objects.filter(pk=task.node_id).values_list("name", flat=True).first()
    results = (task.result or {}).get("results") or []
    finish_runs(
        results=results,
        execution={"path": FABRIC, "node": node or "", "batch": f"task {task.pk}",
                   "task": task.pk, "attempt": task.attempts, "batch_size": len(results),
                   "seconds": (task.result or {}).get("seconds")},
    )  # fmt: skip


# --- recording outcomes -------------------------------------------------------------------------

_RUN_FIELDS = ["state", "outcome", "label", "reason_code", "decided_by", "confidence",
               "routed_to", "due_by", "finished_at", "error"]  # fmt: skip


def finish_runs(
    *,
    results: list[dict[str, Any]],
    execution: dict[str, Any],
    loaded: dict[int, Run] | None = None,
) -> list[Run]:
    """Record evaluated runs: outcome, trace steps, the case of a routed item. `results` are
    evaluate_rows' items ({"run", "result", "shadow"}); `execution` says where and in which
    batch they ran (the trace's `executed` step). Runs already finished are skipped, so a
    second evaluation of the same run (a redelivered task, a sweep racing a slow request)
    records nothing. `loaded`: the runs as the caller holds them (just recorded), saving a
    read. Returns the runs finished now (the place where a run reaches its outcome)."""
    from apps.orchestrations.challenger import record_challenger
    from apps.orchestrations.events import draw_audit, outcomes_recorded
    from apps.orchestrations.inbound import open_cases

    by_run = {item["run"]: item for item in results}
    now = timezone.now()
    with transaction.atomic():
        # Locked in id order: two finishers of overlapping batches can't deadlock.
        locked = list(
            Run.objects.filter(pk__in=sorted(by_run))
            .exclude(state=RunState.FINISHED)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if loaded is not None and all(pk in loaded for pk in locked):
            runs = [loaded[pk] for pk in locked]
        else:
            runs = load_runs(locked)
        steps: list[tuple[int, int, str, dict]] = []
        routed: dict[int, list[Run]] = defaultdict(list)
        audited: list[Run] = []
        for run in runs:
            item = by_run[run.pk]
            result = Result.from_json(item["result"])
            run.state, run.outcome, run.finished_at, run.error = (
                RunState.FINISHED, result.outcome, now, "")  # fmt: skip
            run.label, run.reason_code, run.decided_by = (
                result.label, result.reason_code, result.decided_by)  # fmt: skip
            run.confidence, run.routed_to, run.due_by = (
                result.confidence, result.routed_to, result.due_by)  # fmt: skip
            # A model decision's audit draw, written into its autonomy step (events.py).
            if draw_audit(run=run, steps=result.steps):
                audited.append(run)
            trace = [(StepKind.EXECUTED, execution), *result.steps]
            if item.get("shadow") is not None and run.shadow_version is not None:
                ghost = item["shadow"]
                trace.append(
                    (StepKind.SHADOW, {"version": run.shadow_version.number,
                                       "outcome": ghost["outcome"], "label": ghost["label"],
                                       "decided_by": ghost["decided_by"],
                                       "confidence": ghost["confidence"]})
                )  # fmt: skip
            # Step 1 is `received`, written with the run.
            steps += [(run.pk, n, kind, data) for n, (kind, data) in enumerate(trace, start=2)]
            if result.outcome == Outcome.ROUTED:
                routed[run.orchestration_id].append(run)
        if not runs:
            return []
        save_runs(runs, _RUN_FIELDS)
        insert_steps(steps, at=now)
        for group in routed.values():
            open_cases(group[0].orchestration, group)
        # The challenger model's answer on the runs that reached the live model (acts on
        # nothing; apps/orchestrations/challenger.py).
        record_challenger(runs=runs)
        # The audit cases and the outcome events, in this transaction (events.py).
        outcomes_recorded(runs=runs, audited=audited)
    return runs


def insert_steps(steps: list[tuple[int, int, str, dict]], *, at: datetime | None = None) -> None:
    """Trace steps (run id, number, kind, data) in one INSERT whose rows travel as one JSON
    document that PostgreSQL takes apart (RunStep.objects.bulk_create prepares and escapes every
    value of every step in Python: most of the time a 500-run batch took to record)."""
    if not steps:
        return
    with dispatch.bound_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {RunStep._meta.db_table} (run_id, number, kind, data, at) "  # noqa: S608 (our table)
            "SELECT (e->>0)::bigint, (e->>1)::smallint, e->>2, e->3, %s "
            "FROM jsonb_array_elements(%s::jsonb) AS e",
            [at or timezone.now(), json.dumps(steps, separators=(",", ":"))],
        )


def save_runs(runs: list[Run], fields: list[str]) -> None:
    """These fields of these runs in one UPDATE whose rows are passed as arrays (Django's
    bulk_update builds a CASE per field and run: 5 s for 500 finished runs, this a few ms)."""
    if not runs:
        return
    meta = Run._meta
    columns, casts, arrays = ["id"], ["%b::bigint[]"], [[run.pk for run in runs]]
    for name in fields:
        field = meta.get_field(name)
        columns.append(connection.ops.quote_name(field.column))
        casts.append(f"%b::{field.db_type(connection)}[]")
        arrays.append([field.get_db_prep_save(getattr(run, field.attname), connection)
                       for run in runs])  # fmt: skip
    assignments = ", ".join(f"{c} = v.{c}" for c in columns[1:])
    with dispatch.bound_cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} AS r SET {assignments} "  # noqa: S608 (our table and columns)
            f"FROM unnest({', '.join(casts)}) AS v({', '.join(columns)}) WHERE r.id = v.id",
            arrays,
        )


# --- the sweeper --------------------------------------------------------------------------------


def sweep_runs(*, now: datetime | None = None) -> int:
    """Send to the fabric the unfinished runs nothing evaluates any more: never dispatched (the
    request that recorded them died, or the broker was down), or whose task failed, once they
    are ORCHCAP_RUN_PICKUP_SECONDS old (up to ORCHCAP_RUN_MAX_DISPATCHES sends). Returns how
    many were sent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ORCHCAP_RUN_PICKUP_SECONDS)
    idle = Q(fabric_task__isnull=True) | Q(
        fabric_task__state__in=FINISHED_TASK_STATES, fabric_task__handled_at__isnull=False
    )
    old = Q(dispatched_at__isnull=True, received_at__lt=cutoff) | Q(dispatched_at__lt=cutoff)
    ids = list(
        Run.objects.exclude(state=RunState.FINISHED)
        .filter(idle & old, dispatch_attempts__lt=settings.ORCHCAP_RUN_MAX_DISPATCHES)
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if not ids:
        return 0
    sent = send_to_fabric(run_ids=ids, now=now)
    count = sum(len(t.payload["args"]["rows"]) for t in sent)
    log.warning("orchestrations: %d unfinished run(s) sent to the fabric again", count)
    return count


def wait_for(*, run_ids: list[int], deadline: float) -> bool:
    """Poll until every run is finished or the monotonic `deadline` passes; whether they are."""
    import time

    pause = 0.002
    while True:
        left = Run.objects.filter(pk__in=run_ids).exclude(state=RunState.FINISHED).exists()
        if not left:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.05)
