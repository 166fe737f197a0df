"""Metrics against closed forms and synthetic data whose answer is known (separable → AUC ≈ 1, inseparable → ≈ 0.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from unlearn_core import metrics
from unlearn_core.errors import ConfigError


def test_tpr_at_fpr_convention_on_hand_made_scores() -> None:
    # 100 negatives with scores 0..99, 10 positives: 5 above every negative, 5 equal to the top negatives.
    neg = np.arange(100, dtype=float)
    pos = np.array([200, 201, 202, 203, 204, 99, 98, 97, 96, 95], dtype=float)
    labels = np.r_[np.ones(10), np.zeros(100)]
    scores = np.r_[pos, neg]
    # Thresholds at 200: TPR 0.5, FPR 0; at 99 (first negative passes): TPR 0.6, FPR 0.01 — still allowed.
    assert metrics.tpr_at_fpr(labels, scores, fpr=0.01) == pytest.approx(0.6)
    assert metrics.tpr_at_fpr(labels, scores, fpr=0.0) == pytest.approx(0.5)


def test_loss_mia_separable_and_inseparable() -> None:
    rng = np.random.default_rng(0)
    members = rng.uniform(1e-4, 1e-2, size=600)        # trained-on points: tiny loss
    nonmembers = rng.uniform(0.5, 3.0, size=2000)       # unseen points: large loss
    sep = metrics.loss_mia(members, nonmembers, seed=1)
    assert sep.auc > 0.99 and sep.tpr_at_1fpr > 0.9
    assert sep.n_per_class == 600  # balanced: non-members subsampled to the member count
    same = metrics.loss_mia(rng.exponential(1.0, 600), rng.exponential(1.0, 2000), seed=1)
    assert abs(same.auc - 0.5) < 0.06
    # seeded: the same seed gives the same numbers
    again = metrics.loss_mia(members, nonmembers, seed=1)
    assert again.auc == sep.auc


def test_cross_validation_is_held_out() -> None:
    """Pure-noise features with a high-capacity attack: training-set AUC would be ≈ 1, held-out must be ≈ 0.5."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 20)), rng.normal(size=(300, 20))
    res = metrics.cross_validated_attack(a, b, attack="dt", seed=0)
    assert abs(res.auc - 0.5) < 0.1
    with pytest.raises(ConfigError, match="attack model"):
        metrics.cross_validated_attack(a, b, attack="svm")


def test_posterior_features_modes() -> None:
    po = np.array([[0.2, 0.7, 0.1]])
    pu = np.array([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(metrics.posterior_features(po, pu, mode="direct_diff"), [[-0.3, 0.4, -0.1]])
    np.testing.assert_allclose(metrics.posterior_features(po, pu, mode="sorted_diff"), [[0.2, -0.1, -0.1]])
    np.testing.assert_allclose(metrics.posterior_features(po, pu, mode="l2_distance"), [[math.sqrt(0.26)]])
    concat = metrics.posterior_features(po, pu, mode="direct_concat")
    np.testing.assert_allclose(concat, [[0.2, 0.7, 0.1, 0.5, 0.3, 0.2]])
    np.testing.assert_allclose(metrics.posterior_features(po, pu), [[0.7, 0.2, 0.1, 0.5, 0.3, 0.2]])
    with pytest.raises(ConfigError, match="feature mode"):
        metrics.posterior_features(po, pu, mode="nope")


def _dirichlet(rng: np.random.Generator, n: int, conc: float) -> np.ndarray:
    return rng.dirichlet(np.full(10, conc), size=n)


@pytest.mark.parametrize("attack", ["lr", "dt", "mlp"])
def test_posterior_difference_separable_and_inseparable(attack: str) -> None:
    rng = np.random.default_rng(1)
    po_f = _dirichlet(rng, 400, 0.3)
    po_r = _dirichlet(rng, 1500, 0.3)
    # Members: the unlearned model's posterior moved a lot (towards uniform); non-members: unchanged.
    pu_f = 0.2 * po_f + 0.8 * np.full_like(po_f, 0.1)
    sep = metrics.posterior_difference_mia(po_f, pu_f, po_r, po_r.copy(), attack=attack, seed=0)
    assert sep.auc > 0.97
    # Same perturbation on both sets: nothing to tell apart.
    pu_r = 0.2 * po_r + 0.8 * np.full_like(po_r, 0.1)
    same = metrics.posterior_difference_mia(po_f, pu_f, po_r, pu_r, attack=attack, seed=0)
    assert abs(same.auc - 0.5) < 0.08


def test_svc_confidence_mia() -> None:
    rng = np.random.default_rng(2)
    retain = rng.uniform(0.95, 1.0, 800)
    test = rng.uniform(0.1, 0.6, 800)
    out = metrics.svc_confidence_mia(retain, test, rng.uniform(0.95, 1.0, 200), seed=0)
    assert out["attack_auc"] > 0.99 and out["forget_member_rate"] > 0.95
    forgotten = metrics.svc_confidence_mia(retain, test, rng.uniform(0.1, 0.6, 200), seed=0)
    assert forgotten["forget_nonmember_rate"] > 0.95
    mixed = rng.uniform(0, 1, 800)
    blind = metrics.svc_confidence_mia(mixed, rng.uniform(0, 1, 800), mixed[:100], seed=0)
    assert abs(blind["attack_auc"] - 0.5) < 0.08


def test_kl_and_js_closed_forms() -> None:
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    q = np.array([[0.9, 0.1], [0.0, 1.0]])
    kl = metrics.kl_divergence(p[:1], q[:1])
    assert kl[0] == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1), rel=1e-12)
    js = metrics.js_divergence(p, q)
    m = np.array([0.7, 0.3])
    expected0 = 0.5 * (0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)) + 0.5 * (
        0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3))
    assert m.sum() == 1.0
    assert js[0] == pytest.approx(expected0, rel=1e-12)
    assert js[1] == pytest.approx(math.log(2), rel=1e-12)  # disjoint supports: the maximum, ln 2
    assert metrics.js_divergence(q, q) == pytest.approx([0.0, 0.0], abs=1e-12)
    d = metrics.output_distance(q, p)  # KL(p ‖ q) direction: reference first
    assert d["kl"] == pytest.approx(metrics.kl_divergence(p, q).mean())


def test_clopper_pearson_and_epsilon_conversion() -> None:
    lo, hi = metrics.clopper_pearson(0, 10, alpha=0.05)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)
    lo, hi = metrics.clopper_pearson(10, 10, alpha=0.05)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10), rel=1e-9)
    lo, hi = metrics.clopper_pearson(50, 100)
    assert lo < 0.5 < hi and hi - 0.5 == pytest.approx(0.5 - lo, rel=1e-9)
    assert metrics.epsilon_lower_bound(fpr=0.1, fnr=0.1, delta=0.0) == pytest.approx(math.log(9))
    assert metrics.epsilon_lower_bound(fpr=0.5, fnr=0.5, delta=1e-5) == 0.0
    assert metrics.epsilon_lower_bound(fpr=0.01, fnr=0.5, delta=0.0) == pytest.approx(math.log(0.5 / 0.01))


def test_relearn_time() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(5, 2))
    before = [p.detach().clone() for p in model.parameters()]
    out = metrics.relearn_time(model, x, y, target_acc=0.95, lr=0.5, batch_size=16, max_steps=500, seed=0)
    assert not out["capped"] and 0 < out["steps"] < 500 and out["final_acc"] >= 0.95
    for p, b in zip(model.parameters(), before, strict=True):  # never mutates its input
        assert torch.equal(p, b)
    already = metrics.relearn_time(model, x, y, target_acc=0.0)
    assert already["steps"] == 0 and not already["capped"]
    capped = metrics.relearn_time(model, x, y, target_acc=1.01, max_steps=3)
    assert capped["capped"] and capped["steps"] == 3


# -- distinguishing tests: the audit's bound, Triantafillou et al.'s per-example ε, offline LiRA ---------------


def test_clopper_pearson_is_the_beta_quantile_interval() -> None:
    from scipy.stats import beta

    from unlearn_core.metrics import _cp_upper_all

    assert _cp_upper_all(7, 0.1) == pytest.approx([metrics.clopper_pearson(k, 7, alpha=0.1)[1] for k in range(8)])
    for k, n in ((0, 7), (3, 7), (7, 7), (1, 200), (120, 200)):
        lo, hi = metrics.clopper_pearson(k, n, alpha=0.1)
        assert lo == pytest.approx(0.0 if k == 0 else beta.ppf(0.05, k, n - k + 1), abs=1e-12)
        assert hi == pytest.approx(1.0 if k == n else beta.ppf(0.95, k + 1, n - k), abs=1e-12)
    with pytest.raises(ConfigError, match="0 ≤ k ≤ n"):
        metrics.clopper_pearson(3, 2)


def _gaussian_epsilon(mu: float, delta: float) -> float:
    """Exact ε of N(0,1) vs N(μ,1) at δ (Balle & Wang 2018, Thm. 8), solved independently with brentq."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def excess(eps: float) -> float:
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    return 0.0 if excess(0.0) <= 0 else brentq(excess, 0.0, 100.0)


def test_distinguishing_test_never_exceeds_the_exact_gaussian_epsilon() -> None:
    rng = np.random.default_rng(0)
    delta = 1e-5

    def sample(mu: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(mu, 1.0, n), rng.normal(0.0, 1.0, n)

    (sa, sb), (ea, eb) = sample(0.0, 500), sample(0.0, 500)
    assert metrics.distinguishing_test(sa, sb, ea, eb, delta=delta)["epsilon_lower"] == 0.0  # identical arms
    (sa, sb), (ea, eb) = sample(3.0, 2000), sample(3.0, 2000)
    res = metrics.distinguishing_test(sa, sb, ea, eb, delta=delta)
    exact = _gaussian_epsilon(3.0, delta)
    assert 1.0 < res["epsilon_lower"] <= exact  # a real bound, below the truth
    assert res["side"] == 1  # "A" when the score is high
    (sa, sb), (ea, eb) = sample(50.0, 100), sample(50.0, 100)
    far = metrics.distinguishing_test(sa, sb, ea, eb, delta=delta)
    assert far["fpr"] == far["fnr"] == 0.0 and far["epsilon_lower"] == pytest.approx(far["epsilon_lower_cap"])
    # the cap: no errors among 100 per arm, Clopper–Pearson 95 % upper limit 1 − 0.025^(1/100)
    up = 1 - 0.025 ** (1 / 100)
    assert far["epsilon_lower_cap"] == pytest.approx(math.log((1 - delta - up) / up), rel=1e-9)


def test_per_example_epsilon_on_a_hand_computed_case() -> None:
    # One example, four models per side: the best threshold calls "unlearned" at s ≤ 0, with FPR = FNR = 1/4
    # (one retrained model at 0, one unlearned model at 1); the other thresholds have a zero rate (discarded)
    # or are worse. ε = ln((1 − δ − 1/4) / (1/4)).
    u = np.array([[0.0], [0.0], [0.0], [1.0]])
    r = np.array([[0.0], [1.0], [1.0], [1.0]])
    eps = metrics.per_example_epsilon(u, r, delta=0.01)
    assert eps.shape == (1,) and eps[0] == pytest.approx(math.log(0.74 / 0.25))
    assert metrics.per_example_epsilon(r, u, delta=0.01)[0] == pytest.approx(eps[0])  # both directions are tested
    # identical samples: no threshold beats chance → 0; perfectly separated: FPR = FNR = 0 → ∞
    same = np.arange(6.0).reshape(6, 1)
    assert metrics.per_example_epsilon(same, same.copy())[0] == 0.0
    assert metrics.per_example_epsilon(same, same + 10.0)[0] == math.inf
    # several examples at once, each on its own column
    both = metrics.per_example_epsilon(np.hstack([u, same[:4]]), np.hstack([r, same[:4]]), delta=0.01)
    assert both[0] == pytest.approx(eps[0]) and both[1] == 0.0
    with pytest.raises(ConfigError, match="same n"):
        metrics.per_example_epsilon(np.zeros((3, 2)), np.zeros((3, 4)))


def test_forgetting_quality_bins() -> None:
    # bins of width 0.5: ε ∈ [0, .5) → 1, [.5, 1) → 1/2, [1, 1.5) → 1/4; ε ≥ 6 and ∞ share the last bin (2/2^13)
    assert metrics.forgetting_quality([0.0, 0.49]) == 1.0
    assert metrics.forgetting_quality([0.7]) == 0.5
    assert metrics.forgetting_quality([math.log(0.74 / 0.25)]) == 0.25
    assert metrics.forgetting_quality([6.0]) == metrics.forgetting_quality([math.inf]) == 2.0 / 2**13
    assert metrics.forgetting_quality([0.0, 0.7, 1.2, math.inf]) == pytest.approx((1 + 0.5 + 0.25 + 2 / 2**13) / 4)


def test_logit_confidence_is_the_log_odds_of_the_true_class() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20, 5))
    y = rng.integers(0, 5, 20)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    py = p[np.arange(20), y]
    assert metrics.logit_confidence(z, y) == pytest.approx(np.log(py / (1 - py)))
    big = np.array([[200.0, 0.0, 0.0]])  # p_y rounds to 1 in float64; the logit form stays finite
    assert metrics.logit_confidence(big, np.array([0]))[0] == pytest.approx(200.0 - math.log(2.0))


def test_lira_separates_members_and_not_lookalikes() -> None:
    rng = np.random.default_rng(2)
    k, n = 16, 300
    centre = rng.normal(0, 3, size=2 * n)  # each example has its own typical confidence
    refs = centre + rng.normal(0, 1, size=(k, 2 * n))
    member_shift = np.concatenate([np.full(n, 3.0), np.zeros(n)])
    leaky = centre + member_shift + rng.normal(0, 1, size=2 * n)
    clean = centre + rng.normal(0, 1, size=2 * n)
    res = metrics.lira_mia(leaky[:n], leaky[n:], refs[:, :n], refs[:, n:])
    assert res["auc"] > 0.95 and res["tpr_at_1fpr"] > 0.2
    assert abs(metrics.lira_mia(clean[:n], clean[n:], refs[:, :n], refs[:, n:])["auc"] - 0.5) < 0.08
    # the score is the standardised distance to the references' mean (global variance below 64 references)
    scores = metrics.lira_offline_scores(clean, refs)
    var = refs.var(axis=0, ddof=1).mean()
    assert scores == pytest.approx((clean - refs.mean(axis=0)) / math.sqrt(var))
    with pytest.raises(ConfigError, match="at least 2 reference"):
        metrics.lira_offline_scores(clean, refs[:1])
