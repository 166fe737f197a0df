r"""CureNewton (Bui, Lu, Sim, Ng, Low, 2024; arXiv 2406.14507) — approximate (uncertified).

A cubic-regularised Newton step on the retain loss at the trained model (Nesterov & Polyak 2006). With
:math:`g = \nabla L(w^*; D_r)` and :math:`H = \nabla^2 L(w^*; D_r)` (coupled weight decay included in both):

.. math::
    \Delta^* = \arg\min_\Delta m(\Delta),\qquad
    m(\Delta) = g^\top\Delta + \tfrac12\Delta^\top H\Delta + \tfrac{M}{6}\lVert\Delta\rVert^3,
    \qquad w_{\text{new}} = w^* + \Delta^* .

The global minimiser satisfies :math:`(H + \alpha I)\Delta^* = -g`, :math:`\alpha = \tfrac{M}{2}\lVert\Delta^*\rVert`,
:math:`H + \alpha I \succeq 0` (Nesterov & Polyak, Thm. 10). So the damping α is not hand-tuned: it is the root of
the increasing function :math:`\varphi(\alpha) = \alpha - \tfrac{M}{2}\lVert(H+\alpha I)^{-1}g\rVert` on
:math:`\alpha > \max(0, -\lambda_{\min}(H))` — the "dual optimisation over a damping parameter" of the paper's
abstract. That is why CureNewton never takes the huge steps of a Newton step damped below −λ_min: α grows
until the step length is consistent with the cubic term.

Solvers (Bui et al. 2024 as reconstructed by Nesterov & Polyak 2006's cubic regularisation; the paper's exact form is
unverified, this is the standard reconstruction):

``dual_bisection`` (default)
    Lanczos for λ̂_min, then bisection on α; every φ evaluation is a CG solve on full-data HVPs (warm-started).
``eigh``
    Dense Hessian and eigendecomposition (tiny models only): φ is evaluated in closed form; the "hard case"
    (g orthogonal to the bottom eigenvector) is solved exactly.
``gd_subsolver``
    The stochastic variant: gradient descent on m(Δ) with mini-batch HVPs, O(p) memory,
    :math:`\Delta \leftarrow \Delta - \eta(g + H_B\Delta + \tfrac{M}{2}\lVert\Delta\rVert\Delta)` (Carmon & Duchi 2016
    start at the Cauchy point).

**No (ε, δ) certificate**: the result carries ``certificate=None`` and is labelled "approximate (uncertified)".
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn

from unlearn_core.curvature import conjugate_gradient, hessian_matrix, lanczos, make_data_hvp, make_lissa_hvp
from unlearn_core.diagnostics import Diagnostics
from unlearn_core.errors import DivergenceError
from unlearn_core.functional import flat_gradient, get_flat_params, set_flat_params
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner

SOLVERS = ("dual_bisection", "eigh", "gd_subsolver")
LABEL = "approximate (uncertified)"


def cubic_model(g: torch.Tensor, hd: torch.Tensor, delta: torch.Tensor, M: float) -> float:
    r"""The cubic model m(Δ) = gᵀΔ + ½ΔᵀHΔ + (M/6)‖Δ‖³, given ``hd`` = HΔ (dense H or an HVP alike)."""
    norm = float(torch.linalg.vector_norm(delta))
    return float(torch.dot(g, delta)) + 0.5 * float(torch.dot(delta, hd)) + M / 6.0 * norm**3


def solve_cubic_eigh(
    H: torch.Tensor, g: torch.Tensor, *, M: float, tol: float = 1e-12
) -> tuple[torch.Tensor, float, dict]:
    r"""The global minimiser of the cubic model from an eigendecomposition :math:`H = Q\Lambda Q^\top` (float64).

    :math:`\lVert(H+\alpha I)^{-1}g\rVert^2 = \sum_i (q_i^\top g)^2/(\lambda_i+\alpha)^2`, so φ(α) costs O(p) per
    evaluation; α is found by bisection on :math:`(\max(0,-\lambda_1), \alpha_{hi}]`. Hard case (the root does
    not exist above −λ₁ because g has no weight on the bottom eigenvector): α = −λ₁ and the bottom eigenvector
    is added until ‖Δ‖ = 2α/M (Nesterov & Polyak 2006, §5).

    Returns:
        (Δ in g's dtype, α, info).
    """
    Hd = H.double()
    Hd = 0.5 * (Hd + Hd.T)
    evals, evecs = torch.linalg.eigh(Hd)
    coeff = evecs.T @ g.double()
    lam1 = float(evals[0])
    lo = max(0.0, -lam1)

    def step_norm(alpha: float) -> float:
        denom = evals + alpha
        if float(denom.min()) <= 0:
            return math.inf
        return float(torch.linalg.vector_norm(coeff / denom))

    def phi(alpha: float) -> float:
        return alpha - 0.5 * M * step_norm(alpha)

    hard = False
    eps_lo = lo + 1e-14 * max(1.0, abs(lo))
    if lo > 0 and phi(eps_lo) >= 0:
        hard = True
        alpha = lo
        mask = (evals + alpha).abs() > 1e-10 * max(1.0, float(evals.abs().max()))
        d = torch.zeros_like(coeff)
        d[mask] = -coeff[mask] / (evals[mask] + alpha)
        delta = evecs @ d
        rest = (2.0 * alpha / M) ** 2 - float(delta @ delta)
        delta = delta + math.sqrt(max(rest, 0.0)) * evecs[:, 0]
        iterations = 0
    else:
        hi = max(eps_lo, math.sqrt(M * float(torch.linalg.vector_norm(g)) / 2.0), 1e-12)
        while phi(hi) < 0:
            hi *= 2.0
        a, b = eps_lo, hi
        iterations = 0
        while b - a > tol * max(1.0, b) and iterations < 500:
            mid = 0.5 * (a + b)
            if phi(mid) < 0:
                a = mid
            else:
                b = mid
            iterations += 1
        alpha = 0.5 * (a + b)
        delta = -(evecs @ (coeff / (evals + alpha)))
    info = {"lambda_min": lam1, "lambda_max": float(evals[-1]), "hard_case": hard, "bisection_iterations": iterations}
    return delta.to(g.dtype), float(alpha), info


def solve_cubic_bisection(
    hvp: Any,
    g: torch.Tensor,
    *,
    M: float,
    lambda_min: float,
    cg_tol: float,
    cg_iters: int,
    alpha_tol: float,
    max_alpha_iters: int,
) -> tuple[torch.Tensor, float, dict]:
    r"""α by bisection on φ(α) = α − (M/2)‖(H+αI)⁻¹g‖, each evaluation a (warm-started) CG solve.

    Lanczos' λ̂_min is an *upper* estimate of λ_min (Ritz values lie inside the spectrum), so α_lo = −λ̂_min may
    still leave H + αI indefinite: CG then reports negative curvature and that α is treated as "too small"
    (φ < 0 side), which moves the bracket up. Stops when the bracket is relatively narrower than ``alpha_tol``.
    """
    g_norm = float(torch.linalg.vector_norm(g))
    lo = max(0.0, -lambda_min)
    lo = lo + 1e-6 * max(lo, 1e-6)
    hvps = 0
    trace: list[dict[str, float]] = []
    last: torch.Tensor | None = None  # the latest successful CG solution (also the warm start)

    def solve(alpha: float) -> torch.Tensor | None:
        nonlocal hvps, last

        def shifted(v: torch.Tensor) -> torch.Tensor:
            return hvp(v) + alpha * v

        try:
            res = conjugate_gradient(shifted, -g, tol=cg_tol, max_iter=cg_iters, x0=last)
        except DivergenceError:
            hvps += cg_iters  # an upper bound; the exact count is lost with the exception
            return None
        hvps += res.iterations + (1 if last is not None else 0)
        last = res.x
        return res.x

    def phi(alpha: float) -> float:
        delta = solve(alpha)
        if delta is None:
            trace.append({"alpha": alpha, "step_norm": math.inf})
            return -math.inf
        norm = float(torch.linalg.vector_norm(delta))
        trace.append({"alpha": alpha, "step_norm": norm})
        return alpha - 0.5 * M * norm

    hi = max(lo * 2.0, math.sqrt(M * g_norm / 2.0), 1e-8)
    expansions = 0
    while phi(hi) < 0:
        lo, hi = hi, hi * 2.0
        expansions += 1
        if expansions > 60:
            raise DivergenceError("CureNewton: could not bracket the damping α; check M > 0 and the gradient")
    # φ ≥ 0 only where CG succeeded (a failed solve gives −∞), so the solution at b is always the latest one
    # when b is set: keep it rather than solving again.
    delta = last
    a, b = lo, hi
    iterations = 0
    while (b - a) > alpha_tol * b and iterations < max_alpha_iters:
        mid = 0.5 * (a + b)
        if phi(mid) < 0:
            a = mid
        else:
            b, delta = mid, last
        iterations += 1
    alpha = b  # the upper end is on the φ ≥ 0 side, where H + αI was positive definite for CG
    info = {
        "lambda_min_estimate": lambda_min,
        "bisection_iterations": iterations,
        "bracket_expansions": expansions,
        "bracket": [a, b],
        "trace": trace[-60:],
    }
    return delta, float(alpha), info | {"hvps": hvps}


def cauchy_radius(g_norm: float, gHg_over_gg: float, M: float) -> float:
    """Step length of the Cauchy point (minimiser of m along −g), Carmon & Duchi 2016's starting point."""
    beta = gHg_over_gg
    return -beta / M + math.sqrt((beta / M) ** 2 + 2.0 * g_norm / M)


def estimate_hessian_lipschitz(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float,
    probes: int,
    radius: float,
    seed: int,
) -> tuple[float, int]:
    r"""A local lower estimate of the Hessian-Lipschitz constant M: :math:`\max_u \lVert(H(w+ru) - H(w))u\rVert / r`.

    u are random unit directions; r is the probe radius. This measures how fast the curvature changes near w*,
    which is what the cubic term must dominate for the step to be trustworthy; it is a heuristic (a lower bound
    of the global constant), stated as such in the diagnostics. Returns (M̂, HVPs used).
    """
    w0 = get_flat_params(model)
    hvp0 = make_data_hvp(model, x, y, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(int(seed) + 17)
    best = 0.0
    probe_model = copy.deepcopy(model).eval()
    for _ in range(max(1, probes)):
        u = torch.randn(w0.numel(), generator=gen, dtype=torch.float64).to(dtype=w0.dtype, device=w0.device)
        u = u / torch.linalg.vector_norm(u)
        set_flat_params(probe_model, w0 + radius * u)
        hvp1 = make_data_hvp(probe_model, x, y, weight_decay=weight_decay)
        diff = hvp1(u) - hvp0(u)
        best = max(best, float(torch.linalg.vector_norm(diff)) / radius)
    return best, 2 * max(1, probes)


@register_unlearner
class CureNewton(Unlearner):
    """Cubic-regularised Newton step on the retain loss with its damping α found by a dual bisection.

    Defaults (none are known from the paper; chosen on digits/MNIST MLPs): M = 1, ``solver=dual_bisection`` with
    CG to relative residual 1e-6 (≤ 500 HVPs per solve) and α to 1e-4 relative, 50 Lanczos steps for λ̂_min,
    and the training recipe's weight decay inside g and every HVP. ``M=auto`` estimates M from finite differences
    of HVPs (a heuristic lower bound). ``solver=gd_subsolver`` (stochastic, mini-batch HVPs) is for large models.
    """

    name = "cure_newton"
    family = "approximate"
    paper = "Bui, Lu, Sim, Ng, Low, 2024 (CureNewton, arXiv 2406.14507)"
    summary = "Approximate (uncertified): cubic-regularised Newton step whose damping α solves α = (M/2)‖Δ‖."
    schema = (
        HyperParam(
            "M", float, 1.0, "Hessian-Lipschitz constant of the cubic term; auto = finite-difference estimate",
            low=1e-8, high=1e8, log=True, auto=True, level="basic", label="M — cubic regularisation",
        ),
        HyperParam("solver", str, "dual_bisection", "dual bisection with CG, dense eigendecomposition (tiny "
                   "models), or the stochastic gradient-descent sub-solver", choices=SOLVERS,
                   level="basic", label="Sub-problem solver"),
        HyperParam("cg_tol", float, 1e-6, "relative residual of each CG solve", low=1e-12, high=0.5, log=True,
                   label="CG tolerance"),
        HyperParam("cg_iters", int, 500, "maximum HVPs per CG solve", low=1, high=100_000,
                   label="CG iterations", unit="HVPs"),
        HyperParam("alpha_tol", float, 1e-4, "relative width of the final α bracket", low=1e-12, high=0.5, log=True,
                   label="α bracket tolerance"),
        HyperParam("max_alpha_iters", int, 60, "maximum bisection steps on α", low=1, high=1000,
                   label="α bisection steps"),
        HyperParam("lanczos_iters", int, 50, "Lanczos steps for λ_min (sets the lower end of the α bracket)",
                   low=2, high=10_000, label="Lanczos steps", unit="HVPs"),
        HyperParam("hvp_batch", int, 256, "gd_subsolver: mini-batch size of each HVP", low=1, high=1_000_000,
                   label="HVP batch", unit="points"),
        HyperParam("subsolver_iters", int, 200, "gd_subsolver: gradient steps on the cubic model", low=1,
                   high=1_000_000, label="Sub-solver steps"),
        HyperParam("subsolver_lr", float, "auto", "gd_subsolver: step size; auto = 1/(2(λ̂_max + sqrt(M‖g‖)))",
                   low=1e-12, high=1e6, log=True, auto=True, label="Sub-solver step size"),
        HyperParam("outer_iters", int, 1, "cubic-Newton steps, each from the previous model (paper: one)", low=1,
                   high=100, level="basic", label="Cubic-Newton steps", unit="steps"),
        HyperParam(
            "weight_decay", float, None, "coupled weight decay in g and H; none = the training recipe's",
            low=0.0, high=1.0, optional=True, label="Weight decay",
        ),
        HyperParam("M_probes", int, 4, "M=auto: number of random probe directions", low=1, high=1000,
                   label="M=auto probes"),
        HyperParam("M_radius", float, 0.1, "M=auto: probe radius r", low=1e-8, high=1e3, log=True,
                   label="M=auto probe radius"),
    )

    dense_solver = ("eigh", "solver=dual_bisection or solver=gd_subsolver")

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """Per outer iteration: a full-data gradient, Lanczos' ``lanczos_iters`` and up to ``max_alpha_iters`` CG
        solves of at most ``cg_iters`` full-data HVPs (the dual bisection; a cap), or ``subsolver_iters`` HVPs on
        ``hvp_batch`` points (gd_subsolver); ``M_probes`` finite-difference probes when M is measured."""
        from unlearn_core import limits

        n_retain = max(1, n_train - n_forget)
        outer = int(params["outer_iters"])
        estimate = limits.Estimate().add_work("unlearn", 3.0 * outer * n_retain * shape.flops,
                                              outer * math.ceil(n_retain / limits.EVAL_BATCH))
        if params["solver"] == "gd_subsolver":
            products = outer * int(params["subsolver_iters"])
            estimate.add_work("unlearn", *limits.hvp_work(shape, products=products,
                                                          points=min(int(params["hvp_batch"]), n_retain)))
        else:
            products = outer * (int(params["lanczos_iters"]) + min(int(params["max_alpha_iters"]), 8)
                                * int(params["cg_iters"]))
            estimate.add_work("unlearn", *limits.hvp_work(shape, products=products, points=n_retain))
            estimate.caps.append("cg_iters (CG stops at cg_tol)")
        return estimate

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        self.check_supported(ctx.model, params)
        start = time.perf_counter()
        model, wd = ctx.copy_model().eval(), ctx.weight_decay(params["weight_decay"])
        x_r, y_r = ctx.x_retain, ctx.y_retain
        hvps_total = 0
        M_info: dict[str, Any] = {"source": "user"}
        M = params["M"]
        if M == "auto":
            M, used = estimate_hessian_lipschitz(
                model, x_r, y_r, weight_decay=wd, probes=params["M_probes"], radius=params["M_radius"], seed=ctx.seed
            )
            M = max(M, 1e-8)
            hvps_total += used
            M_info = {"source": "finite-difference estimate (heuristic lower bound)", "probes": params["M_probes"],
                      "radius": params["M_radius"], "hvps": used}
        steps = []
        for outer in range(int(params["outer_iters"])):
            ctx.report(stage="cure_newton", step=outer, steps=params["outer_iters"])
            step = self._one_step(model, ctx, params, M=float(M), wd=wd, x_r=x_r, y_r=y_r, outer=outer)
            hvps_total += step["hvps"]
            steps.append(step)
        model.eval()
        last = steps[-1]
        diag = Diagnostics(
            time_s=time.perf_counter() - start,
            grad_norm=steps[0]["grad_norm"],
            grad_norm_after=float(torch.linalg.vector_norm(flat_gradient(model, x_r, y_r, weight_decay=wd))),
            num_hvps=hvps_total,
            num_gradients=len(steps) + 1,
            details={
                "M": float(M), "M_info": M_info, "solver": params["solver"], "weight_decay": wd,
                "alpha": last["alpha"], "step_norm": last["step_norm"], "cubic_model_decrease": last["cubic_model"],
                "optimality_residual": last["optimality_residual"], "outer_steps": steps,
                "batchnorm_note": "BatchNorm running statistics are left unchanged (they still carry D_u)"
                if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()) else None,
            },
        )
        for i, step in enumerate(steps, start=1):
            diag.add_curve("cure_newton", i, alpha=step["alpha"], step_norm=step["step_norm"],
                           grad_norm=step["grad_norm"])
        return UnlearnResult(model=model, certificate=None, diagnostics=diag)

    def _one_step(
        self,
        model: nn.Module,
        ctx: UnlearnContext,
        params: dict[str, Any],
        *,
        M: float,
        wd: float,
        x_r: torch.Tensor,
        y_r: torch.Tensor,
        outer: int,
    ) -> dict[str, Any]:
        w0 = get_flat_params(model)
        g = flat_gradient(model, x_r, y_r, weight_decay=wd)
        g_norm = float(torch.linalg.vector_norm(g))
        full_hvp = make_data_hvp(model, x_r, y_r, weight_decay=wd)
        p = w0.numel()
        solver = params["solver"]
        with torch.no_grad():
            if solver == "eigh":
                H = hessian_matrix(model, x_r, y_r, weight_decay=wd)
                delta, alpha, info = solve_cubic_eigh(H, g, M=M)
                hvps = p
            elif solver == "dual_bisection":
                eig = lanczos(full_hvp, p, num_iter=params["lanczos_iters"], seed=ctx.seed + outer, dtype=g.dtype,
                              device=g.device)
                delta, alpha, info = solve_cubic_bisection(
                    full_hvp, g, M=M, lambda_min=eig.lambda_min, cg_tol=params["cg_tol"], cg_iters=params["cg_iters"],
                    alpha_tol=params["alpha_tol"], max_alpha_iters=params["max_alpha_iters"],
                )
                info["lambda_max_estimate"] = eig.lambda_max
                hvps = info.pop("hvps") + eig.iterations
            else:
                delta, alpha, info, hvps = self._gd_subsolver(model, ctx, params, g=g, M=M, wd=wd, x_r=x_r, y_r=y_r,
                                                             full_hvp=full_hvp, outer=outer)
            hd = full_hvp(delta)
            hvps += 1
            step_norm = float(torch.linalg.vector_norm(delta))
            residual = float(torch.linalg.vector_norm(hd + alpha * delta + g)) / max(g_norm, 1e-30)
            m_value = cubic_model(g, hd, delta, M)
        if not math.isfinite(step_norm):
            raise DivergenceError("CureNewton produced a non-finite step; increase M or cg_iters")
        set_flat_params(model, w0 + delta)
        return {
            "alpha": alpha,
            "step_norm": step_norm,
            "alpha_consistency": abs(alpha - 0.5 * M * step_norm) / max(alpha, 1e-30),
            "cubic_model": m_value,
            "grad_norm": g_norm,
            "optimality_residual": residual,
            "hvps": hvps,
            "solver_info": info,
        }

    def _gd_subsolver(
        self,
        model: nn.Module,
        ctx: UnlearnContext,
        params: dict[str, Any],
        *,
        g: torch.Tensor,
        M: float,
        wd: float,
        x_r: torch.Tensor,
        y_r: torch.Tensor,
        full_hvp: Any,
        outer: int,
    ) -> tuple[torch.Tensor, float, dict[str, Any], int]:
        """Gradient descent on m(Δ) with mini-batch HVPs (the stochastic variant; unverified against the paper)."""
        gen = ctx.generator(offset=100 + outer)
        n = int(x_r.shape[0])
        bs = min(int(params["hvp_batch"]), n)
        # Built once: the hand-written HVP for plain MLPs, torch.func otherwise (weight decay added below).
        batch_hvp, _ = make_lissa_hvp(model)
        g_norm = float(torch.linalg.vector_norm(g))
        hvps = 0
        hg = full_hvp(g / max(g_norm, 1e-30))
        hvps += 1
        beta = float(torch.dot(g / max(g_norm, 1e-30), hg))
        lr = params["subsolver_lr"]
        lam_max = None
        if lr == "auto":
            eig = lanczos(full_hvp, g.numel(), num_iter=20, seed=ctx.seed + outer, dtype=g.dtype, device=g.device)
            hvps += eig.iterations
            lam_max = eig.lambda_max
            lr = 1.0 / (2.0 * (abs(lam_max) + math.sqrt(M * g_norm)))
        radius = cauchy_radius(g_norm, beta, M) if g_norm > 0 else 0.0
        delta = -radius * g / max(g_norm, 1e-30)
        curve: list[float] = []
        for it in range(int(params["subsolver_iters"])):
            idx = torch.randint(n, (bs,), generator=gen).to(x_r.device)
            hd = batch_hvp(delta.unsqueeze(0), x_r[idx].unsqueeze(0), y_r[idx].unsqueeze(0))[0] + wd * delta
            hvps += 1
            grad_m = g + hd + 0.5 * M * float(torch.linalg.vector_norm(delta)) * delta
            delta = delta - lr * grad_m
            if it % max(1, int(params["subsolver_iters"]) // 50) == 0:
                curve.append(float(torch.linalg.vector_norm(grad_m)))
            if not torch.isfinite(delta).all():
                raise DivergenceError("gd_subsolver diverged: lower subsolver_lr")
        alpha = 0.5 * M * float(torch.linalg.vector_norm(delta))
        info = {"subsolver_lr": lr, "lambda_max_estimate": lam_max, "cauchy_radius": radius,
                "model_grad_norm_curve": curve, "hvp_batch": bs}
        return delta, alpha, info, hvps
