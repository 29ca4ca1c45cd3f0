"""Conditions compiled to a Python predicate and to a SQL expression with the same semantics."""

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

from django.core.exceptions import ValidationError

from apps.rules.language.tree import (
    _DATE_SHAPE,
    _DATETIME_SHAPE,
    _READERS,
    EXCEPTION_REASON,
    NUMERIC_TYPES,
    STRING_TYPES,
    _Comparison,
    _Group,
    _Node,
    _Not,
    _parse,
    _string,
)

_FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_ALIAS_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

Predicate = Callable[[Mapping, str, Sequence[str]], bool]


# --- Python predicate ------------------------------------------------------------------------

_Reader = Callable[[Mapping, str, Sequence[str]], object]


def _reader(node: _Comparison) -> _Reader:
    if node.subject == EXCEPTION_REASON:
        return lambda fields, reason, fault: _string(reason)
    read = _READERS[node.kind]
    name = node.subject
    return lambda fields, reason, fault: read(fields.get(name))


def _test(node: _Comparison) -> Callable[[object], bool]:
    op, value = node.op, node.value
    if op == "eq":
        return lambda v: v == value
    if op == "ne":
        return lambda v: v != value
    if op == "lt":
        return lambda v: v < value  # type: ignore[operator]
    if op == "le":
        return lambda v: v <= value  # type: ignore[operator]
    if op == "gt":
        return lambda v: v > value  # type: ignore[operator]
    if op == "ge":
        return lambda v: v >= value  # type: ignore[operator]
    if op in ("in", "not_in"):
        members = frozenset(value)  # type: ignore[arg-type]
        if op == "in":
            return lambda v: v in members
        return lambda v: v not in members
    if op == "between":
        low, high = value  # type: ignore[misc]
        return lambda v: low <= v <= high
    if op == "contains":
        return lambda v: value in v  # type: ignore[operator]
    if op == "startswith":
        return lambda v: v.startswith(value)  # type: ignore[attr-defined]
    search = value.python.search  # type: ignore[attr-defined]
    return lambda v: search(v) is not None


def _predicate(node: _Node) -> Predicate:
    if isinstance(node, _Group):
        children = tuple(_predicate(child) for child in node.children)
        if node.op == "all":
            return lambda f, r, x: all(child(f, r, x) for child in children)
        return lambda f, r, x: any(child(f, r, x) for child in children)
    if isinstance(node, _Not):
        inner = _predicate(node.child)
        return lambda f, r, x: not inner(f, r, x)
    if node.kind == "fault_fields":
        name = node.value
        if node.op == "is_null":
            return lambda f, r, x: not (isinstance(x, list | tuple) and len(x) > 0)
        return lambda f, r, x: isinstance(x, list | tuple) and name in x
    read = _reader(node)
    if node.op == "is_null":
        return lambda f, r, x: read(f, r, x) is None
    test = _test(node)

    def compare(f: Mapping, r: str, x: Sequence[str]) -> bool:
        current = read(f, r, x)
        return current is not None and test(current)

    return compare


def compile_predicate(condition: object, *, fields: list[dict]) -> Predicate:
    """Validate the condition and return `predicate(case_fields, exception_reason,
    exception_fields) -> bool` with the semantics of the package docstring."""
    return _predicate(_parse(condition, fields))


# --- SQL ------------------------------------------------------------------------------------------

_SQL_TYPES = {
    "number": "numeric",
    "money": "numeric",
    "date": "date",
    "datetime": "timestamptz",
    "boolean": "boolean",
    "category": "text",
    "text": "text",
}
_SQL_OPS = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _sql_value(node_kind: str, value: object) -> object:
    if node_kind in NUMERIC_TYPES:
        return str(value)  # the exact decimal, cast with ::numeric
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _sql_reader(node: _Comparison, alias: str) -> str:
    if node.subject == EXCEPTION_REASON:
        return f"NULLIF({alias}.exception_reason, '')"
    if not _FIELD_NAME_RE.fullmatch(
        node.subject
    ):  # validated by the schema; never interpolate else
        raise ValidationError(f"field name {node.subject!r} cannot be used in SQL")
    json = f"{alias}.fields->'{node.subject}'"
    text = f"({alias}.fields->>'{node.subject}')"
    kind = node.kind
    if kind in NUMERIC_TYPES:
        return f"(CASE WHEN jsonb_typeof({json}) = 'number' THEN {text}::numeric END)"
    if kind == "boolean":
        return f"(CASE WHEN jsonb_typeof({json}) = 'boolean' THEN {text}::boolean END)"
    if kind in STRING_TYPES:
        return f"(CASE WHEN jsonb_typeof({json}) = 'string' THEN NULLIF({text}, '') END)"
    shape, cast = (_DATE_SHAPE, "date") if kind == "date" else (_DATETIME_SHAPE, "timestamptz")
    return (
        f"(CASE WHEN jsonb_typeof({json}) = 'string' AND {text} ~ '^{shape}$' "
        f"AND pg_input_is_valid({text}, '{cast}') THEN {text}::{cast} END)"
    )


def _sql(node: _Node, alias: str, params: list) -> str:
    if isinstance(node, _Group):
        joiner = " AND " if node.op == "all" else " OR "
        return "(" + joiner.join(_sql(child, alias, params) for child in node.children) + ")"
    if isinstance(node, _Not):
        return f"(NOT {_sql(node.child, alias, params)})"
    if node.kind == "fault_fields":
        column = f"{alias}.exception_fields"
        if node.op == "is_null":
            return (
                f"(CASE WHEN jsonb_typeof({column}) = 'array' "
                f"THEN jsonb_array_length({column}) = 0 ELSE true END)"
            )
        params.append(node.value)
        return (
            f"COALESCE(jsonb_typeof({column}) = 'array' "
            f"AND {column} @> jsonb_build_array(%s::text), false)"
        )
    current = _sql_reader(node, alias)
    if node.op == "is_null":
        return f"({current} IS NULL)"
    cast = _SQL_TYPES[node.kind]
    op, value = node.op, node.value
    if op in _SQL_OPS:
        params.append(_sql_value(node.kind, value))
        expression = f"{current} {_SQL_OPS[op]} %s::{cast}"
    elif op in ("in", "not_in"):
        params.append([_sql_value(node.kind, item) for item in value])  # type: ignore[attr-defined]
        quantified = "= ANY" if op == "in" else "<> ALL"
        expression = f"{current} {quantified}(%s::{cast}[])"
    elif op == "between":
        params.extend(_sql_value(node.kind, item) for item in value)  # type: ignore[attr-defined]
        expression = f"{current} BETWEEN %s::{cast} AND %s::{cast}"
    elif op == "contains":
        params.append(value)
        expression = f"strpos({current}, %s::text) > 0"
    elif op == "startswith":
        params.append(value)
        expression = f"starts_with({current}, %s::text)"
    else:
        params.append(value.postgres)  # type: ignore[attr-defined]
        expression = f"{current} ~ %s::text"
    return f"COALESCE({expression}, false)"


def compile_sql(condition: object, *, fields: list[dict], alias: str = "c") -> tuple[str, list]:
    """Validate the condition and return (boolean SQL expression, params) over the columns
    `{alias}.fields` (jsonb), `{alias}.exception_reason` (text) and `{alias}.exception_fields`
    (jsonb array). Values travel as %s parameters only; the expression is never NULL and agrees
    with compile_predicate on every case."""
    if not _ALIAS_RE.fullmatch(alias):
        raise ValidationError(f"alias {alias!r} must be a lower-case SQL identifier")
    params: list = []
    return _sql(_parse(condition, fields), alias, params), params
