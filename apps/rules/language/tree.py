"""Condition trees: the parsed node types, the condition and action validators, value readers."""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError

from apps.rules.language.regex import _parse_regex

EXCEPTION_REASON = "exception.reason"
EXCEPTION_FIELDS = "exception.fields"
MAX_DEPTH = 8
MAX_NODES = 100
MAX_LIST = 200
MAX_TEXT_VALUE = 1000
MAX_FLAG = 200

ORDERED_TYPES = frozenset({"number", "money", "date", "datetime"})
NUMERIC_TYPES = frozenset({"number", "money"})
STRING_TYPES = frozenset({"category", "text"})
OPS = (
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "not_in",
    "between",
    "contains",
    "startswith",
    "is_null",
    "matches",
)
OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "number": ("eq", "ne", "lt", "le", "gt", "ge", "between", "in", "not_in", "is_null"),
    "money": ("eq", "ne", "lt", "le", "gt", "ge", "between", "in", "not_in", "is_null"),
    "date": ("eq", "ne", "lt", "le", "gt", "ge", "between", "is_null"),
    "datetime": ("eq", "ne", "lt", "le", "gt", "ge", "between", "is_null"),
    "category": ("eq", "ne", "in", "not_in", "contains", "startswith", "matches", "is_null"),
    "text": ("eq", "ne", "in", "not_in", "contains", "startswith", "matches", "is_null"),
    "boolean": ("eq", "ne", "is_null"),
    "fault_fields": ("contains", "is_null"),
}

_TEAM_RE = re.compile(r"[-a-zA-Z0-9_]{1,60}")
_USERNAME_RE = re.compile(r"[\w.@+-]{1,150}")
# The shapes both Python and PostgreSQL parse identically (PostgreSQL also takes 24:00, :60 seconds,
# offsets past ±15 and much more; Python takes other shapes): anything else counts as missing.
_DATE_SHAPE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATETIME_SHAPE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])"
)
_DATE_RE = re.compile(_DATE_SHAPE)
_DATETIME_RE = re.compile(_DATETIME_SHAPE)


# --- Parsed form -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Comparison:
    subject: str  # a schema field name, EXCEPTION_REASON or EXCEPTION_FIELDS
    kind: str  # the field type; "text" for the reason, "fault_fields" for the fields at fault
    label: str
    op: str
    # Typed: Decimal, date, datetime, str, bool, a tuple of those (in/not_in/between) or a _Regex.
    value: object
    raw: object  # the JSON value as written, for SQL parameters and sentences


@dataclass(frozen=True)
class _Group:
    op: str  # "all" or "any"
    children: tuple["_Node", ...]


@dataclass(frozen=True)
class _Not:
    child: "_Node"


_Node = _Comparison | _Group | _Not


def _type_name(kind: str) -> str:
    return "exception fields" if kind == "fault_fields" else kind


class _Parser:
    def __init__(self, fields: list[dict]) -> None:
        self.specs = {spec["name"]: spec for spec in fields}
        self.nodes = 0

    def node(self, raw: object, path: str, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise ValidationError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ValidationError(f"{path}: too many conditions (at most {MAX_NODES} nodes)")
        if not isinstance(raw, dict):
            raise ValidationError(
                f'{path}: expected an object like {{"all": […]}}, {{"any": […]}}, '
                f'{{"not": …}} or {{"field": …, "op": …, "value": …}}'
            )
        for group in ("all", "any"):
            if group in raw:
                if len(raw) != 1:
                    raise ValidationError(f'{path}: "{group}" must be the only key of its object')
                children = raw[group]
                if not isinstance(children, list) or not children:
                    raise ValidationError(
                        f"{path}.{group}: expected a non-empty list of conditions"
                    )
                return _Group(
                    group,
                    tuple(
                        self.node(child, f"{path}.{group}[{index}]", depth + 1)
                        for index, child in enumerate(children)
                    ),
                )
        if "not" in raw:
            if len(raw) != 1:
                raise ValidationError(f'{path}: "not" must be the only key of its object')
            return _Not(self.node(raw["not"], f"{path}.not", depth + 1))
        if "field" in raw or "op" in raw:
            return self.comparison(raw, path)
        raise ValidationError(
            f'{path}: expected one of the keys "all", "any", "not" or "field", got '
            f"{', '.join(sorted(map(str, raw))) or 'an empty object'}"
        )

    def comparison(self, raw: dict, path: str) -> _Comparison:
        extra = set(raw) - {"field", "op", "value"}
        if extra:
            raise ValidationError(f"{path}: unexpected key {sorted(map(str, extra))[0]!r}")
        subject = raw.get("field")
        if subject == EXCEPTION_REASON:
            kind, label = "text", "exception reason"
        elif subject == EXCEPTION_FIELDS:
            kind, label = "fault_fields", "fields at fault"
        elif isinstance(subject, str) and subject in self.specs:
            spec = self.specs[subject]
            kind, label = spec["type"], str(spec.get("label") or subject)
        else:
            raise ValidationError(
                f"{path}.field: unknown field {subject!r} (not in the process's schema)"
            )
        op = raw.get("op")
        if op not in OPS:
            raise ValidationError(
                f"{path}.op: unknown operator {op!r}; use one of {', '.join(OPS)}"
            )
        allowed = OPS_BY_TYPE[kind]
        if op not in allowed:
            raise ValidationError(
                f"{path}.op: {op!r} does not apply to {label} ({_type_name(kind)}); "
                f"use one of {', '.join(allowed)}"
            )
        where = f"{path}.value"
        about = f"{label} ({_type_name(kind)})"
        value = raw.get("value")
        if op == "is_null":
            if value is not None:
                raise ValidationError(f"{where}: is_null takes no value")
            return _Comparison(subject, kind, label, op, None, None)
        if "value" not in raw:
            raise ValidationError(f"{where}: a value is required for {op}")
        typed: object
        if kind == "fault_fields":
            if value not in self.specs:
                raise ValidationError(
                    f"{where}: expected the name of a field of the schema, got {value!r}"
                )
            typed = value
        elif op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                raise ValidationError(
                    f"{where}: expected a non-empty list (at most {MAX_LIST} values) for {about}"
                )
            typed = tuple(
                self.scalar(item, kind, f"{where}[{i}]", about, self.specs.get(subject))
                for i, item in enumerate(value)
            )
        elif op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise ValidationError(f"{where}: expected [low, high] for {about}")
            low, high = (
                self.scalar(item, kind, f"{where}[{i}]", about, None)
                for i, item in enumerate(value)
            )
            if low > high:  # type: ignore[operator]
                raise ValidationError(f"{where}: the low bound is above the high bound")
            typed = (low, high)
        elif op == "matches":
            typed = _parse_regex(value, where)
        elif op in ("contains", "startswith"):
            typed = _text(value, where, about)
            if not typed:
                raise ValidationError(f"{where}: expected non-empty text for {about}")
        else:
            typed = self.scalar(value, kind, where, about, self.specs.get(subject))
        return _Comparison(subject, kind, label, op, typed, value)

    @staticmethod
    def scalar(value: object, kind: str, where: str, about: str, spec: dict | None) -> object:
        if kind in NUMERIC_TYPES:
            number = _number(value)
            if number is None:
                raise ValidationError(f"{where}: expected a number for {about}")
            return number
        if kind == "date":
            day = _date(value)
            if day is None:
                raise ValidationError(f"{where}: expected a date as YYYY-MM-DD for {about}")
            return day
        if kind == "datetime":
            moment = _datetime(value)
            if moment is None:
                raise ValidationError(
                    f"{where}: expected a date-time with an offset, like "
                    f"2026-01-31T09:00:00+00:00, for {about}"
                )
            return moment
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ValidationError(f"{where}: expected true or false for {about}")
            return value
        text = _text(value, where, about)
        if spec is not None and kind == "category" and text not in spec["choices"]:
            raise ValidationError(
                f"{where}: expected one of {', '.join(spec['choices'])} for {about}, got {value!r}"
            )
        return text


def _text(value: object, where: str, about: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{where}: expected text for {about}")
    if len(value) > MAX_TEXT_VALUE:
        raise ValidationError(f"{where}: text longer than {MAX_TEXT_VALUE} characters")
    if "\x00" in value:
        raise ValidationError(f"{where}: text must not contain a NUL character")
    return value


# --- Typed readings, shared by validation and the Python predicate ---------------------------


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float) and math.isfinite(value):
        # repr is what json.dumps writes and what jsonb keeps, so both sides compare the same decimal.
        return Decimal(repr(value))
    return None


def _date(value: object) -> date | None:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not _DATETIME_RE.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _boolean(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


_READERS: dict[str, Callable[[object], object]] = {
    "number": _number,
    "money": _number,
    "date": _date,
    "datetime": _datetime,
    "category": _string,
    "text": _string,
    "boolean": _boolean,
}

# --- Public API --------------------------------------------------------------------------------


def _parse(condition: object, fields: list[dict]) -> _Node:
    return _Parser(fields).node(condition, "condition", 1)


def validate_condition(condition: object, *, fields: list[dict]) -> None:
    """Check a condition tree against a schema's field specs.

    Raises ValidationError whose message names the failing part by its path, e.g.
    "condition.all[1].value: expected a number for Amount (money)"."""
    _parse(condition, fields)


def validate_action(
    action: object, *, labels: list[str], reason_codes: dict[str, list[str]]
) -> None:
    """Check an action: {"decide": label, "reason_code": code}, {"route": "team:<slug>" or
    "expert:<username>"} or {"flag": text}. `reason_codes` maps a label to its reason codes.

    Routes are checked for syntax only (the team or expert may be created later). Raises
    ValidationError naming the part ("action.reason_code: …")."""
    if not isinstance(action, dict) or not action:
        raise ValidationError(
            'action: expected {"decide": label}, {"route": "team:…"} or {"flag": text}'
        )
    if "decide" in action:
        extra = set(action) - {"decide", "reason_code"}
        if extra:
            raise ValidationError(f"action: unexpected key {sorted(map(str, extra))[0]!r}")
        label = action["decide"]
        if label not in labels:
            raise ValidationError(
                f"action.decide: unknown decision {label!r}; use one of {', '.join(labels)}"
            )
        code = action.get("reason_code")
        if code in (None, ""):
            return
        codes = reason_codes.get(label) or []
        if code not in codes:
            raise ValidationError(
                f"action.reason_code: {code!r} is not a reason code of {label!r}"
                + (f"; use one of {', '.join(codes)}" if codes else " (it has none)")
            )
        return
    if len(action) != 1:
        raise ValidationError("action: expected exactly one of decide, route or flag")
    if "route" in action:
        target = action["route"]
        kind, _, name = target.partition(":") if isinstance(target, str) else ("", "", "")
        if (kind == "team" and _TEAM_RE.fullmatch(name)) or (
            kind == "expert" and _USERNAME_RE.fullmatch(name)
        ):
            return
        raise ValidationError(
            f"action.route: expected 'team:<slug>' or 'expert:<username>', got {target!r}"
        )
    if "flag" in action:
        text = action["flag"]
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_FLAG:
            raise ValidationError(
                f"action.flag: expected a non-empty text of at most {MAX_FLAG} characters"
            )
        return
    raise ValidationError(f"action: unknown action {sorted(map(str, action))[0]!r}")
