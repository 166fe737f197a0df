r"""Proven constants of softmax (multinomial logistic) regression, computed from the data.

The model is ``logreg``: logits :math:`z = W x + b`, parameters θ = (W, b) ∈ ℝ^{K×(d+1)}; write
:math:`\tilde x = (x, 1)` so that :math:`z = \Theta\tilde x`. The objective of the package is

.. math:: F_S(\theta) = \frac1{|S|}\sum_{i\in S}\mathrm{CE}(\Theta\tilde x_i, y_i)
          + \frac{\mathrm{wd}}2\lVert\theta\rVert^2 .

Three facts, each a bound (not an estimate), used by Descent-to-Delete, Langevin unlearning and Rewind-to-Delete:

* **Smoothness** (:func:`smoothness_bound`). The cross-entropy Hessian of one example is
  :math:`(\mathrm{diag}(p) - pp^\top)\otimes\tilde x\tilde x^\top` and
  :math:`\mathrm{diag}(p) - pp^\top \preceq \tfrac12 I` (Böhning 1992: it is below
  :math:`\tfrac12(I - \mathbf 1\mathbf 1^\top/K)`), so
  :math:`\nabla^2 F_S \preceq \tfrac12\,\lambda_{\max}\big(\tfrac1{|S|}\sum_i\tilde x_i\tilde x_i^\top\big) I
  + \mathrm{wd}\,I` everywhere: β is half the largest eigenvalue of the augmented features' second-moment matrix,
  plus wd.
* **Strong convexity**: the cross-entropy of a linear model is convex, so :math:`\nabla^2 F_S \succeq \mathrm{wd}\,I`:
  μ = wd.
* **Per-example gradient** (:func:`gradient_bound`):
  :math:`\nabla_\Theta\mathrm{CE}_i = (p_i - e_{y_i})\tilde x_i^\top` and :math:`\lVert p - e_y\rVert_2 \le \sqrt2`,
  so :math:`\lVert\nabla\mathrm{CE}_i\rVert \le \sqrt2\,\lVert\tilde x_i\rVert` for every θ.

And one consequence of strong convexity (:func:`minimiser_norm_bound`): :math:`\lVert\theta^*_S\rVert \le
\lVert\nabla F_S(0)\rVert/\mu`, with :math:`\nabla F_S(0) = \frac1{|S|}\sum_i(\mathbf 1/K - e_{y_i})\tilde x_i^\top`
computed exactly.

Everything is accumulated in float64 over chunks of the data, so MNIST's 60,000 × 785 features never exist at once.
"""

from __future__ import annotations

import math

import torch

CHUNK = 8192


def _augmented(x: torch.Tensor) -> torch.Tensor:
    """:math:`\\tilde x = (x, 1)`, flattened, in float64."""
    flat = x.reshape(x.shape[0], -1).to(torch.float64)
    return torch.cat([flat, torch.ones(flat.shape[0], 1, dtype=torch.float64, device=flat.device)], dim=1)


def augmented_gram(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i\tilde x_i\tilde x_i^\top`, the (d+1)×(d+1) float64 Gram matrix of the augmented features
    (accumulated over chunks; a sequential deletion subtracts the deleted points' part)."""
    d = int(x[0].numel()) + 1 if int(x.shape[0]) else 1
    gram = torch.zeros(d, d, dtype=torch.float64, device=x.device)
    for start in range(0, int(x.shape[0]), CHUNK):
        xt = _augmented(x[start : start + CHUNK])
        gram += xt.T @ xt
    return gram


def gram_lambda_max(gram: torch.Tensor, n: int) -> float:
    """λ_max(gram/n) by a dense symmetric eigensolve (exact up to float64 rounding); 0 for no points."""
    if n <= 0:
        return 0.0
    return float(torch.linalg.eigvalsh(gram / n)[-1].clamp_min(0.0))


def second_moment_lambda_max(x: torch.Tensor) -> float:
    r""":math:`\lambda_{\max}\big(\frac1n\sum_i\tilde x_i\tilde x_i^\top\big)`, by a dense eigensolve of the
    (d+1)×(d+1) matrix (exact up to float64 rounding)."""
    return gram_lambda_max(augmented_gram(x), int(x.shape[0]))


def smoothness_from_lambda(lambda_max: float, *, weight_decay: float) -> float:
    """β = λ_max/2 + wd from the second-moment eigenvalue (Böhning 1992; the module docstring)."""
    return 0.5 * float(lambda_max) + float(weight_decay)


def smoothness_bound(x: torch.Tensor, *, weight_decay: float) -> float:
    r"""β with :math:`\nabla^2 F_S \preceq \beta I` for softmax regression on the points ``x`` (module docstring):
    :math:`\tfrac12\lambda_{\max}(\frac1n\sum\tilde x\tilde x^\top) + \mathrm{wd}` (Böhning 1992's bound on the
    softmax covariance)."""
    return 0.5 * second_moment_lambda_max(x) + float(weight_decay)


def gradient_bound(x: torch.Tensor) -> float:
    r"""G with :math:`\lVert\nabla_\theta\mathrm{CE}(\Theta\tilde x_i, y)\rVert \le G` for every point of ``x``, every
    label and every θ: :math:`\sqrt2\max_i\lVert\tilde x_i\rVert`."""
    if int(x.shape[0]) == 0:
        return 0.0
    largest = max(float(torch.linalg.vector_norm(_augmented(x[s : s + CHUNK]), dim=1).max())
                  for s in range(0, int(x.shape[0]), CHUNK))
    return math.sqrt(2.0) * largest


def zero_gradient_norm(x: torch.Tensor, y: torch.Tensor, *, num_classes: int) -> float:
    r""":math:`\lVert\nabla F_S(0)\rVert`, exactly: at θ = 0 every softmax is uniform, so the gradient is
    :math:`\frac1n\sum_i(\mathbf 1/K - e_{y_i})\tilde x_i^\top` (weight decay contributes nothing at 0)."""
    n = int(x.shape[0])
    if n == 0:
        return 0.0
    total = None
    for start in range(0, n, CHUNK):
        xt = _augmented(x[start : start + CHUNK])
        residual = torch.full((xt.shape[0], num_classes), 1.0 / num_classes, dtype=torch.float64, device=xt.device)
        residual[torch.arange(xt.shape[0], device=xt.device), y[start : start + CHUNK].to(xt.device)] -= 1.0
        part = residual.T @ xt
        total = part if total is None else total + part
    return float(torch.linalg.matrix_norm(total / n))  # type: ignore[arg-type]


def minimiser_norm_bound(*, zero_gradient: float, mu: float) -> float:
    r""":math:`\lVert\theta^*\rVert \le \lVert\nabla F(0)\rVert/\mu` for a μ-strongly convex F with minimiser θ*
    (strong convexity between 0 and θ*: :math:`\mu\lVert\theta^* - 0\rVert^2 \le
    \langle\nabla F(0) - \nabla F(\theta^*), 0 - \theta^*\rangle`). ``inf`` when μ ≤ 0."""
    return float(zero_gradient) / float(mu) if mu > 0 else math.inf
