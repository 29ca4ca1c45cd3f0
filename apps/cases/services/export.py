"""Export every case of a process with its final decision, as CSV or JSONL, streamed.

Rows come through a server-side cursor (`.iterator(chunk_size=…)`) and leave as text in chunks of
a few hundred rows, so memory stays flat however many cases there are. Field values are read as
text straight from PostgreSQL (`fields ->> 'name'` for CSV, `fields::text` for JSONL) because
decoding every JSON document in Python and encoding it again would halve the throughput.

CSV: one column per schema field (the union over all schema versions, in order of first
appearance); a field whose name is also a case column (`status`, `id`, …) is headed `fields.<name>`.
Booleans are `true`/`false`, empty cells are missing values, `exception_fields` is `;`-separated.
Text that a spreadsheet would run as a formula gets a leading `'` (apps.core.csv).
JSONL: one object per line with the same columns, the field values nested under `fields` with
their JSON types (the intake API takes `external_id`, `fields` and `exception` from such a line).
"""

import io
import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from apps.cases.models import Case, Process, ProcessSchemaVersion
from apps.core import csv

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
LEADING_COLUMNS = ("id", "external_id", "status")
TRAILING_COLUMNS = (
    "exception_reason",
    "exception_fields",
    "final_label",
    "final_reason_code",
    "decided_at",
    "created_at",
    "is_synthetic",
)
DB_CHUNK = 5000
# Rows per yielded piece of text: large enough that the WSGI server isn't called per row.
TEXT_CHUNK = 1000


def export_field_names(*, process: Process) -> list[str]:
    """Field names over every schema version of `process`, in order of first appearance."""
    names: dict[str, None] = {}
    versions = ProcessSchemaVersion.objects.filter(process=process).order_by("version")
    for fields in versions.values_list("fields", flat=True):
        for spec in fields:
            names.setdefault(spec["name"], None)
    return list(names)


def export_columns(*, field_names: list[str]) -> list[str]:
    """The CSV header for these field names."""
    taken = set(LEADING_COLUMNS) | set(TRAILING_COLUMNS)
    fields = [f"fields.{name}" if name in taken else name for name in field_names]
    return [*LEADING_COLUMNS, *fields, *TRAILING_COLUMNS]


def export_filename(*, process: Process, fmt: str) -> str:
    return f"{process.slug}-cases-{timezone.now():%Y%m%d-%H%M}.{fmt}"


def _cases(process: Process) -> QuerySet[Case]:
    # Oldest first with id as tie-break: a stable order, so two exports of the same data match.
    return Case.objects.filter(process=process).order_by("created_at", "id")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _stream_csv(process: Process) -> Iterator[str]:
    field_names = export_field_names(process=process)
    aliases = {
        f"export_field_{i}": KeyTextTransform(n, "fields") for i, n in enumerate(field_names)
    }
    rows = (
        _cases(process)
        .annotate(**aliases)
        .values_list(
            "id",
            "external_id",
            "status",
            *aliases,
            "exception_reason",
            "exception_fields",
            "final_label",
            "final_reason_code",
            "decided_at",
            "created_at",
            "is_synthetic",
        )
        .iterator(chunk_size=DB_CHUNK)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(export_columns(field_names=field_names))
    width = len(field_names)
    batch: list[list[object]] = []
    for row in rows:
        after = row[3 + width :]
        batch.append(
            [
                *row[: 3 + width],
                after[0],
                ";".join(after[1] or ()),
                after[2],
                after[3],
                _iso(after[4]),
                after[5].isoformat(),
                "true" if after[6] else "false",
            ]
        )
        if len(batch) >= TEXT_CHUNK:
            writer.writerows(batch)
            batch.clear()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(batch)
    yield buffer.getvalue()


def _stream_jsonl(process: Process) -> Iterator[str]:
    rows = (
        _cases(process)
        .annotate(fields_text=Cast("fields", TextField()))
        .values_list(
            "id",
            "external_id",
            "status",
            "fields_text",
            "exception_reason",
            "exception_fields",
            "final_label",
            "final_reason_code",
            "decided_at",
            "created_at",
            "is_synthetic",
        )
        .iterator(chunk_size=DB_CHUNK)
    )
    dumps = json.dumps
    lines: list[str] = []
    for (
        pk, external_id, status, fields_text, reason, at_fault,
        final_label, final_reason_code, decided_at, created_at, is_synthetic,
    ) in rows:  # fmt: skip
        # The row's JSON is assembled around the fields text PostgreSQL already produced.
        lines.append(
            f'{{"id": {pk}, "external_id": {dumps(external_id)}, "status": "{status}", '
            f'"fields": {fields_text}, "exception_reason": {dumps(reason)}, '
            f'"exception_fields": {dumps(at_fault)}, "final_label": {dumps(final_label)}, '
            f'"final_reason_code": {dumps(final_reason_code)}, '
            f'"decided_at": {dumps(decided_at.isoformat()) if decided_at else "null"}, '
            f'"created_at": "{created_at.isoformat()}", '
            f'"is_synthetic": {"true" if is_synthetic else "false"}}}\n'
        )
        if len(lines) >= TEXT_CHUNK:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def stream_export(*, process: Process, fmt: str) -> Iterator[str]:
    """Every case of `process` with its final decision, as chunks of CSV or JSONL text.

    `fmt` is "csv" or "jsonl" (ValueError otherwise, raised before any row is read). The CSV starts
    with its header even when there are no cases; JSONL is then empty.
    """
    if fmt == "csv":
        return _stream_csv(process)
    if fmt == "jsonl":
        return _stream_jsonl(process)
    raise ValueError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
