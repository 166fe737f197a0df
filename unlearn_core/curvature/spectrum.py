r"""The extreme eigenvalues of the regularised Hessian: Lanczos, power iteration, and over sampled mini-batches.

* :func:`lanczos` — λ_max and λ_min of a symmetric operator (Lanczos with full re-orthogonalisation; Ritz
  values of the tridiagonal matrix). :func:`power_iteration` is the cheaper, cruder alternative;
  :func:`extreme_eigenvalues` picks one of them. Certified Newton's λ_min and L, CureNewton's bracket.
* :func:`sampled_lambda_max` — the largest eigenvalue over a few *mini-batch* Hessians (what LiSSA's scale H
  must dominate), all batches at once with ``vmap``.
* :func:`sampled_lambda_min` — ζ_min of the LiSSA lemma (Agarwal, Bullins & Hazan 2017, Lemma 3.6): the smallest
  eigenvalue over sampled mini-batch Hessians.

Every routine sees the Hessian only through an HVP (:mod:`unlearn_core.curvature.operators`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from unlearn_core.curvature.operators import HVP, make_lissa_hvp
from unlearn_core.errors import ConfigError, DivergenceError
from unlearn_core.functional import num_params


@dataclass
class EigenEstimate:
    """Estimates of the extreme eigenvalues of a symmetric operator.

    Attributes:
        lambda_max: the largest (algebraic) eigenvalue estimate.
        lambda_min: the smallest (algebraic) eigenvalue estimate; negative for a non-convex loss.
        iterations: the number of HVPs spent.
        method: ``"lanczos"`` or ``"power"``.
        ritz_values: Lanczos only — all Ritz values (sorted), a rough picture of the spectrum.
        residual_min, residual_max: Lanczos only — the residual norms ‖A y − θ y‖ of the extreme Ritz pairs (θ, y):
            an eigenvalue of A lies within that distance of θ (for a symmetric A). It says the Ritz value has
            converged to *an* eigenvalue, not that no smaller one exists: λ_min stays an estimate.
    """

    lambda_max: float
    lambda_min: float
    iterations: int
    method: str
    ritz_values: list[float] = field(default_factory=list)
    residual_min: float | None = None
    residual_max: float | None = None


def _random_unit(dim: int, *, seed: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed))
    v = torch.randn(dim, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    return v / torch.linalg.vector_norm(v)


def lanczos(
    hvp: HVP,
    dim: int,
    *,
    num_iter: int = 64,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    tol: float = 1e-10,
) -> EigenEstimate:
    r"""λ_max and λ_min of a symmetric operator by Lanczos with full re-orthogonalisation.

    After k steps the Ritz values (eigenvalues of the k×k tridiagonal :math:`T_k = Q_k^\top A Q_k`) bracket the
    spectrum from inside, :math:`\lambda_{\min}(A) \le \theta_{\min} \le \theta_{\max} \le \lambda_{\max}(A)`
    (Cauchy interlacing), and the extreme ones converge first (Golub & Van Loan §10.1). Full
    re-orthogonalisation costs k·dim memory (kept in ``dtype``) but avoids the ghost eigenvalues of plain
    Lanczos; the tridiagonal problem is solved in float64.

    Args:
        hvp: ``v ↦ A v`` for a symmetric A of size ``dim``.
        dim: the dimension p.
        num_iter: Lanczos steps (HVPs), capped at ``dim``.
        seed: seed of the random start vector.
        dtype, device: of the vectors passed to ``hvp``.
        tol: stop early when the new Lanczos vector's norm falls below this (an invariant subspace was found).
    """
    k_max = max(1, min(int(num_iter), int(dim)))
    q = _random_unit(dim, seed=seed, dtype=dtype, device=device)
    basis = torch.empty(k_max, dim, dtype=dtype, device=device)
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    q_prev = torch.zeros_like(q)
    steps = 0
    for k in range(k_max):
        basis[k] = q
        w = hvp(q)
        steps += 1
        if not torch.isfinite(w).all():
            raise DivergenceError(f"Lanczos: the HVP returned a non-finite value at step {k + 1}")
        alpha = float(torch.dot(w, q))
        w = w - alpha * q - beta * q_prev
        # Full re-orthogonalisation (twice is enough, "twice is enough" — Parlett).
        for _ in range(2):
            w = w - basis[: k + 1].T @ (basis[: k + 1] @ w)
        alphas.append(alpha)
        beta = float(torch.linalg.vector_norm(w))
        if k == k_max - 1 or beta < tol:
            break
        betas.append(beta)
        q_prev, q = q, w / beta
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas[: len(alphas) - 1], dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    ritz, vectors = torch.linalg.eigh(t)
    # The residual of Ritz pair j is |β_k · s_j[k]|, β_k the norm of the last (unused) Lanczos vector and s_j the
    # eigenvector of T_k (Golub & Van Loan §10.1.4): computed from the tridiagonal, no further HVP.
    last = abs(beta) * vectors[-1].abs()
    return EigenEstimate(
        lambda_max=float(ritz[-1]),
        lambda_min=float(ritz[0]),
        iterations=steps,
        method="lanczos",
        ritz_values=[float(v) for v in ritz],
        residual_min=float(last[0]),
        residual_max=float(last[-1]),
    )


def power_iteration(
    hvp: HVP,
    dim: int,
    *,
    num_iter: int = 100,
    tol: float = 1e-4,
    shift: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[float, int]:
    r"""The eigenvalue of largest magnitude of :math:`A - \text{shift}\cdot I`, plus ``shift``; and the HVP count.

    Power iteration with Rayleigh quotients; stops when the quotient changes by less than ``tol`` relative.
    With ``shift`` = a known extreme eigenvalue it finds the other end of the spectrum (see
    :func:`extreme_eigenvalues`).
    """
    v = _random_unit(dim, seed=seed, dtype=dtype, device=device)
    estimate = 0.0
    steps = 0
    for _ in range(max(1, int(num_iter))):
        w = hvp(v) - shift * v
        steps += 1
        new = float(torch.dot(w, v))
        norm = float(torch.linalg.vector_norm(w))
        if not math.isfinite(norm):
            raise DivergenceError(f"power iteration: the HVP returned a non-finite value at step {steps}")
        if norm == 0.0:
            return shift, steps
        v = w / norm
        if steps > 1 and abs(new - estimate) <= tol * max(abs(new), 1e-12):
            estimate = new
            break
        estimate = new
    return estimate + shift, steps


def extreme_eigenvalues(
    hvp: HVP,
    dim: int,
    *,
    method: str = "lanczos",
    num_iter: int = 64,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    tol: float = 1e-6,
) -> EigenEstimate:
    """λ_max and λ_min of a symmetric operator by ``method`` = ``"lanczos"`` (default) or ``"power"``.

    ``tol`` is the power iteration's relative stopping tolerance on the Rayleigh quotient (Lanczos runs
    ``num_iter`` steps or stops at an invariant subspace).

    The power variant first finds the dominant eigenvalue μ, then the dominant eigenvalue of A − μI, whose
    shift gives the opposite end of the spectrum. Lanczos gets both ends from one Krylov space and is usually
    much more accurate for the same number of HVPs.
    """
    if method == "lanczos":
        return lanczos(hvp, dim, num_iter=num_iter, seed=seed, dtype=dtype, device=device)
    if method != "power":
        raise ConfigError(f"method={method!r} is not valid: expected one of lanczos, power")
    first, n1 = power_iteration(hvp, dim, num_iter=num_iter, tol=tol, seed=seed, dtype=dtype, device=device)
    other, n2 = power_iteration(hvp, dim, num_iter=num_iter, tol=tol, shift=first, seed=seed + 1, dtype=dtype,
                                device=device)
    lo, hi = min(first, other), max(first, other)
    return EigenEstimate(lambda_max=hi, lambda_min=lo, iterations=n1 + n2, method="power")


def sampled_lambda_max(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    num_batches: int = 16,
    lam: float = 0.0,
    weight_decay: float = 0.0,
    num_iter: int = 30,
    seed: int = 0,
    hvp_backend: str = "auto",
) -> float:
    r"""An estimate of :math:`\max_B \lambda_{\max}(\nabla^2 L(w; B) + (\mathrm{wd}+\lambda) I)` over mini-batches.

    LiSSA's recursion :math:`v_t = g + (I - A_t/H) v_{t-1}` contracts only if every sampled
    :math:`A_t` has spectrum in (0, 2H), so H must dominate the largest eigenvalue of the *mini-batch*
    Hessians, which is larger than that of the full-data Hessian (Agarwal, Bullins & Hazan 2017, the scaling
    condition of LiSSA's Neumann series; see docs/certified_newton.md#the-method).
    ``num_batches`` batches of ``batch_size`` points (drawn with replacement, as LiSSA draws them) each get
    ``num_iter`` steps of power iteration, all batches at once through ``vmap``; the largest Rayleigh quotient
    is returned. When a batch's dominant eigenvalue is negative the iteration is re-run on A + |μ|I so that the
    top (positive) end is found. Model must be in eval mode.
    """
    n = int(x.shape[0])
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(n, (num_batches, batch_size), generator=gen).to(x.device)
    xb, yb = x[idx], y[idx]
    raw, _ = make_lissa_hvp(model, backend=hvp_backend)
    reg = float(weight_decay) + float(lam)

    def bhvp(v: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return raw(v, xs, ys) + reg * v

    p = num_params(model)

    def run(shift: torch.Tensor) -> torch.Tensor:
        v = torch.randn(num_batches, p, generator=gen, dtype=torch.float64).to(dtype=x.dtype, device=x.device)
        v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)
        rayleigh = torch.zeros(num_batches, dtype=x.dtype, device=x.device)
        for _ in range(max(1, int(num_iter))):
            w = bhvp(v, xb, yb) + shift[:, None] * v
            rayleigh = (w * v).sum(dim=1)
            norms = torch.linalg.vector_norm(w, dim=1, keepdim=True)
            if not torch.isfinite(norms).all():
                raise DivergenceError("power iteration on the sampled Hessians returned a non-finite value")
            v = w / norms.clamp_min(1e-30)
        return rayleigh - shift

    with torch.no_grad():
        mu = run(torch.zeros(num_batches, dtype=x.dtype, device=x.device))
        if bool((mu < 0).any()):
            mu = run(mu.abs() * (mu < 0))
    return float(mu.max())


def sampled_lambda_min(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    num_batches: int = 8,
    lam: float = 0.0,
    weight_decay: float = 0.0,
    num_iter: int = 20,
    seed: int = 0,
    hvp_backend: str = "auto",
) -> float:
    r"""An estimate of :math:`\min_B \lambda_{\min}(\nabla^2 L(w; B) + (\mathrm{wd}+\lambda) I)` over mini-batches.

    ζ_min of Agarwal, Bullins & Hazan's LiSSA lemma bounds the smallest eigenvalue of the *sampled* regularised
    Hessians — the ones LiSSA actually multiplies by — from below; small batches of a neural network have far more
    negative curvature than the full-data Hessian (batch-10 Hessians reach −1.07 where the full one has
    λ_min ≈ −0.08 on the MNIST MLP). ``num_batches`` batches of ``batch_size`` points, drawn with replacement as
    LiSSA draws them, each get ``num_iter`` Lanczos steps; the smallest Ritz value is returned. It is an
    *estimate* and an optimistic one twice over: a Ritz value lies above the true λ_min, and only a few of the
    possible batches are looked at. Model must be in eval mode.
    """
    n = int(x.shape[0])
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(n, (num_batches, batch_size), generator=gen).to(x.device)
    raw, _ = make_lissa_hvp(model, backend=hvp_backend)
    reg = float(weight_decay) + float(lam)
    p = num_params(model)
    smallest = math.inf
    with torch.no_grad():
        for b in range(num_batches):
            xb, yb = x[idx[b]].unsqueeze(0), y[idx[b]].unsqueeze(0)

            def hvp(v: torch.Tensor, _xb: torch.Tensor = xb, _yb: torch.Tensor = yb) -> torch.Tensor:
                return raw(v.unsqueeze(0), _xb, _yb)[0] + reg * v

            est = lanczos(hvp, p, num_iter=num_iter, seed=int(seed) + b, dtype=x.dtype, device=x.device)
            smallest = min(smallest, est.lambda_min)
    return float(smallest)
