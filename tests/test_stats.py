"""The statistics a verdict rests on, each checked on a case computed by hand or against a
published table (issue 14, item 9)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from harness.report import stats


# --- exact sign-flip permutation test ------------------------------------------------------
@pytest.mark.parametrize(
    "d, p",
    [
        ([1, 2, 3, 4], 2 / 16),  # only all-positive reaches mean 2.5; two-sided doubles it
        # |d| = 1,2,3,4 (sum 10), observed sum 6: sums >= 6 flip a subset of |d| summing to
        # <= 2: {}, {1}, {2}; by symmetry 3 more at <= -6: 6/16
        ([1, -2, 3, 4], 6 / 16),
        ([1, 2, 3], 2 / 8),  # 3 seeds: the smallest p there is
        ([0, 0, 0], 1.0),  # no difference at all
    ],
)
def test_sign_flip_p_matches_hand_counts(d, p):
    assert stats.sign_flip_p(d) == pytest.approx(p)


def test_sign_flip_p_is_the_full_enumeration():
    d = np.random.default_rng(3).normal(0.3, 1.0, 9)
    sums = [abs(np.dot(signs, d)) for signs in itertools.product((1, -1), repeat=len(d))]
    brute = np.mean(np.array(sums) >= abs(d.sum()) - 1e-12)  # two-sided, |statistic|
    assert stats.sign_flip_p(d) == pytest.approx(brute)


def test_smallest_attainable_p_and_reach():
    assert stats.smallest_sign_flip_p(3) == 0.25
    assert stats.smallest_sign_flip_p(5) == 0.0625
    assert stats.smallest_sign_flip_p(10) == pytest.approx(2 / 1024)
    assert stats.smallest_sign_flip_p(0) == 1.0
    assert not stats.can_reach(3) and not stats.can_reach(5)
    assert stats.can_reach(6)  # 2/64 = 0.031 < 0.05
    assert not stats.can_reach(6, alpha=0.01) and stats.can_reach(8, alpha=0.01)
    # after Holm over m comparisons the floor is m * 2 / 2^n: 10 seeds carry 25, not 26
    assert stats.can_reach(10, 0.05, m=25) and not stats.can_reach(10, 0.05, m=26)
    assert not stats.can_reach(6, 0.05, m=2)  # 2 * 2/64 = 0.0625


# --- paired t-test, constant differences -----------------------------------------------------
def test_t_test_p_is_the_paired_t_test_and_exact_for_constants():
    a, b = [0.91, 0.93, 0.95, 0.92], [0.90, 0.90, 0.94, 0.93]
    assert stats.t_test_p(stats.differences(a, b)) == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert stats.t_test_p([0.1, 0.1, 0.1]) == 0.0  # a fixed offset, no noise
    assert stats.t_test_p([0.0, 0.0]) == 1.0
    assert math.isnan(stats.t_test_p([0.3]))


def test_differences_checks_its_input():
    assert stats.differences([3, 5], [1, 1]).tolist() == [2, 4]  # a - b
    with pytest.raises(ValueError, match="differ in length: 2 vs 3"):
        stats.differences([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-finite"):
        stats.differences([1, float("nan")], [1, 2])


# --- bootstrap interval --------------------------------------------------------------------
def test_bootstrap_ci_is_seeded_bca_around_the_mean():
    d = np.random.default_rng(0).normal(0.01, 0.005, 10)
    lo, hi = stats.bootstrap_ci(d, seed=7)
    assert (lo, hi) == stats.bootstrap_ci(d, seed=7)  # a report regenerates identically
    ref = sps.bootstrap((d,), np.mean, method="BCa", n_resamples=9999, rng=7)
    assert (lo, hi) == (ref.confidence_interval.low, ref.confidence_interval.high)
    assert lo < d.mean() < hi


def test_bootstrap_ci_of_constant_and_single_differences():
    assert stats.bootstrap_ci([0.02, 0.02, 0.02]) == (0.02, 0.02)
    assert all(math.isnan(x) for x in stats.bootstrap_ci([0.02]))


# --- probability of improvement ------------------------------------------------------------
def test_prob_improvement_paired_and_unpaired():
    # pairs: 3>1 wins, 2=2 ties (1/2), 5>3 wins
    assert stats.prob_improvement([3, 2, 5], [1, 2, 3]) == pytest.approx(2.5 / 3)
    # for a loss, lower wins: only the tie counts
    assert stats.prob_improvement([3, 2, 5], [1, 2, 3], higher_is_better=False) == pytest.approx(
        0.5 / 3
    )
    # rliable's all-pairs form: (1,1) tie, (1,3) loss, (2,1) win, (2,3) loss -> 1.5 / 4
    assert stats.prob_improvement([1, 2], [1, 3], paired=False) == pytest.approx(0.375)


# --- Holm ------------------------------------------------------------------------------------
def test_holm_on_a_known_vector():
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.04, 0.06) = 0.06
    adj = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_leaves_nan_out_of_the_family():
    adj = stats.holm([0.01, float("nan"), 0.04])
    assert adj[0] == pytest.approx(0.02) and adj[2] == pytest.approx(0.04)
    assert math.isnan(adj[1])
    assert stats.holm([]).shape == (0,)


# --- TOST --------------------------------------------------------------------------------------
# d = [1, 2, 3]: mean 2, sd 1, se = 1/sqrt(3), df 2, where the t CDF is 1/2 + t / (2 sqrt(2 + t^2))
def _t2_cdf(t: float) -> float:
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def test_tost_that_must_pass():
    res = stats.tost([1, 2, 3], delta=5)
    # the binding side is H0: mean >= 5, t = (2 - 5) sqrt(3) = -3 sqrt(3)
    assert res.p == pytest.approx(_t2_cdf(-3 * math.sqrt(3)))  # 0.0175
    assert res.p < 0.05
    half = sps.t.ppf(0.95, 2) / math.sqrt(3)  # the 90% interval lies inside (-5, 5)
    assert (res.lo, res.hi) == pytest.approx((2 - half, 2 + half))
    assert -5 < res.lo and res.hi < 5


def test_tost_that_must_fail():
    res = stats.tost([1, 2, 3], delta=3)
    assert res.p == pytest.approx(_t2_cdf(-math.sqrt(3)))  # 0.113
    assert res.p > 0.05
    assert res.hi > 3  # the 90% interval crosses the margin


def test_tost_agrees_with_statsmodels():
    rng = np.random.default_rng(5)
    a = rng.normal(0.5, 0.01, 10)
    b = a + rng.normal(0.002, 0.004, 10)
    d = stats.differences(a, b)
    for delta in (0.001, 0.005, 0.02):
        assert stats.tost(d, delta).p == pytest.approx(ttost_paired(a, b, -delta, delta)[0])


def test_tost_with_zero_variance_does_not_crash():
    assert stats.tost([0.0, 0.0, 0.0], 0.01).p == 0.0  # identical arms: equivalent
    assert stats.tost([0.005] * 4, 0.01).p == 0.0  # a fixed offset inside the margin
    assert stats.tost([0.02] * 4, 0.01).p == 1.0  # a fixed offset outside it
    assert math.isnan(stats.tost([0.1], 0.01).p)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        stats.tost([1, 2], -0.1)


# --- power -----------------------------------------------------------------------------------
@pytest.mark.parametrize("d_z, n", [(0.5, 34), (0.8, 15)])
def test_seeds_needed_matches_the_published_table(d_z, n):
    # Cohen (1988) / G*Power, one-sample (paired) t, two-sided alpha 0.05, power 0.8:
    # d = 0.5 -> 34 pairs, d = 0.8 -> 15 pairs (n rounded up)
    d = d_z + np.array([1, -1]) / math.sqrt(2)  # mean d_z, sd exactly 1
    assert stats.seeds_needed(d) == n
    solved = TTestPower().solve_power(effect_size=d_z, alpha=0.05, power=0.8)
    assert math.ceil(solved) == n


@pytest.mark.parametrize("d_z", [0.2, 1.0, 2.0, 3.0])
def test_power_agrees_with_statsmodels(d_z):
    for n in (2, 3, 10, 40):
        ref = TTestPower().power(d_z, n, 0.05)
        if math.isfinite(ref):  # statsmodels gives NaN where the far tail underflows
            assert stats.paired_t_power(d_z, n) == pytest.approx(ref)
    d = d_z + np.array([1, -1]) / math.sqrt(2)
    assert stats.seeds_needed(d) == math.ceil(TTestPower().solve_power(d_z, None, 0.05, 0.8))


def test_seeds_needed_edge_cases():
    assert stats.seeds_needed([0.01, -0.01, 0.0]) is None  # no effect observed
    assert stats.seeds_needed([0.0, 0.0]) is None
    assert stats.seeds_needed([0.3]) is None
    assert stats.seeds_needed([0.1, 0.1, 0.1]) == 2  # a fixed offset: any t-test sees it
    assert stats.seeds_needed([40.0, 40.5]) == 2  # huge d_z, where solve_power fails
    tiny = 0.001 + np.array([1, -1]) / math.sqrt(2)  # d_z = 0.001
    assert stats.seeds_needed(tiny) == stats.SEEDS_CAP + 1  # "more than 1000"
    # the far tail SciPy returns as NaN here must not poison the answer
    assert stats.paired_t_power(0.5, 500) == pytest.approx(1.0)
