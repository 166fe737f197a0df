r"""A *proven* lower bound on the smallest eigenvalue of a regularised Hessian: a float64 Cholesky factorisation.

Certified Newton's bound divides by :math:`\lambda + \lambda_{\min}`, so it needs :math:`\lambda_{\min}` from
below. Lanczos (:mod:`unlearn_core.curvature.spectrum`) gives a Ritz value, which lies *above* the true
:math:`\lambda_{\min}` and can miss a negative eigenvalue altogether after a few steps: an estimate. Where the
dense Hessian fits (p ≤ :data:`~unlearn_core.curvature.solvers.DENSE_MAX_PARAMS`), a Cholesky factorisation is a
proof: if the factorisation of :math:`A - tI` runs to completion in floating point, :math:`A - tI + E = R^\top R`
with a non-singular R, hence :math:`\lambda_{\min}(A) > t - \lVert E\rVert_2`, and the backward error of
Cholesky is bounded, :math:`|E| \le \gamma_{p+1}|R^\top||R|` (Demmel 1989; Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., Thm. 10.3), so :math:`\lVert E\rVert_2 \le \gamma_{p+1}\lVert R\rVert_F^2` with
:math:`\gamma_k = ku/(1-ku)`, u = 2⁻⁵³ — a number we compute from the factor (Rump 2006 uses the same argument to
verify positive definiteness). It is cheaper than the eigendecomposition (p³/3 flops against ≈ 9p³), which is
only the fallback that finds the shift when the cheap guesses fail.

The matrix itself is assembled in float64 from full-data HVPs (:func:`dense_hessian64`); its own rounding is
allowed for by a further :math:`2\,n\,u\,\lVert A\rVert_F` (n data points accumulated). Both allowances are
≈ 1e-9 or less on the models this runs on, and are subtracted from the bound.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn

from unlearn_core.curvature.operators import hessian_matrix
from unlearn_core.curvature.solvers import DENSE_MAX_PARAMS, dense_refusal
from unlearn_core.curvature.spectrum import lanczos
from unlearn_core.errors import ConfigError
from unlearn_core.functional import num_params

#: Unit round-off of float64.
_U = 2.0**-53
#: Cholesky attempts at shifts further and further below the Lanczos guess before the eigendecomposition.
_ATTEMPTS = 6


@dataclass
class CurvatureProof:
    """A proven lower bound on :math:`\\lambda_{\\min}(A)` and how it was obtained.

    Attributes:
        lower_bound: :math:`\\lambda_{\\min}(A) \\ge` this, proven (rounding allowances subtracted).
        shift: the t at which the Cholesky factorisation of A − tI succeeded.
        rounding: the allowance subtracted from t (Cholesky's backward error plus the matrix's own rounding).
        estimate: the dense Lanczos estimate the shift started from.
        attempts: Cholesky factorisations tried.
        eigendecomposition: whether the fallback ``eigvalsh`` was needed to find the shift.
        seconds: wall time of the proof (without assembling the matrix).
    """

    lower_bound: float
    shift: float
    rounding: float
    estimate: float
    attempts: int
    eigendecomposition: bool
    seconds: float

    def describe(self) -> str:
        how = "after an eigendecomposition found the shift" if self.eigendecomposition else (
            f"{self.attempts} Cholesky attempt(s) from the dense Lanczos estimate {self.estimate:.6g}")
        return (f"float64 Cholesky of A − tI succeeded at t = {self.shift:.6g} ({how}); "
                f"λ_min(A) ≥ t − {self.rounding:.2g} (rounding allowance)")


def dense_hessian64(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, weight_decay: float) -> torch.Tensor:
    r"""The dense :math:`\nabla^2 L(w; (x, y)) + \mathrm{wd}\cdot I` in float64, at the model's own weights.

    A float64 copy of the model (its float32 weights are exact in float64) and of the data; refused above
    :data:`~unlearn_core.curvature.solvers.DENSE_MAX_PARAMS` parameters.
    """
    p = num_params(model)
    reason = dense_refusal(p, solver="curvature_check=cholesky", alternatives="curvature_check=lanczos")
    if reason:
        raise ConfigError(reason)
    model64 = copy.deepcopy(model).to(torch.float64).eval()
    return hessian_matrix(model64, x.to(torch.float64), y, weight_decay=weight_decay, columns_per_call=512)


def _gamma(k: int) -> float:
    return k * _U / (1.0 - k * _U)


def proven_lambda_min(a: torch.Tensor, *, n_points: int = 1, seed: int = 0) -> CurvatureProof:
    r"""A proven lower bound on :math:`\lambda_{\min}(A)` for a symmetric float64 matrix A (see the module).

    The shift starts just below a Lanczos estimate computed on the dense matrix (cheap: p² per product) and moves
    down tenfold per failed factorisation; after :data:`_ATTEMPTS` failures ``eigvalsh`` finds it. ``n_points``:
    how many data points the matrix was accumulated over (its own rounding allowance).
    """
    if a.dtype != torch.float64 or a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ValueError("proven_lambda_min needs a square float64 matrix")
    start = time.perf_counter()
    p = int(a.shape[0])
    a = 0.5 * (a + a.T)
    with torch.no_grad():
        est = lanczos(lambda v: a @ v, p, num_iter=min(p, 80), seed=seed, dtype=torch.float64, device=a.device)
    scale = max(abs(est.lambda_max), abs(est.lambda_min), 1e-300)
    margin = max(2.0 * (est.residual_min or 0.0), 1e-9 * scale)
    eye = torch.eye(p, dtype=torch.float64, device=a.device)
    matrix_rounding = 2.0 * max(int(n_points), 1) * _U * float(torch.linalg.matrix_norm(a))
    attempts = 0
    eigendecomposition = False
    base = est.lambda_min
    while True:
        shift = base - margin
        factor, info = torch.linalg.cholesky_ex(a - shift * eye)
        attempts += 1
        if int(info) == 0 and bool(torch.isfinite(factor).all()):
            break
        margin *= 10.0
        if attempts == _ATTEMPTS:  # the Lanczos guess was too optimistic: find the shift exactly
            eigendecomposition = True
            base = float(torch.linalg.eigvalsh(a)[0])
            margin = 1e-9 * scale
        elif attempts > 2 * _ATTEMPTS:  # pragma: no cover - eigvalsh's λ_min minus a margin always factorises
            raise RuntimeError("the Cholesky proof did not succeed below the smallest eigenvalue")
    cholesky_rounding = _gamma(p + 1) * float(torch.sum(factor * factor)) * (1.0 + 1e-6)
    rounding = cholesky_rounding + matrix_rounding
    return CurvatureProof(lower_bound=shift - rounding, shift=shift, rounding=rounding, estimate=est.lambda_min,
                          attempts=attempts, eigendecomposition=eigendecomposition,
                          seconds=time.perf_counter() - start)


def dense_proof_work(p: int, n_points: int) -> float:
    """The arithmetic of assembling the dense Hessian (p HVP columns over ``n_points``): p²·n, the number
    ``curvature_check=auto`` compares with its budget (:data:`DENSE_PROOF_WORK`)."""
    return float(p) * float(p) * float(max(int(n_points), 1))


#: ``curvature_check=auto`` proves λ_min by Cholesky when the dense Hessian's assembly costs at most this many
#: p²·n (about 1–3 s on a 2-core CPU in float64; the digits MLP 64-32-32-10 on its 1,367 retain points is 1.6e10,
#: 25–60 s, so auto keeps Lanczos there and ``curvature_check=cholesky`` asks for the proof).
DENSE_PROOF_WORK = 1.5e9


def cholesky_in_budget(p: int, n_points: int) -> bool:
    """Whether ``curvature_check=auto`` takes the Cholesky proof for p parameters and ``n_points`` data points."""
    return p <= DENSE_MAX_PARAMS and dense_proof_work(p, n_points) <= DENSE_PROOF_WORK
