"""Conditions, actions and rules as sentences: fields by their labels, decisions and reason codes
in words ("Route to procurement"). The plain forms are stored with a rule; the HTML forms, drawn
when a page shows a rule, keep each field's name and each code at hand as a tooltip."""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from apps.core.display import readable_code
from apps.rules.language.tree import (
    EXCEPTION_REASON,
    NUMERIC_TYPES,
    _Comparison,
    _Node,
    _Not,
    _parse,
)

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


class _Words:
    """Plain text: a field reads as its label, a code as words."""

    def __init__(self, fields: list[dict]) -> None:
        self.labels = {spec["name"]: str(spec.get("label") or spec["name"]) for spec in fields}

    def field(self, name: str, label: str) -> str:
        return label

    def field_named(self, name: str) -> str:
        return self.field(name, self.labels.get(name, name))

    def code(self, code: str) -> str:
        return readable_code(code)

    def text(self, words: str) -> str:
        return words

    def join(self, parts: list[str]) -> str:
        return "".join(parts)


class _Html(_Words):
    """The same words, escaped, with the field's name or the raw code as a tooltip."""

    def field(self, name: str, label: str) -> str:
        return format_html('<span class="rule-field" title="{}">{}</span>', name, label)

    def code(self, code: str) -> str:
        return format_html(
            '<span class="rule-code" title="{}">{}</span>', code, readable_code(code)
        )

    def text(self, words: str) -> str:
        return conditional_escape(words)

    def join(self, parts: list[str]) -> str:
        return mark_safe("".join(parts))  # every part is escaped above  # noqa: S308


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


def _describe_comparison(node: _Comparison, words: _Words, negated: bool = False) -> str:
    kind, op, value = node.kind, node.op, node.value
    text = words.text
    if kind == "fault_fields":
        if op == "is_null":
            return text("some field is at fault" if negated else "no field is at fault")
        return words.join([words.field_named(str(value)), text(" is among the fields at fault")])
    # Capitalised like the labels of the schema's fields it sits among.
    label = words.field(
        node.subject, "Exception reason" if node.subject == EXCEPTION_REASON else node.label
    )
    if op == "is_null":
        rest = f" is {'not ' if negated else ''}empty"
    elif op in _NUMBER_OPS:
        if kind in NUMERIC_TYPES:
            rest = f" {_NUMBER_OPS[op]} {_show(value, kind)}"
        elif kind in ("date", "datetime"):
            rest = f" {_TIME_OPS[op]} {_show(value, kind)}"
        else:
            rest = f" {'is' if op == 'eq' else 'is not'} {_show(value, kind)}"
    elif op in ("in", "not_in"):
        shown = ", ".join(_show(item, kind) for item in value)  # type: ignore[attr-defined]
        rest = f" is {'not ' if op == 'not_in' else ''}one of {shown}"
    elif op == "between":
        low, high = value  # type: ignore[misc]
        rest = f" is between {_show(low, kind)} and {_show(high, kind)}"
    elif op == "contains":
        rest = f' contains "{value}"'
    elif op == "startswith":
        rest = f' starts with "{value}"'
    else:
        rest = f" matches /{value.source}/"  # type: ignore[attr-defined]
    return words.join([label, text(rest)])


def _describe(node: _Node, nested: bool, words: _Words) -> str:
    if isinstance(node, _Comparison):
        return _describe_comparison(node, words)
    if isinstance(node, _Not):
        child = node.child
        if isinstance(child, _Comparison) and child.op == "is_null":
            # is_null is never unknown, so "not empty" says exactly the same.
            return _describe_comparison(child, words, negated=True)
        return words.join([words.text("not ("), _describe(child, False, words), words.text(")")])
    if len(node.children) == 1:
        return _describe(node.children[0], nested, words)
    parts: list[str] = []
    for index, child in enumerate(node.children):
        if index:
            parts.append(words.text(f" {'and' if node.op == 'all' else 'or'} "))
        parts.append(_describe(child, True, words))
    if nested:
        parts = [words.text("("), *parts, words.text(")")]
    return words.join(parts)


def _describe_action(action: Mapping, words: _Words) -> str:
    if "decide" in action:
        code = action.get("reason_code")
        parts = [words.text("decide "), words.code(str(action["decide"]))]
        if code:
            parts += [words.text(" (reason code: "), words.code(str(code)), words.text(")")]
        return words.join(parts)
    if "route" in action:
        kind, _, name = str(action["route"]).partition(":")
        return words.text(f"route to {name}" if kind == "team" else f"route to expert {name}")
    return words.text(f'flag "{action.get("flag", "")}"')


def describe(condition: object, *, fields: list[dict]) -> str:
    """The condition as a sentence using the fields' labels, e.g. "Amount > 10,000 and
    (PO match is missing or Vendor is one of acme, globex)". Validates first."""
    return _describe(_parse(condition, fields), False, _Words(fields))


def describe_html(condition: object, *, fields: list[dict]) -> SafeString:
    """describe() as escaped HTML, each field's label carrying its name as a tooltip."""
    return SafeString(_describe(_parse(condition, fields), False, _Html(fields)))


def describe_action(action: Mapping) -> str:
    """The action as words: "decide Approve (reason code: Price ok)", "route to procurement",
    "route to expert erin", 'flag "check the vendor"'. Expects a validated action."""
    return _describe_action(action, _Words([]))


def describe_action_html(action: Mapping) -> SafeString:
    """describe_action() as escaped HTML, each code carrying its raw form as a tooltip."""
    return SafeString(_describe_action(action, _Html([])))


def describe_rule(condition: object, action: Mapping, *, fields: list[dict]) -> str:
    """The whole rule as one sentence: "<condition> → <action>"."""
    return f"{describe(condition, fields=fields)} → {describe_action(action)}"


def describe_rule_html(
    condition: object, action: Mapping, *, fields: list[dict], fallback: str = ""
) -> SafeString:
    """The rule as HTML in the current schema's words (tooltips: field names, raw codes); the
    sentence saved with it, escaped, when its condition no longer fits the schema."""
    try:
        return SafeString(
            f"{describe_html(condition, fields=fields)} → {describe_action_html(action)}"
        )
    except ValidationError:
        return conditional_escape(fallback)
