"""What flows back out of a run: the connector events of its outcome, and the audit of a model
decision.

- `item.decided` (by a rule, the model or an expert), `item.routed` (to whom, due by) and
  `audit.overturned` (an audit's expert label differs from the model's) go to the version's
  connectors and the item's own `callback` connector, each only for the event types it is
  subscribed to. They are enqueued in the transaction that records the outcome (the connectors'
  outbox): an outcome that rolls back sends nothing, one that commits is sent at least once.
- A shadow version's result is a trace step only: it has no run and sends nothing.
- At level 3 a model decision is drawn for audit with the version's `audit_rate`: a stable draw
  from the orchestration and the external_id (the same item always draws the same), recorded in
  the autonomy step. A drawn item keeps its decision (sent at once) and also becomes a case of
  the process with an AuditSample, like process-level autonomy's audits: an expert labels it from
  the queue like any other case, and that label judges the model (apps/orchestrations/people.py).
"""

import hashlib
from collections.abc import Iterable
from typing import Any

from django.db.models import Max

from apps.autonomy.services.audits import AuditRequest, open_audits
from apps.cases.services.intake import create_cases
from apps.connectors.models import Connector, EventType
from apps.connectors.services.deliveries import Event, enqueue_events
from apps.orchestrations.models import (
    Orchestration,
    Outcome,
    Run,
    RunStep,
    StepKind,
)


def iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# --- who decided --------------------------------------------------------------------------------


def decider(decided_by: str) -> dict:
    """`decided_by` ("rule:<id>@<version>", "model@<version>", "expert:<username>") as an object
    a receiver can read without parsing."""
    kind, _, rest = decided_by.partition(":")
    if kind == "rule":
        rule, _, version = rest.partition("@")
        return {"kind": "rule", "rule": _int(rule), "rule_version": _int(version)}
    if kind == "expert":
        return {"kind": "expert", "username": rest}
    if decided_by.startswith("model@"):
        return {"kind": "model", "model_version": _int(decided_by.removeprefix("model@"))}
    return {"kind": kind or "", "name": rest}


def _int(text: str) -> int | str:
    return int(text) if text.isdigit() else text


# --- payloads -----------------------------------------------------------------------------------


def _item(run: Run) -> dict:
    return {
        "run_id": run.pk,
        "orchestration": run.orchestration.slug,
        "version": run.version.number,
        "external_id": run.external_id,
    }


def decided_payload(run: Run, *, corrects: dict | None = None, at: Any = None) -> dict:
    """`item.decided`: label, reason code, who decided (rule and version, model version, or
    expert), confidence (the model's, for a model decision). `corrects`: the earlier answer this
    one replaces (an expert's label undone and decided again, or changed by adjudication)."""
    payload = {
        **_item(run),
        "outcome": Outcome.DECIDED,
        "label": run.label,
        "reason_code": run.reason_code,
        "decided_by": run.decided_by,
        "by": decider(run.decided_by),
        "confidence": run.confidence,
        "decided_at": iso(at or run.finished_at),
    }
    if run.routed_to:
        payload["routed_to"] = run.routed_to
    if corrects is not None:
        payload["corrects"] = corrects
    return payload


def routed_payload(run: Run) -> dict:
    """`item.routed`: to whom (`team:<slug>`, `expert:<username>`, or "" for the process's
    review queue), due by, and the model's suggestion when there is one."""
    return {
        **_item(run),
        "outcome": Outcome.ROUTED,
        "routed_to": run.routed_to,
        "routed_by": run.decided_by,
        "due_by": iso(run.due_by),
        "suggested_label": run.label or None,
        "confidence": run.confidence,
    }


def overturned_payload(
    run: Run, *, old_label: str, old_reason_code: str, model_version: Any, by: str, at: Any
) -> dict:
    """`audit.overturned`: an expert's audit label replaced the model's decision."""
    return {
        **_item(run),
        "old_label": old_label,
        "old_reason_code": old_reason_code,
        "new_label": run.label,
        "new_reason_code": run.reason_code,
        "model_version": model_version,
        "confidence": run.confidence,
        "overturned_by": by,
        "overturned_at": iso(at),
    }


# --- sending ------------------------------------------------------------------------------------


def targets(run: Run) -> set[int]:
    """The connectors a run's events go to: its version's and its own callback."""
    ids = set(run.version.connector_ids or [])
    if run.callback_id:
        ids.add(run.callback_id)
    return ids


def send(*, orchestration: Orchestration, events: list[tuple[Run, str, dict]]) -> int:
    """Enqueue (run, event type, payload) events in the caller's transaction. Returns how many
    deliveries were recorded."""
    batch = [
        Event(event_type, payload, connector_ids=targets(run), run_id=run.pk)
        for run, event_type, payload in events
        if targets(run)
    ]
    return len(enqueue_events(team=orchestration.team, events=batch)) if batch else 0


def announce_outcomes(*, orchestration: Orchestration, runs: Iterable[Run]) -> int:
    """The events of new runs' outcomes: `item.decided` (rule or model) or `item.routed`;
    standard items send nothing (they continue in the source system). Call it where the runs
    are recorded, in that transaction."""
    events: list[tuple[Run, str, dict]] = []
    for run in runs:
        if run.outcome == Outcome.DECIDED:
            events.append((run, EventType.ITEM_DECIDED, decided_payload(run)))
        elif run.outcome == Outcome.ROUTED:
            events.append((run, EventType.ITEM_ROUTED, routed_payload(run)))
    return send(orchestration=orchestration, events=events)


# --- audits -------------------------------------------------------------------------------------


def audit_draw(orchestration: Orchestration, external_id: str) -> float:
    """A stable number in [0, 1) for the item, independent of the canary bucket: below the
    version's audit rate, the model's decision is audited."""
    digest = hashlib.sha256(f"audit:{orchestration.pk}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def draw_audit(*, run: Run, steps: list) -> bool:
    """The audit draw of a model decision, written into its autonomy step (rate, draw,
    audited) before the steps are saved. Returns whether the run is audited. Other outcomes
    (rule decisions, routes, standard) are never audited."""
    if run.outcome != Outcome.DECIDED or not run.decided_by.startswith("model@"):
        return False
    draw = audit_draw(run.orchestration, run.external_id)
    audited = draw < run.version.audit_rate
    for kind, data in steps:
        if kind == StepKind.AUTONOMY:
            data.update(
                audit_rate=run.version.audit_rate, audit_draw=round(draw, 4), audited=audited
            )
    return audited


def outcomes_recorded(*, runs: list[Run], audited: list[Run]) -> None:
    """Call where runs reach their outcome, in that transaction, after their steps and the cases
    of routed items are written: the cases of the runs drawn for audit (`draw_audit`), then the
    outcome events."""
    by_orchestration: dict[int, list[Run]] = {}
    for run in runs:
        by_orchestration.setdefault(run.orchestration_id, []).append(run)
    drawn = {run.pk for run in audited}
    for group in by_orchestration.values():
        orchestration = group[0].orchestration
        open_audit_cases(
            orchestration=orchestration, runs=[run for run in group if run.pk in drawn]
        )
        announce_outcomes(orchestration=orchestration, runs=group)


def open_audit_cases(*, orchestration: Orchestration, runs: list[Run]) -> None:
    """Audited runs' items become cases of the process (`<slug>/<external_id>`, like routed
    items) with an AuditSample each, in the caller's transaction; the runs link to their case."""
    if not runs:
        return
    rows = [
        {"external_id": f"{orchestration.slug}/{run.external_id}", "fields": run.fields}
        for run in runs
    ]
    result = create_cases(process=orchestration.process, rows=rows, orchestrated=True)
    from apps.orchestrations.execution import save_runs

    requests = []
    for run, case in zip(runs, result.cases, strict=True):
        run.case = case
        requests.append(
            AuditRequest(
                case=case, model_version=run.version.model_version, label=run.label,
                confidence=run.confidence or 0.0, draw=audit_draw(orchestration, run.external_id),
            )
        )  # fmt: skip
    save_runs(runs, ["case"])  # one UPDATE for the batch
    open_audits(audits=requests)
    numbers = next_step_numbers([run.pk for run in runs])
    RunStep.objects.bulk_create(
        RunStep(
            run=run,
            number=numbers[run.pk],
            kind=StepKind.AUDIT,
            data={
                "opened": True,
                "case": run.case_id,
                "model_label": run.label,
                "model_version": run.version.model_version.version,
                "audit_rate": run.version.audit_rate,
            },
        )
        for run in runs
    )


def next_step_numbers(run_ids: list[int]) -> dict[int, int]:
    """The number the next step of each run takes."""
    last = dict(
        RunStep.objects.filter(run_id__in=run_ids)
        .values("run_id")
        .annotate(last=Max("number"))
        .values_list("run_id", "last")
    )
    return {pk: last.get(pk, 0) + 1 for pk in run_ids}


# --- callbacks ----------------------------------------------------------------------------------


def callback_errors(*, orchestration: Orchestration, items: list) -> dict[int, str]:
    """Row index → why its `callback` is refused: it must be the id of a connector of the
    orchestration's team (another team's connector reads the same as a missing one)."""
    wanted: dict[int, int] = {}
    errors: dict[int, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("callback") is None:
            continue
        value = item["callback"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**62:
            errors[index] = "must be a connector id (a positive integer)"
        else:
            wanted[index] = value
    if wanted:
        known = set(
            Connector.objects.filter(
                team_id=orchestration.team_id, pk__in=set(wanted.values())
            ).values_list("pk", flat=True)
        )
        for index, value in wanted.items():
            if value not in known:
                errors[index] = (
                    f"no connector {value} in team {orchestration.team.name!r}: an item's "
                    "callback must be one of the orchestration team's connectors"
                )
    return errors
