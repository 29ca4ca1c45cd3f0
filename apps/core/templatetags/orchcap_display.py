"""Filters every page uses to show durations and schema codes the same way (a template builtin:
no {% load %} needed). Exports and the API keep the raw codes."""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django import template

from apps.core.display import format_due, format_duration, readable_code

register = template.Library()


@register.filter
def duration(value: float | int | Decimal | timedelta | None, unit: str = "s") -> str:
    """`{{ seconds|duration }}`, `{{ hours|duration:"h" }}`: "42 s", "3 min", "2.5 h"."""
    try:
        return format_duration(value, unit)
    except (TypeError, ValueError, KeyError):
        return str(value)


@register.filter
def label_text(code: object) -> str:
    """A decision label or reason code as words: `{{ "route_to_procurement"|label_text }}` →
    "Route to procurement"."""
    return readable_code(code)


@register.filter
def field_label(name: str, schema: object) -> str:
    """A field name in the words of `schema` (a process, a schema version, or its list of field
    specs): `{{ "po_match"|field_label:process }}` → "PO match"."""
    fields: object = getattr(schema, "schema", schema)
    fields = getattr(fields, "fields", fields)
    if isinstance(fields, Sequence):
        for spec in fields:
            if isinstance(spec, Mapping) and spec.get("name") == name:
                return str(spec.get("label") or readable_code(name))
    return readable_code(name)


@register.inclusion_tag("components/due.html")
def due(due_by: datetime | None) -> dict[str, object]:
    """`{% due case.due_by %}`: "due in 2 h", or "overdue 15 min" marked as such, with the exact
    time as its title; nothing without a due time."""
    text, overdue = format_due(due_by)
    return {"due_by": due_by, "text": text, "overdue": overdue}
