r"""U-LiRA: the per-example likelihood-ratio attack on unlearning, with shadow models unlearned the same way.

Hayes, Shumailov, Triantafillou, Khalifa, Papernot, "Inexact unlearning needs more careful evaluations to avoid a
false sense of privacy" (SaTML 2025; arXiv 2403.01218, the section introducing U-LiRA), adapting LiRA (Carlini et
al. 2022, "Membership inference attacks from first principles", §IV) to unlearning. The question it asks of one
example x: *was x trained on and then unlearned, or never trained on?* Population attacks (one threshold for every
example) answer it badly; a per-example attacker that knows what "unlearned" and "never seen" look like *for this
example* answers it much better, which is why the paper finds that population U-MIAs overstate the privacy of
inexact unlearning.

**Shadow models** (built by :mod:`unlearn_core.field_evaluation`): each shadow k trains on the retain set plus a
random half H_k of the forget set and then unlearns H_k with the method under test (same hyperparameters). For an
example x, the shadows with x ∈ H_k show its *unlearned* ("IN") distribution, the others its *never seen* ("OUT")
distribution. Halves come in complementary pairs, so every example is IN for exactly half of the shadows.

**The attack** (:func:`fit_shadow_gaussians`, :func:`log_likelihood_ratio`): per example, Gaussians
N(μ_in, σ_in²) and N(μ_out, σ_out²) are fitted to the shadows' logit-scaled confidences; a target model's
confidence c on x is scored by :math:`\Lambda = \ln\mathcal N(c; \mu_{in}, \sigma_{in}^2) -
\ln\mathcal N(c; \mu_{out}, \sigma_{out}^2)` and called "unlearned" when Λ > 0. With fewer than 64 shadows the
variances are global (one per group, averaged over examples), Carlini et al.'s advice for few shadow models.

**Targets** (:func:`ulira`): models independent of the shadows — the method's released models (every forget
example IN) and reference models (every forget example OUT: exact retrains for the field's protocol, or the noisy
retrain, the pair a certificate is about). So nothing is fitted on what is scored. Per example: the rate at which
the released models are flagged (TPR) and the reference models are (FPR), the attack's balanced accuracy, and

* ``epsilon`` — the point estimate :math:`\max\{\ln\frac{1-\delta-\mathrm{FPR}}{\mathrm{FNR}},
  \ln\frac{1-\delta-\mathrm{FNR}}{\mathrm{FPR}}, 0\}` of this one test (FPR = FNR = 0 → the cap; a zero rate drops
  the term it divides): an *estimate*, for the histogram beside the challenge's;
* ``epsilon_lower`` — the same conversion of Clopper–Pearson upper limits of both rates at confidence
  1 − α/n each (Bonferroni over the n examples): the largest value over examples is a *lower bound* on ε that
  holds with confidence ≈ 1 − α for every example at once. Against the noisy retrain, it is a bound on exactly
  the pair a certificate covers, so it can refute one.

Population results pool every (model, example) score: ROC-AUC, TPR at 1 % FPR and the accuracy at Λ = 0. They are
summaries, not bounds (the examples of one model are not independent trials).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_core.errors import ConfigError

#: Below this many shadows, the Gaussians share one variance per group (Carlini et al. 2022, §IV-C).
GLOBAL_VARIANCE_BELOW = 64
#: Variance floor: a group whose shadows all agree (a deterministic method) still gives a finite ratio.
VARIANCE_FLOOR = 1e-8
#: Display cap of a per-example ε estimate (as the challenge's).
EPSILON_CAP = 50.0


@dataclass(frozen=True)
class ShadowFit:
    """Per-example Gaussians of the IN (unlearned) and OUT (never seen) shadows' confidences."""

    mu_in: np.ndarray
    var_in: np.ndarray
    mu_out: np.ndarray
    var_out: np.ndarray
    shadows: int
    global_variance: bool


def complementary_halves(n: int, shadows: int, *, seed: int) -> np.ndarray:
    """A (shadows, n) boolean IN mask: shadow 2j takes a random half of the n examples, shadow 2j + 1 the rest,
    so every example is IN for exactly ``shadows / 2`` shadows. Seeded (numpy's PCG64)."""
    if shadows < 2 or shadows % 2:
        raise ConfigError(f"shadows={shadows} is not valid: expected an even number ≥ 2 (complementary halves)")
    if n < 2:
        raise ConfigError(f"U-LiRA needs at least 2 forget examples to split into halves; got {n}")
    rng = np.random.default_rng(seed)
    mask = np.zeros((shadows, n), dtype=bool)
    for j in range(shadows // 2):
        half = rng.permutation(n)[: n // 2]
        mask[2 * j, half] = True
        mask[2 * j + 1] = ~mask[2 * j]
    return mask


def fit_shadow_gaussians(confs: Any, in_mask: Any, *, global_variance: bool | None = None) -> ShadowFit:
    """Per-example means and variances of the IN and OUT shadows (see the module docstring).

    ``confs`` (M, n): the shadows' confidences; ``in_mask`` (M, n): True where the shadow trained on and unlearned
    the example. Every example needs at least 2 IN and 2 OUT shadows.
    """
    c = np.asarray(confs, dtype=np.float64)
    m = np.asarray(in_mask, dtype=bool)
    if c.ndim != 2 or c.shape != m.shape:
        raise ConfigError(f"U-LiRA needs (shadows, examples) confidences and an IN mask of the same shape; got "
                          f"{c.shape} and {m.shape}")
    if not np.isfinite(c).all():
        raise ConfigError("U-LiRA needs finite shadow confidences (a shadow model diverged?)")
    n_in, n_out = m.sum(axis=0), (~m).sum(axis=0)
    if n_in.min() < 2 or n_out.min() < 2:
        raise ConfigError(f"U-LiRA needs at least 2 IN and 2 OUT shadows per example; got {int(n_in.min())} IN and "
                          f"{int(n_out.min())} OUT")

    def moments(mask: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = np.where(mask, c, 0.0).sum(axis=0) / count
        var = np.where(mask, (c - mu) ** 2, 0.0).sum(axis=0) / (count - 1)
        return mu, var

    mu_in, var_in = moments(m, n_in)
    mu_out, var_out = moments(~m, n_out)
    use_global = global_variance if global_variance is not None else c.shape[0] < GLOBAL_VARIANCE_BELOW
    if use_global:
        var_in, var_out = np.full_like(var_in, var_in.mean()), np.full_like(var_out, var_out.mean())
    return ShadowFit(mu_in=mu_in, var_in=np.maximum(var_in, VARIANCE_FLOOR), mu_out=mu_out,
                     var_out=np.maximum(var_out, VARIANCE_FLOOR), shadows=int(c.shape[0]),
                     global_variance=bool(use_global))


def log_likelihood_ratio(confs: Any, fit: ShadowFit) -> np.ndarray:
    r"""Λ = ln N(c; μ_in, σ_in²) − ln N(c; μ_out, σ_out²) for every (model, example) of ``confs`` (K, n)."""
    c = np.asarray(confs, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != fit.mu_in.shape[0]:
        raise ConfigError(f"U-LiRA targets need (models, {fit.mu_in.shape[0]}) confidences; got {c.shape}")

    def log_pdf(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
        return -0.5 * np.log(2 * np.pi * var) - (c - mu) ** 2 / (2 * var)

    return log_pdf(fit.mu_in, fit.var_in) - log_pdf(fit.mu_out, fit.var_out)


def clopper_pearson_upper(k: Any, n: int, *, alpha: float) -> np.ndarray:
    """Upper limits of two-sided exact 1 − α intervals for k/n, vectorised (1 where k = n): B(1 − α/2; k + 1, n − k)."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = beta.ppf(1 - alpha / 2, k + 1, n - k)
    return np.where(k >= n, 1.0, upper)


def rate_epsilon(fpr: Any, fnr: Any, *, delta: float, cap: float = EPSILON_CAP) -> np.ndarray:
    r"""ε of one test from its rates: :math:`\max\{\ln\frac{1-\delta-\mathrm{FPR}}{\mathrm{FNR}},
    \ln\frac{1-\delta-\mathrm{FNR}}{\mathrm{FPR}}, 0\}`, elementwise; both rates 0 → ``cap``; a term whose
    denominator is 0 or whose numerator is ≤ 0 is dropped; capped at ``cap``."""
    f = np.asarray(fpr, dtype=np.float64)
    n = np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where((n > 0) & (1 - delta - f > 0), np.log(np.maximum(1 - delta - f, 1e-300)) - np.log(n), 0.0)
        t2 = np.where((f > 0) & (1 - delta - n > 0), np.log(np.maximum(1 - delta - n, 1e-300)) - np.log(f), 0.0)
    out = np.maximum(0.0, np.maximum(t1, t2))
    out = np.where((f == 0) & (n == 0), cap, out)
    return np.minimum(out, cap)


@dataclass(frozen=True)
class ULiRAResult:
    """U-LiRA on one method: per-example arrays (length n) and population summaries (see the module docstring)."""

    tpr: np.ndarray
    fpr: np.ndarray
    accuracy: np.ndarray
    epsilon: np.ndarray
    epsilon_lower: np.ndarray
    auc: float
    tpr_at_1fpr: float
    population_accuracy: float
    alpha: float
    delta: float

    def summary(self, prefix: str = "ulira") -> dict[str, float]:
        return {f"{prefix}_auc": self.auc, f"{prefix}_tpr_at_1fpr": self.tpr_at_1fpr,
                f"{prefix}_accuracy": self.population_accuracy,
                f"{prefix}_example_accuracy_median": float(np.median(self.accuracy)),
                f"{prefix}_eps_median": float(np.median(self.epsilon)),
                f"{prefix}_eps_max": float(np.max(self.epsilon)),
                f"{prefix}_epsilon_lower": float(np.max(self.epsilon_lower))}


def ulira(shadow_confs: Any, shadow_in: Any, unlearned_confs: Any, reference_confs: Any, *, delta: float,
          alpha: float = 0.05, global_variance: bool | None = None) -> ULiRAResult:
    """Fit the shadows' Gaussians, score the released (label 1) and reference (label 0) models, and read the
    per-example and population results (see the module docstring).

    ``shadow_confs``/``shadow_in`` (M, n); ``unlearned_confs`` (K, n): the method's released models (every example
    IN); ``reference_confs`` (K', n): models that never trained on the forget set (OUT).
    """
    from sklearn.metrics import roc_auc_score

    from unlearn_core.metrics import tpr_at_fpr

    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha!r} is not valid: expected a number in (0, 1)")
    fit = fit_shadow_gaussians(shadow_confs, shadow_in, global_variance=global_variance)
    a = log_likelihood_ratio(unlearned_confs, fit)
    b = log_likelihood_ratio(reference_confs, fit)
    if a.shape[0] < 1 or b.shape[0] < 1:
        raise ConfigError("U-LiRA needs at least one released and one reference model")
    n = a.shape[1]
    flag_a, flag_b = a > 0, b > 0
    tpr, fpr = flag_a.mean(axis=0), flag_b.mean(axis=0)
    fn, fp = (~flag_a).sum(axis=0), flag_b.sum(axis=0)
    a_each = alpha / n
    fpr_hi = clopper_pearson_upper(fp, b.shape[0], alpha=a_each)
    fnr_hi = clopper_pearson_upper(fn, a.shape[0], alpha=a_each)
    lower = rate_epsilon(fpr_hi, fnr_hi, delta=delta, cap=np.inf)
    labels = np.concatenate([np.ones(a.size, dtype=int), np.zeros(b.size, dtype=int)])
    scores = np.concatenate([a.reshape(-1), b.reshape(-1)])
    return ULiRAResult(
        tpr=tpr, fpr=fpr, accuracy=0.5 * (tpr + 1 - fpr), epsilon=rate_epsilon(fpr, 1 - tpr, delta=delta),
        epsilon_lower=lower, auc=float(roc_auc_score(labels, scores)), tpr_at_1fpr=tpr_at_fpr(labels, scores),
        population_accuracy=float(0.5 * (flag_a.mean() + 1 - flag_b.mean())), alpha=float(alpha), delta=float(delta),
    )
