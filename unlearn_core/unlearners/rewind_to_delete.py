r"""Rewind-to-Delete (Mu & Klabjan, NeurIPS 2025) — certified, for non-convex losses under stated assumptions.

The original model and the retrained oracle are trained by full-batch gradient descent (this method's recipe,
``gd``: T steps of η from the seeded initialisation), and the training keeps C evenly spaced checkpoints of its
trajectory in the cache (:mod:`unlearn_core.trajectory`). To delete U, R2D *rewinds* to the latest checkpoint at or
before step T − K (the initialisation always qualifies), runs the remaining K' ≥ K steps of gradient descent on the
retained data, and releases the result plus Gaussian noise:

.. math:: \theta \leftarrow \theta_{T-K'},\quad \theta \leftarrow \theta - \eta\nabla F_{D'}(\theta)\ (K'\text{ times}),
          \quad\text{release } \theta + N(0, \sigma^2 I).

Retraining is the same T steps on D' from the same start, so the two trajectories differ only by what U did during
the first T − K' steps; :func:`unlearn_core.descent.rewind_sensitivity.rewind_sensitivity` bounds their distance
from the per-step expansion ρ (1 + ηL for an L-smooth loss; ≤ 1 for softmax regression) and the per-example
gradient bound G, and the Gaussian mechanism covers it. First-order and black-box: no Hessian, nothing recorded
but the weights.

**Constants.** On ``logreg`` L (Böhning's bound) and G (√2 max‖x̃‖) are proven and the loss is convex, so the
certificate is fully proven. On a network they are *estimates* — L the largest Hessian eigenvalue found by Lanczos
at the rewind point and at the trained model, G the largest per-example gradient there — or *assumptions* when set
by hand: the certificate is then "certified under assumptions", and a non-convex ρ = 1 + ηL makes Δ grow
exponentially with the steps not rewound (rewind far, or train few steps).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, ClassVar

import torch

from unlearn_core.certificate import (
    ASSUMPTION,
    BOUND,
    ESTIMATE,
    Certificate,
    Condition,
    Constant,
    batchnorm_condition,
    noise_condition,
)
from unlearn_core.descent import rewind_sensitivity as rs
from unlearn_core.descent import softmax_bounds
from unlearn_core.descent.release_noise import gaussian_noise
from unlearn_core.diagnostics import Diagnostics, SplitAccuracy
from unlearn_core.evaluation import evaluate, param_distance
from unlearn_core.functional import get_flat_params, num_params, set_flat_params
from unlearn_core.models import has_batchnorm
from unlearn_core.privacy.gaussian import MECHANISMS, epsilon_for_sigma, sigma_for
from unlearn_core.privacy.noise import NoiseSource
from unlearn_core.unlearners._descent import descend, estimated_smoothness, per_example_gradient_norms
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner

THEOREM = ("Mu & Klabjan (NeurIPS 2025), Rewind-to-Delete: gradient descent rewound to a checkpoint before T − K "
           "and run on D' stays within Δ(ρ, G, K) of retraining, then the Gaussian mechanism at Δ")
#: The gradient-descent step size on a model without a smoothness bound (a network): a usual full-batch value.
FALLBACK_LR = 0.1


@register_unlearner
class RewindToDelete(Unlearner):
    """Rewind to a stored checkpoint of the gradient-descent trajectory, descend on the retain set, add noise."""

    name = "rewind_to_delete"
    family = "certified"
    paper = "Mu & Klabjan, Rewind-to-Delete: Certified Machine Unlearning for Nonconvex Functions, NeurIPS 2025"
    summary = ("Rewind to a stored checkpoint of gradient-descent training, descend on the retain set, add Gaussian "
               "noise: (ε, δ)-certified, for networks under estimated smoothness and gradient bounds.")
    noise_param = "sigma"
    epsilon_param = "epsilon"
    training_optimizer = "gd"
    schema = (
        HyperParam("epsilon", float, 1.0, "The privacy budget ε of the certificate: smaller is stronger and needs "
                   "more noise.", low=1e-6, high=1e3, log=True, level="basic", label="ε — privacy budget"),
        HyperParam("delta", float, 1e-5, "The failure probability δ of the certificate.", low=1e-15, high=0.5,
                   log=True, level="basic", label="δ — failure probability"),
        HyperParam("rewind", float, 0.5, "The share of the T training steps to redo on the retained data: R2D rewinds "
                   "to the latest checkpoint at or before step (1 − rewind)·T. 1 rewinds to the initialisation "
                   "(retraining, no noise needed); less is cheaper and needs more noise.", low=0.0, high=1.0,
                   level="basic", label="Rewind share of training"),
        HyperParam("train_steps", int, 200, "Full-batch gradient-descent steps T that train the original and the "
                   "retrained model.", low=1, high=1_000_000, log=True, level="basic", label="T — training steps",
                   unit="steps"),
        HyperParam("checkpoints", int, 10, "checkpoints C of the training trajectory kept in the cache (evenly "
                   "spaced; each is one copy of the weights on disk)", low=0, high=1000, label="Checkpoints kept"),
        HyperParam("lr", float, "auto", "gradient-descent step size η (training and unlearning); 'auto' = 1/β for "
                   f"logreg (β its proven smoothness bound), {FALLBACK_LR:g} otherwise", low=1e-9, high=100.0,
                   log=True, auto=True, label="η — step size"),
        HyperParam("L", float, "auto", "smoothness constant L of the loss; 'auto' = the proven bound for logreg, else "
                   "the largest Lanczos Hessian eigenvalue at the rewind point and the trained model (an estimate)",
                   low=0.0, auto=True, label="L — smoothness constant"),
        HyperParam("G", float, "auto", "bound G on every per-example loss gradient; 'auto' = √2·max‖x̃‖ for logreg "
                   "(proven), else the largest per-example gradient norm at the rewind point and the trained model "
                   "(an estimate)", low=0.0, auto=True, label="G — per-example gradient bound"),
        HyperParam("lanczos_steps", int, 20, "Lanczos steps of the L estimate on a network", low=2, high=10_000,
                   label="Lanczos steps", unit="HVPs"),
        HyperParam("curvature_points", int, 1024, "points (a seeded subsample) of the L and G estimates on a network",
                   low=1, high=10_000_000, log=True, label="Curvature subsample", unit="points"),
        HyperParam("mechanism", str, "analytic", "Gaussian mechanism calibrating σ", choices=MECHANISMS,
                   label="Gaussian mechanism"),
        HyperParam("sigma", float, None, "noise std override; none = the σ the bound requires", low=0.0,
                   optional=True, label="σ override — noise std"),
    )
    #: A short trajectory: quick on the digits MLP, and Δ stays finite there (1 + ηL)^T.
    demo_params: ClassVar[dict[str, Any]] = {"train_steps": 20, "checkpoints": 4, "rewind": 0.5}

    # -- the training recipe ---------------------------------------------------------------------------------------

    def training_recipe(self, train_config: Any, params: dict[str, Any], *, x_train: torch.Tensor | None = None,
                        convex: bool = False) -> Any:
        """``gd`` for T steps of η, keeping C checkpoints (the user's recipe gives its seed, weight decay and norm
        bound)."""
        return dataclasses.replace(
            train_config, optimizer="gd", lr=self._lr(params, train_config, x_train=x_train, convex=convex),
            epochs=int(params["train_steps"]), checkpoints=int(params["checkpoints"]), grad_tol=None, noise=0.0,
            momentum=0.0,
        )

    @staticmethod
    def _lr(params: dict[str, Any], train_config: Any, *, x_train: torch.Tensor | None, convex: bool) -> float:
        if params["lr"] != "auto":
            return float(params["lr"])
        if x_train is None:
            return float(train_config.lr)  # a sketch for the configuration's validation
        if not convex:
            return FALLBACK_LR
        return 1.0 / softmax_bounds.smoothness_bound(x_train, weight_decay=float(train_config.weight_decay))

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int) -> Any:
        """Two trainings of T full-batch steps (the unlearning redoes at most T), and C checkpoints of each."""
        from unlearn_core.limits import Estimate
        from unlearn_core.trajectory import checkpoint_bytes

        steps = 3 * int(params["train_steps"])
        return Estimate(
            memory={"training checkpoints (C × p floats, also their disk use)":
                    checkpoint_bytes(num_params=shape.num_params, count=int(params["checkpoints"]))},
            flops=3.0 * steps * n_train * shape.flops,
            stages={"full-batch gradient": 2.0 * 4 * min(n_train, 4096) * shape.activations},
        )

    # -- the run -------------------------------------------------------------------------------------------------------

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        start = time.perf_counter()
        wd = ctx.weight_decay()
        recipe = self.training_recipe(ctx.train_config, params, x_train=ctx.x_train, convex=ctx.convex)
        lr = float(recipe.lr)
        trajectory = ctx.trajectory_of(ctx.model)
        total = int(trajectory.total_steps) if trajectory is not None else int(recipe.epochs)
        wanted = math.ceil(float(params["rewind"]) * total)
        point = trajectory.rewind_point(total - wanted) if trajectory is not None else 0
        steps = total - point
        diag = Diagnostics()
        tic = time.perf_counter()
        model = trajectory.load(point) if trajectory is not None else ctx.model_factory(0)
        model = model.to(ctx.device).eval()
        diag.phases_s["rewind"] = time.perf_counter() - tic
        trained = _same_recipe(ctx.train_config, recipe)

        tic = time.perf_counter()
        # The constants are properties of the trajectory and the rewind point, not of this run's randomness:
        # measured once per trajectory (an audit runs the method hundreds of times on the same one).
        memo_key = ("rewind_to_delete", point, params["L"], params["G"], int(params["lanczos_steps"]),
                    int(params["curvature_points"]), float(wd))
        memo = trajectory.derived if trajectory is not None else {}
        if memo_key not in memo:
            memo[memo_key] = self._constants(ctx, params, model, wd)
        smooth, grad_bound, constants = memo[memo_key]
        diag.phases_s["constants"] = time.perf_counter() - tic
        convex = bool(ctx.convex)
        expansion = rs.gd_expansion(lr=lr, smoothness=smooth, mu=wd, convex=convex)

        run = descend(model, ctx.x_retain, ctx.y_retain, steps=steps, lr=lr, weight_decay=wd,
                      radius=recipe.norm_bound, ctx=ctx, stage="rewind descent")
        diag.phases_s["descent"] = run["time_s"]
        for step, norm in run["curve"]:
            diag.add_curve("descent", step, grad_norm=norm)
        sensitivity = rs.rewind_sensitivity(total_steps=total, rewind_steps=steps, lr=lr, expansion=expansion,
                                            grad_bound=grad_bound, n=ctx.n_train, removed=ctx.n_forget)
        cert = self._certificate(params=params, sensitivity=sensitivity, constants=constants, trained=trained,
                                 total=total, point=point, steps=steps, wanted=wanted, lr=lr, expansion=expansion,
                                 trajectory=trajectory, batchnorm=has_batchnorm(ctx.model), convex=convex)
        noiseless = model
        released = _with_noise(model, cert.sigma_used, ctx.release_noise(stream=1))

        def split_accuracy(m: torch.nn.Module) -> SplitAccuracy:
            return SplitAccuracy(forget=evaluate(m, ctx.x_forget, ctx.y_forget)[1],
                                 retain=evaluate(m, ctx.x_retain, ctx.y_retain)[1],
                                 test=evaluate(m, ctx.x_test, ctx.y_test)[1])

        diag.time_s = time.perf_counter() - start
        diag.grad_norm = run["grad_norm_first"]
        diag.grad_norm_after = run["grad_norm_last"]
        diag.noise_norm = cert.sigma_used * math.sqrt(num_params(model))
        diag.noiseless_accuracy = split_accuracy(noiseless)
        diag.num_gradients = steps
        if ctx.retrained is not None:
            diag.approx_error = param_distance(noiseless, ctx.retrained)
        diag.details.update({
            "training_steps": total, "rewound_to_step": point, "unlearning_steps": steps,
            "gradients_vs_retraining": steps / total if total else None, "checkpoint_steps":
            list(trajectory.available()) if trajectory is not None else [0], "lr": lr, "expansion": expansion,
        })
        return UnlearnResult(model=released, certificate=cert, diagnostics=diag)

    # -- constants and certificate ---------------------------------------------------------------------------------

    @staticmethod
    def _constants(ctx: UnlearnContext, params: dict[str, Any], rewound: torch.nn.Module,
                   wd: float) -> tuple[float, float, dict[str, Constant]]:
        """(L, G, their tagged constants): proven for logreg, measured at the rewind point and the trained model on a
        network, or set by the user (assumptions)."""
        out: dict[str, Constant] = {}
        sub = _subsample(ctx, int(params["curvature_points"]))
        if params["L"] != "auto":
            smooth = float(params["L"])
            out["L"] = Constant("L", smooth, ASSUMPTION, "set by the user")
        elif ctx.convex:
            smooth = softmax_bounds.smoothness_bound(ctx.x_retain, weight_decay=wd)
            out["L"] = Constant("L", smooth, BOUND, "½ λ_max(mean x̃x̃ᵀ) + wd over the retain set (Böhning 1992)")
        else:
            x_s, y_s = sub
            smooth = max(estimated_smoothness(m, x_s, y_s, weight_decay=wd, points=len(y_s),
                                              steps=int(params["lanczos_steps"]), seed=0)
                         for m in (rewound, ctx.model))
            out["L"] = Constant("L", smooth, ESTIMATE, f"largest Lanczos Hessian eigenvalue ({params['lanczos_steps']} "
                                f"steps, {len(y_s)} retain points) at the rewind point and the trained model: local, "
                                "the trajectory may be sharper elsewhere")
        if params["G"] != "auto":
            grad_bound = float(params["G"])
            out["G"] = Constant("G", grad_bound, ASSUMPTION, "set by the user")
        elif ctx.convex:
            grad_bound = softmax_bounds.gradient_bound(ctx.x_train)
            out["G"] = Constant("G", grad_bound, BOUND, "√2·max‖x̃‖ over the training set: every per-example "
                                "cross-entropy gradient of softmax regression is below it")
        else:
            x_s, y_s = _subsample(ctx, int(params["curvature_points"]), pool="train")
            grad_bound = max(per_example_gradient_norms(m, x_s, y_s) for m in (rewound, ctx.model))
            out["G"] = Constant("G", grad_bound, ESTIMATE, f"largest per-example gradient norm over {len(y_s)} "
                                "training points at the rewind point and the trained model: measured, not a bound")
        return smooth, grad_bound, out

    def _certificate(self, *, params: dict[str, Any], sensitivity: float, constants: dict[str, Constant],
                     trained: str, total: int, point: int, steps: int, wanted: int, lr: float, expansion: float,
                     trajectory: Any, batchnorm: bool, convex: bool) -> Certificate:
        eps, delta = float(params["epsilon"]), float(params["delta"])
        sigma_by = {m: sigma_for(epsilon=eps, delta=delta, sensitivity=sensitivity, mechanism=m) for m in MECHANISMS}
        required = sigma_by[params["mechanism"]]
        notes = [f"rewound to step {point} of T = {total} and ran K = {steps} gradient-descent steps on the retain set "
                 f"({steps / total:.0%} of retraining's gradients)" if total else "no training steps"]
        if trajectory is None:
            notes.append("no stored trajectory for this model: rewound to the seeded initialisation")
        elif steps > wanted:
            notes.append(f"no checkpoint at step {total - wanted}: the latest one before it is step {point}")
        if params["sigma"] is not None:
            used = float(params["sigma"])
            notes.append(f"σ = {used:g} was set by the user, not derived from the bound")
        elif math.isfinite(required):
            used = required
        else:
            used = 0.0
            notes.append("Δ is infinite (the expansion over the steps not rewound overflows): no finite σ certifies; "
                         "rewind further or train fewer steps")
        if sensitivity == 0:
            notes.append("rewound to the initialisation: this is retraining, Δ = 0 and no noise is needed")
        elif math.isfinite(sensitivity) and expansion > 1:
            notes.append(f"Δ = {sensitivity:.4g} grows about as ρ^T = {expansion:.4g}^{total} over the whole "
                         "trajectory, wherever the rewind point is: fewer training steps T or a smaller step size "
                         "shrink it; rewinding further helps little short of the initialisation (retraining)")
        elif math.isfinite(sensitivity):
            notes.append(f"Δ = {sensitivity:.4g} grows with the {point} training steps before the rewind point and "
                         f"the forgotten share k/n, and contracts by ρ^K = {expansion:.4g}^{steps} after it: a larger "
                         "rewind share or fewer points forgotten shrink the noise")
        conditions = [
            Condition("gd_trajectory", "the original and the retrained model were trained by this method's "
                      "full-batch gradient descent (same η and T, from the seeded initialisation)", trained,
                      "the method's recipe", trained == "the method's recipe",
                      fix="run through the pipeline, leaving the optimizer on auto", source=THEOREM),
            batchnorm_condition(has_batchnorm=batchnorm, recomputed_on_retain=False),
            noise_condition(sigma_used=used, sigma_required=sigma_by["analytic"],
                            accountant="analytic Gaussian mechanism, exact"),
        ]
        consts = list(constants.values())
        consts.append(Constant("ρ", expansion, BOUND if convex and constants["L"].tag == BOUND else
                               constants["L"].tag, "per-step expansion of gradient descent: max(|1 − ηwd|, |1 − ηL|) "
                               "(convex)" if convex else "per-step expansion of gradient descent: 1 + ηL"))
        epsilon_by = {m: epsilon_for_sigma(sigma=used, delta=delta, sensitivity=sensitivity, mechanism=m)
                      for m in MECHANISMS}
        return Certificate(
            method=self.name, theorem=THEOREM, epsilon=eps, delta=delta, delta_guaranteed=delta,
            accountant=f"{params['mechanism']} Gaussian mechanism", sigma_required=required, sigma_used=used,
            epsilon_certified=epsilon_by["analytic"], sigma_required_by=sigma_by, epsilon_by=epsilon_by,
            sensitivity=sensitivity, sensitivity_terms={"rewind": sensitivity}, conditions=conditions,
            constants=consts, notes=notes,
            details={"T": total, "rewound_to": point, "K": steps, "lr": lr, "expansion": expansion},
        )


def _subsample(ctx: UnlearnContext, points: int, *, pool: str = "retain") -> tuple[torch.Tensor, torch.Tensor]:
    """A subsample fixed by the data alone (seed 0, not the run's seed): the constants it measures belong to the
    trajectory, so every run on it measures the same ones."""
    x, y = (ctx.x_retain, ctx.y_retain) if pool == "retain" else (ctx.x_train, ctx.y_train)
    n = int(x.shape[0])
    if n <= points:
        return x, y
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:points].to(x.device)
    return x[idx], y[idx]


def _with_noise(model: torch.nn.Module, sigma: float, source: NoiseSource) -> torch.nn.Module:
    """A copy of ``model`` plus N(0, σ²I) on its trainable parameters (the release)."""
    import copy

    released = copy.deepcopy(model)
    with torch.no_grad():
        w = get_flat_params(released)
        set_flat_params(released, w + gaussian_noise(w.numel(), sigma, source=source, dtype=w.dtype,
                                                     device=w.device))
    return released


def _same_recipe(actual: Any, expected: Any) -> str:
    """"the method's recipe" when the context's recipe is the method's gd recipe (checkpoints aside); else what
    differs."""
    if actual is None:
        return "unknown"
    fields = ("optimizer", "lr", "epochs", "weight_decay", "norm_bound")
    differ = [f for f in fields if getattr(actual, f, None) != getattr(expected, f, None)]
    if not differ:
        return "the method's recipe"
    return "; ".join(f"{f}={getattr(actual, f, None)!r} (needs {getattr(expected, f, None)!r})" for f in differ)
