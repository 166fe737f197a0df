r"""Descent-to-Delete (Neel, Roth & Sharifi-Malvajerdi, ALT 2021) — certified for strongly convex models.

For a μ-strongly convex, β-smooth objective (softmax regression with weight decay μ: ``logreg``), each request
deletes its points, runs K steps of projected gradient descent on the retained data from the current *secret*
(noise-free) state, and publishes that state plus Gaussian noise:

.. math:: \theta \leftarrow \Pi_\Theta(\theta - \eta\nabla F_{D_i}(\theta))\ (K\text{ times}),\qquad
          \text{release } \theta + N(0, \sigma^2 I).

Gradient descent contracts the distance to the new minimiser θ̂_{D_i} by γ = max(|1−ημ|, |1−ηβ|) per step
(γ = (β−μ)/(β+μ) at the default η = 2/(μ+β)); the deletion moved the minimiser by at most kL/(μ(n−k)). So the
secret state is within :math:`e_i = \gamma^K(e_{i-1} + kL/(\mu(n-k)))` of θ̂_{D_i}, and the Gaussian mechanism at
sensitivity Δ = e_i (+ the reference's own distance) certifies the release against the minimiser plus the same
noise (:mod:`unlearn_core.descent.contraction`; derivation in docs/other_methods.md#descent-to-delete). μ, β and L
are proven bounds computed from the data (:mod:`unlearn_core.descent.softmax_bounds`) and e₀ is measured exactly at
the trained model, so on ``logreg`` the certificate is fully proven. On any other model strong convexity is not a
theorem: the method still runs (gradient descent then noise), labelled "not certified".

**Sequential requests** (``requests`` = k): the forget set is split into k chunks (seeded order); each request
continues from the previous *secret* state and publishes with fresh noise — Neel et al.'s weaker criterion (the
published outputs are certified; the secret state itself is not). Only the last release is returned.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, ClassVar

import torch
from torch import nn

from unlearn_core.certificate import (
    BOUND,
    ESTIMATE,
    Certificate,
    Condition,
    Constant,
    batchnorm_condition,
    noise_condition,
)
from unlearn_core.descent import contraction, softmax_bounds
from unlearn_core.descent.release_noise import gaussian_noise
from unlearn_core.diagnostics import Diagnostics, RequestRecord
from unlearn_core.evaluation import param_distance
from unlearn_core.functional import get_flat_params, num_params, set_flat_params
from unlearn_core.models import has_batchnorm
from unlearn_core.privacy.gaussian import MECHANISMS, epsilon_for_sigma, sigma_for
from unlearn_core.training import gradient_bound_from_recipe
from unlearn_core.unlearners._descent import (
    SoftmaxConstants,
    accuracies,
    checked_requests,
    combine_requests,
    descend,
    estimated_smoothness,
    full_batch_work,
    project_flat,
    projected_step_length,
    split_requests,
)
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner

THEOREM = ("Neel, Roth & Sharifi-Malvajerdi (ALT 2021), Descent-to-Delete: projected gradient descent contracts "
           "towards the minimiser of a strongly convex smooth loss, then the Gaussian mechanism at the remaining "
           "distance")
REFERENCES = ("minimiser", "recipe")
BOUNDS = ("a_priori", "a_posteriori")


@register_unlearner
class DescentToDelete(Unlearner):
    """K steps of projected gradient descent on the retain set from the trained (or previous secret) model, then
    Gaussian noise at the sensitivity the contraction leaves."""

    name = "descent_to_delete"
    family = "certified"
    paper = ("Neel, Roth & Sharifi-Malvajerdi, Descent-to-Delete: Gradient-Based Methods for Machine Unlearning, "
             "ALT 2021")
    summary = ("Gradient descent on the retain set from the trained model, then Gaussian noise sized by the "
               "contraction of a strongly convex loss: (ε, δ)-certified for logistic regression.")
    sequential = True
    noise_param = "sigma"
    epsilon_param = "epsilon"
    certified_models = ("logreg",)
    schema = (
        HyperParam("epsilon", float, 1.0, "The privacy budget ε of the certificate: smaller is stronger and needs "
                   "more noise.", low=1e-6, high=1e3, log=True, level="basic", label="ε — privacy budget"),
        HyperParam("delta", float, 1e-5, "The failure probability δ of the certificate.", low=1e-15, high=0.5,
                   log=True, level="basic", label="δ — failure probability"),
        HyperParam("steps", int, 1000, "Gradient steps K on the retain set per request: each shrinks the distance to "
                   "the retrained minimiser by the contraction factor γ, so more steps need less noise.", low=0,
                   high=10_000_000, log=True, level="basic", label="K — gradient steps", unit="steps"),
        HyperParam("lr", float, "auto", "step size η; 'auto' = 2/(μ + β), the fastest contraction (γ = (β−μ)/(β+μ)); "
                   "the certificate needs η < 2/β", low=1e-12, high=1e6, log=True, auto=True,
                   label="η — step size"),
        HyperParam("radius", float, "auto", "radius C of the ball the descent projects onto; 'auto' = the training "
                   "recipe's norm bound (the ball the trained models live in), or no projection without one",
                   low=1e-9, high=1e9, log=True, auto=True, optional=True, label="C — projection radius"),
        HyperParam("bound", str, "a_priori", "the distance to the minimiser the noise covers: a_priori (Neel et al.: "
                   "the previous distance plus the minimiser's shift, contracted K times — fixed before the data of "
                   "this request is looked at) or a_posteriori (one projected gradient step at the result, measured, "
                   "over 1 − γ: much tighter, but data-dependent, like certified Newton's residual bound)",
                   choices=BOUNDS, label="Distance bound"),
        HyperParam("reference", str, "minimiser", "what the release is certified against: the exact minimiser of the "
                   "retain objective plus the same noise, or the training recipe's retrained model (its gradient "
                   "tolerance G adds G/μ to the sensitivity)", choices=REFERENCES, label="Certified against"),
        HyperParam("mechanism", str, "analytic", "Gaussian mechanism calibrating σ", choices=MECHANISMS,
                   label="Gaussian mechanism"),
        HyperParam("sigma", float, None, "noise std override; none = the σ the bound requires", low=0.0,
                   optional=True, label="σ override — noise std"),
        HyperParam("requests", int, 1, "sequential requests k: the forget set is removed in k equal chunks, each "
                   "from the previous secret state with fresh noise", low=1, high=10_000,
                   label="Sequential requests k"),
    )
    #: A few hundred steps: fast on any small model (the registry-wide tests run every method with these).
    demo_params: ClassVar[dict[str, Any]] = {"steps": 30}

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int) -> Any:
        """K full-batch gradients per request (≈ 3 forward passes of every training point each)."""
        steps = int(params["steps"]) * int(params["requests"]) + 2 * int(params["requests"])
        return full_batch_work(steps, n_train=n_train, shape=shape)

    # ------------------------------------------------------------------------------------------------------------

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        start = time.perf_counter()
        k = checked_requests(ctx, params)
        wd = ctx.weight_decay()
        convex = bool(ctx.convex) and wd > 0
        bn = has_batchnorm(ctx.model)
        radius = params["radius"]
        if radius == "auto":
            radius = getattr(ctx.train_config, "norm_bound", None)
        radius = None if radius is None else float(radius)
        eps, delta = float(params["epsilon"]), float(params["delta"])
        diag = Diagnostics()
        phases = diag.phases_s
        p = num_params(ctx.model)

        # The constants: proven for softmax regression, estimated (and useless for the bound) otherwise.
        tic = time.perf_counter()
        consts = SoftmaxConstants.of(ctx, weight_decay=wd) if convex else None
        gram = consts.gram.clone() if consts is not None else None
        est_beta = None
        if consts is None:
            est_beta = estimated_smoothness(ctx.model, ctx.x_retain, ctx.y_retain, weight_decay=wd, points=512,
                                            steps=20, seed=ctx.seed) + wd
        phases["constants"] = time.perf_counter() - tic

        current = ctx.copy_model().eval()
        with torch.no_grad():
            set_flat_params(current, project_flat(get_flat_params(current), radius))
        chunks = split_requests(ctx, k)
        forgotten = torch.zeros(ctx.n_train, dtype=torch.bool)
        n_prev = ctx.n_train
        e_prev: float | None = None
        reference, reference_constant = self._reference(ctx, params, wd)
        certificates: list[Certificate] = []
        released: nn.Module = current
        noise_source = ctx.release_noise(stream=1)  # secure unless the run is reproducible (a simulation)
        num_gradients = 0
        for i, chunk in enumerate(chunks):
            ctx.check_cancelled()
            prev_forgotten = forgotten.clone()
            forgotten[chunk] = True
            retain_idx = (~forgotten).nonzero().squeeze(1)
            if torch.equal(retain_idx, ctx.retain_idx.cpu()):
                x_r, y_r = ctx.x_retain, ctx.y_retain
            else:
                x_r, y_r = ctx.x_train[retain_idx.to(ctx.device)], ctx.y_train[retain_idx.to(ctx.device)]
            n_r, n_u = int(retain_idx.numel()), int(chunk.numel())
            x_u = ctx.x_train[chunk.to(ctx.device)]

            tic = time.perf_counter()
            if consts is not None and gram is not None:
                beta_prev = consts.beta(gram, n_prev)
                gram -= softmax_bounds.augmented_gram(x_u)
                beta = consts.beta(gram, n_r)
            else:
                beta_prev = beta = float(est_beta)  # type: ignore[arg-type]
            lr = contraction.optimal_step(mu=wd, beta=beta) if params["lr"] == "auto" else float(params["lr"])
            gamma = contraction.gd_contraction(lr=lr, mu=wd, beta=beta) if convex else math.inf
            param_norm_start = float(torch.linalg.vector_norm(get_flat_params(current)))
            if e_prev is None:
                # The trained model's distance to the minimiser on D: one projected gradient step there (at the step
                # that contracts fastest on D), measured, over 1 − γ.
                lr_prev = contraction.optimal_step(mu=wd, beta=beta_prev)
                gamma_prev = contraction.gd_contraction(lr=lr_prev, mu=wd, beta=beta_prev) if convex else math.inf
                length, grad_start = projected_step_length(current, ctx.x_train, ctx.y_train, lr=lr_prev,
                                                           weight_decay=wd, radius=radius)
                num_gradients += 1
                e_prev = contraction.distance_from_gradient_mapping(step_length=length, contraction=gamma_prev)
                diag.grad_norm = grad_start
            shift, lipschitz = self._shift(x_u, ctx, prev_forgotten, n_prev, n_u, wd, radius) if convex \
                else (math.inf, math.inf)
            phases["constants"] += time.perf_counter() - tic

            # K steps of projected gradient descent on the current retain set, from the secret state.
            run = descend(current, x_r, y_r, steps=int(params["steps"]), lr=lr, weight_decay=wd, radius=radius,
                          ctx=ctx, stage=f"descent (request {i + 1}/{k})" if k > 1 else "descent")
            num_gradients += int(params["steps"])
            phases["descent"] = phases.get("descent", 0.0) + run["time_s"]
            for step, norm in run["curve"]:
                diag.add_curve("descent" if k == 1 else f"descent request {i + 1}", step, grad_norm=norm)
            e_now = contraction.contracted_distance(start=e_prev + shift, contraction=gamma,
                                                    steps=int(params["steps"])) if convex else math.inf
            # A posteriori (diagnostic only: the release is calibrated by the a-priori bound above).
            length_after, grad_after = projected_step_length(current, x_r, y_r, lr=lr, weight_decay=wd,
                                                             radius=radius)
            num_gradients += 1
            posterior = contraction.distance_from_gradient_mapping(step_length=length_after, contraction=gamma) \
                if convex else math.inf

            cert = self._certificate(
                params=params, convex=convex, ctx_convex=bool(ctx.convex), wd=wd, beta=beta, lr=lr, gamma=gamma,
                e_start=e_prev, shift=shift,
                e_now=e_now, lipschitz=lipschitz, reference=reference, reference_constant=reference_constant,
                batchnorm=bn, radius=radius, p=p, eps=eps, delta=delta, est_beta=est_beta, posterior=posterior,
            )
            certificates.append(cert)
            released = copy.deepcopy(current)
            with torch.no_grad():
                w = get_flat_params(released)
                noise = gaussian_noise(w.numel(), cert.sigma_used, source=noise_source, dtype=w.dtype,
                                       device=w.device)
                set_flat_params(released, w + noise)
            forgotten_idx = forgotten.nonzero().squeeze(1)
            clean = accuracies(current, ctx, forgotten=forgotten_idx, x_r=x_r, y_r=y_r)
            noisy = accuracies(released, ctx, forgotten=forgotten_idx, x_r=x_r, y_r=y_r)
            oracle = ctx.retrained if i == k - 1 else None
            diag.requests.append(RequestRecord(
                request=i + 1, n_forget_step=n_u, n_forgotten=int(forgotten_idx.numel()), n_retain=n_r,
                grad_norm=float(run["grad_norm_first"] or grad_after), param_norm_start=param_norm_start,
                projected_to_C=radius is not None, sigma_used=cert.sigma_used, status=cert.status, accuracy=noisy,
                grad_norm_after=grad_after, step_norm=None, sensitivity=cert.sensitivity,
                sigma_required=cert.sigma_required, noise_norm=cert.sigma_used * math.sqrt(p),
                accuracy_noiseless=clean,
                approx_error=param_distance(current, oracle) if oracle is not None else None,
                released_to_retrained=param_distance(released, oracle) if oracle is not None else None,
            ))
            e_prev, n_prev = e_now, n_r
        cert = combine_requests(certificates)
        last = diag.requests[-1]
        diag.time_s = time.perf_counter() - start
        diag.grad_norm_after = last.grad_norm_after
        diag.noise_norm = last.noise_norm
        diag.noiseless_accuracy = last.accuracy_noiseless
        diag.approx_error = last.approx_error
        diag.retrained_grad_norm = None
        diag.num_gradients = num_gradients
        diag.details.update({
            "steps": int(params["steps"]), "requests": k, "lr": cert.details.get("lr"),
            "contraction": cert.details.get("contraction"), "beta": cert.details.get("beta"), "mu": wd,
            "radius": radius, "a_posteriori_distance": cert.details.get("a_posteriori_distance"),
        })
        return UnlearnResult(model=released, certificate=cert, diagnostics=diag)

    # -- pieces of the bound ---------------------------------------------------------------------------------------

    @staticmethod
    def _shift(x_u: torch.Tensor, ctx: UnlearnContext, prev_forgotten: torch.Tensor, n_prev: int, n_u: int,
               wd: float, radius: float | None) -> tuple[float, float]:
        """(kL/(μ(n−k)), L): the minimiser's shift, with L = √2 max_U ‖x̃‖ + wd·(a bound on ‖θ̂_{D_prev}‖)."""
        if radius is not None:
            theta_norm = radius
        else:
            keep = (~prev_forgotten).nonzero().squeeze(1).to(ctx.device)
            x_prev = ctx.x_train if bool(not prev_forgotten.any()) else ctx.x_train[keep]
            y_prev = ctx.y_train if bool(not prev_forgotten.any()) else ctx.y_train[keep]
            theta_norm = softmax_bounds.minimiser_norm_bound(
                zero_gradient=softmax_bounds.zero_gradient_norm(x_prev, y_prev, num_classes=ctx.num_classes), mu=wd)
        lipschitz = softmax_bounds.gradient_bound(x_u) + wd * theta_norm
        return contraction.minimiser_shift(n=n_prev, removed=n_u, lipschitz=lipschitz, mu=wd), lipschitz

    @staticmethod
    def _reference(ctx: UnlearnContext, params: dict[str, Any], wd: float) -> tuple[float, Constant | None]:
        """(e_R, its constant): 0 for the exact minimiser; G/μ for the recipe's model when G is known."""
        if params["reference"] == "minimiser":
            return 0.0, None
        tol = gradient_bound_from_recipe(ctx.train_config, ctx.train_summaries)
        if tol is None or wd <= 0:
            return math.inf, Constant("G", None, ESTIMATE, "the recipe has no gradient tolerance the retrained model "
                                      "reached: its distance to the minimiser is unknown")
        return tol / wd, Constant("G", tol, BOUND, f"the training recipe stops at ‖∇F‖ ≤ {tol:g} (grad_tol) and the "
                                  "retrained model did: it is within G/μ of the minimiser")

    def _certificate(self, *, params: dict[str, Any], convex: bool, ctx_convex: bool, wd: float, beta: float,
                     lr: float, gamma: float, e_start: float, shift: float, e_now: float, lipschitz: float,
                     reference: float,
                     reference_constant: Constant | None, batchnorm: bool, radius: float | None, p: int, eps: float,
                     delta: float, est_beta: float | None, posterior: float) -> Certificate:
        distance = e_now if params["bound"] == "a_priori" else posterior
        sensitivity = contraction.descent_to_delete_sensitivity(unlearned_distance=distance,
                                                                reference_distance=reference)
        if not convex:
            sensitivity = math.inf
        sigma_by = {m: sigma_for(epsilon=eps, delta=delta, sensitivity=sensitivity, mechanism=m) for m in MECHANISMS}
        required = sigma_by[params["mechanism"]]
        notes: list[str] = []
        if params["sigma"] is not None:
            used = float(params["sigma"])
            notes.append(f"σ = {used:g} was set by the user, not derived from the bound")
        elif math.isfinite(required):
            used = required
        else:
            used = 0.0
            notes.append("the bound is infinite, so no finite σ certifies the release: no noise was added")
        conditions = [
            Condition("strongly_convex", "the loss is strongly convex: a convex model and weight decay μ > 0",
                      f"{'a convex' if ctx_convex else 'a non-convex'} model, μ = wd = {wd:g}",
                      "a convex model (logreg) and μ > 0", convex,
                      fix="use model=logreg with --weight-decay > 0", source=THEOREM),
            Condition("contraction", "gradient descent contracts: γ = max(|1 − ημ|, |1 − ηβ|) < 1",
                      f"η = {lr:.4g}, β = {beta:.4g}, γ = {gamma:.6g}" if convex else "no β bound (non-convex)",
                      "γ < 1 (η < 2/β)", convex and gamma < 1, fix="leave lr on auto (η = 2/(μ + β))",
                      source="Nesterov (2004): the gradient step of a μ-strongly convex β-smooth loss"),
            batchnorm_condition(has_batchnorm=batchnorm, recomputed_on_retain=False),
        ]
        if params["reference"] == "recipe":
            conditions.append(Condition(
                "reference", "the retrained reference reached the recipe's gradient tolerance G",
                "G known" if math.isfinite(reference) else "no tolerance reached", "a converged recipe",
                math.isfinite(reference), fix="train with --grad-tol, or use reference=minimiser",
                source="‖θ − θ̂‖ ≤ ‖∇F(θ)‖/μ for a μ-strongly convex F"))
        conditions.append(noise_condition(sigma_used=used, sigma_required=sigma_by["analytic"],
                                          accountant="analytic Gaussian mechanism, exact"))
        tag = BOUND if convex else ESTIMATE
        constants = [
            Constant("μ", wd, tag, "the recipe's weight decay: the cross-entropy of a linear model is convex"
                     if convex else "weight decay only: the network's loss is not convex"),
            Constant("β", beta, tag, "½ λ_max(mean x̃x̃ᵀ) + μ over the retain set (Böhning 1992's softmax bound)"
                     if convex else f"Lanczos λ_max on 512 retain points ({est_beta:.4g}), not a bound"),
            Constant("L", lipschitz if math.isfinite(lipschitz) else None, tag,
                     "√2·max‖x̃‖ over the deleted points + μ·(a bound on the minimiser's norm)"),
            Constant("e₀", e_start if math.isfinite(e_start) else None, tag,
                     "distance of the starting state to the previous minimiser: one projected gradient step at the "
                     "trained model, measured, over (1 − γ) (or the previous request's bound)"),
        ]
        if reference_constant is not None:
            constants.append(reference_constant)
        if radius is None:
            notes.append("no projection: the minimiser of the strongly convex loss is unconstrained")
        if params["bound"] == "a_posteriori":
            notes.append("bound=a_posteriori: the noise covers the distance measured at this result (one projected "
                         "gradient step over 1 − γ), exact but data-dependent; the a-priori bound would need "
                         f"Δ = {e_now + reference:.4g}")
        elif convex and math.isfinite(posterior) and posterior + reference < 0.1 * sensitivity:
            notes.append(f"bound=a_priori (the paper's) needs Δ = {sensitivity:.4g}; the distance measured at this "
                         f"result would need Δ = {posterior + reference:.4g}: bound=a_posteriori certifies with far "
                         "less noise (data-dependent)")
        if convex and gamma > 0.999:
            notes.append(f"γ = {gamma:.6g} is close to 1 (μ = wd = {wd:g} is small against β = {beta:.4g}): the "
                         "distance to the minimiser shrinks slowly and its bound is large; a larger weight decay "
                         "contracts faster (the README's equal-ε bench uses wd = 0.01)")
        epsilon_by = {m: epsilon_for_sigma(sigma=used, delta=delta, sensitivity=sensitivity, mechanism=m)
                      for m in MECHANISMS}
        if eps >= 1:
            notes.append("the classical Gaussian mechanism is proved only for ε < 1; ε certified uses the exact "
                         "analytic mechanism")
        return Certificate(
            method=self.name, theorem=THEOREM, epsilon=eps, delta=delta, delta_guaranteed=delta,
            accountant=f"{params['mechanism']} Gaussian mechanism", sigma_required=required, sigma_used=used,
            epsilon_certified=epsilon_by["analytic"], sigma_required_by=sigma_by, epsilon_by=epsilon_by,
            sensitivity=sensitivity,
            sensitivity_terms={"start": e_start, "shift": shift, "contracted": e_now, "a_posteriori": posterior,
                               "reference": reference},
            conditions=conditions, constants=constants, notes=notes,
            details={"steps": int(params["steps"]), "lr": lr, "contraction": gamma, "beta": beta, "mu": wd,
                     "radius": radius, "reference": params["reference"], "bound": params["bound"],
                     "a_posteriori_distance": posterior, "p": p},
        )

