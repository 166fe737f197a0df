r"""Solving :math:`(\nabla^2 L + (\mathrm{wd}+\lambda) I)\,x = b`: CG, MINRES, the exact dense solve and its refusal.

* :func:`conjugate_gradient` — solves ``A x = b`` for a symmetric positive-definite ``A`` given as an HVP;
  refuses (``DivergenceError``) when it meets negative curvature, because then ``A`` is not PD and CG's answer
  would be meaningless.
* :func:`minres_solve` — SciPy's MINRES for symmetric, possibly indefinite systems (damped Newton's default).
* :func:`exact_inverse_hvp` — the product's own exact solver for users who choose ``solver=exact``: a dense
  solve in float64 (tiny models, refused above :data:`DENSE_MAX_PARAMS` by :func:`dense_refusal`) or CG to
  tolerance.
* :func:`regularised_residual_norm` — the residual of any inverse-HVP estimate, for the a-posteriori bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_core.curvature.operators import HVP, hessian_matrix, make_data_hvp
from unlearn_core.errors import ConfigError, DivergenceError
from unlearn_core.functional import num_params


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



def minres_solve(
    hvp: Any, b: torch.Tensor, *, tol: float, max_iter: int
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Solve the symmetric (possibly indefinite) system ``A x = b`` with SciPy's MINRES on an HVP operator."""
    from scipy.sparse.linalg import LinearOperator, minres

    count = 0

    def matvec(v: np.ndarray) -> np.ndarray:
        nonlocal count
        count += 1
        vt = torch.as_tensor(np.asarray(v).reshape(-1), dtype=b.dtype, device=b.device)
        with torch.no_grad():
            return hvp(vt).detach().cpu().double().numpy()

    n = b.numel()
    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    rhs = b.detach().cpu().double().numpy()
    sol, status = minres(op, rhs, rtol=tol, maxiter=max_iter)
    x = torch.as_tensor(sol, dtype=b.dtype, device=b.device)
    residual = float(np.linalg.norm(matvec(sol) - rhs) / max(np.linalg.norm(rhs), 1e-30))
    return x, {"hvps": count, "status": int(status), "relative_residual": residual}


DENSE_MAX_PARAMS = 5_000


def dense_refusal(p: int, *, solver: str, alternatives: str) -> str | None:
    """Why a dense-Hessian ``solver`` cannot run on ``p`` parameters (``None`` when p ≤ DENSE_MAX_PARAMS).

    The p × p matrix in float64 is 8p² bytes (200 MB at p = 5,000) and its eigendecomposition O(p³).
    """
    if p <= DENSE_MAX_PARAMS:
        return None
    return (f"solver={solver} builds the dense {p}×{p} Hessian, allowed only up to {DENSE_MAX_PARAMS} parameters; "
            f"use {alternatives}")


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

