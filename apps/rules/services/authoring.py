"""Writing rules: create, new versions, enable (only after a backtest), disable, reorder."""

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.cases.models import Process
from apps.rules.language import describe_rule, validate_action, validate_condition
from apps.rules.models import Rule, RuleVersion


def check_rule(process: Process, condition: object, action: object) -> str:
    """Validate against the process's current schema; returns the rule's sentence."""
    schema = process.schema
    validate_condition(condition, fields=schema.fields)
    if not isinstance(action, dict):
        raise ValidationError(
            "action must be an object: {decide, reason_code} or {route} or {flag}"
        )
    validate_action(
        action,
        labels=schema.labels,
        reason_codes={
            option["label"]: list(option.get("reason_codes") or []) for option in schema.decisions
        },
    )
    return describe_rule(condition, action, fields=schema.fields)


@transaction.atomic
def create_rule(
    *,
    process: Process,
    owner: AbstractUser,
    name: str,
    condition: object,
    action: object,
    description: str = "",
    priority: int = 100,
    provenance: dict | None = None,
) -> Rule:
    """A new, disabled rule with its first version. Raises ValidationError naming the bad part."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("name: give the rule a name")
    if Rule.objects.filter(process=process, name__iexact=name).exists():
        raise ValidationError(f"name: {process.name} already has a rule named {name!r}")
    sentence = check_rule(process, condition, action)
    provenance = provenance or {"source": "hand-written"}
    rule = Rule.objects.create(
        process=process,
        owner=owner,
        name=name[:120],
        description=description,
        priority=priority,
        provenance=provenance,
    )
    rule.current = RuleVersion.objects.create(
        rule=rule,
        version=1,
        condition=condition,
        action=action,
        sentence=sentence,
        created_by=owner,
        provenance=provenance,
    )
    rule.save(update_fields=["current"])
    return rule


@transaction.atomic
def revise_rule(
    *,
    rule: Rule,
    author: AbstractUser,
    condition: object,
    action: object,
    provenance: dict | None = None,
) -> RuleVersion:
    """A new version (unless condition and action are unchanged: then the current one). The rule
    is disabled until the new version is backtested and enabled again. `provenance` says where the
    version came from when not typed in (e.g. a chat model's draft)."""
    rule = (
        Rule.objects.select_for_update(of=("self",))
        .select_related("process__schema", "current")
        .get(pk=rule.pk)
    )
    sentence = check_rule(rule.process, condition, action)
    if rule.current and rule.current.condition == condition and rule.current.action == action:
        return rule.current
    version = (rule.current.version if rule.current else 0) + 1
    rule.current = RuleVersion.objects.create(
        rule=rule,
        version=version,
        condition=condition,
        action=action,
        sentence=sentence,
        created_by=author,
        provenance=provenance or {},
    )
    rule.enabled = False
    rule.save(update_fields=["current", "enabled", "updated_at"])
    return rule.current


def enable_rule(*, rule: Rule) -> Rule:
    """Turn a rule on; only a version with a backtest may run (evidence first)."""
    if rule.current is None or rule.current.backtested_at is None:
        raise ValidationError("backtest this version of the rule before enabling it")
    rule.enabled = True
    rule.save(update_fields=["enabled", "updated_at"])
    return rule


def disable_rule(*, rule: Rule) -> Rule:
    rule.enabled = False
    rule.save(update_fields=["enabled", "updated_at"])
    return rule
