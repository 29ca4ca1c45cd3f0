"""Rule induction: candidate rules proposed from the decided cases, by a shallow decision tree or
a rule-list learner (services/rule_list.py) over the same features.

Each pure-enough leaf of the tree (or each learned rule) becomes a condition in the rule language
(the path's tests) and a `decide` action (the majority label and its most common reason code).
Support and precision are then measured with the rule language itself, so they mean exactly what
a backtest would say; candidates equal to an existing rule or to a rejected one are dropped.
"""

import math
import random
from collections import Counter
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, QuerySet, Sum

from apps.cases.models import Case, CaseStatus, Process, ProcessSchemaVersion
from apps.rules.language import compile_predicate, describe_rule, validate_condition
from apps.rules.models import Rule
from apps.rules.services.rejections import fingerprint, rejected_fingerprints
from apps.rules.services.rule_list import learn_rule_list

MIN_DECIDED = 20
MAX_SAMPLE = 50_000
INDUCTION_CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Candidate:
    condition: dict
    action: dict
    sentence: str
    support: int  # decided cases the condition matches
    correct: int  # of those, decided as the action says
    method: str = "tree"

    @property
    def precision(self) -> float:
        return self.correct / self.support if self.support else 0.0

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.condition, self.action)


@dataclass(frozen=True)
class _Feature:
    """One column of the tree's input and how a split on it reads in the rule language."""

    field: str
    kind: str  # "number", "one_of", "flag", "at_fault"
    value: object = None


def _features(fields: list[dict]) -> list[_Feature]:
    features: list[_Feature] = []
    for spec in fields:
        if spec["type"] in ("number", "money"):
            features.append(_Feature(spec["name"], "number"))
        elif spec["type"] == "category":
            features += [_Feature(spec["name"], "one_of", choice) for choice in spec["choices"]]
        elif spec["type"] == "boolean":
            features.append(_Feature(spec["name"], "flag"))
        features.append(_Feature(spec["name"], "at_fault"))
    return features


def _row(features: list[_Feature], fields: dict, at_fault: list[str]) -> list[float]:
    values = []
    for feature in features:
        value = fields.get(feature.field)
        if feature.kind == "number":
            values.append(
                float(value)
                if isinstance(value, int | float) and not isinstance(value, bool)
                else math.nan
            )
        elif feature.kind == "one_of":
            values.append(1.0 if value == feature.value else 0.0)
        elif feature.kind == "flag":
            values.append(math.nan if value is None else float(bool(value)))
        else:
            values.append(1.0 if feature.field in at_fault else 0.0)
    return values


def _test(feature: _Feature, threshold: float, goes_right: bool) -> dict:
    if feature.kind == "number":
        return {
            "field": feature.field,
            "op": "gt" if goes_right else "le",
            "value": round(threshold, 2),
        }
    if feature.kind == "one_of":
        return {"field": feature.field, "op": "eq" if goes_right else "ne", "value": feature.value}
    if feature.kind == "flag":
        return {"field": feature.field, "op": "eq", "value": goes_right}
    test = {"field": "exception.fields", "op": "contains", "value": feature.field}
    return test if goes_right else {"not": test}


METHODS = ("tree", "rule_list")


def induce_rules(
    *,
    process: Process,
    method: str = "tree",
    max_depth: int = 3,
    min_precision: float = 0.8,
    seed: int = 0,
) -> list[Candidate]:
    """Candidate rules for `process`, best first, by `method` ("tree": the leaves of a shallow
    decision tree; "rule_list": greedy sequential covering). Candidates equal to an existing rule's
    condition, or to a rejected candidate (condition and action), are left out. Raises
    ValidationError for an unknown method or when there is too little to learn from (fewer than
    MIN_DECIDED decided cases, or a single label).

    Learning takes a while on thousands of cases, so what is learnt from a given set of decided
    cases is kept until a case is decided, reopened or settled differently (the key holds their
    count, ids and latest decision); existing and rejected rules are left out on every call."""
    if method not in METHODS:
        raise ValidationError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    schema = process.schema
    decided = Case.objects.filter(process=process, status=CaseStatus.DECIDED).exclude(
        final_label=""
    )
    state = decided.aggregate(n=Count("pk"), ids=Sum("pk"), last=Max("decided_at"))
    key = (
        f"rules:induced:{process.pk}:{schema.pk}:{method}:{max_depth}:{min_precision}:{seed}:"
        f"{state['n']}:{state['ids']}:{state['last'] and state['last'].isoformat()}"
    )
    learnt = cache.get(key)
    if learnt is None:
        learnt = _learn(
            decided=decided,
            schema=schema,
            method=method,
            max_depth=max_depth,
            min_precision=min_precision,
            seed=seed,
        )
        cache.set(key, learnt, INDUCTION_CACHE_SECONDS)
    existing = {
        _key(rule.current.condition)
        for rule in Rule.objects.filter(process=process).select_related("current")
    }
    rejected = rejected_fingerprints(process=process)
    return [
        candidate
        for candidate in learnt
        if _key(candidate.condition) not in existing and candidate.fingerprint not in rejected
    ]


def _learn(
    *,
    decided: QuerySet[Case],
    schema: ProcessSchemaVersion,
    method: str,
    max_depth: int,
    min_precision: float,
    seed: int,
) -> list[Candidate]:
    """Every candidate learnt from `decided`, best first (see induce_rules)."""
    rows = list(
        decided.values_list(
            "fields", "exception_reason", "exception_fields", "final_label", "final_reason_code"
        )
    )
    if len(rows) < MIN_DECIDED:
        raise ValidationError(
            f"need at least {MIN_DECIDED} decided cases to propose rules, have {len(rows)}"
        )
    if len({row[3] for row in rows}) < 2:
        raise ValidationError(
            "all decided cases have the same label: there is nothing to tell apart"
        )
    if len(rows) > MAX_SAMPLE:
        rows = random.Random(seed).sample(rows, MAX_SAMPLE)
    features = _features(schema.fields)
    matrix = [_row(features, fields, at_fault) for fields, _, at_fault, _, _ in rows]
    labels = [row[3] for row in rows]
    min_support = max(5, len(rows) // 100)
    if method == "tree":
        proposals = _tree_proposals(matrix, labels, max_depth, min_support, seed)
    else:
        import numpy as np

        proposals = [
            (rule.tests, rule.label)
            for rule in learn_rule_list(
                np.asarray(matrix, dtype=float),
                labels,
                numeric=[feature.kind == "number" for feature in features],
                min_support=min_support,
                min_precision=min_precision,
                max_tests=max_depth,
            )
        ]

    candidates: list[Candidate] = []
    seen: set[str] = set()
    for path, label in proposals:
        tests = [_test(features[f], t, right) for f, t, right in path]
        if not tests:
            continue
        condition = tests[0] if len(tests) == 1 else {"all": tests}
        try:
            validate_condition(condition, fields=schema.fields)
        except ValidationError:
            continue  # e.g. a threshold outside what the field accepts
        if _key(condition) in seen:
            continue
        seen.add(_key(condition))
        predicate = compile_predicate(condition, fields=schema.fields)
        matched = [row for row in rows if predicate(row[0], row[1], row[2])]
        correct = [row for row in matched if row[3] == label]
        if not matched or len(correct) / len(matched) < min_precision:
            continue
        codes = Counter(row[4] for row in correct if row[4])
        action: dict = {"decide": label}
        if schema.reason_codes(label):
            action["reason_code"] = (
                codes.most_common(1)[0][0] if codes else schema.reason_codes(label)[0]
            )
        candidates.append(
            Candidate(
                condition=condition,
                action=action,
                sentence=describe_rule(condition, action, fields=schema.fields),
                support=len(matched),
                correct=len(correct),
                method=method,
            )
        )
    candidates.sort(key=lambda c: (-c.precision, -c.support))
    return candidates


def _tree_proposals(
    matrix: list[list[float]], labels: list[str], max_depth: int, min_leaf: int, seed: int
) -> list[tuple[list[tuple[int, float, bool]], str]]:
    """(path, majority label) for every leaf of a shallow decision tree."""
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=seed)
    tree.fit(matrix, labels)
    return [
        (path, str(tree.classes_[tree.tree_.value[leaf][0].argmax()]))
        for path, leaf in _leaf_paths(tree.tree_)
    ]


def _key(condition: object) -> str:
    import json

    return json.dumps(condition, sort_keys=True)


def _leaf_paths(tree) -> list[tuple[list[tuple[int, float, bool]], int]]:  # type: ignore[no-untyped-def]
    """(path of (feature, threshold, went right), leaf id) for every leaf of a fitted sklearn tree."""
    paths = []
    stack: list[tuple[int, list[tuple[int, float, bool]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == right:  # a leaf
            paths.append((path, node))
            continue
        feature, threshold = int(tree.feature[node]), float(tree.threshold[node])
        stack.append((left, [*path, (feature, threshold, False)]))
        stack.append((right, [*path, (feature, threshold, True)]))
    return paths
