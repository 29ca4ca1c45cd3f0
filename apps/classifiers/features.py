"""The feature pipeline of a process, built from its case schema.

Cases go in as `CaseInput` rows (fields, exception reason, fields at fault). `CaseTable` turns them
into one typed column per schema part — numbers and booleans as floats, dates as their parts, category
and text as strings, the fields at fault as 0/1 flags — and `feature_transformer` encodes those
columns: numbers imputed (median, with missing-value indicators) and scaled, categories one-hot over
the schema's choices (unknown or missing: all zeros), text TF-IDF. Nothing here touches the database,
so the same code runs on a compute node that is sent the rows.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils import check_array

# Defined in types.py (no scikit-learn there); importable from here as before.
from apps.classifiers.types import EXCEPTION_REASON, CaseInput

# Above this share of distinct values a text column is an identifier, not text to learn from.
IDENTIFIER_SHARE = 0.9


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "float", "category", "text"
    source: str  # the schema field (or exception_reason) it comes from, for explanations
    choices: tuple[str, ...] = ()


def _number(value: object) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return math.nan


def _date_parts(value: object, with_time: bool) -> list[float]:
    width = 6 if with_time else 5
    if not isinstance(value, str):
        return [math.nan] * width
    try:
        moment = datetime.fromisoformat(value) if with_time else date.fromisoformat(value)
    except ValueError:
        return [math.nan] * width
    day = moment.date() if isinstance(moment, datetime) else moment
    parts = [
        float(day.year),
        float(day.month),
        float(day.weekday()),
        float(day.day),
        float(day.toordinal()),
    ]
    if with_time:
        parts.append(moment.hour + moment.minute / 60)  # type: ignore[union-attr]
    return parts


def _parse_dates(values: list[object], *, with_time: bool) -> list[list[float]]:
    seen: dict[str, list[float]] = {}  # dates repeat across cases: parse each once
    parts = []
    for value in values:
        if not isinstance(value, str):
            parts.append(_date_parts(value, with_time))
        elif value in seen:
            parts.append(seen[value])
        else:
            parts.append(seen.setdefault(value, _date_parts(value, with_time)))
    return parts


def table_columns(specs: list[dict]) -> list[Column]:
    columns: list[Column] = []
    for spec in specs:
        name, kind = spec["name"], spec["type"]
        if kind in ("number", "money", "boolean"):
            columns.append(Column(name, "float", name))
        elif kind in ("date", "datetime"):
            parts = ["year", "month", "weekday", "day", "ordinal"]
            if kind == "datetime":
                parts.append("hour")
            columns += [Column(f"{name}.{part}", "float", name) for part in parts]
        elif kind == "category":
            columns.append(Column(name, "category", name, tuple(spec["choices"])))
        elif kind == "text":
            columns.append(Column(name, "text", name))
    columns.append(Column(EXCEPTION_REASON, "text", EXCEPTION_REASON))
    columns += [Column(f"at_fault.{spec['name']}", "float", spec["name"]) for spec in specs]
    return columns


class CaseTable(BaseEstimator, TransformerMixin):
    """CaseInput rows → an object array with one column per `table_columns(specs)` entry."""

    def __init__(self, specs: list[dict] | None = None) -> None:
        self.specs = specs

    def fit(self, rows: list[CaseInput], y: object = None) -> "CaseTable":
        return self

    def transform(self, rows: list[CaseInput]) -> np.ndarray:
        columns = case_columns(self.specs or [], rows)
        table = np.empty((len(rows), len(columns)), dtype=object)
        for index, column in enumerate(columns):
            table[:, index] = column
        return table


def _numbers(values: list[object]) -> np.ndarray:
    # Plain ints and floats (nearly every value) skip the per-value call; infinities become
    # missing afterwards, as _number makes them.
    plain = (float, int)
    numbers = np.array(
        [value if type(value) in plain else _number(value) for value in values], dtype=float
    )
    numbers[~np.isfinite(numbers)] = math.nan
    return numbers


def case_columns(specs: list[dict], rows: list[CaseInput]) -> list[np.ndarray | list[str]]:
    """The columns of `table_columns(specs)` for `rows`: float arrays, or lists of strings for
    category and text. Column by column, one tight loop per schema part (this runs for every
    prediction)."""
    fields = [row.fields for row in rows]
    columns: list[np.ndarray | list[str]] = []
    for spec in specs:
        name, kind = spec["name"], spec["type"]
        values = [row.get(name) for row in fields]
        if kind in ("number", "money", "boolean"):
            columns.append(_numbers(values))
        elif kind in ("date", "datetime"):
            width = 6 if kind == "datetime" else 5
            parts = _parse_dates(values, with_time=kind == "datetime")
            columns += list(np.array(parts, dtype=float).reshape(len(rows), width).T)
        elif kind in ("category", "text"):
            columns.append([value if isinstance(value, str) else "" for value in values])
    columns.append([row.exception_reason or "" for row in rows])
    position = {spec["name"]: index for index, spec in enumerate(specs)}
    at_fault = np.zeros((len(specs), len(rows)))
    for index, row in enumerate(rows):
        for name in row.exception_fields or ():
            if name in position:
                at_fault[position[name], index] = 1.0
    columns += list(at_fault)
    return columns


def encode_rows(encoder: ColumnTransformer, specs: list[dict], rows: list[CaseInput]) -> object:
    """`encoder.transform(CaseTable(specs).transform(rows))`, the same matrix, without the object
    table in between: each fitted part gets its columns straight from `case_columns` (numbers as
    floats), and the parts are stacked as ColumnTransformer stacks them. `encoder` is a fitted
    `feature_transformer` (plain column indices, no weights: see learning._prediction_parts)."""
    columns = case_columns(specs, rows)
    blocks = []
    for _, transformer, selection in encoder.transformers_:
        if isinstance(transformer, str):  # "drop" (the remainder): feature_transformer has no other
            continue
        if isinstance(selection, int):
            part: object = columns[selection]
        elif all(isinstance(columns[i], np.ndarray) for i in selection):
            part = np.empty((len(rows), len(selection)))
            for j, i in enumerate(selection):
                part[:, j] = columns[i]
        else:
            part = np.empty((len(rows), len(selection)), dtype=object)
            for j, i in enumerate(selection):
                part[:, j] = columns[i]
        blocks.append(transformer.transform(part))
    if encoder.sparse_output_:
        return sparse.hstack(
            [check_array(block, accept_sparse=True, ensure_all_finite=False) for block in blocks]
        ).tocsr()
    return np.hstack([block.toarray() if sparse.issparse(block) else block for block in blocks])


def as_float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float)


class TextColumn(BaseEstimator, TransformerMixin):
    """TF-IDF of one text column.

    A column with no words at all, or one whose values are nearly all distinct (identifiers such as
    invoice numbers: nothing in them generalises), encodes as one zero feature instead. Repeated
    texts (exception reasons, templated notes) are vectorised once per distinct value.
    """

    def __init__(self, max_features: int = 2000) -> None:
        self.max_features = max_features

    def fit(self, texts: np.ndarray, y: object = None) -> "TextColumn":
        values = [str(text) for text in texts]
        self.vectorizer_: TfidfVectorizer | None = None
        if len(values) >= 50 and len(set(values)) > IDENTIFIER_SHARE * len(values):
            return self
        vectorizer = TfidfVectorizer(
            max_features=self.max_features, sublinear_tf=True, dtype=np.float32
        )
        try:
            vectorizer.fit(values)
        except ValueError:  # empty vocabulary
            return self
        self.vectorizer_ = vectorizer
        return self

    def transform(self, texts: np.ndarray) -> object:
        if self.vectorizer_ is None:
            return sparse.csr_matrix((len(texts), 1), dtype=np.float32)
        values = [str(text) for text in texts]
        # Distinct values by a dict, in one pass (np.unique sorts the strings: 3x slower).
        distinct: dict[str, int] = {}
        inverse = [distinct.setdefault(value, len(distinct)) for value in values]
        if len(distinct) * 2 > len(values):
            return self.vectorizer_.transform(values)
        return self.vectorizer_.transform(list(distinct))[np.asarray(inverse)]


def feature_transformer(specs: list[dict], *, dense: bool) -> ColumnTransformer:
    """The encoder of a CaseTable. `dense` (for tree ensembles) keeps text small and dense."""
    columns = table_columns(specs)
    numeric = [i for i, column in enumerate(columns) if column.kind == "float"]
    parts: list[tuple[str, object, object]] = [
        (
            "numbers",
            Pipeline(
                [
                    ("float", FunctionTransformer(as_float)),
                    (
                        "impute",
                        SimpleImputer(
                            strategy="median", add_indicator=True, keep_empty_features=True
                        ),
                    ),
                    ("scale", StandardScaler()),
                ]
            ),
            numeric,
        )
    ]
    for i, column in enumerate(columns):
        if column.kind == "category":
            encoder = OneHotEncoder(
                categories=[list(column.choices)],
                handle_unknown="ignore",
                sparse_output=not dense,
            )
            parts.append((f"category.{column.name}", encoder, [i]))
        elif column.kind == "text":
            parts.append((f"text.{column.name}", TextColumn(30 if dense else 2000), i))
    return ColumnTransformer(parts, sparse_threshold=0 if dense else 1.0)


def rows_from_cases(values: list[tuple[dict, str, list[str]]]) -> list[CaseInput]:
    return [CaseInput(fields, reason or "", list(fault or ())) for fields, reason, fault in values]
