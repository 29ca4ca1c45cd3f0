"""The rule language: a JSON condition tree over a case's schema fields and its exception, and an action.

A condition can never execute code: it is data, validated against the process's case schema, then
compiled to a Python predicate (to evaluate one case fast) and to a SQL expression over the case's
JSONB (to backtest in PostgreSQL). Both compilations have exactly the same semantics, checked by a
property test (tests/rules/test_language_sql.py).

Nodes
    {"all": [node, …]}   every child holds (at least one child)
    {"any": [node, …]}   some child holds (at least one child)
    {"not": node}        the child does not hold
    {"field": name, "op": op, "value": json}   a comparison

`field` is a schema field name, "exception.reason" (text) or "exception.fields" (the names of the
fields at fault). At most 8 levels and 100 nodes.

Operators and the field types they apply to
    eq ne        every type
    lt le gt ge  number, money, date, datetime
    between      number, money, date, datetime; value [low, high], both inclusive, low ≤ high
    in not_in    number, money, category, text; value a non-empty list
    contains startswith   category, text (substring / prefix, case-sensitive); on "exception.fields",
                 contains means the named field is among the fields at fault
    matches      category, text: a bounded regular expression, searched anywhere, case-sensitive
    is_null      every type (no value); on "exception.fields" it means no field is at fault

Values
    number/money   JSON numbers, compared exactly as decimals (a float is taken as its shortest
                   repr, which is how JSON and PostgreSQL's jsonb hold it: 0.1 is exactly 0.1)
    date           "YYYY-MM-DD"
    datetime       "YYYY-MM-DDTHH:MM:SS[.ffffff]" plus "Z" or an offset "±HH:MM" (up to ±14:59);
                   compared as instants
    category       one of the field's choices (contains/startswith/matches take any text)
    text           a string (at most 1,000 characters)
    boolean        true / false

Missing values — two-valued logic, no SQL NULL leaks out
    A case's value is *missing* when the key is absent, JSON null, of the wrong JSON type for the
    field (a string in a number field, a number in a text field), an empty string, or for
    date/datetime not in the exact ISO shape above or not a real date (2026-02-30). The exception
    reason is missing when it is empty. On a missing value `is_null` is true and every other
    comparison is false — including `ne` and `not_in`. Every comparison is therefore strictly true or
    false, and `not` simply negates: {"not": {"field": "amount", "op": "gt", "value": 5}} holds for a
    case without an amount, while {"field": "amount", "op": "le", "value": 5} does not. In SQL each
    comparison is wrapped in COALESCE(…, false) to get exactly this.

Regular expressions (`matches`) — a subset on which Python's `re` and PostgreSQL's `~` agree
    At most 200 characters: literal characters, `.` (any character, newline included), `^` and `$`
    (start and end of the whole value, never of a line), bracket classes `[abc]`, `[^a-z]` (a literal
    `-`, `[`, `]` inside one must be escaped), `\\d \\s \\w` and `\\D \\S \\W` (ASCII only: digits, space
    tab and line breaks, letters digits and underscore), `\\n \\t \\r \\f \\v`, any ASCII punctuation
    escaped with `\\`, groups `( )` and `(?: )`, alternation `|`, and quantifiers `* + ? {m} {m,}
    {m,n}` (m, n ≤ 100, optionally lazy with a trailing `?`).
    Not allowed: backreferences, lookarounds and other `(?…)` groups, `\\b` and other escapes, POSIX
    classes, empty alternatives, and a repeated group that itself contains a repetition, an
    alternation or an anchor — `(a+)+`, `(a|aa)*` — which makes backtracking take exponential time.
    The pattern is translated once into each dialect (e.g. `$` becomes `\\Z` for Python, which has
    no DOTALL-insensitive end anchor otherwise; classes are spelt out so locale never matters).
"""

import math
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError

EXCEPTION_REASON = "exception.reason"
EXCEPTION_FIELDS = "exception.fields"
MAX_DEPTH = 8
MAX_NODES = 100
MAX_LIST = 200
MAX_TEXT_VALUE = 1000
MAX_PATTERN = 200
MAX_REPEAT = 100
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
_OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "number": ("eq", "ne", "lt", "le", "gt", "ge", "between", "in", "not_in", "is_null"),
    "money": ("eq", "ne", "lt", "le", "gt", "ge", "between", "in", "not_in", "is_null"),
    "date": ("eq", "ne", "lt", "le", "gt", "ge", "between", "is_null"),
    "datetime": ("eq", "ne", "lt", "le", "gt", "ge", "between", "is_null"),
    "category": ("eq", "ne", "in", "not_in", "contains", "startswith", "matches", "is_null"),
    "text": ("eq", "ne", "in", "not_in", "contains", "startswith", "matches", "is_null"),
    "boolean": ("eq", "ne", "is_null"),
    "fault_fields": ("contains", "is_null"),
}

_FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_ALIAS_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
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

Predicate = Callable[[Mapping, str, Sequence[str]], bool]


# --- Parsed form -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Regex:
    source: str
    python: re.Pattern[str]
    postgres: str


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
        allowed = _OPS_BY_TYPE[kind]
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


# --- Regular expressions -----------------------------------------------------------------------

_CLASSES = {"d": "0-9", "s": " \\t\\n\\r\\f\\v", "w": "A-Za-z0-9_"}
_CHAR_ESCAPES = frozenset("ntrfv")
_PUNCTUATION = frozenset(string.punctuation)


@dataclass
class _Frame:
    complex: bool = False  # holds a repetition, an alternation or an anchor
    branch_empty: bool = True


def _literal(char: str) -> str:
    # Every ASCII punctuation is escaped in the output, so no character is special in one dialect
    # and literal in the other (`}` or `]` alone, `--` or `&&` inside a class).
    return "\\" + char if char in _PUNCTUATION else char


def _parse_regex(value: object, where: str) -> _Regex:
    """Translate a pattern of the supported subset into Python and PostgreSQL syntax."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where}: expected a non-empty regular expression")
    if len(value) > MAX_PATTERN:
        raise ValidationError(f"{where}: regular expression longer than {MAX_PATTERN} characters")
    if any(ord(char) < 32 and char not in "\t\n" for char in value):
        raise ValidationError(f"{where}: control characters are not allowed in a pattern")

    def fail(reason: str) -> ValidationError:
        return ValidationError(f"{where}: {reason} in regular expression {value!r}")

    py: list[str] = []
    pg: list[str] = []
    stack = [_Frame()]
    # What the last token was: "atom", "group" (complex or not), "quantifier", "lazy", or None.
    last: str | None = None
    last_complex = False
    i = 0
    n = len(value)
    while i < n:
        char = value[i]
        frame = stack[-1]
        if char in "*+?{":
            if char == "?" and last == "quantifier":
                py.append("?")
                pg.append("?")
                last = "lazy"
                i += 1
                continue
            if last in ("quantifier", "lazy"):
                raise fail("a repetition of a repetition")
            if last not in ("atom", "group"):
                raise fail(f"nothing to repeat before {char!r}")
            if last == "group" and last_complex:
                raise fail(
                    "a repeated group that contains a repetition, alternation or anchor "
                    "(it can take exponential time)"
                )
            if char == "{":
                match = re.match(r"\{([0-9]{1,3})(,([0-9]{1,3})?)?\}", value[i:])
                if not match:
                    raise fail("a '{' that is not a repetition {m}, {m,} or {m,n} (write \\{)")
                low = int(match.group(1))
                high = int(match.group(3)) if match.group(3) is not None else None
                if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                    raise fail(f"a repetition count above {MAX_REPEAT}")
                if high is not None and high < low:
                    raise fail("a repetition {m,n} with n below m")
                token = match.group(0)
                i += len(token)
            else:
                token = char
                i += 1
            py.append(token)
            pg.append(token)
            frame.complex = True
            last = "quantifier"
            continue
        i += 1
        if char == "\\":
            if i >= n:
                raise fail("a trailing backslash")
            escaped = value[i]
            i += 1
            if escaped.lower() in _CLASSES:
                body = _CLASSES[escaped.lower()]
                token = f"[{body}]" if escaped.islower() else f"[^{body}]"
            elif escaped in _CHAR_ESCAPES or escaped in _PUNCTUATION:
                token = "\\" + escaped
            else:
                raise fail(
                    f"the escape \\{escaped} (backreferences, \\b and other escapes are not "
                    "supported)"
                )
            py.append(token)
            pg.append(token)
            last = "atom"
        elif char == ".":
            py.append(".")
            pg.append(".")
            last = "atom"
        elif char in "^$":
            py.append("^" if char == "^" else "\\Z")
            pg.append(char)
            frame.complex = True
            last = "anchor"
        elif char == "(":
            if value.startswith("?", i):
                if not value.startswith("?:", i):
                    raise fail(
                        "a (?…) group other than (?:…) (lookarounds, named groups and inline "
                        "flags are not supported)"
                    )
                i += 2
            py.append("(?:")
            pg.append("(?:")
            stack.append(_Frame())
            last = None
            continue
        elif char == ")":
            if len(stack) == 1:
                raise fail("an unmatched ')'")
            if frame.branch_empty:
                raise fail("an empty group or alternative")
            stack.pop()
            stack[-1].complex = stack[-1].complex or frame.complex
            stack[-1].branch_empty = False
            py.append(")")
            pg.append(")")
            last, last_complex = "group", frame.complex
            continue
        elif char == "|":
            if frame.branch_empty:
                raise fail("an empty alternative")
            frame.complex = True
            frame.branch_empty = True
            py.append("|")
            pg.append("|")
            last = None
            continue
        elif char == "[":
            i, token = _parse_class(value, i, fail)
            py.append(token)
            pg.append(token)
            last = "atom"
        else:
            token = _literal(char)
            py.append(token)
            pg.append(token)
            last = "atom"
        frame.branch_empty = False
    if len(stack) > 1:
        raise fail("an unclosed '('")
    if stack[0].branch_empty:
        raise fail("an empty alternative")
    python_source = "".join(py)
    try:
        compiled = re.compile(python_source, re.DOTALL)
    except re.error as exc:  # the translation above should make this unreachable
        raise fail(str(exc)) from None
    return _Regex(value, compiled, "".join(pg))


def _parse_class(value: str, i: int, fail: Callable[[str], ValidationError]) -> tuple[int, str]:
    """Parse a bracket class starting after its '['; returns the index after ']' and the token."""
    n = len(value)
    out = ["["]
    if value.startswith("^", i):
        out.append("^")
        i += 1
    items = 0
    pending: str | None = None  # the last single character, a possible range start
    while True:
        if i >= n:
            raise fail("an unclosed '['")
        char = value[i]
        i += 1
        if char == "]":
            if items == 0:
                raise fail("an empty class [] (write \\] for a literal bracket)")
            out.append("]")
            return i, "".join(out)
        if char == "[":
            raise fail("a '[' inside a class (write \\[; POSIX classes are not supported)")
        if char == "-":
            if pending is None or i >= n or value[i] in "]-":
                raise fail("a '-' that is not a range a-z inside a class (write \\-)")
            end = value[i]
            i += 1
            if end == "\\":
                if i >= n or value[i] not in _PUNCTUATION:
                    raise fail("a range that does not end in a single character")
                end = value[i]
                i += 1
            elif end == "[":
                raise fail("a '[' inside a class (write \\[)")
            if ord(end) < ord(pending):
                raise fail(f"the reversed range {pending}-{end}")
            out.append("-" + _literal(end))
            pending = None
            continue
        if char == "\\":
            if i >= n:
                raise fail("a trailing backslash")
            escaped = value[i]
            i += 1
            if escaped in _CLASSES:
                out.append(_CLASSES[escaped])
                pending = None
            elif escaped in _CHAR_ESCAPES:
                out.append("\\" + escaped)
                pending = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}[escaped]
            elif escaped in _PUNCTUATION:
                out.append("\\" + escaped)
                pending = escaped
            else:
                raise fail(f"the escape \\{escaped} inside a class")
        else:
            out.append(_literal(char))
            pending = char
        items += 1


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


# --- Sentences -----------------------------------------------------------------------------------

_NUMBER_OPS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
_TIME_OPS = {
    "eq": "is",
    "ne": "is not",
    "lt": "is before",
    "le": "is on or before",
    "gt": "is after",
    "ge": "is on or after",
}


def _show(value: object, kind: str) -> str:
    if kind in NUMERIC_TYPES:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if kind == "money" and number != number.to_integral_value():
            return format(number, ",.2f")
        return format(number.normalize() if number == number.to_integral_value() else number, ",f")
    if kind == "text":
        return f'"{value}"'
    if kind == "boolean":
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _describe_comparison(node: _Comparison, negated: bool = False) -> str:
    label, kind, op, value = node.label, node.kind, node.op, node.value
    if kind == "fault_fields":
        if op == "is_null":
            return "some field is at fault" if negated else "no field is at fault"
        return f"{value} is among the fields at fault"
    if op == "is_null":
        return f"{label} is {'not ' if negated else ''}empty"
    if op in _NUMBER_OPS:
        if kind in NUMERIC_TYPES:
            return f"{label} {_NUMBER_OPS[op]} {_show(value, kind)}"
        if kind in ("date", "datetime"):
            return f"{label} {_TIME_OPS[op]} {_show(value, kind)}"
        return f"{label} {'is' if op == 'eq' else 'is not'} {_show(value, kind)}"
    if op in ("in", "not_in"):
        shown = ", ".join(_show(item, kind) for item in value)  # type: ignore[attr-defined]
        return f"{label} is {'not ' if op == 'not_in' else ''}one of {shown}"
    if op == "between":
        low, high = value  # type: ignore[misc]
        return f"{label} is between {_show(low, kind)} and {_show(high, kind)}"
    if op == "contains":
        return f'{label} contains "{value}"'
    if op == "startswith":
        return f'{label} starts with "{value}"'
    return f"{label} matches /{value.source}/"  # type: ignore[attr-defined]


def _describe(node: _Node, nested: bool) -> str:
    if isinstance(node, _Comparison):
        return _describe_comparison(node)
    if isinstance(node, _Not):
        child = node.child
        if isinstance(child, _Comparison) and child.op == "is_null":
            # is_null is never unknown, so "not empty" says exactly the same.
            return _describe_comparison(child, negated=True)
        return f"not ({_describe(child, nested=False)})"
    if len(node.children) == 1:
        return _describe(node.children[0], nested)
    joined = f" {'and' if node.op == 'all' else 'or'} ".join(
        _describe(child, nested=True) for child in node.children
    )
    return f"({joined})" if nested else joined


def describe(condition: object, *, fields: list[dict]) -> str:
    """The condition as a sentence using the fields' labels, e.g. "Amount > 10,000 and
    (PO match is missing or Vendor is one of acme, globex)". Validates first."""
    return _describe(_parse(condition, fields), nested=False)


def describe_action(action: Mapping) -> str:
    """The action as words: "decide Approve (reason code: price_ok)", "route to procurement",
    "route to expert erin", 'flag "check the vendor"'. Expects a validated action."""
    if "decide" in action:
        code = action.get("reason_code")
        return f"decide {action['decide']}" + (f" (reason code: {code})" if code else "")
    if "route" in action:
        kind, _, name = str(action["route"]).partition(":")
        return f"route to {name}" if kind == "team" else f"route to expert {name}"
    return f'flag "{action.get("flag", "")}"'


def describe_rule(condition: object, action: Mapping, *, fields: list[dict]) -> str:
    """The whole rule as one sentence: "<condition> → <action>"."""
    return f"{describe(condition, fields=fields)} → {describe_action(action)}"


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
    exception_fields) -> bool` with the semantics of the module docstring."""
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
