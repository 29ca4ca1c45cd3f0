"""Backtests in PostgreSQL: what a rule would have done to the cases experts already decided.

The statistics follow Snorkel's labeling-function analysis: coverage, polarity, overlaps and
conflicts with the other rules, and empirical precision against the experts' final decisions.
"""

import time

from django.db import connection
from django.utils import timezone

from apps.cases.models import Process
from apps.rules.language import compile_sql
from apps.rules.models import Rule, RuleVersion

WRONG_CASES_SHOWN = 50


def _decides(action: dict) -> str | None:
    return action.get("decide") if isinstance(action, dict) else None


def backtest_condition(
    *, process: Process, condition: object, action: dict, exclude_rule_id: int | None = None
) -> dict:
    """Run the numbers for `condition`/`action` over the process's cases. Precondition: both are
    valid for the process's schema. Returns a JSON-ready dict (stored on the rule version)."""
    started = time.perf_counter()
    fields = process.schema.fields
    rule_sql, rule_params = compile_sql(condition, fields=fields, alias="c")
    label = _decides(action)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FILTER (WHERE c.status = 'decided'),
                   count(*) FILTER (WHERE c.status = 'decided' AND ({rule_sql})),
                   count(*) FILTER (WHERE c.status = 'decided' AND ({rule_sql}) AND c.final_label = %s),
                   count(*) FILTER (WHERE c.status <> 'decided' AND ({rule_sql}))
            FROM cases_case c WHERE c.process_id = %s
            """,  # noqa: S608 (compiled from the validated tree; values are parameters)
            [*rule_params, *rule_params, label or "", *rule_params, process.pk],
        )
        decided, covered, correct, undecided_matches = cursor.fetchone()
        cursor.execute(
            f"""
            SELECT c.final_label, count(*) FROM cases_case c
            WHERE c.process_id = %s AND c.status = 'decided' AND ({rule_sql})
            GROUP BY c.final_label ORDER BY count(*) DESC
            """,  # noqa: S608
            [process.pk, *rule_params],
        )
        outcomes = dict(cursor.fetchall())
        wrong: list[dict] = []
        if label:
            cursor.execute(
                f"""
                SELECT c.id, c.external_id, c.final_label FROM cases_case c
                WHERE c.process_id = %s AND c.status = 'decided' AND ({rule_sql}) AND c.final_label <> %s
                ORDER BY c.decided_at DESC LIMIT %s
                """,  # noqa: S608
                [process.pk, *rule_params, label, WRONG_CASES_SHOWN],
            )
            wrong = [
                {"id": pk, "external_id": ext, "final_label": final}
                for pk, ext, final in cursor.fetchall()
            ]
        others = _overlaps(cursor, process, rule_sql, rule_params, label, exclude_rule_id)
    return {
        "decided_cases": decided,
        "covered": covered,
        "coverage": covered / decided if decided else None,
        "correct": correct if label else None,
        "precision": (correct / covered) if label and covered else None,
        "polarity": [label] if label else [],
        "outcomes": outcomes,
        "undecided_matches": undecided_matches,
        "wrong_cases": wrong,
        "overlaps": others,
        "overlap_count": sum(o["overlap"] for o in others),
        "conflict_count": sum(o["conflicts"] for o in others),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _overlaps(cursor, process, rule_sql, rule_params, label, exclude_rule_id) -> list[dict]:  # type: ignore[no-untyped-def]
    """Decided cases this rule shares with each other enabled rule, and how many of those the two
    would label differently (conflicts)."""
    other_rules = list(
        Rule.objects.filter(process=process, enabled=True)
        .exclude(pk=exclude_rule_id)
        .select_related("current")
    )
    if not other_rules:
        return []
    parts, params = [], []
    for other in other_rules:
        other_sql, other_params = compile_sql(
            other.current.condition, fields=process.schema.fields, alias="c"
        )
        parts.append(f"count(*) FILTER (WHERE ({other_sql}))")
        params += other_params
    cursor.execute(
        f"SELECT {', '.join(parts)} FROM cases_case c "  # noqa: S608
        f"WHERE c.process_id = %s AND c.status = 'decided' AND ({rule_sql})",
        [*params, process.pk, *rule_params],
    )
    counts = cursor.fetchone()
    result = []
    for other, overlap in zip(other_rules, counts, strict=True):
        other_label = _decides(other.current.action)
        conflicts = overlap if (label and other_label and other_label != label) else 0
        if overlap:
            result.append(
                {"rule": other.pk, "name": other.name, "overlap": overlap, "conflicts": conflicts}
            )
    return result


def backtest_rule(*, rule: Rule) -> RuleVersion:
    """Backtest the rule's current version and store the result on it."""
    version = rule.current
    version.backtest = backtest_condition(
        process=rule.process,
        condition=version.condition,
        action=version.action,
        exclude_rule_id=rule.pk,
    )
    version.backtested_at = timezone.now()
    version.save(update_fields=["backtest", "backtested_at"])
    return version
