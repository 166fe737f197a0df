r"""Rewind-to-Delete (Mu & Klabjan, NeurIPS 2025): how far rewinding and descending lands from retraining.

Training is full-batch gradient descent (:mod:`unlearn_core.recipes`, ``gd``) for T steps of size η from the seeded
initialisation θ₀ on D (n points); retraining is the same on D' = D \ U (k points removed). To delete U, R2D takes
the checkpoint of the D-trajectory after T − K steps and runs the last K steps on D' instead, then adds Gaussian
noise. Both trajectories start at θ₀, so their distance grows from zero:

* while one descends on D and the other on D' (T − K steps), each step multiplies the distance by at most ρ
  (the Lipschitz constant of the gradient step of F_{D'}) and adds the disturbance
  :math:`\eta\lVert\nabla F_D - \nabla F_{D'}\rVert \le 2\eta Gk/n` (every per-example loss gradient ≤ G;
  weight decay cancels), so :math:`e_{T-K} \le \frac{2\eta Gk}{n}\sum_{j<T-K}\rho^j`;
* then both descend on D' for K steps: :math:`e_T \le \rho^K e_{T-K}` (:func:`rewind_sensitivity`).

ρ (:func:`gd_expansion`) is 1 + ηL for an L-smooth non-convex loss (the case Mu & Klabjan treat), and
max(|1 − ημ|, |1 − ηL|) ≤ 1 for a μ-strongly convex one with η ≤ 2/L (softmax regression with weight decay), where
the bound no longer grows with T. Rewinding to θ₀ (K = T) is retraining, Δ = 0; rewinding less is cheaper and
needs more noise. Mu & Klabjan's released code computes the non-convex structure,
:math:`h(K) = ((1 + \eta L n/(n-m))^{T-K} - 1)(1+\eta L)^K`; their paper's theorem was not reachable here, so the
bound is derived in docs/other_methods.md#rewind-to-delete (base 1 + ηL, slightly tighter). A projection onto a ball
after each step is 1-Lipschitz and changes nothing. For a non-convex network L and G are estimates or assumptions
along the trajectory, never proven.
"""

from __future__ import annotations

import math


def gd_expansion(*, lr: float, smoothness: float, mu: float = 0.0, convex: bool = False) -> float:
    """ρ, the Lipschitz constant of θ ↦ θ − η∇F(θ): 1 + ηL for an L-smooth F; max(|1 − ημ|, |1 − ηL|) when F is
    also convex (μ ≥ 0: the Hessian's spectrum lies in [μ, L]; Nesterov 2004, Thm 2.1.15)."""
    if convex:
        return max(abs(1.0 - lr * mu), abs(1.0 - lr * smoothness))
    return 1.0 + lr * smoothness


def rewind_sensitivity(*, total_steps: int, rewind_steps: int, lr: float, expansion: float, grad_bound: float,
                       n: int, removed: int) -> float:
    r"""Δ = :math:`\rho^K\cdot\frac{2\eta Gk}{n}\sum_{j=0}^{T-K-1}\rho^j` (the module docstring), the bound on
    ‖θ_unlearned − θ_retrained‖ before noise; with ρ = 1 + ηL this is
    :math:`(1+\eta L)^K\frac{2Gk}{nL}\big((1+\eta L)^{T-K} - 1\big)`.

    ``rewind_steps`` = K is the number of steps run on D' after the rewind (T − K steps were taken on D).
    ``inf`` on overflow.
    """
    T, K = int(total_steps), int(rewind_steps)
    if not 0 <= K <= T:
        raise ValueError(f"rewind_steps={K} must be in [0, total_steps={T}]")
    if removed <= 0 or K == T:
        return 0.0
    step = 2.0 * lr * grad_bound * removed / n
    m = T - K
    if expansion <= 0:  # the map sends everything to one point: only the last disturbance survives
        return step if K == 0 else 0.0
    try:
        if abs(expansion - 1.0) < 1e-12:
            series = float(m)
        else:
            series = math.expm1(m * math.log(expansion)) / (expansion - 1.0)
        return math.exp(K * math.log(expansion)) * step * series
    except OverflowError:
        return math.inf
