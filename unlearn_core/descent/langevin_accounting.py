r"""Langevin unlearning (Chien, Wang, Chen & Li, NeurIPS 2024, two papers): Rényi bounds of projected noisy GD.

Learning and unlearning are the same process, full-batch projected noisy gradient descent
(:mod:`unlearn_core.recipes`, ``noisy_gd``)

.. math:: w_{t+1} = \Pi_C\big(w_t - \eta\nabla F_S(w_t) + \sqrt{2\eta}\,\sigma\,\xi_t\big),\qquad \xi_t\sim N(0, I),

on a μ-strongly convex, β-smooth F (softmax regression with weight decay μ, :mod:`unlearn_core.descent.softmax_bounds`).
Learning runs on D; to forget U it continues for K steps on D' = D \ U. The unlearned law is compared with the law of
the same process run on D' from the same initialisation (retraining); the bound on their Rényi divergence of order α
decays with K ("privacy recuperation"), and Mironov's conversion (:func:`rdp_to_dp_epsilon`) turns it into (ε, δ).

Two accountants, both as functions of the *drift sensitivity* :math:`\Delta_g \ge \sup_w\lVert\nabla F_D(w) -
\nabla F_{D'}(w)\rVert` (:func:`drift_sensitivity`):

* ``w_inf`` — Chien et al., *Certified Machine Unlearning via Noisy Stochastic Gradient Descent* (NeurIPS 2024),
  full-batch case: the learning processes on D and D' stay within :math:`Z = \Delta_g/\mu` in ∞-Wasserstein distance
  (:func:`learning_w_inf_bound`); K more contracting steps and one Gaussian step give
  :math:`\varepsilon_\alpha = \alpha Z^2 c^{2K}/(2\eta\sigma^2)` with c = 1 − ημ (:func:`w_inf_rdp`).
  Derived independently in docs/other_methods.md#langevin-unlearning, where the same argument gives half this
  constant: the published one is used, so the bound is conservative. Sequential requests add distances
  (:func:`sequential_w_inf_distance`).
* ``lsi`` — Chien et al., *Langevin Unlearning* (NeurIPS 2024): the learning process is
  :math:`(\alpha, \alpha\Delta_g^2/(\mu\sigma^2))`-Rényi close (:func:`lsi_rdp`) and the log-Sobolev constant
  2σ²/μ makes the divergence decay as :math:`e^{-K\mu\eta/\alpha}`. The paper's theorem was not reachable here: the
  formula is transcribed from the authors' public code (Graph-COM/Langevin_unlearning, ``epsilon_expression``) and
  the certificate that uses it is labelled as resting on that assumption.

Every function is a pure function of numbers; the certificate in ``unlearn_core/unlearners/langevin.py`` calls them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from unlearn_core.errors import ConfigError

#: The orders α the numerical optimisation of :func:`lsi_epsilon` ranges over (the public code: (1, 10⁴]).
ALPHA_RANGE = (1.0 + 1e-9, 1e7)


def drift_sensitivity(*, n: int, removed: int, grad_bound: float) -> float:
    r""":math:`\Delta_g = 2kM/n`: a bound on :math:`\lVert\nabla F_D(w) - \nabla F_{D'}(w)\rVert` for every w when
    k of the n points are removed and every per-example loss gradient has norm ≤ M (weight decay cancels).

    :math:`\nabla F_D - \nabla F_{D'} = -\frac{k}{n\,n'}\sum_{D'}g_i + \frac1n\sum_U g_i` with n' = n − k, whose
    norm is at most :math:`\frac{k}{n n'}n'M + \frac{k}{n}M` — the same as the one-point replacement of
    Chien et al. with k points (derived in docs/other_methods.md#langevin-unlearning).
    """
    if n <= 0:
        raise ConfigError(f"n={n!r} is not valid: expected a positive number of training points")
    return 2.0 * removed * grad_bound / n


def learning_w_inf_bound(*, drift: float, mu: float) -> float:
    r"""Z = Δ_g/μ: the ∞-Wasserstein distance between the full-batch learning processes on D and D' started at the
    same point, at every step (Chien et al. 2024b, full batch).

    Coupled with the same noise, :math:`d_{t+1} \le c\,d_t + \eta\Delta_g` with c = 1 − ημ, so
    :math:`d_t \le \eta\Delta_g/(1-c) = \Delta_g/\mu`. ``inf`` when μ ≤ 0.
    """
    return float(drift) / float(mu) if mu > 0 else math.inf


def noisy_gd_contraction(*, lr: float, mu: float) -> float:
    """c = 1 − ημ, the contraction of one noiseless step of a μ-strongly convex, β-smooth F when η ≤ 2/(μ + β)
    (Chien et al. 2024b use η = 1/β); ≥ 1 means none."""
    return 1.0 - float(lr) * float(mu)


def w_inf_rdp(*, alpha: float, distance: float, contraction: float, steps: int, lr: float, sigma: float) -> float:
    r""":math:`\varepsilon_\alpha(K) = \alpha Z^2 c^{2K}/(2\eta\sigma^2)` (Chien et al., NeurIPS 2024, *Certified
    Machine Unlearning via Noisy SGD*, the full-batch "loose" bound of their released code, ``epsilon_alpha_loose``
    with b = n): the Rényi divergence of order α between the unlearned and the retrained laws after K steps from
    ∞-Wasserstein distance Z. ``inf`` without noise."""
    if sigma <= 0 or lr <= 0:
        return math.inf
    if contraction >= 1:
        return math.inf if distance > 0 else 0.0
    return alpha * distance**2 * contraction ** (2 * int(steps)) / (2.0 * lr * sigma**2)


def lsi_rdp(*, alpha: float, drift: float, mu: float, lr: float, sigma: float, steps: int) -> float:
    r""":math:`\varepsilon_\alpha(K) = e^{-K\mu\eta/\alpha}\cdot\alpha\Delta_g^2/(\mu\sigma^2)` (Chien, Wang, Chen & Li,
    NeurIPS 2024, *Langevin Unlearning*: the learning process's Rényi bound decayed by the log-Sobolev constant
    2σ²/μ). Transcribed from the authors' public code (``epsilon_expression``: with Δ_g = 2SM/n the prefactor is
    :math:`4\alpha S^2M^2/(\mu\sigma^2n^2)`); the paper's statement was not reachable here. ``inf`` without noise."""
    if sigma <= 0 or mu <= 0:
        return math.inf
    return math.exp(-steps * mu * lr / alpha) * alpha * drift**2 / (mu * sigma**2)


def rdp_to_dp_epsilon(*, rdp: float, alpha: float, delta: float) -> float:
    r""":math:`\varepsilon = \varepsilon_\alpha + \ln(1/\delta)/(\alpha - 1)`: (α, ε_α)-Rényi closeness in both
    directions gives (ε, δ)-indistinguishability (Mironov 2017, Proposition 3), the conversion both papers use."""
    if not 0 < delta < 1:
        raise ConfigError(f"delta={delta!r} is not valid: expected a number in (0, 1)")
    return rdp + math.log(1.0 / delta) / (alpha - 1.0)


def w_inf_epsilon(*, distance: float, contraction: float, steps: int, lr: float, sigma: float,
                  delta: float) -> float:
    r"""The ε of :func:`w_inf_rdp` at δ, optimised over α in closed form.

    With :math:`A = Z^2c^{2K}/(2\eta\sigma^2)` and B = ln(1/δ), :math:`\alpha A + B/(\alpha-1)` is smallest at
    :math:`\alpha = 1 + \sqrt{B/A}`, where it equals :math:`A + 2\sqrt{AB}`.
    """
    a = w_inf_rdp(alpha=1.0, distance=distance, contraction=contraction, steps=steps, lr=lr, sigma=sigma)
    if not 0 < delta < 1:
        raise ConfigError(f"delta={delta!r} is not valid: expected a number in (0, 1)")
    if math.isinf(a):
        return math.inf
    return a + 2.0 * math.sqrt(a * math.log(1.0 / delta))


def w_inf_steps(*, distance: float, contraction: float, lr: float, sigma: float, epsilon: float,
                delta: float) -> int | None:
    r"""The fewest steps K with :func:`w_inf_epsilon` ≤ ε, in closed form: :math:`A + 2\sqrt{AB} \le \varepsilon`
    iff :math:`\sqrt A \le \sqrt{B+\varepsilon} - \sqrt B`, then K = ⌈ln(A_max/A_0)/(2 ln c)⌉. None when no K
    suffices (no noise, no contraction)."""
    a0 = w_inf_rdp(alpha=1.0, distance=distance, contraction=contraction, steps=0, lr=lr, sigma=sigma)
    b = math.log(1.0 / delta)
    a_max = (math.sqrt(b + epsilon) - math.sqrt(b)) ** 2
    if a0 <= a_max:
        return 0
    if math.isinf(a0) or contraction >= 1 or contraction <= 0:
        return None
    k = max(0, math.ceil(math.log(a_max / a0) / (2.0 * math.log(contraction))))
    while w_inf_epsilon(distance=distance, contraction=contraction, steps=k, lr=lr, sigma=sigma,
                        delta=delta) > epsilon:  # guard the rounding of the logarithms
        k += 1
    return k


def lsi_epsilon(*, drift: float, mu: float, lr: float, sigma: float, steps: int, delta: float) -> float:
    """The ε of :func:`lsi_rdp` at δ: min over α > 1 of ε_α + ln(1/δ)/(α − 1), numerically (a log-spaced grid, then
    a bounded scalar minimisation around its best point)."""
    if sigma <= 0 or mu <= 0:
        return math.inf

    def total(alpha: float) -> float:
        return rdp_to_dp_epsilon(rdp=lsi_rdp(alpha=alpha, drift=drift, mu=mu, lr=lr, sigma=sigma, steps=steps),
                                 alpha=alpha, delta=delta)

    grid = 1.0 + np.logspace(-6, math.log10(ALPHA_RANGE[1]), 240)
    values = [total(float(a)) for a in grid]
    best = int(np.argmin(values))
    lo, hi = float(grid[max(best - 1, 0)]), float(grid[min(best + 1, len(grid) - 1)])
    if hi > lo:
        res = minimize_scalar(total, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10 * hi})
        return float(min(res.fun, values[best]))
    return float(values[best])


def lsi_steps(*, drift: float, mu: float, lr: float, sigma: float, epsilon: float, delta: float,
              max_steps: int) -> int | None:
    """The fewest steps K ≤ ``max_steps`` with :func:`lsi_epsilon` ≤ ε (it decreases with K: bisection); None when
    even ``max_steps`` does not suffice."""

    def ok(k: int) -> bool:
        return lsi_epsilon(drift=drift, mu=mu, lr=lr, sigma=sigma, steps=k, delta=delta) <= epsilon

    if ok(0):
        return 0
    if not ok(max_steps):
        return None
    lo, hi = 0, int(max_steps)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def sequential_w_inf_distance(*, previous: float, contraction: float, previous_steps: int, new: float) -> float:
    r""":math:`Z_i = Z_{i-1}c^{K_{i-1}} + Z_{\text{new}}`: after request i − 1 the state is within
    :math:`Z_{i-1}c^{K_{i-1}}` of the process on :math:`D_{i-1}`, which is within :math:`Z_{\text{new}}` of the process
    on :math:`D_i` (triangle inequality in W∞; Chien et al. 2024b's sequential bound, ``Z_B_sequential``): deletions
    add up linearly."""
    return float(previous) * float(contraction) ** int(previous_steps) + float(new)
