"""Case schemas: typed fields, decision options, and validation of case data against them.

Values are stored as JSON: number and money as numbers, date/datetime as ISO strings, category and
text as strings, boolean as true/false. Text input (CSV cells) is coerced; anything else is an error
that names the field and what was expected.
"""

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

FIELD_TYPES = ("number", "money", "category", "text", "date", "datetime", "boolean")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_TEXT = 20_000
MISSING_PRIORITY = -1e300
_DECIMAL_COMMA = re.compile(r",\d{1,2}$")
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


@dataclass(frozen=True)
class SchemaProblem:
    """One thing wrong with a schema: `path` names the part ("fields[2].choices", "decisions",
    "priority_field"), `message` says what is wrong, to be read after the path."""

    path: str
    message: str


class SchemaInvalid(ValidationError):
    """Every problem of a schema at once (not just the first), each with its path; as a
    ValidationError its message_dict is {path: [messages]}, so reason_of() lists them all."""

    def __init__(self, problems: list[SchemaProblem]) -> None:
        self.problems = problems
        by_path: dict[str, list[str]] = {}
        for problem in problems:
            by_path.setdefault(problem.path, []).append(problem.message)
        super().__init__(by_path)


_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
PRIORITY_TYPES = ("number", "money", "date", "datetime", "boolean")


class _Problems(list[SchemaProblem]):
    def add(self, path: str, message: str) -> None:
        self.append(SchemaProblem(path, message))


def _bounded_text(
    item: dict, key: str, where: str, limit: int, problems: _Problems, default: str = ""
) -> str:
    """An optional text setting, refused (not silently cut) when it is too long or not text."""
    value = item.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        problems.add(f"{where}.{key}", "must be text")
        return default
    if len(value) > limit:
        problems.add(
            f"{where}.{key}", f"is {len(value)} characters long; at most {limit} are allowed"
        )
        return default
    return value


def _field_spec(item: object, where: str, seen: set[str], problems: _Problems) -> dict:
    """One field definition normalised; its problems are added to `problems`."""
    if not isinstance(item, dict):
        problems.add(where, "must be an object")
        return {}
    name = item.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add(
            f"{where}.name",
            f"must be lower_snake_case (a letter, then letters, digits, _), got {name!r}",
        )
        name = ""
    elif name in seen:
        problems.add(f"{where}.name", f"{name!r} is used by another field")
    seen.add(name)
    kind = item.get("type")
    if kind not in FIELD_TYPES:
        problems.add(f"{where}.type", f"must be one of {', '.join(FIELD_TYPES)}, got {kind!r}")
    spec = {
        "name": name,
        "type": kind,
        "label": _bounded_text(
            item, "label", where, 120, problems, default=name.replace("_", " ").capitalize()
        ),
        "help_text": _bounded_text(item, "help_text", where, 500, problems),
        "required": bool(item.get("required", False)),
    }
    if kind == "category":
        choices = item.get("choices")
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, str) and c for c in choices)
        ):
            problems.add(f"{where}.choices", "a category needs a non-empty list of choices (text)")
        elif len(set(choices)) != len(choices):
            repeated = sorted({c for c in choices if choices.count(c) > 1})
            problems.add(f"{where}.choices", f"has duplicates: {', '.join(repeated)}")
        else:
            spec["choices"] = choices
    if kind == "money":
        currency = _bounded_text(item, "currency", where, 3, problems)
        if currency and not _CURRENCY_RE.match(currency):
            problems.add(
                f"{where}.currency", f"must be a 3-letter code such as EUR, got {currency!r}"
            )
        spec["currency"] = currency.upper()
    if group := _bounded_text(item, "group", where, 60, problems):
        spec["group"] = group
    return spec


def _field_specs(raw: object, problems: _Problems) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        problems.add("fields", "must be a non-empty list of field definitions")
        return []
    seen: set[str] = set()
    return [_field_spec(item, f"fields[{index}]", seen, problems) for index, item in enumerate(raw)]


def _decision_options(raw: object, problems: _Problems) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        problems.add("decisions", "must be a non-empty list of decision options")
        return []
    if len(raw) > 9:
        problems.add(
            "decisions",
            f"has {len(raw)} options; at most 9 are allowed (keys 1 to 9 choose them in the "
            "review queue)",
        )
    options: list[dict] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"decisions[{index}]"
        if not isinstance(item, dict):
            problems.add(where, "must be an object")
            continue
        label = item.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 100:
            problems.add(f"{where}.label", "must be a non-empty text (at most 100 characters)")
        elif label in seen:
            problems.add(f"{where}.label", f"{label!r} is used by another decision")
        seen.add(label if isinstance(label, str) else "")
        codes = item.get("reason_codes") or []
        if not isinstance(codes, list) or not all(isinstance(c, str) and c.strip() for c in codes):
            problems.add(f"{where}.reason_codes", "must be a list of non-empty texts")
            codes = []
        elif len(set(codes)) != len(codes):
            repeated = sorted({c for c in codes if codes.count(c) > 1})
            problems.add(f"{where}.reason_codes", f"has duplicates: {', '.join(repeated)}")
        options.append(
            {
                "label": label,
                "description": _bounded_text(item, "description", where, 500, problems),
                "reason_codes": codes,
            }
        )
    return options


def _check_priority_field(specs: list[dict], priority_field: str, problems: _Problems) -> None:
    if not priority_field:
        return
    spec = next((s for s in specs if s.get("name") == priority_field), None)
    if spec is None:
        problems.add("priority_field", f"{priority_field!r} is not a field of the schema")
    elif spec["type"] in FIELD_TYPES and spec["type"] not in PRIORITY_TYPES:
        problems.add(
            "priority_field",
            f"{priority_field!r} is a {spec['type']} field; the priority must be a "
            f"{', '.join(PRIORITY_TYPES[:-1])} or {PRIORITY_TYPES[-1]} field",
        )


def clean_schema(
    *, fields: object, decisions: object, priority_field: str = ""
) -> tuple[list[dict], list[dict]]:
    """Validate and normalise a schema: (field specs, decision options).

    Raises SchemaInvalid listing every problem with its path, not only the first."""
    problems = _Problems()
    specs = _field_specs(fields, problems)
    options = _decision_options(decisions, problems)
    _check_priority_field(specs, priority_field, problems)
    if problems:
        raise SchemaInvalid(problems)
    return specs, options


def clean_priority_field(*, specs: list[dict], priority_field: str) -> None:
    """Check a priority field against clean field specs; raises SchemaInvalid if it can't be one."""
    problems = _Problems()
    _check_priority_field(specs, priority_field, problems)
    if problems:
        raise SchemaInvalid(problems)


def _coerce(spec: dict, value: object) -> object:
    """One value to its stored JSON form, or ValueError with what was expected."""
    kind = spec["type"]
    if kind in ("number", "money"):
        if isinstance(value, bool):
            raise ValueError("expected a number")
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            text = value.strip()
            if kind == "money":
                # "1200,50" is a decimal comma, not a thousands separator: refuse to guess.
                if "," in text and "." not in text and _DECIMAL_COMMA.search(text):
                    raise ValueError(
                        f"{value!r} looks like a decimal comma; write it as {text.replace(',', '.')}"
                    )
                text = text.replace(",", "")
            try:
                number = float(Decimal(text))
            except (InvalidOperation, ValueError):
                raise ValueError(f"expected a number, got {value!r}") from None
        else:
            raise ValueError("expected a number")
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        if kind == "money":
            return round(number, 2)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "category":
        text = (
            str(value).strip()
            if isinstance(value, str | int) and not isinstance(value, bool)
            else None
        )
        if text not in spec["choices"]:
            raise ValueError(f"expected one of {', '.join(spec['choices'])}, got {value!r}")
        return text
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError("expected text")
        if len(value) > MAX_TEXT:
            raise ValueError(f"text longer than {MAX_TEXT} characters")
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "date":
        if not isinstance(value, str):
            raise ValueError("expected a date as YYYY-MM-DD")
        try:
            return date.fromisoformat(
                value.strip()[:10] if "T" in value else value.strip()
            ).isoformat()
        except ValueError:
            raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}") from None
    if kind == "datetime":
        if not isinstance(value, str):
            raise ValueError("expected an ISO 8601 date-time")
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date-time, got {value!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(
                f"expected a date-time with a time zone (e.g. 2026-01-31T09:00:00Z), got {value!r}"
            )
        return parsed.isoformat()
    raise ValueError(f"unknown field type {kind}")


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def validate_case_fields(specs: list[dict], raw: object) -> tuple[dict, dict[str, str]]:
    """Clean `raw` against `specs`: returns (clean fields, {field: error}). Unknown fields are errors."""
    if not isinstance(raw, dict):
        return {}, {"fields": "must be an object of field values"}
    clean: dict[str, object] = {}
    errors: dict[str, str] = {}
    by_name = {spec["name"]: spec for spec in specs}
    for name in raw:
        if name not in by_name:
            errors[name] = "unknown field (not in the process's schema)"
    for spec in specs:
        value = raw.get(spec["name"])
        if _is_blank(value):
            if spec["required"]:
                errors[spec["name"]] = "is required"
            continue
        try:
            clean[spec["name"]] = _coerce(spec, value)
        except ValueError as exc:
            errors[spec["name"]] = str(exc)
    return clean, errors


def priority_of(specs: list[dict], fields: dict, *, field_name: str, descending: bool) -> float:
    """The queue priority of a case: the priority field as a number (dates as ordinal days).

    A case without a value comes after every case with one, whichever the direction."""
    if not field_name:
        return 0.0
    if fields.get(field_name) is None:
        return MISSING_PRIORITY
    spec = next((s for s in specs if s["name"] == field_name), None)
    value = fields[field_name]
    if spec is None:
        return 0.0
    if spec["type"] in ("number", "money"):
        number = float(value)
    elif spec["type"] == "date":
        number = float(date.fromisoformat(value).toordinal())
    elif spec["type"] == "datetime":
        number = datetime.fromisoformat(value).timestamp()
    elif spec["type"] == "boolean":
        number = 1.0 if value else 0.0
    else:
        return 0.0
    return number if descending else -number


def render_case_text(
    specs: list[dict], fields: dict, exception_reason: str, exception_fields: list[str]
) -> str:
    """The case as text, for embeddings and search: labelled fields, then the exception."""
    parts = [f"{spec['label']}: {fields[spec['name']]}" for spec in specs if spec["name"] in fields]
    if exception_reason:
        parts.append(f"Exception: {exception_reason}")
    if exception_fields:
        parts.append(f"Fields at fault: {', '.join(exception_fields)}")
    return "\n".join(parts)
