"""Items from a file: a CSV or JSONL file read with the cases upload's reader and its column
matching (a column named like a field, or its label, feeds that field; `external_id` or `id` the
external id), or a JSON file holding what the items API takes (one item or a list). Every row is
checked by the items API's own validation, so a file gets the same row-level errors, by line, and
is sent whole or not at all (nothing is recorded while any row is bad)."""

import json
from dataclasses import dataclass, field
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from apps.cases.services.intake import BatchInvalid
from apps.cases.services.upload.importing import file_size
from apps.cases.services.upload.mapping import build_row, propose_mapping
from apps.cases.services.upload.reading import (
    EXTENSIONS,
    EXTERNAL_ID,
    IGNORE,
    RecordReader,
)
from apps.orchestrations import inbound
from apps.orchestrations.models import Orchestration

FORMATS = ("auto", "csv", "jsonl", "json")
PREVIEW_ROWS = 20


@dataclass
class ItemFile:
    """A file read and checked: its items (API-shaped, cleaned when `valid`), the line each
    starts on (None in a JSON file: `row` is its index there), the row-level errors and the
    columns no field takes."""

    items: list[dict]
    lines: list[int | None]
    errors: list[dict] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    file_format: str = ""

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def invalid_rows(self) -> int:
        return len({(e["line"], e["row"]) for e in self.errors})


def _format(name: str, file_format: str) -> str:
    if file_format not in FORMATS:
        raise ValidationError(f"format: one of {', '.join(FORMATS)}")
    if file_format != "auto":
        return file_format
    suffix = PurePath(name or "").suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise ValidationError(
        f"Can't tell the format from the name {name!r}: choose CSV, JSONL or JSON "
        "(or name the file .csv, .jsonl or .json)."
    )


def _from_table(orchestration: Orchestration, upload: UploadedFile, file_format: str) -> ItemFile:
    reader = RecordReader(upload, file_format=file_format)
    records = list(reader)
    if len(records) > inbound.MAX_ITEMS:
        raise ValidationError(_too_many(len(records)))
    if not records:
        raise ValidationError("The file has no rows.")
    mapping = propose_mapping(process=orchestration.process, columns=reader.columns)
    fields = {spec["name"] for spec in orchestration.process.schema.fields}
    # Only fields and the external id make an item; the cases upload's exception columns don't.
    mapping = {
        column: target if target == EXTERNAL_ID or target.removeprefix("fields.") in fields
        else IGNORE
        for column, target in mapping.items()
    }  # fmt: skip
    items = []
    for record in records:
        row, _ = build_row(record.values, mapping)
        row.pop("exception", None)
        items.append(row)
    ignored = [column for column, target in mapping.items() if target == IGNORE]
    return ItemFile(items, [r.line for r in records], ignored_columns=ignored)


def _from_json(upload: UploadedFile) -> ItemFile:
    try:
        body = json.loads(upload.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The file is not valid JSON ({exc}).") from None
    items = body if isinstance(body, list) else [body]
    if len(items) > inbound.MAX_ITEMS:
        raise ValidationError(_too_many(len(items)))
    return ItemFile(items, [None] * len(items))


def _too_many(count: int) -> str:
    return (
        f"The file has {count} rows; a file sends at most {inbound.MAX_ITEMS} items "
        "(send more through the API, in batches)."
    )


def read_items(*, orchestration: Orchestration, upload: UploadedFile, file_format: str) -> ItemFile:
    """Read and check a file of items for `orchestration`. Raises ValidationError when the file
    itself can't be read (too big, not UTF-8, a ragged CSV row, bad JSON: FileProblem names the
    line); row-level problems are returned in `errors`, each {"line", "row", "field",
    "message"}."""
    limit = settings.ORCHCAP_UPLOAD_INLINE_BYTES
    if upload.size > limit:
        raise ValidationError(
            f"The file is {file_size(upload.size)}; files of items are read in the request, up "
            f"to {file_size(limit)}."
        )
    if not upload.size:
        raise ValidationError("The file is empty.")
    resolved = _format(upload.name or "", file_format)
    upload.seek(0)
    found = (
        _from_json(upload) if resolved == "json" else _from_table(orchestration, upload, resolved)
    )
    found.file_format = resolved
    try:
        found.items = inbound.validate_items(orchestration=orchestration, items=found.items)
    except BatchInvalid as exc:
        found.errors = [
            {
                "line": found.lines[error["row"]],
                "row": error["row"] + 1,
                "field": key.removeprefix("fields.") if key != "row" else "",
                "message": message,
            }
            for error in exc.rows
            for key, message in error["errors"].items()
        ]
    return found
