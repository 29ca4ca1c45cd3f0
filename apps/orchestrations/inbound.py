"""Inbound items: each one becomes a Run pinned at receipt to the version that takes it,
recorded (state `received`) in one transaction, then evaluated in micro-batches in the request
or on the compute fabric (execution.py: exception filter, pinned rules, pinned model, autonomy
policy) with one RunStep per stage naming the component versions it used, so the trace explains
the outcome after the rules and the model change.

Idempotency (IETF draft "The Idempotency-Key HTTP Header Field"): the key is claimed in its own
committed row before the work, so a re-send while the first is in flight is told so (409); the
answer is stored on that row and a later re-send with the same body gets it back unchanged.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from apps.cases.models import Case, CaseStatus
from apps.cases.schema import validate_case_fields
from apps.cases.services.intake import BatchInvalid, create_cases
from apps.classifiers.services import predict_cases
from apps.classifiers.types import CaseInput
from apps.fabric.services.dispatch import bound_cursor
from apps.orchestrations import sla
from apps.orchestrations.events import callback_errors
from apps.orchestrations.execution import (
    Pending,
    dispatch_runs,
    save_runs,
    send_to_fabric,
    spec_of,
    wait_for,
)
from apps.orchestrations.models import (
    InboundRequest,
    Orchestration,
    OrchestrationVersion,
    Run,
    RunState,
    RunStep,
    Stage,
    StepKind,
)
from apps.orchestrations.pipeline import evaluate_batch
from apps.orchestrations.selectors import viewable_teams
from apps.people.selectors import AnyUser

log = logging.getLogger(__name__)
MAX_ITEMS = 500
CODE_WAIT_MS = 5000  # callers in code (the demo, tests) wait for the outcome by default
MAX_EXTERNAL_ID = 150  # the case made for a routed item is "<slug>/<external_id>" (≤ 200)
MAX_KEY = 200


class KeyInFlight(Exception):
    """The same Idempotency-Key is still being answered (409)."""


class KeyReused(ValidationError):
    """The same Idempotency-Key with another body (422)."""


@dataclass
class Received:
    runs: list[Run]
    created: list[bool] = field(default_factory=list)
    # The new runs as sending them to the fabric reads them (execution.Pending).
    pending: list[Pending] = field(default_factory=list)


def body_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def canary_bucket(orchestration: Orchestration, external_id: str) -> float:
    """A stable number in [0, 1) for the item: below the canary share, the canary takes it."""
    digest = hashlib.sha256(f"{orchestration.pk}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def receiving_orchestration(*, user: AnyUser, slug: str) -> Orchestration:
    """Orchestration `slug` to send items to: Http404 unless `user` reads its team's (as
    selectors.orchestration_for), in one query with what receiving reads (team, process and
    schema) and none of the list's figures (a sync answer's budget is a few milliseconds)."""
    orchestration = (
        Orchestration.objects.filter(team__in=viewable_teams(user=user), slug=slug)
        .select_related("team", "process__schema")
        .first()
    )
    if orchestration is None:
        raise Http404("No such orchestration")
    return orchestration


# --- validation ---------------------------------------------------------------------------------


def validate_items(*, orchestration: Orchestration, items: object) -> list[dict]:
    """[{"external_id", "fields", "callback"}] cleaned against the process's schema (a callback:
    a connector of the orchestration's team, or None); BatchInvalid listing
    every bad row (nothing is recorded then)."""
    if not isinstance(items, list) or not items:
        raise ValidationError("send one item object or a non-empty list of them")
    if len(items) > MAX_ITEMS:
        raise ValidationError(f"at most {MAX_ITEMS} items per request, got {len(items)}")
    specs = orchestration.process.schema.fields
    clean: list[dict] = []
    errors: list[dict] = []
    seen: dict[str, int] = {}
    bad_callbacks = callback_errors(orchestration=orchestration, items=items)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"row": index, "errors": {"row": "must be an object"}})
            continue
        row_errors: dict[str, str] = {}
        unknown = set(item) - {"external_id", "fields", "callback"}
        if unknown:
            row_errors["row"] = f"unknown key(s): {', '.join(sorted(map(str, unknown)))}"
        fields, field_errors = validate_case_fields(specs, item.get("fields", {}))
        row_errors.update({f"fields.{name}": message for name, message in field_errors.items()})
        external_id = item.get("external_id")
        if not isinstance(external_id, str | int) or isinstance(external_id, bool):
            row_errors["external_id"] = "required: a non-empty string"
        else:
            external_id = str(external_id).strip()
            if not external_id or len(external_id) > MAX_EXTERNAL_ID or "\x00" in external_id:
                row_errors["external_id"] = f"must be 1 to {MAX_EXTERNAL_ID} characters"
            elif external_id in seen:
                row_errors["external_id"] = f"repeats row {seen[external_id]} of this request"
            else:
                seen[external_id] = index
        if index in bad_callbacks:
            row_errors["callback"] = bad_callbacks[index]
        if row_errors:
            errors.append({"row": index, "errors": row_errors})
        else:
            clean.append(
                {"external_id": external_id, "fields": fields, "callback": item.get("callback")}
            )
    if errors:
        raise BatchInvalid(errors)
    return clean


# --- evaluation ---------------------------------------------------------------------------------


@dataclass
class Evaluation:
    outcome: str
    steps: list[tuple[str, dict]]
    label: str = ""
    reason_code: str = ""
    decided_by: str = ""
    confidence: float | None = None
    routed_to: str = ""
    due_by: Any = None


def evaluate(
    *, version: OrchestrationVersion, fields: dict, specs: list[dict], cache: dict | None = None
) -> Evaluation:
    """The outcome `version` gives an item with these fields, and the steps that led to it,
    evaluated here (pure apart from reading the version's rules and model; records nothing).
    Runs of inbound items are evaluated in batches by execution.py with the same pipeline."""
    spec = spec_of(version, cache)
    model = version.model_version

    def predict(_: dict, rows: list[dict]) -> list[tuple[str, float]]:
        predictions = predict_cases(version=model, cases=[CaseInput(r, "", []) for r in rows])
        return [(p.label, p.confidence) for p in predictions]

    [result] = evaluate_batch(
        schema=specs, specs={"v": spec}, items=[("v", fields)], predict=predict,
        now=timezone.now(),
    )  # fmt: skip
    return Evaluation(
        result.outcome, result.steps, label=result.label, reason_code=result.reason_code,
        decided_by=result.decided_by, confidence=result.confidence, routed_to=result.routed_to,
        due_by=result.due_by,
    )  # fmt: skip


# --- receiving ----------------------------------------------------------------------------------


def _traffic(orchestration: Orchestration) -> dict[str, OrchestrationVersion]:
    versions = OrchestrationVersion.objects.filter(
        orchestration=orchestration, stage__in=[Stage.LIVE, Stage.CANARY, Stage.SHADOW]
    ).select_related("model_version")
    by_stage: dict[str, OrchestrationVersion] = {}
    for version in versions.order_by("number"):
        by_stage[version.stage] = version  # the newest shadow, if several
    return by_stage


def pick_version(
    orchestration: Orchestration, external_id: str, traffic: dict[str, OrchestrationVersion]
) -> tuple[OrchestrationVersion, float]:
    bucket = canary_bucket(orchestration, external_id)
    canary = traffic.get(Stage.CANARY)
    if canary is not None and bucket < (canary.canary_share or 0):
        return canary, bucket
    return traffic[Stage.LIVE], bucket


def _received_step(
    version: OrchestrationVersion, shadow: OrchestrationVersion | None, bucket: float
) -> dict:
    received = {"version": version.number, "stage": version.stage, "bucket": round(bucket, 4)}
    if shadow is not None:
        received["shadow_version"] = shadow.number
    return received


# One statement records the new runs and their `received` steps: the rows travel as one JSON
# document (no per-value preparation in Python), a known external_id is skipped by the unique
# constraint (it waits for a concurrent inserter of the same id to commit, then skips), and the
# ids of the runs made come back.
_INSERT_RUNS = """
WITH item AS (
    SELECT e, n FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS t(e, n)
), made AS (
    INSERT INTO {runs} (
        orchestration_id, version_id, shadow_version_id, external_id, fields, state, outcome,
        label, reason_code, decided_by, routed_to, callback_id, idempotency_key, request_hash,
        received_at, dispatch_attempts, error)
    SELECT %(orchestration)s, (e->>'v')::bigint, (e->>'s')::bigint, e->>'x', e->'f', %(state)s,
           '', '', '', '', '', (e->>'c')::bigint, %(key)s, %(hash)s, %(now)s, 0, ''
    FROM item ORDER BY n
    ON CONFLICT ON CONSTRAINT run_external_id_unique DO NOTHING
    RETURNING id, external_id
), steps AS (
    INSERT INTO {steps} (run_id, number, kind, data, at)
    SELECT made.id, 1, %(kind)s, item.e->'r', %(now)s
    FROM made JOIN item ON item.e->>'x' = made.external_id
)
SELECT id, external_id FROM made
"""


# A bare run's fields, in the model's order (Model.from_db takes the values in this order).
_BARE_FIELDS = [
    "id", "orchestration_id", "version_id", "external_id", "fields", "state", "callback_id",
    "received_at", "shadow_version_id",
]  # fmt: skip


def _record(
    orchestration: Orchestration,
    items: list[dict],
    key: str,
    digest: str,
    *,
    ids_only: bool = False,
) -> Received:
    """Record one run per new item (state `received`, pinned to its version, the `received`
    step written) in one statement; a known external_id gives its existing run. Evaluation
    comes after (execution.py). `ids_only`: the new runs are bare Run instances (pk, pins'
    ids, fields, state) with their pins in `pending` (a 202 answer needs their ids only)."""
    traffic = _traffic(orchestration)
    if Stage.LIVE not in traffic:
        raise ValidationError(f"{orchestration.slug!r} has no live version to receive items")
    now = timezone.now()
    shadow = traffic.get(Stage.SHADOW)
    shadow_pk = shadow.pk if shadow is not None else None
    # Plain rows, no model instance per item: this is most of a batch's CPU in the request.
    pins: list[OrchestrationVersion] = []
    rows: list[dict] = []
    for item in items:
        version, bucket = pick_version(orchestration, item["external_id"], traffic)
        pins.append(version)
        rows.append(
            {"x": item["external_id"], "v": version.pk, "s": shadow_pk, "f": item["fields"],
             "c": item.get("callback"), "r": _received_step(version, shadow, bucket)}
        )  # fmt: skip
    with bound_cursor() as cursor:
        cursor.execute(
            _INSERT_RUNS.format(runs=Run._meta.db_table, steps=RunStep._meta.db_table),
            {"rows": json.dumps(rows, separators=(",", ":")), "orchestration": orchestration.pk,
             "state": RunState.RECEIVED, "key": key, "hash": digest, "now": now,
             "kind": StepKind.RECEIVED},
        )  # fmt: skip
        made = {external_id: pk for pk, external_id in cursor.fetchall()}
    new: dict[str, Run] = {}
    pending: list[Pending] = []
    for item, version in zip(items, pins, strict=True):
        pk = made.get(item["external_id"])
        if pk is None:
            continue
        if ids_only:
            # from_db's positional construction: a tenth of Run(**kwargs)'s cost.
            run = Run.from_db(
                "default", _BARE_FIELDS,
                [pk, orchestration.pk, version.pk, item["external_id"], item["fields"],
                 RunState.RECEIVED, item.get("callback"), now, shadow_pk],
            )  # fmt: skip
        else:
            run = Run(
                orchestration=orchestration, version=version, shadow_version=shadow,
                external_id=item["external_id"], fields=item["fields"], state=RunState.RECEIVED,
                idempotency_key=key, request_hash=digest, callback_id=item.get("callback"),
            )  # fmt: skip
            run.pk, run.received_at = pk, now
            run._state.adding, run._state.db = False, "default"
        new[item["external_id"]] = run
        pending.append(Pending(pk, orchestration, version, shadow, item["fields"]))
    known = [item["external_id"] for item in items if item["external_id"] not in new]
    existing = (
        {
            run.external_id: run
            for run in Run.objects.filter(
                orchestration=orchestration, external_id__in=known
            ).select_related("version")
        }
        if known
        else {}
    )
    received = Received(runs=[], pending=pending)
    for item in items:
        created = item["external_id"] in new
        received.runs.append(new[item["external_id"]] if created else existing[item["external_id"]])
        received.created.append(created)
    return received


def open_cases(orchestration: Orchestration, runs: list[Run]) -> None:
    """Routed runs become cases of the process, so experts see them in the review queue."""
    rows = [
        {"external_id": f"{orchestration.slug}/{run.external_id}", "fields": run.fields}
        for run in runs
    ]
    result = create_cases(process=orchestration.process, rows=rows, orchestrated=True)
    for run, case in zip(runs, result.cases, strict=True):
        run.case = case
    save_runs(runs, ["case"])
    # An expert route puts the case first in that expert's queue (as autonomy level 1 does).
    experts: dict[str, list[int]] = {}
    for run in runs:
        kind, _, username = run.routed_to.partition(":")
        if kind == "expert":
            experts.setdefault(username, []).append(run.case_id)
    users = dict(
        get_user_model().objects.filter(username__in=experts).values_list("username", "pk")
    )
    for username, case_ids in experts.items():
        if username in users:
            Case.objects.filter(pk__in=case_ids, status=CaseStatus.OPEN).update(
                routed_to_id=users[username]
            )
    # Due times on the cases, and the people they are routed to told (apps/orchestrations/sla.py).
    sla.on_routed(orchestration=orchestration, runs=runs)


def receive_items(
    *,
    orchestration: Orchestration,
    items: object,
    idempotency_key: str = "",
    body_hash: str = "",
    wait_ms: int | None = CODE_WAIT_MS,
) -> tuple[Received | None, dict | None]:
    """Record one run per new item (known external_ids give their existing run), then have them
    evaluated (execution.dispatch_runs): with `wait_ms` (> 0) in this process when their
    placement allows it, else on the fabric; and wait up to `wait_ms` for their outcomes (the
    runs returned are as they are then: finished or not). Returns (received, None), or
    (None, stored answer) for a re-send of an answered key. BatchInvalid/ValidationError for
    bad items (nothing recorded), KeyReused, KeyInFlight."""
    if idempotency_key:
        if len(idempotency_key) > MAX_KEY:
            raise ValidationError(f"Idempotency-Key: at most {MAX_KEY} characters")
        try:
            with transaction.atomic():
                InboundRequest.objects.create(
                    orchestration=orchestration, key=idempotency_key, request_hash=body_hash
                )
        except IntegrityError:
            first = InboundRequest.objects.get(orchestration=orchestration, key=idempotency_key)
            if first.request_hash != body_hash:
                raise KeyReused(
                    "Idempotency-Key: this key was used with another body; use a new key"
                ) from None
            if first.status is None:
                raise KeyInFlight(
                    "a request with this Idempotency-Key is still in flight"
                ) from None
            return None, {"status": first.status, "body": first.response}
    started = time.monotonic()
    try:
        clean = validate_items(orchestration=orchestration, items=items)
        received = _record(
            orchestration, clean, idempotency_key, body_hash, ids_only=wait_ms is None
        )
    except BaseException:
        if idempotency_key:
            # Nothing was recorded: the key is free again for a corrected request.
            InboundRequest.objects.filter(
                orchestration=orchestration, key=idempotency_key, status__isnull=True
            ).delete()
        raise
    wait = wait_ms is not None and wait_ms > 0
    new = [run for run, made in zip(received.runs, received.created, strict=True) if made]
    done: dict[int, Run] = {}
    try:
        if wait:
            done = {run.pk: run for run in dispatch_runs(runs=new, wait=True)}
        elif new:
            send_to_fabric(run_ids=[run.pk for run in new], pending=received.pending)
    except Exception:
        # The runs are recorded: the sweeper sends them to the fabric (execution.sweep_runs).
        log.exception("orchestration %s: %d run(s) not dispatched", orchestration.slug, len(new))
    if wait:
        if all(run.pk in done or run.state == RunState.FINISHED for run in received.runs):
            # Finished here (or before): the answer is in hand.
            received.runs = [done.get(run.pk, run) for run in received.runs]
            return received, None
        ids = [run.pk for run in received.runs]
        wait_for(run_ids=ids, deadline=started + wait_ms / 1000)
        fresh = Run.objects.select_related("version").in_bulk(ids)
        received.runs = [fresh[pk] for pk in ids]
    return received, None


def store_answer(*, orchestration: Orchestration, key: str, status: int, body: dict) -> None:
    InboundRequest.objects.filter(orchestration=orchestration, key=key).update(
        status=status, response=body
    )
