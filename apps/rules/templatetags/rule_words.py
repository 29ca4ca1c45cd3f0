"""`{% rule_sentence condition action process fallback %}`: a rule as the page shows it, in the
process's current words, with field names and raw codes as tooltips."""

from collections.abc import Mapping

from django import template
from django.utils.safestring import SafeString

from apps.cases.models import Process
from apps.rules.language.describe import describe_rule_html

register = template.Library()


@register.simple_tag
def rule_sentence(
    condition: object, action: Mapping, process: Process, fallback: str = ""
) -> SafeString:
    return describe_rule_html(condition, action, fields=process.schema.fields, fallback=fallback)
