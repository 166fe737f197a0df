"""U-LiRA on hand-built shadow and target confidences with known answers, and the certificate's reading.

Anchors: every example IN for exactly half of the shadows; the Gaussians and the likelihood ratio against numpy
and scipy computed independently; separable sets give a perfect attack whose lower bound is the closed form of a
zero-error Clopper–Pearson limit; identical sets give nothing; the reading of a certificate against an attack's
bound — refuted, the requested ε refuted under a 'not certified' label, not refuted — for hand-set numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from unlearn_core import refutation as rf
from unlearn_core import ulira as ul
from unlearn_core.errors import ConfigError
from unlearn_core.metrics import clopper_pearson

DELTA = 1e-5


def test_complementary_halves() -> None:
    mask = ul.complementary_halves(9, 6, seed=0)
    assert mask.shape == (6, 9) and (mask.sum(axis=0) == 3).all()
    assert (mask[0] ^ mask[1]).all() and (mask.sum(axis=1)[::2] == 4).all()
    assert np.array_equal(mask, ul.complementary_halves(9, 6, seed=0))
    with pytest.raises(ConfigError, match="shadows=5"):
        ul.complementary_halves(9, 5, seed=0)
    with pytest.raises(ConfigError, match="at least 2 forget examples"):
        ul.complementary_halves(1, 4, seed=0)


def test_gaussians_and_ratio_against_numpy_and_scipy() -> None:
    rng = np.random.default_rng(0)
    mask = ul.complementary_halves(5, 8, seed=1)
    confs = rng.normal(size=(8, 5)) + 2.0 * mask
    fit = ul.fit_shadow_gaussians(confs, mask, global_variance=False)
    for j in range(5):
        inside, outside = confs[mask[:, j], j], confs[~mask[:, j], j]
        assert fit.mu_in[j] == pytest.approx(inside.mean()) and fit.var_in[j] == pytest.approx(inside.var(ddof=1))
        assert fit.mu_out[j] == pytest.approx(outside.mean()) and fit.var_out[j] == pytest.approx(outside.var(ddof=1))
    target = rng.normal(size=(3, 5))
    expected = (norm.logpdf(target, fit.mu_in, np.sqrt(fit.var_in))
                - norm.logpdf(target, fit.mu_out, np.sqrt(fit.var_out)))
    assert ul.log_likelihood_ratio(target, fit) == pytest.approx(expected)
    pooled = ul.fit_shadow_gaussians(confs, mask)  # 8 < 64 shadows: one variance per group
    assert pooled.global_variance and np.ptp(pooled.var_in) == 0 and pooled.var_in[0] == pytest.approx(
        fit.var_in.mean())


def test_separable_sets_give_a_perfect_attack_and_the_closed_form_bound() -> None:
    """IN shadows near 5, OUT near 0; released models at 5, references at 0. Every decision is right, so the point
    ε is the cap, and the bound converts zero-error Clopper–Pearson limits: with K models and confidence
    1 − α/n per example, the upper limit of 0/K is 1 − (α / 2n)^(1/K)."""
    rng = np.random.default_rng(2)
    n, m, k, alpha = 6, 8, 20, 0.05
    mask = ul.complementary_halves(n, m, seed=0)
    shadows = rng.normal(size=(m, n)) * 0.3 + 5.0 * mask
    released = 5.0 + 0.3 * rng.normal(size=(k, n))
    reference = 0.3 * rng.normal(size=(k, n))
    res = ul.ulira(shadows, mask, released, reference, delta=DELTA, alpha=alpha)
    assert (res.tpr == 1).all() and (res.fpr == 0).all() and (res.accuracy == 1).all()
    assert res.auc == 1.0 and res.population_accuracy == 1.0 and res.tpr_at_1fpr == 1.0
    assert (res.epsilon == ul.EPSILON_CAP).all()
    upper = 1 - (alpha / (2 * n)) ** (1 / k)
    assert res.epsilon_lower == pytest.approx(np.full(n, math.log((1 - DELTA - upper) / upper)))
    assert res.summary()["ulira_epsilon_lower"] == pytest.approx(math.log((1 - DELTA - upper) / upper))


def test_identical_sets_show_nothing() -> None:
    rng = np.random.default_rng(3)
    n, m, k = 30, 16, 16
    mask = ul.complementary_halves(n, m, seed=0)
    res = ul.ulira(rng.normal(size=(m, n)), mask, rng.normal(size=(k, n)), rng.normal(size=(k, n)), delta=DELTA)
    assert abs(res.auc - 0.5) < 0.06 and abs(res.population_accuracy - 0.5) < 0.06
    assert (res.epsilon_lower == 0).all()  # no example's bound survives Bonferroni over 30 examples


def test_clopper_pearson_upper_matches_the_metrics_interval() -> None:
    for k, n in ((0, 10), (3, 10), (10, 10), (7, 40)):
        assert ul.clopper_pearson_upper(k, n, alpha=0.01) == pytest.approx(clopper_pearson(k, n, alpha=0.01)[1])


def test_rate_epsilon_conventions() -> None:
    eps = ul.rate_epsilon(np.array([0.0, 0.0, 0.25, 0.5, 1.0]), np.array([0.0, 0.5, 0.25, 0.5, 0.0]), delta=DELTA)
    assert eps[0] == ul.EPSILON_CAP  # a perfect test
    assert eps[1] == pytest.approx(math.log((1 - DELTA) / 0.5))  # FPR = 0: only the term it does not divide
    assert eps[2] == pytest.approx(math.log((0.75 - DELTA) / 0.25))
    assert eps[3] == 0.0 and eps[4] == 0.0  # a coin flip; always "unlearned": nothing shown


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="at least 2 IN and 2 OUT"):
        ul.fit_shadow_gaussians(np.zeros((4, 3)), np.ones((4, 3), dtype=bool))
    with pytest.raises(ConfigError, match="same shape"):
        ul.fit_shadow_gaussians(np.zeros((4, 3)), np.ones((4, 2), dtype=bool))
    with pytest.raises(ConfigError, match="alpha"):
        mask = ul.complementary_halves(4, 4, seed=0)
        ul.ulira(np.zeros((4, 4)), mask, np.zeros((2, 4)), np.zeros((2, 4)), delta=DELTA, alpha=1.5)


# -- the certificate against the attacks ---------------------------------------------------------------------------


def test_reading_refuted_certificate() -> None:
    r = rf.read_certificate(status="certified", epsilon=1.0, epsilon_certified=0.8,
                            lower_bounds={"audit": 0.5, "U-LiRA vs noisy retrain": 1.3})
    assert r.kind == rf.REFUTED and r.attacked_epsilon == 1.3 and r.attacked_by == "U-LiRA vs noisy retrain"
    assert r.text.startswith("CERTIFICATE REFUTED") and "0.8" in r.text


def test_reading_of_a_run_labelled_not_certified() -> None:
    """σ below σ_required: the requested ε = 1 has no certificate; the bound at this σ certifies ε = 10. An attack
    showing ε ≥ 3 refutes the request (as the label warned), not a certificate; one showing ε ≥ 12 refutes the
    bound the tool does state at this σ."""
    claim = rf.read_certificate(status="not certified", epsilon=1.0, epsilon_certified=10.0, lower_bounds={"audit": 3})
    assert claim.kind == rf.CLAIM_REFUTED and "as the label 'not certified' warned" in claim.text
    assert "none is refuted" in claim.text
    bound = rf.read_certificate(status="not certified", epsilon=1.0, epsilon_certified=10.0,
                                lower_bounds={"audit": 12.0})
    assert bound.kind == rf.REFUTED and "this shows that it matters" in bound.text
    infinite = rf.read_certificate(status="not certified", epsilon=1.0, epsilon_certified=math.inf,
                                   lower_bounds={"audit": 3.0})
    assert infinite.kind == rf.CLAIM_REFUTED  # an infinite bound cannot be refuted


def test_reading_not_refuted_never_confirms() -> None:
    r = rf.read_certificate(status="certified under assumptions", epsilon=1.0, epsilon_certified=1.0,
                            lower_bounds={"audit": 0.4, "U-LiRA vs noisy retrain": None})
    assert r.kind == rf.NOT_REFUTED and rf.NEVER_CONFIRMS in r.text and r.attacked_by == "audit"
    tie = rf.read_certificate(status="certified", epsilon=1.0, epsilon_certified=1.0, lower_bounds={"audit": 1.0})
    assert tie.kind == rf.NOT_REFUTED  # a bound equal to ε does not exceed it
    assert rf.read_certificate(status="certified", epsilon=1.0, epsilon_certified=1.0,
                               lower_bounds={"audit": float("nan")}).kind == rf.NO_ATTACK
    assert rf.read_certificate(status=None, epsilon=None, epsilon_certified=None,
                               lower_bounds={"audit": 2.0}).kind == rf.NO_CERTIFICATE
    # A run that is not certified (no finite ε certified) is never read as "certified at" its requested ε.
    weak = rf.read_certificate(status="not certified", epsilon=1.0, epsilon_certified=None,
                               lower_bounds={"U-LiRA vs noisy retrain": 0.0})
    assert weak.kind == rf.NOT_REFUTED and "certified ε" not in weak.text
    assert "not above the requested ε = 1 — which no certificate covers: the run is not certified" in weak.text
