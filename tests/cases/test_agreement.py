"""Agreement measures against published worked examples, by-hand computations and identities."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.cases.agreement import (
    cohens_kappa,
    fleiss_kappa,
    krippendorffs_alpha,
    percent_agreement,
)


def pairs_from_table(yes_yes: int, yes_no: int, no_yes: int, no_no: int) -> list[tuple[str, str]]:
    return (
        [("yes", "yes")] * yes_yes
        + [("yes", "no")] * yes_no
        + [("no", "yes")] * no_yes
        + [("no", "no")] * no_no
    )


def test_cohens_kappa_matches_the_wikipedia_worked_example():
    # https://en.wikipedia.org/wiki/Cohen%27s_kappa, "Simple example": p_o = 0.7, p_e = 0.5.
    assert cohens_kappa(pairs_from_table(20, 5, 10, 15)) == pytest.approx(0.4)


def test_cohens_kappa_differs_for_the_same_percent_agreement_as_on_wikipedia():
    # Wikipedia, "Same percentages but different numbers": both tables agree on 60 of 100 items,
    # kappa 0.1304 and 0.2593.
    first = pairs_from_table(45, 15, 25, 15)
    second = pairs_from_table(25, 35, 5, 35)
    assert percent_agreement(first) == percent_agreement(second) == pytest.approx(0.6)
    assert cohens_kappa(first) == pytest.approx(0.1304, abs=1e-4)
    assert cohens_kappa(second) == pytest.approx(0.2593, abs=1e-4)


def test_cohens_kappa_is_one_for_perfect_agreement_and_negative_for_systematic_disagreement():
    assert cohens_kappa(pairs_from_table(10, 0, 0, 10)) == pytest.approx(1.0)
    assert cohens_kappa(pairs_from_table(0, 10, 10, 0)) == pytest.approx(-1.0)


def test_cohens_kappa_is_undefined_without_pairs_or_with_a_single_category():
    assert cohens_kappa([]) is None
    assert cohens_kappa([("approve", "approve")] * 7) is None


def test_cohens_kappa_is_defined_when_only_one_rater_varies():
    # Rater A always says yes, B says yes half the time: p_o = 0.5, p_e = 1 * 0.5, kappa 0.
    assert cohens_kappa(pairs_from_table(5, 5, 0, 0)) == pytest.approx(0.0)


# Wikipedia's Fleiss' kappa worked example: 10 subjects, 14 raters, 5 categories; counts of
# raters per category for each subject. P̄ = 0.378, P̄_e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def items_from_counts(table: list[list[int]]) -> list[list[int]]:
    return [[category for category, count in enumerate(row) for _ in range(count)] for row in table]


def test_fleiss_kappa_matches_the_wikipedia_worked_example():
    assert fleiss_kappa(items_from_counts(FLEISS_TABLE)) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_is_undefined_without_items_or_with_a_single_category():
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["reject"] * 3] * 4) is None


def test_fleiss_kappa_refuses_items_with_different_numbers_of_ratings():
    with pytest.raises(ValueError, match="same number of ratings"):
        fleiss_kappa([["a", "b"], ["a", "b", "a"]])
    with pytest.raises(ValueError, match="at least two"):
        fleiss_kappa([["a"], ["b"]])
    with pytest.raises(ValueError, match="missing"):
        fleiss_kappa([["a", None], ["b", "a"]])


def test_krippendorffs_alpha_matches_krippendorffs_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers,
    # 12 units, nominal data with missing values; published alpha = 0.743.
    n = None
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3]
    c = [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]
    assert krippendorffs_alpha(list(zip(a, b, c, d, strict=True))) == pytest.approx(0.743, abs=5e-4)


def test_krippendorffs_alpha_on_a_small_example_computed_by_hand():
    # Units (None = missing):  u1 = a a a,  u2 = a b -,  u3 = b b,  u4 = - c -.
    # u4 has one value, so it can't be paired and is left out.
    # Coincidences, each ordered pair of values in a unit weighted 1 / (m_u - 1):
    #   u1: 6 ordered pairs (a, a), weight 1/2  -> o_aa = 3
    #   u2: (a, b) and (b, a), weight 1         -> o_ab = o_ba = 1
    #   u3: 2 ordered pairs (b, b), weight 1    -> o_bb = 2
    # n_a = 3 + 1 = 4, n_b = 1 + 2 = 3, n = 7.
    # Observed disagreement D_o = (o_ab + o_ba) / n = 2/7.
    # Expected disagreement D_e = (n_a n_b + n_b n_a) / (n (n - 1)) = 24/42 = 4/7.
    # alpha = 1 - D_o / D_e = 1 - (2/7) / (4/7) = 0.5.
    units = [["a", "a", "a"], ["a", "b", None], ["b", "b"], [None, "c", None]]
    assert krippendorffs_alpha(units) == pytest.approx(0.5)


def test_krippendorffs_alpha_is_undefined_without_pairable_units_or_with_one_category():
    assert krippendorffs_alpha([]) is None
    assert krippendorffs_alpha([["a", None], [None, "b"]]) is None
    assert krippendorffs_alpha([["a", "a"], ["a", "a", "a"], ["b", None]]) is None


def test_percent_agreement_averages_pair_agreement_per_unit_and_ignores_unpaired_units():
    # u1: 3 pairs, 1 agrees -> 1/3; u2: 1 pair, agrees -> 1; u3 has one rating, left out.
    units = [["a", "a", "b"], ["c", "c"], ["a", None]]
    assert percent_agreement(units) == pytest.approx((1 / 3 + 1) / 2)
    assert percent_agreement([["a"], []]) is None
    assert percent_agreement([["a", "a"]] * 3) == pytest.approx(1.0)


labels = st.sampled_from(["approve", "reject", "request_info"])


@given(
    st.integers(2, 5).flatmap(
        lambda m: st.lists(st.lists(labels, min_size=m, max_size=m), min_size=1, max_size=30)
    )
)
def test_alpha_and_fleiss_agree_up_to_the_small_sample_correction_on_complete_data(items):
    # With no missing values both use the same observed disagreement; alpha's expected
    # disagreement is Fleiss' times n / (n - 1), n the number of ratings, so
    # 1 - alpha = (1 - kappa) (n - 1) / n.
    kappa = fleiss_kappa(items)
    alpha = krippendorffs_alpha(items)
    if kappa is None:
        assert alpha is None
        return
    n = sum(len(item) for item in items)
    assert alpha == pytest.approx(1 - (1 - kappa) * (n - 1) / n)


@given(st.lists(st.tuples(labels, labels), min_size=1, max_size=40))
def test_cohens_kappa_is_symmetric_and_at_most_one(pairs):
    kappa = cohens_kappa(pairs)
    swapped = cohens_kappa([(b, a) for a, b in pairs])
    if kappa is None:
        assert swapped is None
        return
    assert kappa == pytest.approx(swapped)
    assert -1.0 - 1e-9 <= kappa <= 1.0 + 1e-9
    assert not math.isnan(kappa)
