from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet

from apps.cases.models import Process
from apps.people.models import Role
from apps.people.selectors import AnyUser, roles_of
from apps.rules.language import compile_sql
from apps.rules.models import RejectedCandidate, Rule

FLAG_SAMPLE = 20_000  # rule-set flags look at this many of the most recently decided cases
# Pairwise counts grow with the square of this (and PostgreSQL returns at most 1,664 columns).
MAX_FLAGGED_RULES = 50


def rules_of(*, process: Process) -> QuerySet[Rule]:
    return (
        Rule.objects.filter(process=process)
        .select_related("current", "owner")
        .order_by("priority", "pk")
    )


def can_author(*, user: AnyUser, process: Process) -> bool:
    """The team's experts, managers and admins write, backtest and enable rules."""
    return bool(roles_of(user=user, team=process.team) & {Role.EXPERT, Role.MANAGER, Role.ADMIN})


def rejections_of(*, process: Process) -> QuerySet[RejectedCandidate]:
    """The process's rejected candidate rules, latest first, with who rejected them."""
    return RejectedCandidate.objects.filter(process=process).select_related("rejected_by")


@dataclass(frozen=True)
class RuleFlag:
    kind: str  # "overlap", "conflict", "shadowed", "unused" or "stale"
    text: str
    other: int | None = None  # the other rule's id, for overlaps and conflicts


def _decides(rule: Rule) -> str | None:
    action = rule.current.action
    return action.get("decide") if isinstance(action, dict) else None


def rule_set_flags(*, process: Process, sample: int = FLAG_SAMPLE) -> dict[int, list[RuleFlag]]:
    """For each enabled rule (by first-match order), what the rule set does to it on the `sample`
    most recently decided cases: which other enabled rules it overlaps with, which of those would
    decide the shared cases differently (conflicts), and whether it is shadowed — it matches
    cases but an earlier rule always matches them first. One query: every rule's condition is
    evaluated once per case, then counted in pairs. A rule that no longer fits the current schema
    (a field dropped or retyped) is flagged "stale" and left out of the counts."""
    fields = process.schema.fields
    rules, columns, params = [], [], []
    stale: dict[int, list[RuleFlag]] = {}
    for rule in rules_of(process=process).filter(enabled=True)[:MAX_FLAGGED_RULES]:
        try:
            sql, rule_params = compile_sql(rule.current.condition, fields=fields, alias="c")
        except ValidationError as exc:
            reason = " ".join(exc.messages)
            text = f"no longer fits the schema ({reason}): it matches nothing until revised"
            stale[rule.pk] = [RuleFlag("stale", text)]
            continue
        columns.append(f"({sql}) AS r{len(rules)}")
        params += rule_params
        rules.append(rule)
    if not rules:
        return stale
    counts = [f"count(*) FILTER (WHERE r{i})" for i in range(len(rules))]
    counts += [
        f"count(*) FILTER (WHERE r{i} AND NOT ({' OR '.join(f'r{j}' for j in range(i))}))"
        for i in range(1, len(rules))
    ]
    pairs = [(i, j) for i in range(len(rules)) for j in range(i + 1, len(rules))]
    counts += [f"count(*) FILTER (WHERE r{i} AND r{j})" for i, j in pairs]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH m AS MATERIALIZED (
                SELECT {", ".join(columns)} FROM cases_case c
                WHERE c.process_id = %s AND c.status = 'decided'
                ORDER BY c.decided_at DESC NULLS LAST LIMIT %s
            )
            SELECT {", ".join(counts)} FROM m
            """,  # noqa: S608 (compiled from validated trees; values are parameters)
            [*params, process.pk, sample],
        )
        row = cursor.fetchone()
    n = len(rules)
    matched = row[:n]
    first = [matched[0], *row[n : 2 * n - 1]]
    shared = dict(zip(pairs, row[2 * n - 1 :], strict=True))
    flags: dict[int, list[RuleFlag]] = {rule.pk: [] for rule in rules}
    for (i, j), together in shared.items():
        if not together:
            continue
        a, b = rules[i], rules[j]
        differ = _decides(a) and _decides(b) and _decides(a) != _decides(b)
        for this, other in ((a, b), (b, a)):
            if differ:
                text = f"conflicts with “{other.name}” ({together} cases decided differently)"
            else:
                text = f"overlaps with “{other.name}” ({together} cases)"
            flags[this.pk].append(RuleFlag("conflict" if differ else "overlap", text, other.pk))
    for index, rule in enumerate(rules):
        if matched[index] and not first[index]:
            flags[rule.pk].insert(
                0,
                RuleFlag(
                    "shadowed",
                    f"shadowed: never first under first-match (earlier rules take all "
                    f"{matched[index]} of its cases)",
                ),
            )
        elif not matched[index]:
            flags[rule.pk].insert(0, RuleFlag("unused", "matches none of the decided cases"))
    return {**flags, **stale}
