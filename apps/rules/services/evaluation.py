"""Evaluating a process's rule set on one case: first match by priority (DMN "first")."""

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from apps.cases.models import Case
from apps.rules.language import compile_predicate
from apps.rules.models import Rule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleHit:
    rule: Rule
    action: dict


def matching_rules(*, case: Case, include_disabled: bool = False) -> list[Rule]:
    """Every rule of the case's process whose current condition holds for the case, by priority."""
    rules = (
        Rule.objects.filter(process_id=case.process_id)
        .select_related("current")
        .order_by("priority", "pk")
    )
    if not include_disabled:
        rules = rules.filter(enabled=True)
    fields = case.process.schema.fields
    hits = []
    for rule in rules:
        try:
            predicate = compile_predicate(rule.current.condition, fields=fields)
        except ValidationError:
            # The schema dropped or retyped a field the rule reads: it cannot match any more (the
            # rules page flags it) and must not stop the other rules from being evaluated.
            log.warning("rule %s no longer fits the schema of %s; skipped", rule.pk, case.process)
            continue
        if predicate(case.fields, case.exception_reason, case.exception_fields):
            hits.append(rule)
    return hits


def first_match(*, case: Case) -> RuleHit | None:
    """The enabled rule that decides the case under the first-hit policy, or None."""
    hits = matching_rules(case=case)
    return RuleHit(rule=hits[0], action=hits[0].current.action) if hits else None
