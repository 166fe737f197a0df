r"""Descent-to-Delete (Neel, Roth & Sharifi-Malvajerdi, ALT 2021): gradient descent contracts, noise hides the rest.

For a μ-strongly convex, β-smooth objective F over a closed convex set Θ (the ball ‖θ‖ ≤ C, or all of ℝ^p),
projected gradient descent :math:`T(\theta) = \Pi_\Theta(\theta - \eta\nabla F(\theta))` is a contraction with
factor γ (:func:`gd_contraction`) and its fixed point is the constrained minimiser :math:`\hat\theta`. After a
deletion the minimiser moves by at most the shift of :func:`minimiser_shift`; K steps from the previous state shrink
the distance to the new minimiser by :math:`\gamma^K`, and the Gaussian mechanism at that distance
(:func:`descent_to_delete_sensitivity`) makes the release indistinguishable from the minimiser plus the same noise.

Neel et al.'s Theorem (perturbed gradient descent, strongly convex case) has exactly this structure — contraction
factor :math:`(\beta-\mu)/(\beta+\mu)` at η = 2/(β+μ), per-update iterations, Gaussian noise from the sensitivity;
their released code computes :math:`\sigma = \frac{8L\gamma^K}{\mu n(1-\gamma^K)}\big/\big(\sqrt2(\sqrt{\ln(1/\delta)
+\varepsilon} - \sqrt{\ln(1/\delta)})\big)` for its steady state. The paper's full text was not reachable here, so
the bound used is derived in docs/other_methods.md#descent-to-delete (each step below is elementary and checked
by the tests against a dense reference); the noise is then calibrated by the exact analytic Gaussian mechanism.
"""

from __future__ import annotations

import math


def gd_contraction(*, lr: float, mu: float, beta: float) -> float:
    r"""The Lipschitz constant of :math:`\theta \mapsto \Pi(\theta - \eta\nabla F(\theta))` for μ-strongly convex,
    β-smooth F: :math:`\max(|1-\eta\mu|, |1-\eta\beta|)`.

    The Jacobian :math:`I - \eta\nabla^2F` has eigenvalues in :math:`[1-\eta\beta, 1-\eta\mu]`, and the projection
    onto a convex set is 1-Lipschitz (Nesterov 2004, Thm 2.1.15; the contraction of Neel et al. 2021). A value
    ≥ 1 means no contraction (η ≥ 2/β, or μ ≤ 0).
    """
    return max(abs(1.0 - lr * mu), abs(1.0 - lr * beta))


def optimal_step(*, mu: float, beta: float) -> float:
    """η = 2/(μ + β), the step with the smallest contraction factor (β − μ)/(β + μ) (Neel et al. 2021)."""
    return 2.0 / (mu + beta)


def minimiser_shift(*, n: int, removed: int, lipschitz: float, mu: float) -> float:
    r"""A bound on :math:`\lVert\hat\theta_D - \hat\theta_{D'}\rVert` when ``removed`` = k of the n points of D are
    deleted: :math:`kL/(\mu(n-k))`.

    With :math:`F_D = \frac1n\sum_D f_i` and every :math:`f_i` μ-strongly convex with
    :math:`\lVert\nabla f_i\rVert \le L` on Θ, the optimality conditions of both constrained minimisers give
    :math:`\mu\lVert a-b\rVert^2 \le \langle\nabla F_{D'}(a), a-b\rangle = \frac{-1}{n-k}\langle\sum_U\nabla f_i(a),
    a-b\rangle \le \frac{kL}{n-k}\lVert a-b\rVert` for a = θ̂_D, b = θ̂_{D'} (derived in
    docs/other_methods.md#descent-to-delete; Neel et al.'s 2L/(μn) is the one-point replacement case).
    ``inf`` when μ ≤ 0 or nothing is left.
    """
    if mu <= 0 or removed >= n:
        return math.inf
    return removed * lipschitz / (mu * (n - removed))


def distance_from_gradient_mapping(*, step_length: float, contraction: float) -> float:
    r""":math:`\lVert\theta - \hat\theta\rVert \le \lVert\theta - T(\theta)\rVert/(1-\gamma)` for a γ-contraction T
    with fixed point θ̂ (triangle inequality: :math:`\lVert\theta-\hat\theta\rVert \le \lVert\theta - T\theta\rVert
    + \gamma\lVert\theta - \hat\theta\rVert`). One projected gradient step measures how far a model is from the
    minimiser; unconstrained, at η = 2/(μ+β), this is :math:`\lVert\nabla F(\theta)\rVert/\mu`. ``inf`` if γ ≥ 1."""
    if contraction >= 1:
        return math.inf
    return float(step_length) / (1.0 - contraction)


def contracted_distance(*, start: float, contraction: float, steps: int) -> float:
    r""":math:`\gamma^K\cdot e_0`: the distance to the minimiser after K contraction steps from distance e₀."""
    if contraction >= 1:
        return math.inf if start > 0 else 0.0
    return float(start) * contraction ** int(steps)


def descent_to_delete_sensitivity(*, unlearned_distance: float, reference_distance: float) -> float:
    r"""Δ = e_U + e_R: both the unlearned state (within e_U of θ̂_{D'}) and the reference the certificate compares
    with (within e_R of it: 0 for the exact minimiser, G/μ for a recipe that stops at ‖∇F‖ ≤ G) lie in balls
    around θ̂_{D'}, so they are at most e_U + e_R apart — the sensitivity the Gaussian release must cover."""
    return float(unlearned_distance) + float(reference_distance)


def steps_for_distance(*, start: float, contraction: float, target: float) -> int | None:
    """The fewest steps K with γ^K·start ≤ target (0 when start ≤ target); None when γ ≥ 1 and start > target."""
    if start <= target:
        return 0
    if contraction >= 1 or target <= 0:
        return None
    return max(0, math.ceil(math.log(target / start) / math.log(contraction)))
