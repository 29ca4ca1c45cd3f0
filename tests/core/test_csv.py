"""The one CSV helper every download goes through: text that a spreadsheet would run as a formula
is neutralised (OWASP), numbers stay numbers."""

import csv
import io

import pytest
from django.utils.safestring import mark_safe

from apps.core.csv import safe_cell, writer


@pytest.mark.parametrize(
    "text",
    ["=cmd|' /C calc'!A0", "+SUM(1;2)", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", "-", "+1 555 0100"],
)
def test_text_starting_like_a_formula_gets_a_leading_quote(text):
    assert safe_cell(text) == "'" + text


def test_text_of_a_str_subclass_is_neutralised_too():
    assert safe_cell(mark_safe("=1+1")) == "'=1+1"


@pytest.mark.parametrize("value", [-5, -5.5, 3, 0, "-5", "+2.5", "-1e3", "-.5", "12", ""])
def test_numbers_and_numeric_text_stay_as_they_are(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", [None, True, "vendor = Acme", "a-b", "'quoted"])
def test_other_cells_are_unchanged(value):
    assert safe_cell(value) == value


def test_the_writer_neutralises_every_cell_and_quotes_as_csv_does():
    buffer = io.StringIO()
    out = writer(buffer)
    out.writerow(["=1+1", -5, "a,b"])
    out.writerows([["@x", None, "-5"], ["a\rb", "c\nd", "e"]])
    assert list(csv.reader(io.StringIO(buffer.getvalue(), newline=""))) == [
        ["'=1+1", "-5", "a,b"],
        ["'@x", "", "-5"],
        ["a\rb", "c\nd", "e"],  # line breaks inside a cell are quoted, never a new row
    ]
