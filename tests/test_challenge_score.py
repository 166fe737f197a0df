"""The NeurIPS 2023 challenge score on hand-built confidence sets with known answers, and tug-of-war.

Anchors: identical sets → ε = 0 everywhere → F = 1; separable sets → ε capped at 50 → F = 0; a shifted pair of
8-model sets whose best rule is worked out by hand (ε = ln(3 − 8δ), bucket [1, 1.5), ¼ point); a concentrated
unlearned set inside a wide retrained one, which only the double-threshold family separates; the points table of
N = 8, 16 and 512 (the challenge's) models; the rates counted by sorted search equal the reference's direct
(models × thresholds) comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearn_core import challenge_score as cs
from unlearn_core.errors import ConfigError
from unlearn_core.metrics import logit_confidence
from unlearn_core.tug_of_war import tug_of_war, tug_of_war_from_rows

DELTA = cs.DELTA


def test_identical_sets_have_zero_epsilon_and_full_points() -> None:
    confs = np.random.default_rng(0).normal(size=(16, 12))
    eps = cs.per_example_epsilons(confs, confs.copy())
    assert (eps == 0.0).all()
    assert cs.forget_score(confs, confs.copy()) == 1.0
    score = cs.challenge_score(confs, confs, retain_acc_unlearned=[0.9] * 16, retain_acc_retrained=[0.9] * 16,
                               test_acc_unlearned=[0.8] * 16, test_acc_retrained=[0.8] * 16)
    assert score.final == pytest.approx(1.0) and score.utility == pytest.approx(1.0)


def test_separable_and_peaky_sets_get_the_cap_and_no_points() -> None:
    r = np.random.default_rng(1).normal(size=(16, 5))
    u = r + 100.0  # every rule "≥ t" between the sets has FPR = FNR = 0: ε = ∞, capped
    assert (cs.per_example_epsilons(u, r) == cs.EPSILON_CAP).all()
    assert cs.forget_score(u, r) == 0.0
    # A deterministic unlearner: N identical outputs, a spread below 1 % of the retrained one → the cap at once.
    peaky = np.tile(r.mean(axis=0), (16, 1))
    assert (cs.per_example_epsilons(peaky, r) == cs.EPSILON_CAP).all()


def test_hand_computed_shifted_sets() -> None:
    """Retrained confidences 0..7, unlearned 2..9 (8 models): the unlearned median is larger, so it is the positive
    set. The best single threshold t ∈ (6, 7] calls 3/8 unlearned (7, 8, 9) and 1/8 retrained (7) positive:
    FPR = 1/8, FNR = 5/8, ε = ln(1 − δ − 5/8) − ln(1/8) = ln(3 − 8δ). The double-threshold family (the retrained set
    plays "positive", the peakier set on a tie; intervals of length 5 to 9 ending in [5, 9]) reaches the same value
    and no more: [−1, 6.5] holds 7/8 of the retrained and 5/8 of the unlearned values (FNR = 1/8, FPR = 5/8), and no
    interval that long holds 7 retrained values with fewer unlearned ones. So every example scores
    ε = ln(3 − 8δ) ≈ 1.0986, in the bucket [1, 1.5): ¼ point with 8 models (buckets up to ⌈ln 7⌉ = 2)."""
    r = np.tile(np.arange(8.0)[:, None], (1, 3))
    u = r + 2.0
    eps = cs.per_example_epsilons(u, r)
    assert eps == pytest.approx([math.log(3 - 8 * DELTA)] * 3, rel=1e-6)  # float32, as the reference
    fpr, fnr = cs.double_threshold_rates(r[:, 0], u[:, 0])  # pos = r here: the peakier set on a tie is the other
    double = cs.rule_epsilons(fpr, fnr)
    assert np.nanmax(double) == pytest.approx(math.log(3 - 8 * DELTA), rel=1e-6)
    assert cs.forget_score(u, r) == 0.25
    score = cs.challenge_score(u, r, retain_acc_unlearned=[0.9] * 8, retain_acc_retrained=[1.0] * 8,
                               test_acc_unlearned=[0.8] * 8, test_acc_retrained=[1.0] * 8)
    assert score.final == pytest.approx(0.25 * 0.9 * 0.8)


def test_only_the_double_threshold_separates_a_concentrated_set() -> None:
    """Unlearned confidences within ±0.3 of 0, retrained ones at ±1..±4: no single threshold separates them (the
    best, t ∈ (−0.3, −0.2], has FPR = 4/8, FNR = 1/8: ε = ln(4 − 8δ)), the interval [−0.5, 0.5] does perfectly."""
    r = np.array([-4, -3, -2, -1, 1, 2, 3, 4], dtype=float)
    u = np.array([-0.3, -0.2, -0.1, 0.0, 0.05, 0.1, 0.2, 0.3])
    single = cs.rule_epsilons(*cs.single_threshold_rates(u, r))
    assert np.nanmax(single) == pytest.approx(math.log(4 - 8 * DELTA), rel=1e-6)
    assert cs.example_epsilon(u, r) == cs.EPSILON_CAP


def test_points_table() -> None:
    assert cs.bucket_points(8) == {0.0: 1.0, 0.5: 0.5, 1.0: 0.25, 1.5: 0.125}
    assert list(cs.bucket_points(16)) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]  # ⌈ln 15⌉ = 3
    big = cs.bucket_points(512)  # the challenge's N: ⌈ln 511⌉ = 7, 14 buckets
    assert len(big) == 14 and max(big) == 6.5 and big[6.5] == 2.0 ** -13
    assert cs.bucket_points(2) == {}  # ⌈ln 1⌉ = 0: two models can show nothing
    assert list(cs.points([0.0, 0.49, 0.5, 1.99, 2.0, math.inf, 50.0], 8)) == [1, 1, 0.5, 0.125, 0, 0, 0]


def test_positive_set_is_the_larger_median() -> None:
    r = np.tile(np.arange(8.0)[:, None], (1, 1))
    # Swapping the sets mirrors the problem: the same ε whichever set the unlearned models are.
    assert cs.per_example_epsilons(r, r + 2.0) == pytest.approx(cs.per_example_epsilons(r + 2.0, r))


def _reference_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's rates by direct comparison of every model with every threshold (its tensor layout)."""
    both = np.concatenate([pos, neg])
    lo, hi = torch.tensor(both.min(), dtype=torch.float64), torch.tensor(both.max(), dtype=torch.float64)
    t = torch.linspace(lo, hi, int(torch.ceil((hi - lo) * 100))).numpy().astype(np.float64)
    single_fp = (neg[:, None] >= t[None, :]).mean(axis=0)
    single_fn = (pos[:, None] < t[None, :]).mean(axis=0)
    p, n = (neg, pos) if np.ptp(pos) >= np.ptp(neg) else (pos, neg)
    w = min(np.ptp(pos), np.ptp(neg))
    lo2, hi2 = p.min() + w - 2.0, p.max() + 2.0
    right = np.linspace(lo2, hi2, num=int(np.ceil((hi2 - lo2) * 100)))
    left = np.concatenate([np.linspace(r - w - 2.0, r - w + 2.0, num=400) for r in right])
    right = np.repeat(right, 400)
    inside_n = (left[None, :] <= n[:, None]) & (n[:, None] <= right[None, :])
    inside_p = (left[None, :] <= p[:, None]) & (p[:, None] <= right[None, :])
    return (np.concatenate([inside_n.mean(axis=0), single_fp]),
            np.concatenate([(~inside_p).mean(axis=0), single_fn]))


def test_counts_by_sorted_search_equal_the_direct_comparison() -> None:
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(0.5, 1.0, size=10), rng.normal(0.0, 1.5, size=10)
    fp_d, fn_d = cs.double_threshold_rates(pos, neg)
    fp_s, fn_s = cs.single_threshold_rates(pos, neg)
    ref_fp, ref_fn = _reference_rates(pos, neg)
    assert np.array_equal(np.concatenate([fp_d, fp_s]), ref_fp.astype(np.float32))
    assert np.array_equal(np.concatenate([fn_d, fn_s]), ref_fn.astype(np.float32))
    eps = cs.rule_epsilons(ref_fp, ref_fn)
    assert cs.example_epsilon(pos, neg) == pytest.approx(float(np.nanmax(eps)), rel=1e-7)


def test_rule_conventions() -> None:
    eps = cs.rule_epsilons(np.array([0.0, 0.0, 0.25, 0.5]), np.array([0.0, 0.5, 0.25, 0.5]))
    assert eps[0] == np.inf  # FPR = FNR = 0: perfect separation
    assert np.isnan(eps[1])  # one zero rate: discarded (too few samples to say)
    assert eps[2] == pytest.approx(math.log((0.75 - DELTA) / 0.25), rel=1e-6)
    assert eps[3] == 0.0  # a coin flip, floored at 0


def test_logit_scaled_confidence() -> None:
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]], dtype=np.float32)
    before = logits.copy()
    conf = cs.logit_scaled_confidence(logits, np.array([0, 2]))
    assert np.array_equal(logits, before)  # the reference subtracts in place; this does not
    assert conf[0] == pytest.approx(2.0 - math.log(2.0), rel=1e-6)  # ln(e²/2)
    assert conf[1] == pytest.approx(-1.0 - math.log(1.0 + math.e), rel=1e-6)
    z = np.random.default_rng(0).normal(size=(50, 10)).astype(np.float32)
    y = np.arange(50) % 10
    assert cs.logit_scaled_confidence(z, y) == pytest.approx(logit_confidence(z, y), abs=1e-5)
    # Far out, the 1e-45 terms bound it (about ±103.6), where Carlini et al.'s φ keeps growing.
    assert cs.logit_scaled_confidence(np.array([[1000.0, 0.0]], dtype=np.float32), np.array([0]))[0] == \
        pytest.approx(math.log(1 + 1e-45) - math.log(1e-45))


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="same examples"):
        cs.per_example_epsilons(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="finite"):
        cs.forget_score(np.full((4, 2), np.nan), np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="retrained accuracies"):
        cs.final_score(1.0, retain_acc_unlearned=1, retain_acc_retrained=0, test_acc_unlearned=1,
                       test_acc_retrained=1)


# -- tug-of-war ---------------------------------------------------------------------------------------------------


def test_tug_of_war_hand_values() -> None:
    assert tug_of_war(forget_unlearned=0.8, retain_unlearned=0.9, test_unlearned=0.85, forget_retrained=0.8,
                      retain_retrained=0.9, test_retrained=0.85) == 1.0
    # (1 − 0.1)(1 − 0.05)(1 − 0.05) = 0.81225
    value = tug_of_war(forget_unlearned=0.9, retain_unlearned=1.0, test_unlearned=0.85, forget_retrained=0.8,
                       retain_retrained=0.95, test_retrained=0.9)
    assert value == pytest.approx(0.9 * 0.95 * 0.95)
    # Forgetting too well (forget accuracy below the retrained one) costs as much as remembering.
    under = tug_of_war(forget_unlearned=0.7, retain_unlearned=0.9, test_unlearned=0.9, forget_retrained=0.8,
                       retain_retrained=0.9, test_retrained=0.9)
    over = tug_of_war(forget_unlearned=0.9, retain_unlearned=0.9, test_unlearned=0.9, forget_retrained=0.8,
                      retain_retrained=0.9, test_retrained=0.9)
    assert under == pytest.approx(over) == pytest.approx(0.9)
    row = {"acc_forget": 0.5, "acc_retain": 0.5, "acc_test": 0.5}
    assert tug_of_war_from_rows(row, {"acc_forget": 1.0, "acc_retain": 1.0, "acc_test": 1.0}) == 0.125
    with pytest.raises(ConfigError, match=r"forget_unlearned=1\.2 is not valid"):
        tug_of_war(forget_unlearned=1.2, retain_unlearned=1, test_unlearned=1, forget_retrained=1,
                   retain_retrained=1, test_retrained=1)
