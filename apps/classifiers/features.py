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
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

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
        # Column by column: one tight loop per schema part (this runs for every prediction).
        specs = self.specs or []
        columns: list[list[object]] = []
        for spec in specs:
            name, kind = spec["name"], spec["type"]
            values = [row.fields.get(name) for row in rows]
            if kind in ("number", "money", "boolean"):
                columns.append([_number(value) for value in values])
            elif kind in ("date", "datetime"):
                parts = _parse_dates(values, with_time=kind == "datetime")
                columns += [list(part) for part in zip(*parts, strict=True)] if parts else []
            elif kind in ("category", "text"):
                columns.append([value if isinstance(value, str) else "" for value in values])
        columns.append([row.exception_reason or "" for row in rows])
        at_fault = [set(row.exception_fields or ()) for row in rows]
        columns += [[1.0 if spec["name"] in fault else 0.0 for fault in at_fault] for spec in specs]
        table = np.empty((len(rows), len(table_columns(specs))), dtype=object)
        for index, column in enumerate(columns):
            table[:, index] = column
        return table


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
            from scipy.sparse import csr_matrix

            return csr_matrix((len(texts), 1), dtype=np.float32)
        values = np.asarray([str(text) for text in texts], dtype=object)
        distinct, inverse = np.unique(values, return_inverse=True)
        if len(distinct) * 2 > len(values):
            return self.vectorizer_.transform(values)
        return self.vectorizer_.transform(distinct)[inverse]


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
