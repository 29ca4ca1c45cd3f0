"""How alike two cases are for deciding them: field by field, weighted by what decides cases.

The embedding (apps/cases/embeddings.py) finds cases that *read* alike: same vendor, same words.
It is blind to magnitudes, so a 45,000 EUR claim sits next to 3,000 EUR ones. A precedent must be
alike in what decides the case. So every part of a case (each schema field, and the exception
reason) is compared on its own, on a 0 to 1 scale:

- numbers and dates: exp(-|a - b| / spread), the spread being the part's robust standard
  deviation over the decided cases (money on a log scale: 45,000 vs 15,000 is far, 45,000 vs
  60,000 is near), times how alike the decisions are on either side: a small decision tree
  cuts the number where decisions change (a policy's 25,000 EUR limit), and two values in
  stretches whose cases were decided differently are far apart however near the numbers;
- categories, yes/no, templated text and the exception reason: 1 when equal; two different
  values are at most 0.8 alike, as alike as the mixes of decisions their cases received (the
  value difference metric: two vendors whose invoices end the same way are near);
- free text: the share of words the two have in common (Jaccard); text nearly every case has
  its own (invoice or policy numbers) is an identifier and left out;
- missing on both sides counts as equal, on one side as different.

The closeness of two cases is the weighted mean of their parts' similarities, 0 to 1. Half the
weight is spread evenly, half goes by what decides cases: the promoted model's field importance
when a downstream app provides one (apps.core.registry.precedent_weights), otherwise how much each
part alone tells about the final label over the decided cases (information gain, less the gain
many-valued parts show by chance); below 30 decided cases every part weighs the same.
`Metric(..., by_decisions=False)` compares raw values only (plain nearest neighbours, the
baseline of bench/precedents.py). A search scores the whole pool with array operations: the
metric keeps each value it has seen as a number or a code (Metric.encode), and a part compared by
value is compared once per distinct value. Nothing here touches the database, so tests and the
bench run the same code on generated data.
"""

import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

EXCEPTION_REASON = "exception_reason"  # the same source name as the classifiers' features
# Below this many decided cases, information gain is mostly noise: every part weighs the same.
MIN_CASES_FOR_WEIGHTS = 30
# Half of the weight is spread evenly over the parts, half goes by what decides cases: every
# decisive part counts (a policy has several), and one estimate of importance never rules alone.
EVEN_SHARE = 0.5
# A part whose similarity is below this is named as a difference.
DIFFERS_BELOW = 0.5
NUMBER_BINS = 8
# Above this share of distinct values a text field is an identifier (as for the classifiers).
IDENTIFIER_SHARE = 0.9
# Numbers are cut where decisions change into at most this many + 1 stretches.
CUTS = 7
# How much a value seen N times counts against the overall mix of decisions (m-estimate).
PROFILE_SMOOTHING = 2.0
# Two different values whose cases end the same way are this alike at most.
UNEQUAL_BUT_ALIKE = 0.8
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Part:
    """One comparable part of a case: a schema field or the exception reason."""

    name: str
    label: str
    kind: str  # "number", "money", "date", "category", "text"


def comparable_parts(specs: list[dict]) -> list[Part]:
    kinds = {
        "number": "number",
        "money": "money",
        "date": "date",
        "datetime": "date",
        "boolean": "category",
        "category": "category",
        "text": "text",
    }
    parts = [
        Part(spec["name"], spec.get("label") or spec["name"], kinds[spec["type"]])
        for spec in specs
        if spec.get("type") in kinds
    ]
    parts.append(Part(EXCEPTION_REASON, "Exception", "category"))
    return parts


def _comparable(part: Part, fields: dict, exception_reason: str) -> object:
    """The value of `part` in a form that compares: a float, a string, a word set or None."""
    value = exception_reason if part.name == EXCEPTION_REASON else fields.get(part.name)
    if value is None or value == "":
        return None
    if part.kind in ("number", "money"):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return None
        if part.kind == "money":  # amounts compare by ratio, not by difference
            return math.copysign(math.log1p(abs(value)), value)
        return float(value)
    if part.kind == "date":
        try:
            return float(date.fromisoformat(str(value)[:10]).toordinal())
        except ValueError:
            return None
    if part.kind == "text":
        words = frozenset(_WORD.findall(str(value).lower()))
        return words or None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass(frozen=True)
class Example:
    """A decided case as the comparison sees it."""

    fields: dict
    exception_reason: str = ""
    label: str = ""


class Metric:
    """What the decided cases of a process say about comparing its cases, learnt once from a pool
    and reused for many searches: each part's weight, and for decisive values how alike their
    decisions are (the value difference metric: two vendors whose cases end the same way are
    near; numbers are cut where the decisions change, e.g. at a policy's 25,000 EUR limit)."""

    def __init__(
        self,
        specs: list[dict],
        pool: Sequence[Example],
        weights: dict[str, float] | None = None,
        *,
        source: str = "model",
        by_decisions: bool = True,
    ) -> None:
        pool = list(pool)
        self.size = len(pool)
        # The pool's values as codes, kept for the searches under this metric (Metric.encode).
        self._encoding_lock = threading.Lock()
        self._memo: dict[str, dict[tuple, float | int]] = {}
        self._codes: dict[str, dict[object, int]] = {}
        self._values: dict[str, list[object]] = {}
        self._profile_matrix: dict[str, np.ndarray] = {}
        self._bin_profiles: dict[str, np.ndarray] = {}
        self.parts, values = [], []
        for part in comparable_parts(specs):
            column = _column(part, pool)
            if not _identifier(part, column):
                self.parts.append(part)
                values.append(column)
        labels = [ex.label for ex in pool]
        self.labels = sorted(set(labels))
        label_index = {label: i for i, label in enumerate(self.labels)}
        label_ids = np.array([label_index[label] for label in labels], dtype=int)
        self.prior = _distribution(label_ids, len(self.labels))
        self.spreads: dict[str, float] = {}
        self.cuts: dict[str, np.ndarray] = {}
        self.profiles: dict[str, dict[object, np.ndarray]] = {}
        for part, column in zip(self.parts, values, strict=True):
            if part.kind in ("number", "money", "date"):
                self.spreads[part.name] = _spread(column)  # type: ignore[arg-type]
            if not by_decisions:  # raw-field similarity only (the baseline of bench/precedents.py)
                continue
            if part.kind in ("number", "money", "date"):
                self.cuts[part.name] = _decision_cuts(column, label_ids)  # type: ignore[arg-type]
            if len(self.labels) > 1 and (part.kind != "text" or _templated(column)):
                keys = self.keys(part, column)
                self.profiles[part.name] = _profiles(keys, label_ids, len(self.labels), self.prior)
        if weights is None:
            weights = _label_information(self.parts, values, labels)
            self.weights_source = "decided" if weights else "equal"
        else:
            weights = {p.name: max(0.0, float(weights.get(p.name, 0.0))) for p in self.parts}
            self.weights_source = source
        if not weights or not any(weights.values()):
            weights = {part.name: 1.0 for part in self.parts}
            self.weights_source = "equal"
        total = sum(weights.get(p.name, 0.0) for p in self.parts)
        self.weights = {
            p.name: EVEN_SHARE / len(self.parts)
            + (1 - EVEN_SHARE) * weights.get(p.name, 0.0) / total
            for p in self.parts
        }

    def keys(self, part: Part, column: list[object] | np.ndarray) -> list[object]:
        """The value each case has for `part`, as the decision profiles know it."""
        if part.name in self.cuts:
            array = np.asarray(column, dtype=float)
            bins = np.searchsorted(self.cuts[part.name], array, side="right")
            return [None if math.isnan(a) else int(b) for a, b in zip(array, bins, strict=True)]
        return list(column)

    def encode(self, part: Part, pool: Sequence[Example]) -> np.ndarray:
        """`part` of every pool case as an array: numbers (NaN when missing) for numbers and
        dates, otherwise a code per distinct comparable value. Each raw value is converted once
        per learnt metric (values repeat across cases and searches): a search then scores the
        whole pool with array operations."""
        with self._encoding_lock:
            memo = self._memo.setdefault(part.name, {})
            numeric = part.kind in ("number", "money", "date")
            codes: list[float] | list[int] = []
            for ex in pool:
                raw = (
                    ex.exception_reason
                    if part.name == EXCEPTION_REASON
                    else ex.fields.get(part.name)
                )
                key = (raw.__class__, raw)  # True and 1 are equal keys, yet "yes" and "1"
                try:
                    codes.append(memo[key])
                except KeyError:
                    code = self._code(part, _comparable(part, ex.fields, ex.exception_reason))
                    memo[key] = code
                    codes.append(code)
                except TypeError:  # an unhashable value (a list in a JSON field)
                    codes.append(
                        self._code(part, _comparable(part, ex.fields, ex.exception_reason))
                    )
            return np.array(codes, dtype=float if numeric else np.intp)

    def _code(self, part: Part, value: object) -> float | int:
        if part.kind in ("number", "money", "date"):
            return math.nan if value is None else float(value)  # type: ignore[arg-type]
        codes = self._codes.setdefault(part.name, {})
        if value not in codes:
            codes[value] = len(codes)
            self._values.setdefault(part.name, []).append(value)
        return codes[value]

    def similarity_by_code(self, part: Part, mine: object) -> np.ndarray:
        """For a part compared by value: how alike `mine` is to each coded value (index = code)."""
        with self._encoding_lock:
            values = list(self._values.get(part.name, []))
            own = self._codes.get(part.name, {}).get(mine, -1)
        if part.kind == "text" and part.name not in self.profiles:
            return np.array([_jaccard(mine, other) for other in values], dtype=float)
        equal = np.arange(len(values)) == own
        if part.name not in self.profiles:
            return equal.astype(float)
        # Different values whose cases end alike are near, never quite equal.
        likeness = self._likeness(part.name, self._profile_rows(part.name, values), mine)
        return np.where(equal, 1.0, UNEQUAL_BUT_ALIKE * likeness)

    def _profile_rows(self, name: str, values: list[object]) -> np.ndarray:
        """The decision mix of each coded value (the overall mix for a value no decided case had)."""
        rows = self._profile_matrix.get(name)
        if rows is None or len(rows) < len(values):
            profiles = self.profiles[name]
            rows = np.array(
                [profiles.get(value, self.prior) for value in values], dtype=float
            ).reshape(len(values), len(self.labels))
            self._profile_matrix[name] = rows
        return rows[: len(values)]

    def _likeness(self, name: str, profiles: np.ndarray, key: object) -> np.ndarray:
        """1 - half the distance between the decisions cases with `key` received and each row
        of `profiles` (0: never the same decision, 1: the same mix)."""
        own = self.profiles[name].get(key, self.prior)
        return 1 - 0.5 * np.abs(own - profiles).sum(axis=1)

    def number_likeness(self, part: Part, mine: object, values: np.ndarray) -> np.ndarray | None:
        """How alike the decisions are in the stretch (between cut points) of `mine` and of each
        of `values`, or None when the part has no profiles."""
        if part.name not in self.profiles:
            return None
        cuts = self.cuts[part.name]
        rows = self._bin_profiles.get(part.name)
        if rows is None:  # one row per stretch, the last for a missing value
            profiles = self.profiles[part.name]
            keys = [*range(len(cuts) + 1), None]
            rows = np.array([profiles.get(key, self.prior) for key in keys], dtype=float)
            self._bin_profiles[part.name] = rows
        own = None if mine is None else self.keys(part, [mine])[0]
        by_bin = self._likeness(part.name, rows, own)
        bins = np.searchsorted(cuts, values, side="right")
        bins[np.isnan(values)] = len(cuts) + 1
        return by_bin[bins]


class Comparison:
    """A pool of decided cases, ready to rank by closeness to any case under a `Metric` (given,
    e.g. cached by the caller, or learnt from this pool with `weights` as for Metric)."""

    def __init__(
        self,
        specs: list[dict],
        pool: Sequence[Example],
        weights: dict[str, float] | None = None,
        *,
        source: str = "model",
        by_decisions: bool = True,
        metric: Metric | None = None,
    ) -> None:
        self.pool = list(pool)
        self.metric = metric or Metric(
            specs, self.pool, weights, source=source, by_decisions=by_decisions
        )
        self.parts = self.metric.parts
        self.weights = self.metric.weights
        self.weights_source = self.metric.weights_source
        self.columns = [self.metric.encode(part, self.pool) for part in self.parts]

    def similarities(self, fields: dict, exception_reason: str = "") -> np.ndarray:
        """One row per part, one column per pool case: how alike each part is, 0 to 1."""
        rows = []
        for part, theirs in zip(self.parts, self.columns, strict=True):
            mine = _comparable(part, fields, exception_reason)
            if part.kind in ("number", "money", "date"):
                missing = np.isnan(theirs)
                if mine is None:
                    row = missing.astype(float)
                else:
                    with np.errstate(invalid="ignore"):
                        distance = np.abs(theirs - float(mine)) / self.metric.spreads[part.name]  # type: ignore[arg-type]
                    row = np.where(missing, 0.0, np.exp(-distance))
                likeness = self.metric.number_likeness(part, mine, theirs)
                if likeness is not None:
                    row = row * likeness
            else:
                row = self.metric.similarity_by_code(part, mine)[theirs]
            rows.append(row)
        return np.vstack(rows) if rows else np.zeros((0, len(self.pool)))

    def closeness(self, similarities: np.ndarray) -> np.ndarray:
        weights = np.array([self.weights[part.name] for part in self.parts])
        return weights @ similarities

    def nearest(self, fields: dict, exception_reason: str = "", *, k: int = 5) -> list["Match"]:
        """The k pool cases closest to this case, closest first (ties: the earlier pool case
        first; the selector's pool is newest first)."""
        if not self.pool:
            return []
        similarities = self.similarities(fields, exception_reason)
        scores = self.closeness(similarities)
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            Match(
                index=int(i),
                closeness=float(scores[i]),
                differences=self._differences(similarities[:, i]),
            )
            for i in order
        ]

    def _differences(self, column: np.ndarray) -> list[Part]:
        """The parts that differ, those that cost the most closeness first."""
        differing = [
            (self.weights[part.name] * (1 - similarity), part)
            for part, similarity in zip(self.parts, column, strict=True)
            if similarity < DIFFERS_BELOW
        ]
        return [part for _, part in sorted(differing, key=lambda pair: -pair[0])]


@dataclass(frozen=True)
class Match:
    index: int  # in the pool
    closeness: float
    differences: list[Part]  # parts that differ, the weightiest first


def _column(part: Part, pool: Sequence[Example]) -> list[object] | np.ndarray:
    # Values repeat across cases (vendors, dates, templated notes): each distinct one is read once.
    seen: dict[object, object] = {}
    values = []
    for ex in pool:
        raw = ex.exception_reason if part.name == EXCEPTION_REASON else ex.fields.get(part.name)
        try:
            values.append(seen[raw])
        except KeyError:
            value = _comparable(part, ex.fields, ex.exception_reason)
            seen[raw] = value
            values.append(value)
        except TypeError:  # an unhashable value (a list in a JSON field)
            values.append(_comparable(part, ex.fields, ex.exception_reason))
    if part.kind in ("number", "money", "date"):
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return values


def _identifier(part: Part, values: object) -> bool:
    """Free text nearly every case has its own (invoice numbers, policy numbers) tells nothing
    about other cases: it is left out of the comparison."""
    known = [value for value in values if value is not None]  # type: ignore[attr-defined]
    return (
        part.kind == "text"
        and len(known) >= MIN_CASES_FOR_WEIGHTS
        and len(set(known)) > IDENTIFIER_SHARE * len(known)
    )


def _templated(values: object) -> bool:
    """Text with few wordings (a form's sentences) is compared as categories; free text by words."""
    values = list(values)  # type: ignore[call-overload]
    return len(set(values)) <= len(values) / 2


def _distribution(label_ids: np.ndarray, count: int) -> np.ndarray:
    counts = np.bincount(label_ids, minlength=count).astype(float)
    return counts / counts.sum() if counts.sum() else np.full(count, 1 / max(count, 1))


def _profiles(
    keys: list[object], label_ids: np.ndarray, count: int, prior: np.ndarray
) -> dict[object, np.ndarray]:
    """The mix of decisions per value, smoothed towards the overall mix (m-estimate): a value
    seen twice says little."""
    counts: dict[object, np.ndarray] = {}
    # Counted in Python first: adding to array items one by one costs more than the rest.
    for (key, label), found in Counter(zip(keys, label_ids.tolist(), strict=True)).items():
        counts.setdefault(key, np.zeros(count))[label] = found
    return {
        key: (found + PROFILE_SMOOTHING * prior) / (found.sum() + PROFILE_SMOOTHING)
        for key, found in counts.items()
    }


def _decision_cuts(values: np.ndarray, label_ids: np.ndarray) -> np.ndarray:
    """Where the decisions change along a number: a small decision tree's thresholds on it."""
    from sklearn.tree import DecisionTreeClassifier

    known = ~np.isnan(values)
    if known.sum() < MIN_CASES_FOR_WEIGHTS or len(set(label_ids[known])) < 2:
        return np.array([])
    tree = DecisionTreeClassifier(
        max_leaf_nodes=CUTS + 1, min_samples_leaf=max(5, int(known.sum()) // 100), random_state=0
    )
    tree.fit(values[known].reshape(-1, 1), label_ids[known])
    thresholds = tree.tree_.threshold[tree.tree_.feature >= 0]
    return np.unique(thresholds)


def _label_information(
    parts: list[Part], values: list[list[object] | np.ndarray], labels: list[str]
) -> dict[str, float]:
    """Each part's information gain about the final label, as a share of the label's entropy,
    less the gain its number of values would show by chance; {} when the pool is too small or
    has one label only."""
    if len(labels) < MIN_CASES_FOR_WEIGHTS or len(set(labels)) < 2:
        return {}
    base = _entropy(Counter(labels).values())
    information = {}
    for part, column in zip(parts, values, strict=True):
        gains = [_gain(keys, labels, base) for keys in _groupings(part, column)]
        information[part.name] = max(0.0, max(gains, default=0.0)) / base
    return information


def _groupings(part: Part, values: list[object] | np.ndarray) -> list[list[object]]:
    """Ways of grouping the pool by this part whose label purity tells how decisive it is."""
    if part.kind in ("number", "money", "date"):
        array = np.asarray(values, dtype=float)
        known = array[~np.isnan(array)]
        if not len(known):
            return []
        edges = np.unique(np.quantile(known, np.linspace(0, 1, NUMBER_BINS + 1)[1:-1]))
        bins = np.searchsorted(edges, array, side="right")
        return [[None if math.isnan(a) else int(b) for a, b in zip(array, bins, strict=True)]]
    values = list(values)
    if part.kind == "text" and not _templated(values):
        # Free text: the presence of each of its common words.
        counts = Counter(word for words in values if words for word in words)  # type: ignore[attr-defined]
        return [
            [bool(words and word in words) for words in values]  # type: ignore[operator]
            for word, _ in counts.most_common(20)
        ]
    return [values]


def _spread(values: np.ndarray) -> float:
    known = values[~np.isnan(values)]
    if len(known) < 2:
        return 1.0
    low, high = np.quantile(known, [0.25, 0.75])
    spread = (high - low) / 1.349  # the standard deviation of a normal distribution
    if spread <= 0:
        spread = float(np.std(known))
    return float(spread) if spread > 0 else 1.0


def _jaccard(mine: object, other: object) -> float:
    if mine is None or other is None:
        return 1.0 if mine is other else 0.0
    assert isinstance(mine, frozenset)
    assert isinstance(other, frozenset)
    return len(mine & other) / len(mine | other)


def _entropy(counts: object) -> float:
    counts = list(counts)  # type: ignore[call-overload]
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c)


def _gain(keys: list[object], labels: list[str], base: float) -> float:
    groups: dict[object, list[int]] = {}
    for (key, _), count in Counter(zip(keys, labels, strict=True)).items():
        groups.setdefault(key, []).append(count)
    total = len(labels)
    remaining = sum(sum(counts) / total * _entropy(counts) for counts in groups.values())
    # A part with many values separates labels by chance alone (Miller-Madow bias of the gain).
    chance = (len(groups) - 1) * (len(set(labels)) - 1) / (2 * total)
    return base - remaining - chance
