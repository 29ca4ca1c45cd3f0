"""A rule-list learner: greedy sequential covering (CN2-like), the alternative to the tree.

For each decision label in turn, rules are grown one test at a time, each time adding the test
with the best FOIL gain (as RIPPER grows rules): how many of the label's rows no earlier rule
covered the rule keeps, times how much the test raises the rule's (Laplace-corrected) precision
for that label over *all* rows, while it still covers enough of those rows. Covered rows of the label are
then set aside and the next rule is grown, until too few are left. Rules are therefore precise on
their own (each becomes a separate rule of a first-match set), and together they cover the label.

It works on the same matrix and features as the tree (numbers as values, each category choice,
flag and "field at fault" as 0/1 columns, NaN where a value is missing); a test is the same
(feature, threshold, goes right) triple as a path step of the tree, so both read back into the
rule language the same way.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np

Test = tuple[int, float, bool]  # (feature index, threshold, value > threshold?)
MAX_CUTS = 64


@dataclass(frozen=True)
class LearnedRule:
    tests: list[Test]
    label: str
    covered: int
    correct: int


def _cut_points(values: np.ndarray) -> list[float]:
    """Midpoints between consecutive distinct values, or between distinct quantiles when many."""
    distinct = np.unique(values)
    if len(distinct) > MAX_CUTS:
        distinct = np.unique(np.quantile(values, np.linspace(0, 1, MAX_CUTS + 1)))
    return [float((a + b) / 2) for a, b in itertools.pairwise(distinct)]


def _literals(matrix: np.ndarray, numeric: list[bool]) -> list[tuple[Test, np.ndarray]]:
    literals = []
    for column in range(matrix.shape[1]):
        values = matrix[:, column]
        present = ~np.isnan(values)
        thresholds = _cut_points(values[present]) if numeric[column] else [0.5]
        for threshold in thresholds:
            low = present & (values <= threshold)
            high = present & (values > threshold)
            if low.any() and high.any():
                literals.append(((column, threshold, False), low))
                literals.append(((column, threshold, True), high))
    return literals


def _laplace(correct: int, covered: int) -> float:
    return (correct + 1) / (covered + 2)


def learn_rule_list(
    matrix: np.ndarray,
    labels: list[str],
    *,
    numeric: list[bool],
    min_support: int,
    min_precision: float = 0.8,
    max_tests: int = 3,
    max_rules_per_label: int = 5,
) -> list[LearnedRule]:
    """Rules, per label in order of frequency, each in the order it was learned. `matrix` is
    rows by features (NaN for missing); `numeric[j]` tells whether column j is a number (else 0/1).
    A rule must cover at least `min_support` rows and reach `min_precision` on all rows."""
    target = np.asarray(labels)
    literals = _literals(matrix, numeric)
    everything = np.ones(len(target), dtype=bool)
    names, counts = np.unique(target, return_counts=True)
    learned: list[LearnedRule] = []
    for label in names[np.argsort(-counts, kind="stable")]:
        positive = target == label
        left = positive.copy()  # rows of this label no rule covers yet
        for _ in range(max_rules_per_label):
            if left.sum() < min_support:
                break
            rule = _grow(literals, everything, positive, left, min_support, max_tests)
            if rule is None:
                break
            tests, covered = rule
            correct = int((covered & positive).sum())
            total = int(covered.sum())
            if correct / total < min_precision:
                break
            learned.append(LearnedRule(tests, str(label), total, correct))
            left &= ~covered
    return learned


def _grow(
    literals: list[tuple[Test, np.ndarray]],
    start: np.ndarray,
    positive: np.ndarray,
    left: np.ndarray,
    min_support: int,
    max_tests: int,
) -> tuple[list[Test], np.ndarray] | None:
    """Add the test with the best FOIL gain (RIPPER's: the label's not-yet-covered rows the rule
    keeps, times how much the test raises its precision) until the rule is pure or no test
    gains; None when no test helps at all."""
    tests: list[Test] = []
    covered = start
    precision = _laplace(int((covered & positive).sum()), int(covered.sum()))
    for _ in range(max_tests):
        best: tuple[float, Test, np.ndarray, float] | None = None
        for test, mask in literals:
            if test in tests:
                continue
            candidate = covered & mask
            new = int((candidate & left).sum())
            if new < min_support:
                continue
            after = _laplace(int((candidate & positive).sum()), int(candidate.sum()))
            gain = new * (math.log2(after) - math.log2(precision))
            if best is None or gain > best[0]:
                best = (gain, test, candidate, after)
        if best is None or best[0] <= 1e-9:
            break
        _, test, covered, precision = best
        tests.append(test)
        if not (covered & ~positive).any():
            break  # pure: nothing left to gain
    return (_tightest(tests), covered) if tests else None


def _tightest(tests: list[Test]) -> list[Test]:
    """Of several thresholds on one feature in one direction, only the tightest matters."""
    kept: dict[tuple[int, bool], Test] = {}
    for test in tests:
        feature, threshold, right = test
        other = kept.get((feature, right))
        if other is None or (threshold > other[1] if right else threshold < other[1]):
            kept[(feature, right)] = test
    return [test for test in tests if kept[(test[0], test[2])] == test]
