"""Conditions, actions and rules as sentences, using the fields' labels."""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from apps.rules.language.tree import NUMERIC_TYPES, _Comparison, _Node, _Not, _parse

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
