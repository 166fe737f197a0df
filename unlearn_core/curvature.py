r"""Curvature tools on Hessian-vector products: CG, Lanczos / power iteration, LiSSA, and the exact solve.

Every routine here sees the Hessian only through a function ``hvp(v) -> H v`` on flat vectors (built by
:mod:`unlearn_core.functional`, forward-over-reverse with ``torch.func``), so the same code serves the certified
Newton step (Zhang et al. 2024, methods.md §2), the damped Newton baseline and CureNewton's cubic sub-problem
(methods.md §4). Nothing here mutates a model.

* :func:`conjugate_gradient` — solves ``A x = b`` for a symmetric positive-definite ``A`` given as an HVP;
  refuses (``DivergenceError``) when it meets negative curvature, because then ``A`` is not PD and CG's answer
  would be meaningless.
* :func:`lanczos` — λ_max and λ_min of a symmetric operator (Lanczos with full re-orthogonalisation; Ritz
  values of the tridiagonal matrix). :func:`power_iteration` is the cheaper, cruder alternative.
  :func:`extreme_eigenvalues` picks one of them.
* :func:`sampled_lambda_max` — the largest eigenvalue over a few *mini-batch* Hessians (what LiSSA's scale H
  must dominate), all batches at once with ``vmap``.
* :func:`lissa` — the stochastic LiSSA estimate of (∇²L(w; D_r) + λI)⁻¹ g (Agarwal, Bullins & Hazan 2017, as
  used by Zhang et al. 2024, methods.md §2.2), repetitions run together as one batch of vectors.
* :func:`exact_inverse_hvp` — the reference: a dense solve (tiny models) or CG to tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unlearn_core.errors import ConfigError, DivergenceError
from unlearn_core.functional import (
    batches,
    dense_hessian,
    make_batched_hvp,
    make_full_hvp,
    num_params,
    weighted_chunk_hvp,
)

HVP = Callable[[torch.Tensor], torch.Tensor]

__all__ = [
    "CGResult",
    "EigenEstimate",
    "LissaResult",
    "conjugate_gradient",
    "dense_refusal",
    "exact_inverse_hvp",
    "extreme_eigenvalues",
    "hessian_matrix",
    "lanczos",
    "lissa",
    "lissa_batch_indices",
    "make_data_hvp",
    "make_lissa_hvp",
    "make_mlp_batched_hvp",
    "power_iteration",
    "sampled_lambda_max",
]


# ----------------------------------------------------------------------------------------------------------------
# Conjugate gradient
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class CGResult:
    """The outcome of :func:`conjugate_gradient`.

    Attributes:
        x: the approximate solution of ``A x = b``.
        iterations: the number of HVPs spent (one per iteration).
        relative_residual: ‖b − A x‖ / ‖b‖ at the end (the recursively updated residual).
        converged: ``relative_residual <= tol``.
        residuals: the relative residual after every iteration (index 0 = before the first one).
    """

    x: torch.Tensor
    iterations: int
    relative_residual: float
    converged: bool
    residuals: list[float] = field(default_factory=list)


def conjugate_gradient(
    hvp: HVP,
    b: torch.Tensor,
    *,
    tol: float = 1e-6,
    max_iter: int = 500,
    x0: torch.Tensor | None = None,
) -> CGResult:
    r"""Solve :math:`A x = b` for a symmetric positive-definite :math:`A` given only as ``hvp(v) = A v``.

    Standard Hestenes–Stiefel CG (Nocedal & Wright, *Numerical Optimization*, Alg. 5.2). It stops when the
    relative residual :math:`\lVert r_k\rVert / \lVert b\rVert \le` ``tol`` or after ``max_iter`` iterations
    (then ``converged`` is False — the caller decides whether that is acceptable).

    Why it raises on negative curvature: if :math:`p^\top A p \le 0` for a search direction, ``A`` is not
    positive definite and the CG iterate no longer approximates :math:`A^{-1} b`; for the Newton step that means
    the local convex term λ is too small for this (non-convex) loss.

    Args:
        hvp: ``v ↦ A v`` on flat vectors of the same dtype/device as ``b``.
        b: right-hand side (flat).
        tol: relative residual tolerance.
        max_iter: maximum number of iterations (HVPs).
        x0: initial guess (default zero).

    Raises:
        DivergenceError: negative or zero curvature met, or a non-finite value appeared.
    """
    if tol <= 0:
        raise ConfigError(f"tol={tol!r} is not valid: expected a number > 0")
    if max_iter < 1:
        raise ConfigError(f"max_iter={max_iter!r} is not valid: expected an integer >= 1")
    b_norm = float(torch.linalg.vector_norm(b))
    if b_norm == 0.0:
        return CGResult(x=torch.zeros_like(b), iterations=0, relative_residual=0.0, converged=True, residuals=[0.0])
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - hvp(x) if x0 is not None else b.clone()
    p = r.clone()
    rs = torch.dot(r, r)
    residuals = [math.sqrt(float(rs)) / b_norm]
    iterations = 0
    while residuals[-1] > tol and iterations < max_iter:
        ap = hvp(p)
        curvature = torch.dot(p, ap)
        iterations += 1
        if not torch.isfinite(curvature):
            raise DivergenceError(f"CG produced a non-finite value at iteration {iterations}")
        if curvature <= 0:
            raise DivergenceError(
                f"CG met negative curvature pᵀAp={float(curvature):.3g} at iteration {iterations}: the matrix is "
                "not positive definite; increase the damping / local convex term (lam) above −λ_min"
            )
        alpha = rs / curvature
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = torch.dot(r, r)
        residuals.append(math.sqrt(float(rs_new)) / b_norm)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return CGResult(
        x=x,
        iterations=iterations,
        relative_residual=residuals[-1],
        converged=residuals[-1] <= tol,
        residuals=residuals,
    )


# ----------------------------------------------------------------------------------------------------------------
# Extreme eigenvalues
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class EigenEstimate:
    """Estimates of the extreme eigenvalues of a symmetric operator.

    Attributes:
        lambda_max: the largest (algebraic) eigenvalue estimate.
        lambda_min: the smallest (algebraic) eigenvalue estimate; negative for a non-convex loss.
        iterations: the number of HVPs spent.
        method: ``"lanczos"`` or ``"power"``.
        ritz_values: Lanczos only — all Ritz values (sorted), a rough picture of the spectrum.
    """

    lambda_max: float
    lambda_min: float
    iterations: int
    method: str
    ritz_values: list[float] = field(default_factory=list)


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
    ritz = torch.linalg.eigvalsh(t)
    return EigenEstimate(
        lambda_max=float(ritz[-1]),
        lambda_min=float(ritz[0]),
        iterations=steps,
        method="lanczos",
        ritz_values=[float(v) for v in ritz],
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
    Hessians, which is larger than that of the full-data Hessian (methods.md §2.2 "Cost and stability").
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


def regularised_residual_norm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    *,
    lam: float,
    weight_decay: float = 0.0,
) -> float:
    r""":math:`\lVert(\nabla^2 L(w; (x, y)) + (\mathrm{wd}+\lambda)I)\,v - g\rVert` with one full-data HVP.

    The residual of an inverse-HVP estimate, for the a-posteriori bound
    :func:`unlearn_core.certificate.delta_a_posteriori`. Computed in float64 from the float32 HVP so that the
    subtraction does not lose the small residual of an accurate solve. Model must be in eval mode.
    """
    hvp = make_data_hvp(model, x, y, weight_decay=weight_decay, lam=lam)
    with torch.no_grad():
        av = hvp(v.to(x.dtype))
    return float(torch.linalg.vector_norm(av.double() - g.double()))


# ----------------------------------------------------------------------------------------------------------------
# Batched HVPs for LiSSA: the generic torch.func path and an exact fast path for plain MLPs
# ----------------------------------------------------------------------------------------------------------------

BatchedHVP = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
HVP_BACKENDS = ("auto", "functorch", "mlp")
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Identity, nn.Dropout)


def _mlp_plan(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The layer plan of a plain MLP — ``Sequential([Flatten], Linear, act, ..., Linear)`` — or None.

    Supported: ``Flatten`` (first, default dims), ``Linear`` (all parameters trainable), ``ReLU``, ``Tanh``,
    ``Identity`` and ``Dropout`` (identity in eval mode). Anything else returns None (use the generic path).
    """
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return None
    plan: list[tuple[str, nn.Module]] = []
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Flatten) and i == 0 and layer.start_dim == 1 and layer.end_dim == -1:
            plan.append(("flatten", layer))
        elif isinstance(layer, nn.Linear):
            if not all(p.requires_grad for p in layer.parameters()):
                return None
            plan.append(("linear", layer))
        elif isinstance(layer, _ELEMENTWISE):
            plan.append((type(layer).__name__.lower(), layer))
        else:
            return None
    if plan[-1][0] != "linear":
        return None
    return plan


def make_mlp_batched_hvp(model: nn.Module) -> MLPBatchedHVP | None:
    r"""An exact batched HVP for plain MLPs with cross-entropy, written out by hand (Pearlmutter's R-operator).

    Same contract as ``functional.make_batched_hvp`` with ``weight_decay = lam = 0``: row r of the result is
    :math:`\nabla^2 L(w; (X_r, Y_r))\,V_r` (mean cross-entropy over the batch). Returns None when the model is
    not a plain MLP (see :func:`_mlp_plan`); the callers then use the generic ``torch.func`` path.
    :meth:`MLPBatchedHVP.lissa_update_` fuses LiSSA's update into the last stage of the product.

    Why: LiSSA on small networks is dominated by per-operation overhead, not arithmetic, and the generic
    ``vmap(jvp(grad))`` issues several times more operations than the maths needs. For
    :math:`z_l = a_{l-1}W_l^\top + b_l`, :math:`a_l = \phi(z_l)` the forward tangent is
    :math:`\dot z_l = \dot a_{l-1}W_l^\top + a_{l-1}\dot W_l^\top + \dot b_l`, :math:`\dot a_l = \phi'(z_l)\dot z_l`;
    the backward pass :math:`\delta_L = (\mathrm{softmax}(z_L) - e_y)/b`, :math:`g_{W_l} = \delta_l^\top a_{l-1}`,
    :math:`\delta_{l-1} = \phi'(z_{l-1})\odot\delta_l W_l` has the tangent
    :math:`\dot g_{W_l} = \dot\delta_l^\top a_{l-1} + \delta_l^\top \dot a_{l-1}` with
    :math:`\dot\delta_L = (s\odot\dot z_L - s\,\langle s, \dot z_L\rangle)/b` and
    :math:`\dot\delta_{l-1} = \phi'\odot(\dot\delta_l W_l + \delta_l\dot W_l) + \phi''\odot\dot z_{l-1}\odot
    \delta_l W_l`. The shared weights multiply all R·b rows in one ``mm``; only the per-repetition tangents need
    ``bmm``. Verified against the ``torch.func`` path in ``tests/test_curvature.py``.
    """
    plan = _mlp_plan(model)
    return None if plan is None else MLPBatchedHVP(plan)


class MLPBatchedHVP:
    """The hand-written batched HVP of a plain MLP (see :func:`make_mlp_batched_hvp`): callable as a
    ``BatchedHVP``, plus the in-place LiSSA update :meth:`lissa_update_`."""

    def __init__(self, plan: list[tuple[str, nn.Module]]) -> None:
        self.plan = plan
        # Offsets of each Linear's weight and bias in the flat parameter vector (named_parameters order).
        self.offsets: dict[int, tuple[int, int | None]] = {}
        offset = 0
        for i, (kind, layer) in enumerate(plan):
            if kind == "linear":
                w_off = offset
                offset += layer.weight.numel()
                b_off = None
                if layer.bias is not None:
                    b_off = offset
                    offset += layer.bias.numel()
                self.offsets[i] = (w_off, b_off)
        self.num_params = offset
        self.first_linear = min(self.offsets)
        # Only Linear layers hold parameters, so the input layer's weight is the flat vector's first block.
        self.head = plan[self.first_linear][1].weight.numel()
        self._scratch: torch.Tensor | None = None

    def __call__(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pieces = self._pieces(v, x, y)
        return torch.cat([pieces[k] for k in sorted(pieces)], dim=1) if len(pieces) > 1 else pieces[0]

    def lissa_update_(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, g: torch.Tensor, decay: float,
                      alpha: float) -> None:
        r"""LiSSA's step :math:`v \leftarrow (g - \alpha\,\nabla^2 L(B)\,v) + \mathrm{decay}\cdot v`, in place.

        The same numbers as ``hv = self(v, x, y)`` followed by the update, without the (reps × p) temporaries:
        the input layer's block (most of p) is written into a reused buffer, and the update is two fused passes
        per block. Why: on CPU a fresh megabyte-sized tensor each step costs page faults that, with the
        ``cat`` of the pieces, took longer than the input layer's ``bmm`` itself. Every piece is computed before
        any block of v is overwritten (the backward pass still reads v).
        """
        reps, head = int(v.shape[0]), self.head
        weight = self.plan[self.first_linear][1].weight
        shape = (reps, *weight.shape)
        scratch = self._scratch
        if scratch is None or scratch.shape != shape or scratch.dtype != v.dtype or scratch.device != v.device:
            scratch = self._scratch = torch.empty(shape, dtype=v.dtype, device=v.device)
        pieces = self._pieces(v, x, y, head_out=scratch)
        rest = [pieces[k] for k in sorted(pieces) if k != 0]
        for block, hv, g_block in ((v[:, :head], scratch.view(reps, head), g[:head]),
                                   (v[:, head:], torch.cat(rest, dim=1) if rest else None, g[head:])):
            if hv is None:
                continue
            torch.add(g_block, hv, alpha=-alpha, out=hv)
            torch.add(hv, block, alpha=decay, out=block)

    def _pieces(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                head_out: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """The product's blocks keyed by flat offset, each (reps × size); the input layer's weight block is
        written into ``head_out`` (reps × out × in, contiguous) when given."""
        plan, offsets = self.plan, self.offsets
        reps, b = int(x.shape[0]), int(x.shape[1])
        a = x.reshape(reps, b, -1) if plan[0][0] == "flatten" else x
        da: torch.Tensor | None = None
        tape: list[tuple[Any, ...]] = []
        for i, (kind, layer) in enumerate(plan):
            if kind == "flatten":
                continue
            if kind == "linear":
                weight = layer.weight.detach()
                m, n = weight.shape
                w_off, b_off = offsets[i]
                d_w = v[:, w_off : w_off + m * n].reshape(reps, m, n)
                z = (a.reshape(reps * b, n) @ weight.T).reshape(reps, b, m)
                dz = torch.bmm(a, d_w.transpose(1, 2))
                if da is not None:
                    dz = dz + (da.reshape(reps * b, n) @ weight.T).reshape(reps, b, m)
                if b_off is not None:
                    z = z + layer.bias.detach()
                    dz = dz + v[:, b_off : b_off + m].unsqueeze(1)
                tape.append(("linear", i, a, da, weight, d_w))
                a, da = z, dz
            elif kind == "relu":
                mask = (a > 0).to(a.dtype)
                tape.append(("relu", mask))
                a, da = a * mask, da * mask  # type: ignore[operator]
            elif kind == "tanh":
                t = torch.tanh(a)
                tape.append(("tanh", t, da))
                a, da = t, (1 - t * t) * da  # type: ignore[operator]
            # identity / dropout (eval): nothing to do
        s = torch.softmax(a, dim=-1)
        delta = s.clone()
        delta.scatter_add_(-1, y.unsqueeze(-1), -torch.ones_like(y, dtype=s.dtype).unsqueeze(-1))
        delta = delta / b
        s_dz = s * da  # type: ignore[operator]
        ddelta = (s_dz - s * s_dz.sum(-1, keepdim=True)) / b
        pieces: dict[int, torch.Tensor] = {}
        for entry in reversed(tape):
            if entry[0] == "linear":
                _, i, a_in, da_in, weight, d_w = entry
                w_off, b_off = offsets[i]
                if i == self.first_linear and head_out is not None:
                    # The input has no tangent (da_in is None): one bmm straight into the reused buffer.
                    pieces[w_off] = torch.bmm(ddelta.transpose(1, 2), a_in, out=head_out).view(reps, -1)
                else:
                    g_w = torch.bmm(ddelta.transpose(1, 2), a_in)
                    if da_in is not None:
                        g_w = g_w + torch.bmm(delta.transpose(1, 2), da_in)
                    pieces[w_off] = g_w.reshape(reps, -1)
                if b_off is not None:
                    pieces[b_off] = ddelta.sum(1)
                if i != self.first_linear:
                    m, n = weight.shape
                    new_delta = (delta.reshape(reps * b, m) @ weight).reshape(reps, b, n)
                    ddelta = (ddelta.reshape(reps * b, m) @ weight).reshape(reps, b, n) + torch.bmm(delta, d_w)
                    delta = new_delta
            elif entry[0] == "relu":
                delta, ddelta = delta * entry[1], ddelta * entry[1]
            elif entry[0] == "tanh":
                _, t, dz_in = entry
                d1 = 1 - t * t
                ddelta = d1 * ddelta - 2 * t * d1 * dz_in * delta
                delta = d1 * delta
        return pieces


def make_lissa_hvp(model: nn.Module, *, backend: str = "auto") -> tuple[BatchedHVP, str]:
    """The batched HVP LiSSA uses (without the (wd+λ)·v term) and the backend's name.

    ``backend="auto"`` takes the hand-written MLP path (:func:`make_mlp_batched_hvp`) when the model is a plain
    MLP and ``functional.make_batched_hvp`` (``vmap(jvp(grad))``) otherwise; ``"functorch"`` and ``"mlp"`` force
    one (``"mlp"`` raises ConfigError for other models).
    """
    if backend not in HVP_BACKENDS:
        raise ConfigError(f"hvp_backend={backend!r} is not valid: expected one of {', '.join(HVP_BACKENDS)}")
    if backend in ("auto", "mlp"):
        fast = make_mlp_batched_hvp(model)
        if fast is not None:
            return fast, "mlp"
        if backend == "mlp":
            raise ConfigError("hvp_backend='mlp' needs a plain Sequential MLP (Flatten, Linear, ReLU/Tanh)")
    return make_batched_hvp(model, weight_decay=0.0, lam=0.0), "functorch"


def make_data_hvp(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float = 0.0,
    lam: float = 0.0,
    batch_size: int = 4096,
) -> HVP:
    """Exact ``v ↦ (∇²L(w; (x, y)) + (wd+λ)I) v`` over all the data, for Lanczos and CG.

    Same value as ``functional.make_full_hvp`` (size-weighted chunk means, then (wd+λ)·v once); for plain MLPs
    it runs the hand-written HVP (:func:`make_mlp_batched_hvp`) with one "repetition" per chunk.
    """
    fast = make_mlp_batched_hvp(model)
    if fast is None:
        return make_full_hvp(model, x, y, weight_decay=weight_decay, lam=lam, batch_size=batch_size)
    n = int(x.shape[0])

    def chunk_hvp(xb: torch.Tensor, yb: torch.Tensor) -> HVP:
        xb, yb = xb.unsqueeze(0), yb.unsqueeze(0)  # one "repetition"
        return lambda v: fast(v.unsqueeze(0), xb, yb)[0]

    parts = [(chunk_hvp(x[sl], y[sl]), (sl.stop - sl.start) / n) for sl in batches(n, batch_size)]
    return weighted_chunk_hvp(parts, float(weight_decay) + float(lam))


# ----------------------------------------------------------------------------------------------------------------
# LiSSA
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class LissaResult:
    r"""The outcome of :func:`lissa`.

    Attributes:
        ihvp: the estimate of :math:`(\nabla^2 L(w; D_r) + (\mathrm{wd}+\lambda)I)^{-1} g`, averaged over the
            repetitions (flat).
        scale: the H used (the resolved value when ``"auto"`` was asked).
        lambda_max_sampled: the mini-batch λ_max estimate behind ``scale="auto"`` (None otherwise).
        steps: the recursion steps t at which ``norms`` were recorded (subsampled, always including the last).
        norms: ``norms[i][r]`` = ‖v_t‖/H of repetition r at step ``steps[i]`` — the repetition's current estimate
            of the inverse-HVP; a converging run flattens out (the LiSSA convergence plot).
        num_hvps: depth × reps mini-batch HVPs.
        hvp_backend: which batched HVP ran (``"mlp"`` or ``"functorch"``).
        rep_spread: ‖std over repetitions‖ / ‖mean‖ of the final estimates (how noisy one repetition is).
    """

    ihvp: torch.Tensor
    scale: float
    depth: int
    reps: int
    batch_size: int
    lambda_max_sampled: float | None
    steps: list[int]
    norms: list[list[float]]
    num_hvps: int
    rep_spread: float
    hvp_backend: str = "functorch"

    def diagnostics(self) -> dict[str, Any]:
        """A JSON-serialisable summary (the per-step norms included)."""
        return {
            "scale": self.scale,
            "depth": self.depth,
            "reps": self.reps,
            "batch_size": self.batch_size,
            "lambda_max_sampled": self.lambda_max_sampled,
            "num_hvps": self.num_hvps,
            "rep_spread": self.rep_spread,
            "hvp_backend": self.hvp_backend,
            "ihvp_norm": float(torch.linalg.vector_norm(self.ihvp)),
            "norm_steps": self.steps,
            "norms": self.norms,
        }


def _record_steps(depth: int, max_points: int) -> list[int]:
    """Steps 1..depth to record, at most ``max_points`` of them, evenly spaced, the last one always included."""
    if depth <= max_points:
        return list(range(1, depth + 1))
    stride = math.ceil(depth / max_points)
    steps = list(range(stride, depth + 1, stride))
    if steps[-1] != depth:
        steps.append(depth)
    return steps


def lissa_batch_indices(n: int, *, depth: int, reps: int, batch_size: int, seed: int) -> torch.Tensor:
    """The (depth × reps × batch_size) indices LiSSA draws, uniformly **with replacement** from range(n).

    One seeded CPU generator draws them all up front (methods.md §2.3, "b ... sampled with replacement"), so
    a reference loop (tests, ``bench/bench_lissa.py``) can replay exactly the same batches.
    """
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(int(n), (int(depth), int(reps), int(batch_size)), generator=gen)


def lissa(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    *,
    lam: float,
    scale: float | str = 1000.0,
    depth: int = 1000,
    reps: int = 10,
    batch_size: int = 10,
    weight_decay: float = 0.0,
    seed: int = 0,
    max_points: int = 500,
    blowup: float = 10.0,
    auto_margin: float = 1.5,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 50,
    hvp_backend: str = "auto",
    extra_hvp: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LissaResult:
    r"""Stochastic LiSSA estimate of :math:`(\nabla^2 L(w; D) + (\mathrm{wd}+\lambda) I)^{-1} g`.

    The recursion of Agarwal, Bullins & Hazan (2017), as Zhang et al. (2024) use it (methods.md §2.2,
    "Implementation (HVPs only)"): with :math:`A_t = \nabla^2 L(w; B_t) + (\mathrm{wd}+\lambda)I` the Hessian
    of a batch :math:`B_t` of ``batch_size`` points drawn **with replacement** from (x, y),

    .. math::
        v_0 = g,\qquad v_t = g + v_{t-1} - A_t v_{t-1} / H,\qquad \widehat{A^{-1}g} = v_s / H ,

    i.e. :math:`v_s/H = \frac1H\sum_{j=0}^{s}\prod (I - A/H)\,g`, the Neumann series of
    :math:`(A/H)^{-1}/H`. It converges when every :math:`A_t` has spectrum in (0, 2H) — H above the
    mini-batch λ_max (``scale="auto"`` measures it with :func:`sampled_lambda_max` and multiplies by
    ``auto_margin``). The local convex term is the paper's λI, added analytically (pitfall Z1), and weight decay
    enters as wd·v in every HVP. The ``reps`` independent repetitions run *together*: one vmapped
    forward-over-reverse call per step on a (reps × p) block of vectors; their final estimates are averaged.

    Divergence: a step where some repetition's norm is non-finite or exceeds ``blowup``·(t+1)·‖g‖ (the bound
    :math:`\lVert v_t\rVert \le (t+1)\lVert g\rVert` holds whenever the recursion contracts) raises
    :class:`DivergenceError` naming the step, the norm and the measured mini-batch λ_max.

    Args:
        model: the network at w (eval mode is set here and restored); not modified.
        x, y: the data the Hessian is taken over (the retain set).
        g: the flat right-hand side (e.g. the retain gradient).
        lam: the local convex coefficient λ (≥ 0).
        scale: H > 0, or ``"auto"``.
        depth: the recursion depth s.
        reps: independent repetitions, averaged.
        batch_size: points per sampled Hessian.
        weight_decay: coupled weight decay wd, added as wd·v.
        seed: seeds the batch sampling (and the λ_max estimate).
        max_points: at most this many recorded steps for the norm curves.
        blowup: the divergence threshold factor (see above).
        auto_margin: H = auto_margin × sampled λ_max when ``scale="auto"``.
        progress: called with the step number about every ``progress_every`` steps (may raise to cancel).
        hvp_backend: ``"auto"`` (hand-written exact HVP for plain MLPs, ``torch.func`` otherwise), ``"functorch"``
            or ``"mlp"`` — see :func:`make_lissa_hvp`.
        extra_hvp: a further curvature term added to every sampled Hessian, applied to the (reps × p) block of
            iterates (the reference code's regulariser for ``reg_form="official"``); ``scale="auto"`` and the
            divergence message do not include it.

    Raises:
        ConfigError: a non-positive scale, depth, reps or batch size.
        DivergenceError: the recursion blew up (the message says what to change).
    """
    for name, value in (("depth", depth), ("reps", reps), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ConfigError(f"{name}={value!r} is not valid: expected an integer >= 1")
    if lam < 0:
        raise ConfigError(f"lam={lam!r} is not valid: expected a number >= 0")
    was_training = model.training
    model.eval()
    try:
        lambda_max_sampled: float | None = None
        if scale == "auto":
            lambda_max_sampled = sampled_lambda_max(
                model, x, y, batch_size=batch_size, lam=lam, weight_decay=weight_decay, seed=seed + 1,
                hvp_backend=hvp_backend,
            )
            h = auto_margin * max(lambda_max_sampled, 1e-12)
        else:
            h = float(scale)
            if not h > 0 or not math.isfinite(h):
                raise ConfigError(f"H={scale!r} is not valid: expected a number > 0 or 'auto'")
        return _lissa_run(
            model, x, y, g, lam=lam, h=h, depth=int(depth), reps=int(reps), batch_size=int(batch_size),
            weight_decay=weight_decay, seed=seed, max_points=max_points, blowup=blowup,
            lambda_max_sampled=lambda_max_sampled, progress=progress, progress_every=progress_every,
            hvp_backend=hvp_backend, extra_hvp=extra_hvp,
        )
    finally:
        model.train(was_training)


def _lissa_run(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    *,
    lam: float,
    h: float,
    depth: int,
    reps: int,
    batch_size: int,
    weight_decay: float,
    seed: int,
    max_points: int,
    blowup: float,
    lambda_max_sampled: float | None,
    progress: Callable[[int], None] | None,
    progress_every: int,
    hvp_backend: str,
    extra_hvp: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LissaResult:
    # All batch indices up front; one gather per step, no DataLoader.
    indices = lissa_batch_indices(int(x.shape[0]), depth=depth, reps=reps, batch_size=batch_size,
                                  seed=seed).to(x.device)
    # (wd + λ) enters through the update's scalar factor instead of inside the HVP: one fewer (reps × p) op.
    bhvp, backend = make_lissa_hvp(model, backend=hvp_backend)
    shift = float(weight_decay) + float(lam)
    decay = 1.0 - shift / h
    g_norm = float(torch.linalg.vector_norm(g))
    record = _record_steps(depth, max_points)
    record_pos = {t: i for i, t in enumerate(record)}
    norms = torch.zeros(len(record), reps, dtype=torch.float64, device=x.device)
    check_every = 1 if x.device.type == "cpu" else 25
    v = g.unsqueeze(0).repeat(reps, 1)
    # One batch buffer for all steps, and the labels gathered at once: no per-step allocations (see below).
    x_batch = torch.empty((reps * batch_size, *x.shape[1:]), dtype=x.dtype, device=x.device)
    y_batches = y[indices.reshape(-1)].view(depth, reps, batch_size)
    with torch.no_grad():
        for t in range(1, depth + 1):
            # index_select on dim 0 is about twice as fast as advanced indexing with a 2-D index here (CPU).
            xb = torch.index_select(x, 0, indices[t - 1].reshape(-1), out=x_batch)
            xb = xb.view(reps, batch_size, *x.shape[1:])
            # v ← g + (1 − (wd+λ)/H)·v − ∇²L(B_t)v / H, written in place.
            if isinstance(bhvp, MLPBatchedHVP) and extra_hvp is None:
                bhvp.lissa_update_(v, xb, y_batches[t - 1], g=g, decay=decay, alpha=1.0 / h)
            else:
                hv = bhvp(v, xb, y_batches[t - 1])  # before v changes
                if extra_hvp is not None:
                    hv = hv + extra_hvp(v)
                v.mul_(decay).add_(g).sub_(hv, alpha=1.0 / h)
            pos = record_pos.get(t)
            check = t % check_every == 0 or t == depth
            if pos is not None or check:
                step_norm = torch.linalg.vector_norm(v, dim=1)
                if pos is not None:
                    norms[pos] = step_norm / h
            if check:
                worst = float(step_norm.max())
                if not math.isfinite(worst) or worst > blowup * (t + 1) * max(g_norm, 1e-30):
                    _raise_divergence(model, x, y, t=t, norm=worst / h, h=h, lam=lam, weight_decay=weight_decay,
                                      batch_size=batch_size, seed=seed, known=lambda_max_sampled,
                                      hvp_backend=hvp_backend)
            if progress is not None and t % progress_every == 0:
                progress(t)
    final = v / h
    mean = final.mean(dim=0)
    spread = 0.0
    if reps > 1:
        spread = float(torch.linalg.vector_norm(final.std(dim=0)) / torch.linalg.vector_norm(mean).clamp_min(1e-30))
    return LissaResult(
        ihvp=mean,
        scale=h,
        depth=depth,
        reps=reps,
        batch_size=batch_size,
        lambda_max_sampled=lambda_max_sampled,
        steps=record,
        norms=norms.cpu().tolist(),
        num_hvps=depth * reps,
        rep_spread=spread,
        hvp_backend=backend,
    )


def _raise_divergence(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    t: int,
    norm: float,
    h: float,
    lam: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    known: float | None,
    hvp_backend: str = "auto",
) -> None:
    """Raise the DivergenceError with a measured λ_max so the message says what H would do."""
    try:
        lmax = known if known is not None else sampled_lambda_max(
            model, x, y, batch_size=batch_size, lam=lam, weight_decay=weight_decay, seed=seed + 1,
            hvp_backend=hvp_backend,
        )
        hint = f"increase H above the mini-batch λ_max≈{lmax:.4g} (e.g. H={1.5 * lmax:.3g} or H=auto)"
        if lmax < h:
            hint = (
                f"H={h:g} already exceeds the mini-batch λ_max≈{lmax:.4g}, so the growth comes from negative "
                "curvature: increase lam (the local convex term) or reduce depth"
            )
    except DivergenceError:
        hint = "increase H (or use H=auto) and/or lam"
    shown = "nan" if not math.isfinite(norm) else f"{norm:.3g}"
    raise DivergenceError(f"LiSSA diverged at step {t} (‖v‖/H={shown}, H={h:g}): {hint}")


# ----------------------------------------------------------------------------------------------------------------
# Exact solves (references and tiny models)
# ----------------------------------------------------------------------------------------------------------------

DENSE_MAX_PARAMS = 5_000


def dense_refusal(p: int, *, solver: str, alternatives: str) -> str | None:
    """Why a dense-Hessian ``solver`` cannot run on ``p`` parameters (``None`` when p ≤ DENSE_MAX_PARAMS).

    The p × p matrix in float64 is 8p² bytes (200 MB at p = 5,000) and its eigendecomposition O(p³).
    """
    if p <= DENSE_MAX_PARAMS:
        return None
    return (f"solver={solver} builds the dense {p}×{p} Hessian, allowed only up to {DENSE_MAX_PARAMS} parameters; "
            f"use {alternatives}")


def hessian_matrix(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float = 0.0,
    lam: float = 0.0,
    batch_size: int = 4096,
    columns_per_call: int = 128,
) -> torch.Tensor:
    r"""The dense p×p matrix :math:`\nabla^2 L(w; (x, y)) + (\mathrm{wd}+\lambda) I` for the exact solvers.

    For plain MLPs it is assembled column by column, :math:`H e_j`, from the hand-written batched HVP
    (:func:`make_mlp_batched_hvp`), ``columns_per_call`` unit vectors at a time against the same data, and
    the data chunks are size-weighted as in :func:`make_data_hvp`; other models use
    ``functional.dense_hessian`` (``torch.func.hessian``). Why: on the 3,466-parameter digits MLP the column
    path takes ≈ 4.6 s against ≈ 13 s for ``torch.func.hessian`` (2 CPU threads), and it agrees with it to
    float32 rounding (``tests/test_curvature.py``). The result is symmetrised.
    """
    fast = make_mlp_batched_hvp(model)
    if fast is None:
        hess = dense_hessian(model, x, y, weight_decay=weight_decay, lam=lam)
        return 0.5 * (hess + hess.T)
    p = fast.num_params
    n = int(x.shape[0])
    hess = torch.zeros(p, p, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for sl in batches(n, batch_size):
            xb, yb, weight = x[sl], y[sl], (sl.stop - sl.start) / n
            for start in range(0, p, columns_per_call):
                stop = min(start + columns_per_call, p)
                r = stop - start
                eye = torch.zeros(r, p, dtype=x.dtype, device=x.device)
                eye[torch.arange(r), torch.arange(start, stop)] = 1.0
                block = fast(eye, xb.unsqueeze(0).expand(r, *xb.shape), yb.unsqueeze(0).expand(r, -1))
                hess[start:stop] += weight * block
    hess = 0.5 * (hess + hess.T)
    shift = float(weight_decay) + float(lam)
    if shift:
        hess.diagonal().add_(shift)
    return hess


def exact_inverse_hvp(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    *,
    lam: float,
    weight_decay: float = 0.0,
    method: str = "dense",
    tol: float = 1e-8,
    max_iter: int = 1000,
    batch_size: int = 4096,
    extra_hvp: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    r""":math:`(\nabla^2 L(w; (x, y)) + (\mathrm{wd}+\lambda) I)^{-1} g` exactly (dense) or to tolerance (CG).

    ``extra_hvp`` adds a further linear curvature term (flat vector or R × p stack in, same out): the reference
    code's regulariser for ``reg_form="official"``.

    ``method="dense"`` builds the p×p Hessian (:func:`hessian_matrix`) and solves in float64 — only for
    p ≤ :data:`DENSE_MAX_PARAMS`; it also reports the Hessian's λ_min and λ_max (``eigvalsh``), the measured
    constants of the certificate. ``method="cg"`` runs :func:`conjugate_gradient` on full-data HVPs and needs
    the regularised Hessian to be positive definite (else ``DivergenceError``).

    Returns:
        (the solution as a flat vector in g's dtype, an info dict for the diagnostics).
    """
    was_training = model.training
    model.eval()
    try:
        if method == "dense":
            p = num_params(model)
            reason = dense_refusal(p, solver="exact", alternatives="solver=cg or solver=lissa")
            if reason:
                raise ConfigError(reason)
            hess = hessian_matrix(model, x, y, weight_decay=weight_decay, lam=lam, batch_size=batch_size).double()
            if extra_hvp is not None:
                eye = torch.eye(p, dtype=g.dtype, device=g.device)
                hess = hess + extra_hvp(eye).double().T  # row i of extra_hvp(I) is the term times e_i
            eig = torch.linalg.eigvalsh(hess)
            sol = torch.linalg.solve(hess, g.double()).to(g.dtype)
            info = {
                "method": "dense",
                "lambda_min_reg": float(eig[0]),
                "lambda_max_reg": float(eig[-1]),
                "num_params": p,
            }
            return sol, info
        if method == "cg":
            data_hvp = make_data_hvp(model, x, y, weight_decay=weight_decay, lam=lam, batch_size=batch_size)
            hvp = data_hvp if extra_hvp is None else (lambda v: data_hvp(v) + extra_hvp(v))
            with torch.no_grad():
                res = conjugate_gradient(hvp, g, tol=tol, max_iter=max_iter)
            info = {
                "method": "cg",
                "iterations": res.iterations,
                "relative_residual": res.relative_residual,
                "converged": res.converged,
            }
            return res.x, info
        raise ConfigError(f"method={method!r} is not valid: expected one of dense, cg")
    finally:
        model.train(was_training)
