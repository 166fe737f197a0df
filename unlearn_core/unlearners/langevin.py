r"""Langevin unlearning (Chien, Wang, Chen & Li, NeurIPS 2024, two papers) — certified for strongly convex models.

Learning and unlearning are one process: projected noisy full-batch gradient descent,

.. math:: w \leftarrow \Pi_C\big(w - \eta\nabla F(w) + \sqrt{2\eta}\,\sigma\,\xi\big),\qquad \xi\sim N(0, I),

on F = mean cross-entropy + (μ/2)‖w‖² (μ > 0: softmax regression is then μ-strongly convex). The method trains the
original model *and* the retrained oracle with this process (its own training recipe, ``noisy_gd``: T steps from
the seeded initialisation; :meth:`Langevin.training_recipe`), and unlearns by continuing the same process for K steps
on the retained data. Nothing is added at the end: the iterate is the release.

Its certificate is a Rényi bound between the unlearned law and the law of retraining that *decays* with K
("privacy recuperation", :mod:`unlearn_core.descent.langevin_accounting`): ``accountant="w_inf"`` (Chien et al.,
*Certified Machine Unlearning via Noisy SGD*, full-batch case; derived independently, see
docs/other_methods.md#langevin-unlearning) or ``"lsi"`` (Chien et al., *Langevin Unlearning*: the log-Sobolev
decay, transcribed from the authors' public code — the paper's theorem was not reachable, so a certificate that
uses it is "certified under assumptions"). With ``steps="auto"`` K is the fewest steps that reach the target ε.
The constants (μ, β, the per-example gradient bound M) are proven bounds for ``logreg``; on any other model the
method runs but is "not certified".

**Sequential requests** (``requests`` = k, W∞ accountant): the forget set is removed in k chunks; the W∞ distances
add up (:func:`~unlearn_core.descent.langevin_accounting.sequential_w_inf_distance`) and each request runs the K
that brings its own ε to the target.

**Reference.** The retraining the certificate compares with is the same process run on D' from the same
initialisation for T + K steps (the unlearned model has taken T steps on D and K on D'); once T is past the
process's burn-in this is the law the retrained oracle (T steps) samples from.
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
from unlearn_core.descent import langevin_accounting as acc
from unlearn_core.descent import softmax_bounds
from unlearn_core.diagnostics import Diagnostics, RequestRecord
from unlearn_core.errors import ConfigError
from unlearn_core.evaluation import param_distance
from unlearn_core.functional import get_flat_params, num_params
from unlearn_core.models import has_batchnorm
from unlearn_core.privacy.rootfind import boundary
from unlearn_core.recipes import noise_std_per_step
from unlearn_core.unlearners._descent import (
    accuracies,
    checked_requests,
    combine_requests,
    descend,
    full_batch_work,
    split_requests,
)
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner

THEOREM_W_INF = ("Chien, Wang, Chen & Li (NeurIPS 2024), Certified Machine Unlearning via Noisy SGD, full batch: the "
                 "learning processes on D and D' stay within W∞ distance Δ_g/μ; K contracting noisy steps give "
                 "ε_α = α Z² (1 − ημ)^{2K} / (2ησ²)")
THEOREM_LSI = ("Chien, Wang, Chen & Li (NeurIPS 2024), Langevin Unlearning: the learning process is (α, αΔ_g²/(μσ²))-"
               "Rényi close and the log-Sobolev constant 2σ²/μ decays it by e^{−Kμη/α}")
ACCOUNTANTS = ("w_inf", "lsi", "tightest")
#: The step size on a model without a smoothness bound (a non-convex network): the method still runs, uncertified.
FALLBACK_LR = 0.05


@register_unlearner
class Langevin(Unlearner):
    """Continue the projected noisy gradient descent that trained the model, on the retain set, until the Rényi bound
    reaches ε."""

    name = "langevin"
    family = "certified"
    paper = ("Chien, Wang, Chen & Li, Langevin Unlearning (NeurIPS 2024) and Certified Machine Unlearning via Noisy "
             "Stochastic Gradient Descent (NeurIPS 2024)")
    summary = ("Train and unlearn with the same projected noisy gradient descent; the privacy loss decays with the "
               "unlearning steps: (ε, δ)-certified for logistic regression.")
    sequential = True
    noise_param = "sigma"
    epsilon_param = "epsilon"
    certified_models = ("logreg",)
    training_optimizer = "noisy_gd"
    schema = (
        HyperParam("epsilon", float, 1.0, "The privacy budget ε of the certificate: smaller is stronger and needs "
                   "more unlearning steps.", low=1e-6, high=1e3, log=True, level="basic", label="ε — privacy budget"),
        HyperParam("delta", float, 1e-5, "The failure probability δ of the certificate.", low=1e-15, high=0.5,
                   log=True, level="basic", label="δ — failure probability"),
        HyperParam("sigma", float, 0.05, "The noise σ of learning and unlearning: every step adds √(2η)·σ·ξ. "
                   "More noise certifies in fewer steps and costs accuracy; it also sets how the original model is "
                   "trained. 0 is plain gradient descent (never certified).", low=0.0, high=100.0, log=True,
                   level="basic", label="σ — noise"),
        HyperParam("weight_decay", float, 0.2, "The weight decay μ of the objective (learning and unlearning): the "
                   "strong convexity the bound contracts with.", low=1e-9, high=100.0, log=True, level="basic",
                   label="μ — weight decay"),
        HyperParam("train_steps", int, 1000, "Full-batch noisy steps T that train the original and the retrained "
                   "model (the 'burn-in').", low=1, high=1_000_000, log=True, level="basic",
                   label="T — training steps", unit="steps"),
        HyperParam("steps", int, "auto", "Unlearning steps K; 'auto' = the fewest that reach ε (T/10 where "
                   "no K can: a network, σ = 0)", low=0,
                   high=10_000_000, log=True, auto=True, level="basic", label="K — unlearning steps", unit="steps"),
        HyperParam("max_steps", int, 20_000, "The most unlearning steps 'auto' may take per request", low=1,
                   high=10_000_000, log=True, label="Cap on unlearning steps", unit="steps"),
        HyperParam("lr", float, "auto", "step size η of learning and unlearning; 'auto' = 1/β, β the proven smoothness "
                   f"bound of the training data ({FALLBACK_LR:g} on a model without one)", low=1e-9, high=10.0,
                   log=True, auto=True, label="η — step size"),
        HyperParam("radius", float, None, "radius C of the projection after each step; none = no projection (the "
                   "papers' full-batch setting)", low=1e-6, high=1e9, log=True, optional=True,
                   label="C — projection radius"),
        HyperParam("accountant", str, "w_inf", "the Rényi bound: w_inf (noisy-SGD paper, full batch; derived here), "
                   "lsi (Langevin paper, transcribed from its public code: certified under assumptions) or the "
                   "tightest of both", choices=ACCOUNTANTS, label="Accountant"),
        HyperParam("requests", int, 1, "sequential requests k: the forget set is removed in k equal chunks (W∞ "
                   "accountant: the distances add up)", low=1, high=10_000, label="Sequential requests k"),
    )
    #: Quick everywhere, and certified at ε = 1 on digits logistic regression with 10 % forgotten (strong convexity
    #: μ = 2: the W∞ accountant needs 55 steps there). On the digits MLP of the registry-wide tests it runs in a
    #: second, "not certified" (not convex).
    demo_params: ClassVar[dict[str, Any]] = {"weight_decay": 2.0, "train_steps": 50, "steps": 60}

    # -- the training recipe ---------------------------------------------------------------------------------------

    def training_recipe(self, train_config: Any, params: dict[str, Any], *, x_train: torch.Tensor | None = None,
                        convex: bool = False) -> Any:
        """``noisy_gd`` with this method's σ, η, μ, T and radius (the user's recipe gives only its seed)."""
        lr = self._lr(params, x_train=x_train, convex=convex, fallback=float(train_config.lr))
        return dataclasses.replace(
            train_config, optimizer="noisy_gd", lr=lr, epochs=int(params["train_steps"]), noise=float(params["sigma"]),
            weight_decay=float(params["weight_decay"]), norm_bound=params["radius"], grad_tol=None, checkpoints=0,
            momentum=0.0,
        )

    @staticmethod
    def _lr(params: dict[str, Any], *, x_train: torch.Tensor | None, convex: bool, fallback: float) -> float:
        if params["lr"] != "auto":
            return float(params["lr"])
        if x_train is None:
            return fallback  # a sketch for the configuration's validation
        if not convex:
            return FALLBACK_LR
        return 1.0 / softmax_bounds.smoothness_bound(x_train, weight_decay=float(params["weight_decay"]))

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int) -> Any:
        """Two trainings of T full-batch steps, and K unlearning steps (K ≤ max_steps per request)."""
        steps = 2 * int(params["train_steps"]) + (int(params["max_steps"]) if params["steps"] == "auto"
                                                   else int(params["steps"])) * int(params["requests"])
        return full_batch_work(steps, n_train=n_train, shape=shape)

    # -- the run -----------------------------------------------------------------------------------------------------

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        start = time.perf_counter()
        k = checked_requests(ctx, params)
        mu = float(params["weight_decay"])
        sigma = float(params["sigma"])
        convex = bool(ctx.convex) and mu > 0
        eps, delta = float(params["epsilon"]), float(params["delta"])
        accountant = params["accountant"]
        if accountant == "lsi" and k > 1:
            raise ConfigError("accountant=lsi is not valid with requests > 1: sequential requests use the w_inf "
                              "accountant (the distances add up); choose accountant=w_inf or tightest")
        lr = self._lr(params, x_train=ctx.x_train, convex=ctx.convex, fallback=FALLBACK_LR)
        radius = params["radius"]
        diag = Diagnostics()
        tic = time.perf_counter()
        if convex:
            lam_d = softmax_bounds.second_moment_lambda_max(ctx.x_train)
            lam_r = softmax_bounds.second_moment_lambda_max(ctx.x_retain)
            beta = 0.5 * max(lam_d, lam_r) + mu
            grad_bound = softmax_bounds.gradient_bound(ctx.x_train)
        else:
            beta, grad_bound = math.inf, math.inf
        diag.phases_s["constants"] = time.perf_counter() - tic
        c = acc.noisy_gd_contraction(lr=lr, mu=mu)
        std = noise_std_per_step(lr=lr, sigma=sigma)
        recipe = self.training_recipe(ctx.train_config, params, x_train=ctx.x_train, convex=ctx.convex)
        trained = _same_recipe(ctx.train_config, recipe)

        current = ctx.copy_model().eval()
        chunks = split_requests(ctx, k)
        forgotten = torch.zeros(ctx.n_train, dtype=torch.bool)
        n_prev = ctx.n_train
        z_prev, k_prev = 0.0, 0
        noise = ctx.release_noise(stream=1)  # secure unless the run is reproducible (a simulation)
        certificates: list[Certificate] = []
        total_steps = 0
        for i, chunk in enumerate(chunks):
            ctx.check_cancelled()
            forgotten[chunk] = True
            retain_idx = (~forgotten).nonzero().squeeze(1)
            if torch.equal(retain_idx, ctx.retain_idx.cpu()):
                x_r, y_r = ctx.x_retain, ctx.y_retain
            else:
                x_r, y_r = ctx.x_train[retain_idx.to(ctx.device)], ctx.y_train[retain_idx.to(ctx.device)]
            n_r, n_u = int(retain_idx.numel()), int(chunk.numel())
            drift = acc.drift_sensitivity(n=n_prev, removed=n_u, grad_bound=grad_bound)
            z_new = acc.learning_w_inf_bound(drift=drift, mu=mu) if convex else math.inf
            z = acc.sequential_w_inf_distance(previous=z_prev, contraction=c, previous_steps=k_prev, new=z_new) \
                if i > 0 else z_new
            steps = self._steps(params, accountant=accountant, z=z, drift=drift, mu=mu, lr=lr, sigma=sigma, c=c,
                                eps=eps, delta=delta)
            param_norm_start = float(torch.linalg.vector_norm(get_flat_params(current)))
            run = descend(current, x_r, y_r, steps=steps, lr=lr, weight_decay=mu, radius=radius, ctx=ctx,
                          stage=f"langevin (request {i + 1}/{k})" if k > 1 else "langevin", noise_std=std,
                          noise=noise)
            total_steps += steps
            diag.phases_s["unlearning"] = diag.phases_s.get("unlearning", 0.0) + run["time_s"]
            for step, norm in run["curve"]:
                diag.add_curve("langevin" if k == 1 else f"langevin request {i + 1}", step, grad_norm=norm)
            cert = self._certificate(
                params=params, accountant=accountant, convex=convex, ctx_convex=bool(ctx.convex), trained=trained,
                recipe=recipe, train_config=ctx.train_config, mu=mu, beta=beta, grad_bound=grad_bound, lr=lr, c=c,
                sigma=sigma, z=z, drift=drift, steps=steps, eps=eps, delta=delta,
                batchnorm=has_batchnorm(ctx.model), sequential=k > 1,
            )
            certificates.append(cert)
            forgotten_idx = forgotten.nonzero().squeeze(1)
            acc_now = accuracies(current, ctx, forgotten=forgotten_idx, x_r=x_r, y_r=y_r)
            oracle = ctx.retrained if i == k - 1 else None
            diag.requests.append(RequestRecord(
                request=i + 1, n_forget_step=n_u, n_forgotten=int(forgotten_idx.numel()), n_retain=n_r,
                grad_norm=float(run["grad_norm_first"] or 0.0), param_norm_start=param_norm_start,
                projected_to_C=radius is not None, sigma_used=sigma, status=cert.status, accuracy=acc_now,
                grad_norm_after=run["grad_norm_last"], sensitivity=z if math.isfinite(z) else None,
                sigma_required=cert.sigma_required, noise_norm=std * math.sqrt(num_params(current) * max(steps, 0)),
                released_to_retrained=param_distance(current, oracle) if oracle is not None else None,
            ))
            z_prev, k_prev, n_prev = z, steps, n_r
        cert = combine_requests(certificates)
        last = diag.requests[-1]
        diag.time_s = time.perf_counter() - start
        diag.grad_norm = diag.requests[0].grad_norm
        diag.grad_norm_after = last.grad_norm_after
        diag.noise_norm = last.noise_norm
        diag.num_gradients = total_steps
        train_steps = int(params["train_steps"])
        diag.details.update({
            "unlearning_steps": [c_.details["steps"] for c_ in certificates],
            "training_steps": train_steps, "gradients_vs_retraining": total_steps / train_steps,
            "lr": lr, "sigma": sigma, "mu": mu, "beta": beta if math.isfinite(beta) else None,
            "contraction": c, "noise_std_per_step": std, "accountant": cert.accountant,
        })
        return UnlearnResult(model=current, certificate=cert, diagnostics=diag)

    # -- the bound ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _epsilons(*, z: float, drift: float, mu: float, lr: float, sigma: float, c: float, steps: int,
                  delta: float, lsi: bool) -> dict[str, float]:
        out = {"w_inf": acc.w_inf_epsilon(distance=z, contraction=c, steps=steps, lr=lr, sigma=sigma, delta=delta)}
        if lsi:
            out["lsi"] = acc.lsi_epsilon(drift=drift, mu=mu, lr=lr, sigma=sigma, steps=steps, delta=delta)
        return out

    def _steps(self, params: dict[str, Any], *, accountant: str, z: float, drift: float, mu: float, lr: float,
               sigma: float, c: float, eps: float, delta: float) -> int:
        """K: the user's, or the fewest steps whose ε (by the chosen accountant, or the tightest) is ≤ the target,
        capped at ``max_steps``."""
        if params["steps"] != "auto":
            return int(params["steps"])
        cap = int(params["max_steps"])
        found: list[int] = []
        if accountant in ("w_inf", "tightest"):
            k = acc.w_inf_steps(distance=z, contraction=c, lr=lr, sigma=sigma, epsilon=eps, delta=delta)
            if k is not None:
                found.append(k)
        if accountant in ("lsi", "tightest") and math.isfinite(drift) and mu > 0:
            k = acc.lsi_steps(drift=drift, mu=mu, lr=lr, sigma=sigma, epsilon=eps, delta=delta, max_steps=cap)
            if k is not None:
                found.append(k)
        if not found and (not math.isfinite(z) or sigma <= 0):  # no K certifies (a network, σ = 0): a tenth of
            # training rather than max_steps of compute that buys nothing
            return min(cap, _uncertifiable_steps(params))
        return min([cap, *found])

    def _certificate(self, *, params: dict[str, Any], accountant: str, convex: bool, ctx_convex: bool, trained: str,
                     recipe: Any, train_config: Any, mu: float, beta: float, grad_bound: float, lr: float, c: float,
                     sigma: float, z: float, drift: float, steps: int, eps: float, delta: float, batchnorm: bool,
                     sequential: bool) -> Certificate:
        use_lsi = accountant in ("lsi", "tightest") and not sequential
        eps_by = self._epsilons(z=z, drift=drift, mu=mu, lr=lr, sigma=sigma, c=c, steps=steps, delta=delta,
                                lsi=use_lsi) if convex else {"w_inf": math.inf}
        if accountant == "tightest" and use_lsi:
            chosen = min(eps_by, key=eps_by.__getitem__)
        else:
            chosen = "lsi" if accountant == "lsi" else "w_inf"
        eps_cert = eps_by[chosen]
        sigma_by = {name: _sigma_required(name, z=z, drift=drift, mu=mu, lr=lr, c=c, steps=steps, eps=eps,
                                          delta=delta) if convex else math.inf for name in eps_by}
        required = sigma_by[chosen]
        notes = [f"K = {steps} unlearning steps of projected noisy gradient descent (per-step noise std "
                 f"{noise_std_per_step(lr=lr, sigma=sigma):.4g}); the release is the last iterate, no noise is added "
                 "at the end"]
        if params["steps"] == "auto" and not (convex and sigma > 0):
            notes.append(f"no number of steps certifies this run ({'σ = 0' if convex else 'not strongly convex'}): "
                         f"steps=auto took a tenth of the training steps, K = {steps}")
        elif params["steps"] == "auto" and steps >= int(params["max_steps"]):
            notes.append(f"the target ε was not reached within max_steps = {params['max_steps']}")
        if sequential and accountant != "w_inf":
            notes.append("sequential requests use the w_inf accountant (the distances add up)")
        conditions = [
            Condition("strongly_convex", "the loss is strongly convex: a convex model and weight decay μ > 0",
                      f"{'a convex' if ctx_convex else 'a non-convex'} model, μ = {mu:g}",
                      "a convex model (logreg) and μ > 0", convex, fix="use model=logreg", source=THEOREM_W_INF),
            Condition("training_recipe", "the original and the retrained model were trained by this very process "
                      "(noisy_gd with the same σ, η, μ and projection)", trained, "the method's recipe",
                      trained == "the method's recipe", fix="run through the pipeline (it trains with the method's "
                      "recipe), leaving the optimizer on auto", source="learning and unlearning are one process"),
            Condition("step_size", "η ≤ 2/(μ + β) (the noiseless step contracts by 1 − ημ)" + (
                      "; the LSI bound also needs η ≤ 1/β" if chosen == "lsi" else ""),
                      f"η = {lr:.4g}, β = {beta:.4g}" if math.isfinite(beta) else f"η = {lr:.4g}, no β bound",
                      "η ≤ 1/β" if chosen == "lsi" else "η ≤ 2/(μ + β)",
                      _step_ok(lr=lr, mu=mu, beta=beta, c=c, lsi=chosen == "lsi"), fix="leave lr on auto (η = 1/β)",
                      source=THEOREM_W_INF),
            batchnorm_condition(has_batchnorm=batchnorm, recomputed_on_retain=False),
            noise_condition(sigma_used=sigma, sigma_required=required, accountant=f"{chosen} Rényi bound"),
        ]
        tag = BOUND if convex else ESTIMATE
        constants = [
            Constant("μ", mu, tag, "the objective's weight decay: the cross-entropy of a linear model is convex"
                     if ctx_convex else "weight decay only: the network's loss is not convex"),
            Constant("β", beta if math.isfinite(beta) else None, tag,
                     "½ λ_max(mean x̃x̃ᵀ) + μ over D and D' (Böhning 1992's softmax bound)" if ctx_convex
                     else "no smoothness bound for a network (the softmax-regression bound does not apply)"),
            Constant("M", grad_bound if math.isfinite(grad_bound) else None, tag,
                     "√2·max‖x̃‖: every per-example cross-entropy gradient of softmax regression is below it"
                     if ctx_convex else "no gradient bound for a network"),
        ]
        if chosen == "lsi":
            constants.append(Constant("C_LSI", 2 * sigma**2 / mu if mu > 0 else None, ASSUMPTION,
                                      "the log-Sobolev constant 2σ²/μ of the iterates and the Langevin paper's decay "
                                      "theorem, transcribed from the authors' public code (statement unverified)"))
        return Certificate(
            method=self.name, theorem=THEOREM_LSI if chosen == "lsi" else THEOREM_W_INF, epsilon=eps, delta=delta,
            delta_guaranteed=delta, accountant=f"{chosen} Rényi bound (Mironov's conversion)", sigma_required=required,
            sigma_used=sigma, epsilon_certified=eps_cert, sigma_required_by=sigma_by, epsilon_by=eps_by,
            sensitivity=None, sensitivity_terms={"W∞ distance Z": z, "drift Δg": drift},
            conditions=conditions, constants=constants, notes=notes,
            details={"steps": steps, "lr": lr, "contraction": c, "z": z, "drift": drift,
                     "train_steps": int(params["train_steps"]), "recipe": recipe.to_json(),
                     "trained_with": dict(train_config.to_json())},
        )


def _step_ok(*, lr: float, mu: float, beta: float, c: float, lsi: bool) -> bool:
    """η ≤ 1/β (LSI) or η ≤ 2/(μ + β) (W∞), with a contracting step (c = 1 − ημ < 1)."""
    if not math.isfinite(beta) or c >= 1:
        return False
    limit = 1.0 / beta if lsi else 2.0 / (mu + beta)
    return lr <= limit * (1 + 1e-9)


def _uncertifiable_steps(params: dict[str, Any]) -> int:
    """``steps=auto`` where no K certifies: a tenth of the T training steps (at least one)."""
    return max(1, int(params["train_steps"]) // 10)


def _same_recipe(actual: Any, expected: Any) -> str:
    """"the method's recipe" when ``actual`` (the context's recipe) is ``expected`` up to its seed; else what it is."""
    if actual is None:
        return "unknown"
    fields = ("optimizer", "lr", "epochs", "noise", "weight_decay", "norm_bound")
    differ = [f for f in fields if getattr(actual, f, None) != getattr(expected, f, None)]
    if not differ:
        return "the method's recipe"
    return "; ".join(f"{f}={getattr(actual, f, None)!r} (needs {getattr(expected, f, None)!r})" for f in differ)


def _sigma_required(accountant: str, *, z: float, drift: float, mu: float, lr: float, c: float, steps: int, eps: float,
                    delta: float) -> float:
    """The smallest σ whose ε after ``steps`` steps is ≤ the target (ε decreases as σ grows): closed form for w_inf,
    a root-finder for lsi."""
    if accountant == "w_inf":
        b = math.log(1.0 / delta)
        a_max = (math.sqrt(b + eps) - math.sqrt(b)) ** 2
        if c >= 1 or not math.isfinite(z):
            return math.inf
        return z * c**steps / math.sqrt(2.0 * lr * a_max)

    def excess(sigma: float) -> float:
        return acc.lsi_epsilon(drift=drift, mu=mu, lr=lr, sigma=sigma, steps=steps, delta=delta) - eps

    lo, hi = 1e-12, 1.0
    while excess(hi) > 0:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    return boundary(excess, lo, hi, rtol=1e-10, max_iter=200)

