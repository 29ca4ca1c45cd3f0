"""CSV that is safe to open in a spreadsheet: every CSV orchcap writes goes through here.

Excel, LibreOffice Calc and Google Sheets run a cell that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return as a formula (`=cmd|' /C calc'!A0`, `=HYPERLINK(…)`), and cases carry text
that outsiders typed. As OWASP advises, such a text cell gets a leading single quote, which the
spreadsheet reads as "this is text" and doesn't show. A cell that is just a number (`-5`, `+2.5`,
`1e3`) is left alone: the spreadsheet reads it as that number and runs nothing.

Lines end with CRLF, as RFC 4180 says: the csv module quotes a cell only for the characters of
its line terminator, so with a bare "\n" a cell holding a carriage return went out unquoted and
split its row in two.
"""

import csv
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

FORMULA_STARTS = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: object) -> object:
    """`value` as a spreadsheet can open it: text starting like a formula gets a leading `'`;
    numbers, plain numeric text, None and everything else are returned unchanged."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(row: Sequence[object]) -> Sequence[object]:
    """`row` with every cell through safe_cell; the row itself when no text cell starts like a
    formula (one pass over first characters: exports write millions of cells)."""
    if FORMULA_STARTS.isdisjoint([value[:1] for value in row if isinstance(value, str)]):
        return row
    return [safe_cell(value) for value in row]


class SafeWriter:
    """csv.writer (RFC 4180 line ends) with every cell passed through safe_cell."""

    def __init__(self, file: _Writable) -> None:
        self._writer = csv.writer(file, lineterminator="\r\n")

    def writerow(self, row: Sequence[object]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Sequence[object]]) -> None:
        self._writer.writerows(safe_row(row) for row in rows)


def writer(file: _Writable) -> SafeWriter:
    """A CSV writer on `file` whose cells can't run as formulas."""
    return SafeWriter(file)
