"""Inter-rater agreement measures for nominal labels: pure functions, standard library only.

Every measure returns a float, or None when it is undefined for its input, which callers show as
"not enough variation". Undefined means one of:

- no usable items (nothing was rated, or no item has the two ratings a comparison needs);
- a single category: when every rating is the same label, chance agreement is already perfect, so
  the measures divide zero by zero. Perfect agreement on one label says nothing about whether the
  raters could tell the labels apart, so we do not report it as 1.0.

Labels are any hashable values; `None` inside a unit means "missing" (only Krippendorff's alpha
and percent agreement accept it).
"""

from collections import Counter
from collections.abc import Hashable, Sequence
from itertools import combinations

Label = Hashable


def _present(unit: Sequence[Label | None]) -> list[Label]:
    return [value for value in unit if value is not None]


def percent_agreement(units: Sequence[Sequence[Label | None]]) -> float | None:
    """The share of agreeing rating pairs, averaged over units.

    Each unit is the list of labels it received (`None` = missing). Within a unit with m ratings,
    the m(m-1)/2 pairs are compared and the share that agree is the unit's agreement; the result is
    the mean over units with at least two ratings. For two ratings per unit this is simply the
    share of units where both agree. Returns None when no unit has two ratings. Unlike the kappas,
    it is defined for a single category (1.0): it does not correct for chance.
    """
    shares: list[float] = []
    for unit in units:
        values = _present(unit)
        if len(values) < 2:
            continue
        pairs = list(combinations(values, 2))
        shares.append(sum(a == b for a, b in pairs) / len(pairs))
    if not shares:
        return None
    return sum(shares) / len(shares)


def cohens_kappa(pairs: Sequence[tuple[Label, Label]]) -> float | None:
    """Cohen's kappa for two raters: (p_o - p_e) / (1 - p_e).

    `pairs` holds one (label from rater A, label from rater B) tuple per item both rated. p_o is
    the observed share of agreement, p_e the agreement expected by chance from each rater's own
    label distribution: sum over labels of p_A(label) * p_B(label).

    Returns None with no pairs, or when p_e is 1 (both raters gave one and the same label to every
    item: a single category). Ranges from -1 to 1; 0 is chance-level agreement.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second.get(label, 0) for label in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(items: Sequence[Sequence[Label]]) -> float | None:
    """Fleiss' kappa for any number of raters, every item rated the same number of times (n ≥ 2).

    Raters need not be the same people from item to item. With N items and n ratings each:
    P_i = (sum_j n_ij^2 - n) / (n(n-1)) is the agreement on item i (n_ij = ratings of label j),
    P̄ its mean, p_j the share of all ratings that are label j, P̄_e = sum_j p_j^2, and
    kappa = (P̄ - P̄_e) / (1 - P̄_e).

    Returns None with no items or when P̄_e is 1 (a single category). Raises ValueError when the
    items have different numbers of ratings or fewer than two (use Krippendorff's alpha then) or
    when a rating is missing (None).
    """
    if not items:
        return None
    n = len(items[0])
    if n < 2:
        raise ValueError("Fleiss' kappa needs at least two ratings per item")
    totals: Counter[Label] = Counter()
    per_item_agreement = 0.0
    for index, item in enumerate(items):
        if len(item) != n:
            raise ValueError(
                f"Fleiss' kappa needs the same number of ratings per item: item {index} has "
                f"{len(item)}, item 0 has {n}"
            )
        if any(value is None for value in item):
            raise ValueError(f"item {index} has a missing rating; use Krippendorff's alpha")
        counts = Counter(item)
        totals.update(counts)
        per_item_agreement += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
    observed = per_item_agreement / len(items)
    all_ratings = len(items) * n
    expected = sum((count / all_ratings) ** 2 for count in totals.values())
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorffs_alpha(units: Sequence[Sequence[Label | None]]) -> float | None:
    """Krippendorff's alpha for nominal labels: any number of raters, missing values allowed.

    Each unit is the list of values it received, `None` for a rater who did not rate it. Units
    with fewer than two values cannot be paired and are left out. From the coincidence matrix
    o_ck = sum over units of (number of ordered pairs (c, k) of distinct ratings) / (m_u - 1),
    with n_c = sum_k o_ck and n = sum_c n_c (the pairable values):

        alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c * n_k

    i.e. 1 - D_o / D_e, observed over expected disagreement. Returns None when no unit is
    pairable or all pairable values are one label (D_e = 0). 1 is perfect agreement, 0 chance.
    """
    observed_disagreement = 0.0
    totals: Counter[Label] = Counter()
    for unit in units:
        values = _present(unit)
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        totals.update(counts)
        # Ordered pairs of different labels within the unit, each weighted 1 / (m - 1).
        same = sum(c * (c - 1) for c in counts.values())
        observed_disagreement += (m * (m - 1) - same) / (m - 1)
    n = sum(totals.values())
    expected_disagreement = n * n - sum(c * c for c in totals.values())
    if n == 0 or expected_disagreement == 0:
        return None
    return 1.0 - (n - 1) * observed_disagreement / expected_disagreement
