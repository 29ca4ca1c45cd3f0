"""Intake of cases and of historical decisions: validate everything first, then write all or nothing."""

import json
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.cases.models import Case, CaseEvent, CaseStatus, Decision, DecisionSource, Process
from apps.cases.schema import priority_of, validate_case_fields
from apps.cases.signals import cases_created
from apps.core.db import lock_in_order, retry_on_conflict
from apps.people.models import Membership

MAX_BATCH = 10_000
User = get_user_model()


class BatchInvalid(ValidationError):
    """A batch with invalid rows; `rows` lists [{"row": index, "errors": {...}}], nothing was written."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        super().__init__(f"{len(rows)} invalid row(s); nothing was written")


@dataclass
class IntakeResult:
    cases: list[Case]
    created: list[bool] = field(default_factory=list)

    @property
    def created_count(self) -> int:
        return sum(self.created)


def validate_case_rows(*, process: Process, rows: list[object]) -> tuple[list[Case], list[dict]]:
    """Unsaved Case objects for valid rows, and row-level errors for the rest."""
    schema = process.schema
    specs = schema.fields
    field_names = {spec["name"] for spec in specs}
    cases: list[Case] = []
    errors: list[dict] = []
    seen_ids: dict[str, int] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append({"row": index, "errors": {"row": "must be an object"}})
            continue
        row_errors: dict[str, str] = {}
        unknown = set(row) - {"external_id", "fields", "exception"}
        if unknown:
            row_errors["row"] = f"unknown key(s): {', '.join(sorted(unknown))}"
        clean, field_errors = validate_case_fields(specs, row.get("fields", {}))
        row_errors.update({f"fields.{name}": message for name, message in field_errors.items()})
        external_id = row.get("external_id")
        if external_id is not None:
            if (
                not isinstance(external_id, str | int)
                or isinstance(external_id, bool)
                or str(external_id) == ""
            ):
                row_errors["external_id"] = "must be a non-empty string"
            else:
                external_id = str(external_id)
                if len(external_id) > 200:
                    row_errors["external_id"] = "at most 200 characters"
                elif external_id in seen_ids:
                    row_errors["external_id"] = f"repeats row {seen_ids[external_id]} of this batch"
                else:
                    seen_ids[external_id] = index
        reason, at_fault = "", []
        exception = row.get("exception")
        if exception is not None:
            if not isinstance(exception, dict):
                row_errors["exception"] = "must be an object {reason, fields}"
            else:
                reason = exception.get("reason") or ""
                at_fault = exception.get("fields") or []
                if not isinstance(reason, str) or len(reason) > 2000:
                    row_errors["exception.reason"] = "must be text (at most 2000 characters)"
                if not isinstance(at_fault, list) or not all(isinstance(n, str) for n in at_fault):
                    row_errors["exception.fields"] = "must be a list of field names"
                elif set(at_fault) - field_names:
                    row_errors["exception.fields"] = (
                        f"unknown field(s): {', '.join(sorted(set(at_fault) - field_names))}"
                    )
        if row_errors:
            errors.append({"row": index, "errors": row_errors})
            continue
        cases.append(
            Case(
                # ids, not objects: related-object descriptors cost more than the row at 10,000 rows
                process_id=process.pk,
                schema_version_id=schema.pk,
                external_id=external_id,
                fields=clean,
                exception_reason=reason,
                exception_fields=at_fault,
                priority=priority_of(
                    specs,
                    clean,
                    field_name=process.priority_field,
                    descending=process.priority_descending,
                ),
                is_synthetic=process.is_synthetic,
            )
        )
    return cases, errors


def create_cases(
    *, process: Process, rows: list[object], embed: bool = True, orchestrated: bool = False
) -> IntakeResult:
    """Create up to MAX_BATCH cases. Any invalid row rejects the whole batch (BatchInvalid).

    A row whose external_id already exists returns the existing case instead of a duplicate.
    `orchestrated`: an orchestration made them after applying its own autonomy policy; the
    `cases_created` signal says so, and the process's own autopilot leaves them to people.
    """
    if not isinstance(rows, list) or not rows:
        raise ValidationError("send one case object or a non-empty list of them")
    if len(rows) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} cases per batch, got {len(rows)}")
    cases, errors = validate_case_rows(process=process, rows=rows)
    if errors:
        raise BatchInvalid(errors)
    return _save_cases(process=process, cases=cases, embed=embed, orchestrated=orchestrated)


@retry_on_conflict()
def _save_cases(
    *, process: Process, cases: list[Case], embed: bool, orchestrated: bool = False
) -> IntakeResult:
    inserted = _insert_cases(cases)
    conflicted = [c.external_id for c in cases if c.pk not in inserted]
    existing = {
        case.external_id: case
        for case in Case.objects.filter(process=process, external_id__in=conflicted)
    }
    result = IntakeResult(cases=[])
    for case in cases:
        created = case.pk in inserted
        result.cases.append(case if created else existing[case.external_id])
        result.created.append(created)
    new_ids = [
        case.pk for case, created in zip(result.cases, result.created, strict=True) if created
    ]
    if embed and new_ids:
        from apps.cases.tasks import enqueue_embedding

        # robust: the cases are saved either way; a broker outage must not turn that into a 500.
        transaction.on_commit(lambda: enqueue_embedding(new_ids), robust=True)
    if new_ids:
        transaction.on_commit(
            lambda: cases_created.send_robust(
                sender=Process, process_id=process.pk, case_ids=new_ids, orchestrated=orchestrated
            )
        )
    return result


_INSERT_CASES = """
    INSERT INTO cases_case (
        id, process_id, schema_version_id, external_id, fields, exception_reason, exception_fields,
        status, priority, label_count, final_label, final_reason_code, is_synthetic, created_at)
    SELECT t.id, %(process)s, %(schema)s, t.external_id, t.fields::jsonb, t.reason, t.at_fault::jsonb,
           'open', t.priority, 0, '', '', %(synthetic)s, %(now)s
    FROM unnest(%(ids)b::bigint[], %(external_ids)b::text[], %(fields)b::text[], %(reasons)b::text[],
                %(at_fault)b::text[], %(priorities)b::float8[])
         AS t(id, external_id, fields, reason, at_fault, priority)
    ORDER BY t.external_id
    ON CONFLICT (process_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
    RETURNING id
"""


def _insert_cases(cases: list[Case]) -> set[int]:
    """Insert `cases` in one statement over arrays and return the ids actually inserted.

    Ids come from the table's sequence first, so every case object knows its row; one statement
    over arrays avoids per-row SQL (bulk_create's parameter lists dominate at 10,000 rows). A row
    whose external_id exists, even one inserted by a concurrent request, is skipped (ON CONFLICT).
    Rows go in by external_id: an insert waits for a concurrent one of the same key, so two
    batches that share keys take them in the same order and don't deadlock.
    """
    now = timezone.now()
    connection.ensure_connection()
    # psycopg's own cursor binds the arrays server-side and in binary (%b); Django's client-side
    # binding would quote every element in Python. Same connection, so the same transaction.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('cases_case', 'id')) FROM generate_series(1, %s)",
            [len(cases)],
        )
        for case, (pk,) in zip(cases, cursor.fetchall(), strict=True):
            case.pk = pk
            case.created_at = now
        first = cases[0]
        cursor.execute(
            _INSERT_CASES,
            {
                "process": first.process_id,
                "schema": first.schema_version_id,
                "synthetic": first.is_synthetic,
                "now": now,
                "ids": [case.pk for case in cases],
                "external_ids": [case.external_id for case in cases],
                "fields": [json.dumps(case.fields) for case in cases],
                "reasons": [case.exception_reason for case in cases],
                "at_fault": [json.dumps(case.exception_fields) for case in cases],
                "priorities": [case.priority for case in cases],
            },
        )
        return {pk for (pk,) in cursor.fetchall()}


def validate_decision_rows(
    *, process: Process, rows: list[object]
) -> tuple[list[dict], list[dict]]:
    """Check historical decisions; returns (clean rows, row errors)."""
    schema = process.schema
    external_ids = {
        str(row.get("external_id"))
        for row in rows
        if isinstance(row, dict) and row.get("external_id")
    }
    cases = {
        c.external_id: c for c in Case.objects.filter(process=process, external_id__in=external_ids)
    }
    usernames = {
        row.get("expert")
        for row in rows
        if isinstance(row, dict) and isinstance(row.get("expert"), str)
    }
    team_members = set(
        Membership.objects.filter(team=process.team, user__username__in=usernames).values_list(
            "user__username", flat=True
        )
    )
    users = {u.username: u for u in User.objects.filter(username__in=team_members)}
    clean_rows: list[dict] = []
    errors: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for index, row in enumerate(rows):
        row_errors: dict[str, str] = {}
        if not isinstance(row, dict):
            errors.append({"row": index, "errors": {"row": "must be an object"}})
            continue
        case = cases.get(str(row.get("external_id")))
        if case is None:
            row_errors["external_id"] = (
                f"no case with external_id {row.get('external_id')!r} in this process"
            )
        label = row.get("label")
        if label not in schema.labels:
            row_errors["label"] = (
                f"unknown label {label!r}; expected one of {', '.join(schema.labels)}"
            )
        reason_code = row.get("reason_code") or ""
        if reason_code and label in schema.labels and reason_code not in schema.reason_codes(label):
            row_errors["reason_code"] = f"unknown reason code {reason_code!r} for {label!r}"
        expert_name = row.get("expert")
        expert = users.get(expert_name) if isinstance(expert_name, str) else None
        if not isinstance(expert_name, str):
            row_errors["expert"] = "must be a username (text)"
        elif expert is None:
            row_errors["expert"] = f"no member of {process.team.name} named {expert_name!r}"
        decided_at = row.get("decided_at")
        try:
            when = datetime.fromisoformat(str(decided_at).replace("Z", "+00:00"))
            if when.tzinfo is None:
                raise ValueError
        except ValueError:
            row_errors["decided_at"] = "must be an ISO 8601 date-time with a time zone"
            when = None
        rationale = row.get("rationale") or ""
        if not isinstance(rationale, str):
            row_errors["rationale"] = "must be text"
        if case is not None and expert is not None:
            key = (case.external_id, expert.username)
            if key in seen:
                row_errors["expert"] = (
                    "this expert already has a decision for this case in the batch"
                )
            seen.add(key)
        if row_errors:
            errors.append({"row": index, "errors": row_errors})
            continue
        clean_rows.append(
            {"case": case, "expert": expert, "label": label, "reason_code": reason_code,
             "rationale": rationale, "decided_at": when}
        )  # fmt: skip
    return clean_rows, errors


def import_decisions(*, process: Process, rows: list[object]) -> int:
    """Import historical decisions all-or-nothing; returns how many were recorded.

    A case whose imported labels agree becomes decided; disagreeing labels send it to adjudication.
    """
    if not isinstance(rows, list) or not rows:
        raise ValidationError("send a non-empty list of decisions")
    if len(rows) > MAX_BATCH:
        raise ValidationError(f"at most {MAX_BATCH} decisions per batch, got {len(rows)}")
    clean_rows, errors = validate_decision_rows(process=process, rows=rows)
    if errors:
        raise BatchInvalid(errors)
    return _save_decisions(clean_rows)


@retry_on_conflict()
def _save_decisions(clean_rows: list[dict]) -> int:
    from apps.cases.services.decisions import settle_cases

    # In id order, like every writer of cases (apps/core/db.py), so this import and the
    # embedding task or another import wait for each other instead of deadlocking.
    case_ids = lock_in_order(Case.objects.filter(pk__in={row["case"].pk for row in clean_rows}))
    locked = Case.objects.select_related("process").in_bulk(case_ids)
    existing = set(
        Decision.objects.filter(case_id__in=case_ids, retracted_at__isnull=True).values_list(
            "case_id", "expert_id"
        )
    )
    conflicts = [
        {"row": i, "errors": {"expert": "already has a decision on this case"}}
        for i, row in enumerate(clean_rows)
        if (row["case"].pk, row["expert"].pk) in existing
    ]
    if conflicts:
        raise BatchInvalid(conflicts)
    decisions = [
        Decision(
            case_id=row["case"].pk, expert=row["expert"], label=row["label"], reason_code=row["reason_code"],
            rationale=row["rationale"], decided_at=row["decided_at"], source=DecisionSource.IMPORT,
        )
        for row in clean_rows
    ]  # fmt: skip
    Decision.objects.bulk_create(decisions, batch_size=2000)
    CaseEvent.objects.bulk_create(
        [
            CaseEvent(case_id=d.case_id, actor=d.expert, kind="decision_imported", at=timezone.now(),
                      data={"label": d.label, "reason_code": d.reason_code, "decided_at": d.decided_at.isoformat()})
            for d in decisions
        ],
        batch_size=2000,
    )  # fmt: skip
    settle_cases(
        cases=[locked[pk] for pk in case_ids if locked[pk].status != CaseStatus.DECIDED],
        history=True,
    )
    return len(decisions)
