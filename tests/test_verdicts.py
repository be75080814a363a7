"""Verdicts over fabricated seeds whose answers are known in advance (issue 14, item 9)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.report import stats, verdicts
from harness.report.verdicts import DEFAULT_MARGINS, Comparison, Margin, Verdict, decide

SEEDS = 10
RNG = np.random.default_rng(14)
SIGMOID = 0.95 + RNG.normal(0, 0.005, SEEDS)  # val/accuracy of a reference arm, per seed
RELU = SIGMOID + 0.01 + RNG.normal(0, 0.003, SEEDS)  # planted: +0.01 on every seed, +- noise


def one(c: Comparison, **kw) -> Verdict:
    (v,) = decide([c], **kw)
    return v


def test_planted_effect_reads_better_and_swapped_reads_worse():
    v = one(Comparison("val/accuracy", "ReLU", "sigmoid", RELU, SIGMOID))
    assert v.label == v.summary == "better"
    assert v.n == SEEDS and v.effect == pytest.approx(np.mean(RELU - SIGMOID))
    assert v.ci_low > 0 and v.p_adj < 0.05 and v.p_perm < 0.05 and v.perm_can_reach
    assert v.prob_improvement == 1.0  # ReLU wins on every seed
    assert v.text.startswith(f"ReLU better than sigmoid on val/accuracy: +{v.effect:.3g} [")
    assert v.text.endswith("(10 seeds)") and "Holm p < 0.001" in v.text

    w = one(Comparison("val/accuracy", "sigmoid", "ReLU", SIGMOID, RELU))
    assert w.label == "worse"
    assert w.effect == pytest.approx(-v.effect) and w.prob_improvement == 0.0
    assert w.text.startswith("sigmoid worse than ReLU on val/accuracy: -")


def test_identical_arms_read_equivalent():
    v = one(Comparison("val/accuracy", "Keras", "Lightning", SIGMOID, SIGMOID.copy()))
    assert v.label == "equivalent"
    assert (v.effect, v.ci_low, v.ci_high, v.p_tost) == (0.0, 0.0, 0.0, 0.0)
    assert v.p_t == 1.0 and v.seeds_needed is None and v.prob_improvement == 0.5
    assert "Keras equivalent to Lightning on val/accuracy within ±0.01" in v.text
    assert v.summary == "equivalent within ±0.01"


def test_backend_agreement_is_an_equivalence_within_a_relative_margin():
    loss = 0.2 + RNG.normal(0, 0.01, SEEDS)
    other = loss + RNG.normal(0, 8e-8, SEEDS)  # float32 noise between two frameworks
    v = one(Comparison("val/loss", "Keras", "Lightning", loss, other))
    assert v.label == "equivalent"
    assert v.margin == pytest.approx(0.05 * np.mean(other))  # 5% of the reference arm's mean
    assert f"within ±5% of Lightning (±{v.margin:.3g})" in v.text
    assert v.tost_low > -v.margin and v.tost_high < v.margin


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_a_loss_verdict_catches_a_flipped_direction(monkeypatch):
    """Lower loss is better: a planted bug that reads losses as higher-is-better must show."""
    sig_loss = 0.30 + RNG.normal(0, 0.004, SEEDS)
    relu_loss = sig_loss - 0.05 + RNG.normal(0, 0.004, SEEDS)
    c = Comparison("val/loss", "ReLU", "sigmoid", relu_loss, sig_loss)
    right = one(c)
    assert right.label == "better" and not right.higher_is_better
    assert right.effect < 0 and right.prob_improvement == 1.0
    # the planted bug: the direction table flipped for losses
    monkeypatch.setitem(verdicts.HIGHER_IS_BETTER, "loss", True)
    assert one(c).label == "worse"  # so the assertion above is one a flipped table fails
    assert one(c).prob_improvement == 0.0


def test_three_seeds_flag_a_permutation_test_that_cannot_reach_alpha():
    a, b = [0.962, 0.968, 0.975], [0.950, 0.957, 0.963]  # A ahead by 0.012 on every seed
    v = one(Comparison("val/accuracy", "A", "B", a, b))
    assert not v.perm_can_reach
    assert v.p_perm == pytest.approx(0.25)  # its floor at n = 3: no evidence either way
    assert v.label == "better"  # decided by the t-test and the interval, not by that floor
    note = verdicts.perm_note(3)
    assert note is not None and "2/2^3 = 0.25" in note and "at least 6 seeds" in note
    assert verdicts.perm_note(10) is None and verdicts.min_seeds_to_reach(0.05) == 6


def test_the_permutation_floor_counts_the_family():
    # two strong 6-seed effects: one alone can reach 0.05 (2/64), two after Holm cannot
    a, b = RELU[:6], SIGMOID[:6]
    assert one(Comparison("val/accuracy", "ReLU", "sigmoid", a, b)).perm_can_reach
    pair = decide(
        [
            Comparison("val/accuracy", "ReLU", "sigmoid", a, b),
            Comparison("val/accuracy", "ReLU", "tanh", a, b - 0.005),
        ]
    )
    assert [v.perm_can_reach for v in pair] == [False, False]
    assert [v.p_perm_adj for v in pair] == pytest.approx([0.0625, 0.0625])  # the floor
    assert [v.label for v in pair] == ["better", "better"]  # the t-test decides, not the floor
    note = verdicts.perm_note(6, m=2)
    assert note is not None and "2 x 2/2^6 = 0.0312 after Holm over 2" in note
    assert "at least 7 seeds" in note


def test_holm_over_the_family_can_turn_better_into_unresolved():
    d = np.array([0.04, 0.12, -0.05, 0.09, 0.06, 0.11, -0.06, 0.08, 0.03, 0.10])  # raw p = 0.029
    b = np.full(SEEDS, 0.5)
    c = Comparison("val/accuracy", "A", "B", b + d, b)
    alone = one(c)
    assert alone.label == "better" and alone.p_adj == pytest.approx(alone.p_t)
    nulls = [Comparison("val/accuracy", f"C{i}", "B", b, b) for i in range(3)]
    first, *rest = decide([c, *nulls])
    assert first.p_t == alone.p_t
    assert first.p_adj == pytest.approx(4 * first.p_t)  # smallest of 4: times 4
    assert first.label == "unresolved"
    assert [r.label for r in rest] == ["equivalent"] * 3
    # seeds at Holm's strictest level, 0.05 / 4, exceed those at 0.05 for one comparison
    assert first.seeds_needed > alone.seeds_needed
    assert f"about {first.seeds_needed} seeds needed" in first.text


def test_unresolved_states_the_seeds_needed():
    a, b = [0.968, 0.955, 0.972], [0.959, 0.960, 0.961]  # noisy, small gap, 3 seeds
    v = one(Comparison("val/accuracy", "A", "B", a, b))
    assert v.label == "unresolved"
    assert v.seeds_needed == stats.seeds_needed(stats.differences(a, b))
    assert v.seeds_needed > 3
    assert f"A vs B on val/accuracy unresolved (about {v.seeds_needed} seeds needed)" in v.text
    assert v.summary == f"unresolved (about {v.seeds_needed} seeds needed)"


def test_significant_but_tiny_effect_says_it_is_within_the_margin():
    a = SIGMOID + 0.002 + RNG.normal(0, 0.0005, SEEDS)
    v = one(Comparison("val/accuracy", "A", "B", a, SIGMOID))
    assert v.label == "better"
    assert v.text.endswith("the difference is also within ±0.01")


def test_one_seed_and_empty_family_do_not_crash():
    v = one(Comparison("val/accuracy", "A", "B", [0.9], [0.8]))
    assert v.label == "unresolved" and math.isnan(v.p_t) and v.seeds_needed is None
    assert "1 seed: no test is defined" in v.text
    assert decide([]) == []


def test_margins_directions_and_bad_input():
    assert DEFAULT_MARGINS["accuracy"] == Margin(0.01)
    assert DEFAULT_MARGINS["loss"] == Margin(0.05, relative=True)
    assert DEFAULT_MARGINS["r2"] == Margin(0.01)
    assert verdicts.default_margin("train/r2") == Margin(0.01)
    assert Margin(0.05, relative=True).delta(-0.4) == pytest.approx(0.02)
    own = one(Comparison("val/accuracy", "A", "B", SIGMOID + 0.002, SIGMOID, margin=Margin(0.001)))
    assert own.margin == 0.001 and own.label == "better"
    with pytest.raises(ValueError, match="no default equivalence margin for metric 'time/epoch_s'"):
        decide([Comparison("time/epoch_s", "A", "B", [1, 2], [1, 2], higher_is_better=False)])
    with pytest.raises(ValueError, match="higher_is_better=True/False"):
        decide([Comparison("time/epoch_s", "A", "B", [1, 2], [1, 2], margin=Margin(0.1))])
    with pytest.raises(ValueError, match="finite number >= 0"):
        Margin(-0.01)
    with pytest.raises(ValueError, match="differ in length"):
        decide([Comparison("val/accuracy", "A", "B", [1, 2, 3], [1, 2])])
    with pytest.raises(ValueError, match="alpha must lie in"):
        decide([], alpha=0.5)


def test_verdicts_regenerate_identically():
    family = [
        Comparison("val/accuracy", "ReLU", "sigmoid", RELU, SIGMOID),
        Comparison("val/accuracy", "A", "B", RELU[:4], SIGMOID[:4]),
    ]
    assert decide(family, seed=3) == decide(family, seed=3)


def test_a_consistent_but_negligible_difference_says_both():
    # float32 rounding between two backends: a tiny, consistent shift, far inside the margin
    base = np.linspace(0.30, 0.40, 10)
    (v,) = decide([Comparison("val/loss", "lightning", "keras", base - 2e-7, base)])
    assert v.label == "better"
    assert v.summary == f"better, yet within {v.margin_text}"
