"""Mapping file columns to a process's schema: targets, the proposed and the confirmed mapping,
case rows built from records, their checks, and the preview of the first rows."""

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from apps.cases.models import Case, ImportJob, Process
from apps.cases.schema import validate_case_fields
from apps.cases.services.intake import validate_case_rows
from apps.cases.services.upload.reading import (
    _SPECIAL_ALIASES,
    AT_FAULT,
    CHUNK_ROWS,
    EXTERNAL_ID,
    FIELD_PREFIX,
    IGNORE,
    PREVIEW_ROWS,
    REASON,
    SCAN_ROWS,
    SPECIAL_TARGETS,
    FileProblem,
    Record,
    RecordReader,
    _is_blank,
)

# --- mapping --------------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().lower())


def field_target(name: str) -> str:
    return FIELD_PREFIX + name if name in SPECIAL_TARGETS else name


def _target_key(target: str) -> str:
    """Targets as validate_case_rows names them in errors: fields.<name>, or the special target."""
    if target in SPECIAL_TARGETS or target.startswith(FIELD_PREFIX):
        return target
    return FIELD_PREFIX + target


def mapping_targets(*, process: Process) -> list[tuple[str, object]]:
    """Choices for a column: ignore, each schema field, then the case's identity and exception."""
    fields = [
        (
            field_target(spec["name"]),
            f"{spec['label']} ({spec['type']}{', required' if spec['required'] else ''})",
        )
        for spec in process.schema.fields
    ]
    return [
        (IGNORE, "— ignore this column —"),
        ("Case fields", fields),
        (
            "Identity and exception",
            [
                (EXTERNAL_ID, "External id (a re-upload never duplicates it)"),
                (REASON, "Exception reason"),
                (AT_FAULT, "Fields at fault (names split on ; or |)"),
            ],
        ),
    ]


def propose_mapping(*, process: Process, columns: list[str]) -> dict[str, str]:
    """A default mapping: columns named like a field (its name or label, any case) or like a
    special target; each target is proposed once, to the first column that matches it."""
    by_name = {spec["name"]: field_target(spec["name"]) for spec in process.schema.fields}
    by_label = {
        _normalise(spec["label"]): field_target(spec["name"]) for spec in process.schema.fields
    }
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        key = _normalise(column)
        target = by_name.get(key) or by_label.get(key)
        if target is None:
            target = next((t for t, names in _SPECIAL_ALIASES.items() if key in names), IGNORE)
        if target and target in used:
            target = IGNORE
        used.add(target)
        mapping[column] = target
    return mapping


def clean_mapping(
    *, process: Process, columns: list[str], mapping: dict[str, str]
) -> dict[str, str]:
    """Check a {column: target} mapping for `columns`; raises ValidationError saying what is wrong."""
    fields = {spec["name"]: spec for spec in process.schema.fields}
    allowed = {IGNORE, *SPECIAL_TARGETS, *(field_target(name) for name in fields)}
    allowed |= {FIELD_PREFIX + name for name in fields}
    clean: dict[str, str] = {}
    problems: list[str] = []
    sources: dict[str, list[str]] = {}
    for column in columns:
        target = mapping.get(column, IGNORE) or IGNORE
        if target not in allowed:
            problems.append(
                f"Column {column!r} maps to {target!r}, which is not a field of this process."
            )
            continue
        clean[column] = target
        if target:
            sources.setdefault(_target_key(target), []).append(column)
    for key, cols in sources.items():
        if len(cols) > 1:
            problems.append(
                f"{_target_label(key, fields)} is mapped from {len(cols)} columns "
                f"({', '.join(cols)}); choose one."
            )
    if not sources:
        problems.append("Map at least one column to a field.")
    else:
        missing = [
            spec["label"]
            for name, spec in fields.items()
            if spec["required"] and FIELD_PREFIX + name not in sources
        ]
        if missing:
            problems.append(f"Required field(s) not mapped: {', '.join(missing)}.")
    if problems:
        raise ValidationError(problems)
    return clean


def _target_label(key: str, fields: dict[str, dict]) -> str:
    if key == EXTERNAL_ID:
        return "External id"
    if key == REASON:
        return "Exception reason"
    if key == AT_FAULT:
        return "Fields at fault"
    name = key.removeprefix(FIELD_PREFIX)
    return fields[name]["label"] if name in fields else name


def _names(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[;|]", value) if part.strip()]
    return [] if value is None else value


def build_row(values: dict[str, object], mapping: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """One record as an API-shaped case row, and problems with columns the mapping doesn't know."""
    row: dict[str, object] = {"fields": {}}
    problems: dict[str, str] = {}
    reason: object = None
    at_fault: object = None
    for column, value in values.items():
        target = mapping.get(column)
        if target is None:
            if not _is_blank(value):
                problems[f"column:{column}"] = (
                    "this column was not in the file's first rows, so it has no mapping; "
                    "put it in the first rows or remove it"
                )
            continue
        if target == IGNORE:
            continue
        if target == EXTERNAL_ID:
            if not _is_blank(value):
                row["external_id"] = value.strip() if isinstance(value, str) else value
        elif target == REASON:
            reason = value.strip() if isinstance(value, str) else value
        elif target == AT_FAULT:
            at_fault = _names(value)
        else:
            row["fields"][target.removeprefix(FIELD_PREFIX)] = value  # type: ignore[index]
    if not _is_blank(reason) or at_fault:
        row["exception"] = {"reason": reason or "", "fields": at_fault or []}
    return row, problems


# --- validation -------------------------------------------------------------------------------------


class _SeenIds:
    """External ids met so far in the file, to report a repeat with the line it repeats."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}

    def repeat_of(self, external_id: object, line: int) -> int | None:
        if isinstance(external_id, bool) or not isinstance(external_id, str | int):
            return None
        key = str(external_id)
        if not key:
            return None
        first = self.first.setdefault(key, line)
        return first if first != line else None


def _check_rows(
    *,
    process: Process,
    lines: list[int],
    rows: list[dict],
    problems: list[dict[str, str]],
    seen: _SeenIds,
) -> list[tuple[Case | None, dict[str, str]]]:
    """Each row's unsaved Case (None when invalid) and its errors, keyed like the API's."""
    cases, errors = validate_case_rows(process=process, rows=rows)
    invalid = {error["row"]: dict(error["errors"]) for error in errors}
    pending = iter(cases)
    checked: list[tuple[Case | None, dict[str, str]]] = []
    for index, (line, row) in enumerate(zip(lines, rows, strict=True)):
        case = None if index in invalid else next(pending)
        row_errors = invalid.get(index, {})
        # Repeats are checked over the whole file, not one chunk; the line says more than an index.
        first = seen.repeat_of(row.get("external_id"), line)
        if first is not None:
            row_errors["external_id"] = f"repeats line {first} of this file"
        row_errors.update(problems[index])
        checked.append((None, row_errors) if row_errors else (case, {}))
    return checked


def _flat_errors(line: int, row_errors: dict[str, str], mapping: dict[str, str]) -> list[dict]:
    """{"line", "column", "field", "message"} entries, naming the file column behind each field."""
    columns = {_target_key(target): column for column, target in mapping.items() if target}
    entries = []
    for key, message in row_errors.items():
        if key.startswith("column:"):
            entries.append(
                {
                    "line": line,
                    "column": key.removeprefix("column:"),
                    "field": "",
                    "message": message,
                }
            )
            continue
        column = columns.get(key) or (columns.get(REASON, "") if key == "exception" else "")
        name = key.removeprefix(FIELD_PREFIX) if key.startswith(FIELD_PREFIX) else key
        entries.append(
            {
                "line": line,
                "column": column,
                "field": "" if key == "row" else name,
                "message": message,
            }
        )
    return entries


def _chunks(
    records: Iterable[Record], mapping: dict[str, str]
) -> Iterator[list[tuple[int, dict, dict]]]:
    chunk: list[tuple[int, dict, dict]] = []
    for record in records:
        row, problems = build_row(record.values, mapping)
        chunk.append((record.line, row, problems))
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class PreviewCell:
    """A cell as it will be stored; a cell that can't be stored keeps the value from the file and
    says why (`error`)."""

    value: object
    error: str = ""

    @property
    def shown(self) -> str:
        """The value as text, as stored in JSON (true/false, 1200.5), "" when there is none."""
        if self.value is None:
            return ""
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(self.value)


@dataclass
class PreviewRow:
    line: int
    cells: list[PreviewCell]
    problems: list[str] = field(default_factory=list)

    @property
    def invalid_cells(self) -> int:
        return sum(bool(cell.error) for cell in self.cells)

    @property
    def valid(self) -> bool:
        return not self.problems and not self.invalid_cells


def preview_headers(*, process: Process) -> list[str]:
    return [
        "External id",
        *(spec["label"] for spec in process.schema.fields),
        "Exception",
        "Fields at fault",
    ]


def _listed(value: object) -> object:
    return ", ".join(map(str, value)) if isinstance(value, list) else value


def preview_rows(
    *, process: Process, records: list[Record], mapping: dict[str, str]
) -> list[PreviewRow]:
    """The first rows as they would be stored, valid or not: every cell that can be stored shows
    its stored value (coerced to the schema's type), a cell that can't shows the file's value
    with its error. Cells follow preview_headers."""
    built = [build_row(record.values, mapping) for record in records[:PREVIEW_ROWS]]
    checked = _check_rows(
        process=process,
        lines=[record.line for record in records[:PREVIEW_ROWS]],
        rows=[row for row, _ in built],
        problems=[problems for _, problems in built],
        seen=_SeenIds(),
    )
    specs = process.schema.fields
    names = [spec["name"] for spec in specs]
    keys = [EXTERNAL_ID, *(FIELD_PREFIX + n for n in names), REASON, AT_FAULT]
    preview = []
    for record, (row, _), (_, errors) in zip(records, built, checked, strict=False):
        errors = dict(errors)
        # Per cell, so the valid cells of an invalid row show what they would become too.
        stored, _ = validate_case_fields(specs, row["fields"])
        exception = row.get("exception") or {}
        values = [
            row.get("external_id"),
            *(stored.get(n, row["fields"].get(n)) for n in names),
            exception.get("reason") or None,
            _listed(exception.get("fields")) or None,
        ]
        cells = [
            PreviewCell(value, errors.pop(key, "")) for key, value in zip(keys, values, strict=True)
        ]
        if "exception" in errors:
            cells[-2].error = errors.pop("exception")
        problems = [
            f"{key.removeprefix('column:')}: {message}" if key != "row" else message
            for key, message in errors.items()
        ]
        preview.append(PreviewRow(record.line, cells, problems))
    return preview


SHOWN_ROW_ERRORS = 100
# Rows checked on the mapping page, at every change of the mapping: enough for most files, and
# quick; the import checks a longer file whole before it writes anything.
CHECKED_ROWS = SCAN_ROWS


@dataclass
class RowCheck:
    """How many rows must be fixed before an import can run (it is all or nothing)."""

    checked_rows: int
    invalid_rows: int
    whole_file: bool
    errors: list[dict] = field(default_factory=list)
    more_errors: int = 0


def check_rows(*, job: ImportJob, mapping: dict[str, str]) -> RowCheck:
    """The first CHECKED_ROWS rows of an upload checked with `mapping` (the whole file when it is
    no longer): how many are invalid, and their errors by line (the first SHOWN_ROW_ERRORS)."""
    check = RowCheck(0, 0, whole_file=False)
    seen = _SeenIds()
    with job.file.storage.open(job.file.name, "rb") as handle:
        records = iter(RecordReader(handle, file_format=job.file_format))
        try:
            for chunk in _chunks(itertools.islice(records, CHECKED_ROWS), mapping):
                checked = _check_rows(
                    process=job.process,
                    lines=[line for line, _, _ in chunk],
                    rows=[row for _, row, _ in chunk],
                    problems=[problems for _, _, problems in chunk],
                    seen=seen,
                )
                check.checked_rows += len(chunk)
                for (line, _, _), (_, row_errors) in zip(chunk, checked, strict=True):
                    if not row_errors:
                        continue
                    check.invalid_rows += 1
                    entries = _flat_errors(line, row_errors, mapping)
                    room = max(SHOWN_ROW_ERRORS - len(check.errors), 0)
                    check.errors.extend(entries[:room])
                    check.more_errors += max(len(entries) - room, 0)
            check.whole_file = next(records, None) is None
        except FileProblem as problem:
            # The file read well at upload; it changed on disk since. The import says so too.
            check.invalid_rows += 1
            check.errors.append(problem.as_error())
    return check
