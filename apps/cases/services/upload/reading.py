"""Reading uploaded CSV and JSONL files: records with the file line they start on, and the first
look at a file that the mapping step needs."""

import codecs
import csv
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.cases.models import ImportJob
from apps.cases.services.intake import MAX_BATCH

FORMATS = ("csv", "jsonl")
EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DELIMITERS = ",;\t|"
SNIFF_LINES = 20
READ_CHUNK = 64 * 1024
PREVIEW_ROWS = 20
# Rows read at upload time from a file too big to read whole in the request: enough to find the
# columns of a JSONL file (a key first met later is reported on its line when importing).
SCAN_ROWS = 1000
CHUNK_ROWS = min(2000, MAX_BATCH)
MAX_STORED_ERRORS = 1000
PROGRESS_EVERY_SECONDS = 0.5

IGNORE = ""
EXTERNAL_ID = "external_id"
REASON = "exception.reason"
AT_FAULT = "exception.fields"
SPECIAL_TARGETS = (EXTERNAL_ID, REASON, AT_FAULT)
# A schema field may be called "external_id"; as a target it is then spelled "fields.external_id".
FIELD_PREFIX = "fields."
_SPECIAL_ALIASES = {
    EXTERNAL_ID: {"external_id", "externalid", "id"},
    REASON: {"exception_reason", "exception", "reason"},
    AT_FAULT: {"exception_fields", "fields_at_fault", "at_fault"},
}
_API_KEYS = {"external_id", "fields", "exception"}
_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


class FileProblem(ValidationError):
    """The file itself can't be read at `line` (encoding, cells, JSON); nothing was written."""

    def __init__(self, line: int | None, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"Line {line}: {problem}" if line else problem)

    def as_error(self) -> dict:
        return {"line": self.line, "column": "", "field": "", "message": self.problem}


# --- reading files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One row of a file: the line it starts on and its values by column."""

    line: int
    values: dict[str, object]


def _physical_lines(handle: IO[bytes]) -> Iterator[bytes]:
    # Split on b"\n" only (UTF-8 never has that byte inside a character), so line numbers are what
    # an editor shows; Django's File iteration would also split on a lone "\r".
    pending: list[bytes] = []
    while chunk := handle.read(READ_CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            pending.append(chunk[start : end + 1])
            yield b"".join(pending)
            pending.clear()
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield b"".join(pending)


def _decoded_lines(handle: IO[bytes]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(_physical_lines(handle), start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileProblem(
                number,
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02X} at position {exc.start + 1}); "
                "save the file as UTF-8 (in Excel: “CSV UTF-8”)",
            ) from None


def _sniff_delimiter(sample: str) -> str:
    """csv.Sniffer's pick among DELIMITERS; when it can't tell (a ragged row confuses it), the one
    that splits the header into most columns; comma for a single column."""
    header = sample.splitlines()[0] if sample else ""
    try:
        widths = {d: len(next(csv.reader([header], delimiter=d), [])) for d in DELIMITERS}
    except csv.Error as exc:  # e.g. a header cell over csv.field_size_limit()
        raise FileProblem(1, f"the header row can't be read as CSV ({exc})") from None
    widest = max(DELIMITERS, key=lambda d: widths[d])
    if widths[widest] <= 1:
        return ","
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return widest
    return sniffed if widths.get(sniffed, 0) > 1 else widest


class _CsvReader(Protocol):
    line_num: int

    def __next__(self) -> list[str]: ...


class RecordReader:
    """The records of an uploaded file in order, each with the line it starts on.

    Iterating raises FileProblem (naming the line) on bad UTF-8, a CSV row whose cell count differs
    from the header's, or a JSONL line that is not a JSON object. `columns` holds the CSV header, or
    the JSONL keys met so far. JSONL lines may be API-shaped ({"external_id", "fields",
    "exception"}), read as columns external_id, each field, exception.reason and exception.fields,
    or flat objects whose keys are the columns.
    """

    def __init__(self, handle: IO[bytes], *, file_format: str) -> None:
        if file_format not in FORMATS:
            raise ValueError(f"unknown file format {file_format!r}")
        self.file_format = file_format
        self.columns: list[str] = []
        self.delimiter = ""
        self._lines = _decoded_lines(handle)
        self._records = self._start_csv() if file_format == "csv" else self._jsonl_records()

    def __iter__(self) -> Iterator[Record]:
        return self._records

    def _start_csv(self) -> Iterator[Record]:
        sample = list(itertools.islice(self._lines, SNIFF_LINES))
        self.delimiter = _sniff_delimiter("".join(text for _, text in sample))
        lines = (text for _, text in itertools.chain(sample, self._lines))
        reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
        header, line = self._next_cells(reader)
        if header is None:
            raise FileProblem(None, "The file is empty: a CSV file needs a header row of columns.")
        names = [name.strip() for name in header]
        seen: set[str] = set()
        for index, name in enumerate(names):
            if not name:
                # Spreadsheets often export trailing unnamed columns; name them so they can be mapped.
                names[index] = name = f"(column {index + 1})"
            if name in seen:
                raise FileProblem(line, f"the header names the column {name!r} twice")
            seen.add(name)
        self.columns = names
        return self._csv_records(reader)

    @staticmethod
    def _next_cells(reader: "_CsvReader") -> tuple[list[str] | None, int]:
        """The next non-blank record and the line it starts on; (None, …) at the end."""
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return None, start
            except csv.Error as exc:
                raise FileProblem(start, f"can't be read as CSV ({exc})") from None
            if any(cell.strip() for cell in cells):
                return cells, start

    def _csv_records(self, reader: "_CsvReader") -> Iterator[Record]:
        width = len(self.columns)
        while True:
            cells, line = self._next_cells(reader)
            if cells is None:
                return
            if len(cells) != width:
                raise FileProblem(
                    line,
                    f"has {len(cells)} cell(s) but the header has {width}; "
                    f"check the delimiter ({_delimiter_name(self.delimiter)}) and the quoting",
                )
            yield Record(line, dict(zip(self.columns, cells, strict=True)))

    def _jsonl_records(self) -> Iterator[Record]:
        known: set[str] = set()
        for number, text in self._lines:
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise FileProblem(
                    number, f"is not valid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            if not isinstance(value, dict):
                kind = _JSON_KINDS.get(type(value), type(value).__name__)
                raise FileProblem(number, f"must be a JSON object, got {kind}")
            values = _flatten(value)
            for key in values:
                if key not in known:
                    known.add(key)
                    self.columns.append(key)
            yield Record(number, values)


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, delimiter)


def _flatten(obj: dict) -> dict[str, object]:
    if not (set(obj) <= _API_KEYS and isinstance(obj.get("fields"), dict)):
        return obj
    values: dict[str, object] = {}
    if "external_id" in obj:
        values[EXTERNAL_ID] = obj["external_id"]
    values.update(obj["fields"])
    exception = obj.get("exception")
    if isinstance(exception, dict):
        values[REASON] = exception.get("reason")
        values[AT_FAULT] = exception.get("fields")
        values.update(
            {
                f"exception.{key}": v
                for key, v in exception.items()
                if key not in ("reason", "fields")
            }
        )
    elif exception is not None:
        values["exception"] = exception
    return values


def resolve_format(*, name: str, file_format: str) -> str:
    """`file_format` ("csv", "jsonl"), or the one the file name's extension implies for "auto"."""
    if file_format in FORMATS:
        return file_format
    suffix = PurePath(name or "").suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise ValidationError(
        f"Can't tell the format from the name {name!r}: choose CSV or JSONL "
        "(or name the file .csv or .jsonl)."
    )


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass
class Inspection:
    """What the mapping step needs: the columns, the first rows, and how many rows were read."""

    columns: list[str]
    sample: list[Record]
    rows_read: int
    complete: bool
    delimiter: str

    def column_examples(self, limit: int = 3) -> dict[str, list[str]]:
        examples: dict[str, list[str]] = {column: [] for column in self.columns}
        for record in self.sample:
            for column, value in record.values.items():
                shown = examples.setdefault(column, [])
                text = value if isinstance(value, str) else json.dumps(value)
                if len(shown) < limit and not _is_blank(value) and text not in shown:
                    shown.append(text)
        return examples


def inspect_file(handle: IO[bytes], *, file_format: str, whole: bool) -> Inspection:
    """Read the start of a file (all of it if `whole`); raises FileProblem naming the line."""
    reader = RecordReader(handle, file_format=file_format)
    sample: list[Record] = []
    count = 0
    for record in reader:
        count += 1
        if len(sample) < PREVIEW_ROWS:
            sample.append(record)
        if not whole and count >= SCAN_ROWS:
            return Inspection(list(reader.columns), sample, count, False, reader.delimiter)
    if count == 0:
        raise FileProblem(
            None,
            "The file has a header but no rows."
            if file_format == "csv"
            else "The file has no JSON lines.",
        )
    return Inspection(list(reader.columns), sample, count, True, reader.delimiter)


def _is_inline(job: ImportJob) -> bool:
    return job.file.size <= settings.ORCHCAP_UPLOAD_INLINE_BYTES


def inspect_job(*, job: ImportJob) -> Inspection:
    """Inspect a stored upload again (the mapping step re-reads it rather than keeping it around)."""
    with job.file.storage.open(job.file.name, "rb") as handle:
        return inspect_file(handle, file_format=job.file_format, whole=_is_inline(job))
