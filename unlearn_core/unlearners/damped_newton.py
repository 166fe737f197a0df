r"""Damped Newton step (approximate baseline): :math:`w^* - (H + \lambda I)^{-1}\nabla L(w^*; D_r)` with a fixed λ.

This is Zhang et al.'s Newton step without the norm constraint and the noise (Zhang et al. 2024), and the comparison
of CureNewton (Bui et al. 2024): the damping λ is hand-set. Where λ < −λ_min(H) the damped Hessian is indefinite
and the "Newton step" moves towards a saddle or maximum along the negative directions; where λ is only slightly
above −λ_min, (H + λI)⁻¹ has a huge norm and so does the step — the paper's point that naive fixes for
degenerate Hessians give huge-norm updates that wreck the model. CureNewton picks α from the cubic model instead.

Solvers: ``minres`` (default; HVPs only, symmetric but possibly indefinite systems, SciPy's MINRES),
``cg`` (HVPs, requires H + λI positive definite and refuses otherwise), ``dense`` (tiny models: dense Hessian).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from unlearn_core.curvature import exact_inverse_hvp, make_data_hvp, minres_solve
from unlearn_core.diagnostics import Diagnostics
from unlearn_core.errors import ConfigError
from unlearn_core.functional import (
    flat_gradient,
    get_flat_params,
    set_flat_params,
)
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner

SOLVERS = ("minres", "cg", "dense")


@register_unlearner
class DampedNewton(Unlearner):
    """One Newton step on the retain loss with a fixed damping λ (no constraint, no noise, no certificate).

    Default λ = 1.0 (about 15× the most negative eigenvalue of a digits-MLP retain Hessian, so the step is
    sensible); set λ = 0.01 to see the failure mode CureNewton fixes. Weight decay of the training recipe is
    included in g and every HVP.
    """

    name = "damped_newton"
    family = "approximate"
    paper = "damped Newton baseline (Zhang et al. 2024 without constraint/noise; compared in Bui et al. 2024)"
    summary = "Approximate (uncertified): w* − (H + λI)⁻¹∇L(w*; D_r) with a hand-set damping λ."
    schema = (
        HyperParam("lam", float, 1.0, "damping λ added to the Hessian (small λ → huge steps)", low=0.0, high=1e6,
                   log=True, level="basic", label="λ — damping"),
        HyperParam("solver", str, "minres", "MINRES (indefinite OK), CG (needs H+λI ≻ 0), or dense (tiny models)",
                   choices=SOLVERS, level="basic", label="Solver"),
        HyperParam("tol", float, 1e-6, "relative residual of the iterative solve", low=1e-12, high=0.5, log=True,
                   label="Solver tolerance"),
        HyperParam("max_iter", int, 500, "maximum HVPs of the iterative solve", low=1, high=100_000,
                   label="Solver iterations", unit="HVPs"),
        HyperParam(
            "weight_decay", float, None, "coupled weight decay in g and H; none = the training recipe's",
            low=0.0, high=1.0, optional=True, label="Weight decay",
        ),
    )

    dense_solver = ("dense", "solver=minres or solver=cg")

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """A full-data gradient and at most ``max_iter`` full-data HVPs of the iterative solve (a cap: it stops at
        ``tol``), or the exact solver's dense Hessian (p HVPs and p³/3)."""
        from unlearn_core import limits

        n_retain = max(1, n_train - n_forget)
        estimate = limits.Estimate().add_work("unlearn", 3.0 * n_retain * shape.flops,
                                              math.ceil(n_retain / limits.EVAL_BATCH))
        if params["solver"] == "exact":
            flops, steps = limits.hvp_work(shape, products=shape.num_params, points=n_retain)
            return estimate.add_work("unlearn", flops + shape.num_params**3 / 3.0, steps / 128.0)
        estimate.caps.append("max_iter (the solve stops at tol)")
        return estimate.add_work("unlearn", *limits.hvp_work(shape, products=int(params["max_iter"]), points=n_retain))

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        self.check_supported(ctx.model, params)
        start = time.perf_counter()
        model = ctx.copy_model().eval()
        wd = ctx.weight_decay(params["weight_decay"])
        lam = float(params["lam"])
        x_r, y_r = ctx.x_retain, ctx.y_retain
        w0 = get_flat_params(model)
        g = flat_gradient(model, x_r, y_r, weight_decay=wd)
        info: dict[str, Any] = {}
        with torch.no_grad():
            if params["solver"] == "dense":
                step, raw = exact_inverse_hvp(model, x_r, y_r, g, lam=lam, weight_decay=wd, method="dense")
                info = {"lambda_min_damped": raw["lambda_min_reg"], "lambda_max_damped": raw["lambda_max_reg"],
                        "hvps": w0.numel()}
            elif params["solver"] == "cg":
                step, raw = exact_inverse_hvp(model, x_r, y_r, g, lam=lam, weight_decay=wd, method="cg",
                                              tol=params["tol"], max_iter=params["max_iter"])
                info = {"hvps": raw["iterations"], "relative_residual": raw["relative_residual"],
                        "converged": raw["converged"]}
            else:
                hvp = make_data_hvp(model, x_r, y_r, weight_decay=wd, lam=lam)
                step, info = minres_solve(hvp, g, tol=params["tol"], max_iter=params["max_iter"])
        step_norm = float(torch.linalg.vector_norm(step))
        if not math.isfinite(step_norm):
            raise ConfigError(f"lam={lam:g} gives a singular damped Hessian (non-finite step): increase lam")
        set_flat_params(model, w0 - step)
        diag = Diagnostics(
            time_s=time.perf_counter() - start,
            grad_norm=float(torch.linalg.vector_norm(g)),
            grad_norm_after=float(torch.linalg.vector_norm(flat_gradient(model, x_r, y_r, weight_decay=wd))),
            num_hvps=info.get("hvps"),
            num_gradients=2,
            details={
                "lam": lam, "weight_decay": wd, "solver": params["solver"], "step_norm": step_norm,
                "param_norm_before": float(torch.linalg.vector_norm(w0)),
                "param_norm_after": float(torch.linalg.vector_norm(w0 - step)), "solver_info": info,
            },
        )
        return UnlearnResult(model=model, certificate=None, diagnostics=diag)
