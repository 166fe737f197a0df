r"""Noisy fine-tuning on the retain set (Koloskova, Allouah, Jha, Guerraoui, Koyejo, ICML 2025) — certified.

Both variants start from the trained model x̂ = A(D), touch only D_r, and end with noise-free fine-tuning on
D_r, which is free post-processing (Koloskova et al. 2025; see
docs/other_methods.md#noisy-fine-tuning-koloskova-et-al-2025):

``variant="grad_clip"`` (the repository's "PABI")
    :math:`x_0 = \Pi_{C_0}(\hat x)`, then for t < T
    :math:`x_{t+1} = x_t - \gamma(\Pi_{C_1}(g_t) + \lambda x_t) + \xi_{t+1}`, :math:`\xi \sim N(0, \sigma^2 I)`,
    where :math:`g_t` is the *batch-mean* gradient on D_r clipped as a whole (not per example) and λx_t is added
    after clipping. σ comes from the chosen accountant (:mod:`unlearn_core.privacy.accounting`) for the target (ε, δ);
    T from the code's rule (:func:`~unlearn_core.privacy.accounting.grad_clip_steps_rule`) unless set.
``variant="model_clip"`` (the repository's "contractive coefficients")
    :math:`x_0 = \Pi_{C_0}(\hat x) + \xi_0` (σ₀, default 0), then
    :math:`x_{t+1} = \Pi_{C_2}(x_t - \gamma(g_t + \lambda x_t)) + \xi_{t+1}`; the number of noisy steps T is the
    first t at which the δ accountant reaches δ_t ≤ δ
    (:func:`~unlearn_core.privacy.accounting.model_clip_delta_trajectory`).

Why it certifies: two runs started from A(D) and A(D_r) both lie in the C₀-ball after the projection; every
noisy step moves both by a bounded drift (clipping, or the projection onto the C₂-ball) and adds fresh Gaussian
noise, so the two output distributions become (ε, δ)-indistinguishable — "privacy amplification by iteration".

**BatchNorm** (an assumption of the certificate, reported in it): running statistics are reset at the start and
recomputed from D_r at the end; the noisy steps run in train mode, so BatchNorm uses batch statistics of D_r.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from unlearn_core.certificate import (
    BOUND,
    Certificate,
    Condition,
    Constant,
    batchnorm_condition,
    delta_condition,
    noise_condition,
)
from unlearn_core.diagnostics import Diagnostics
from unlearn_core.errors import ConfigError
from unlearn_core.functional import num_params
from unlearn_core.models import has_batchnorm
from unlearn_core.privacy import accounting
from unlearn_core.training import project_tensors_, tensors_norm, trainable
from unlearn_core.unlearners._finetuning import (
    BATCHNORM_RECOMPUTED,
    NO_BATCHNORM,
    THEOREM,
    add_gaussian_,
    eval_split,
    finetune_schema,
    fixed_subsample,
    recompute_batchnorm_stats,
    record_phase,
    reset_batchnorm_stats,
    run_finetune_phase,
)
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner

VARIANTS = ("grad_clip", "model_clip")


@register_unlearner
class NoisyFineTune(Unlearner):
    """Koloskova et al.'s noisy clipped fine-tuning, gradient-clipping or model-clipping variant.

    Defaults (chosen for digits/MNIST MLPs; the paper's grid: docs/evaluation.md): ``grad_clip`` with C₀ = 1,
    C₁ = 1, γ = 0.01, λ = 50 (γλ = 0.5, so T = 10 by the code's rule), ε = 1, δ = 1e-5 and the closed-form σ;
    then 10 epochs of one-cycle SGD (max lr 0.1, wd 5e-4) on D_r. ``model_clip`` uses C₂ = 1 and, unless set,
    σ = C₂ (sensitivity/noise ratio 2, six noisy steps at ε = 1, δ = 1e-5).
    """

    name = "noisy_finetune"
    family = "certified"
    paper = "Koloskova, Allouah, Jha, Guerraoui, Koyejo, ICML 2025 (arXiv 2506.06985)"
    summary = "Project, then noisy clipped SGD on the retain set, then noise-free fine-tuning: (ε, δ)-certified."
    budget_param = "finetune_epochs"
    noise_param = "sigma"
    epsilon_param = "epsilon"
    #: The frontier's grid (measured on digits-MLP, random:0.1): a small C₀ = C₁ keeps σ small at small ε but shrinks
    #: the MLP into a dead region that a small σ no longer re-initialises at large ε (0.3 → 10 % test accuracy at
    #: ε ≥ 10); a large one is useless at small ε (σ ∝ C) and right at large ε; 30 fine-tuning epochs recover what
    #: 10 do not. Test accuracy at ε = 0.1 / 1 / 10 / 100: 0.94 (C 0.3) / 0.96 (0.3) / 0.96 (3) / 0.96 (3 or 30).
    frontier_grid = ({"C0": 0.3, "C1": 0.3, "finetune_epochs": 30}, {"C0": 3.0, "C1": 3.0, "finetune_epochs": 30},
                     {"C0": 30.0, "C1": 30.0, "finetune_epochs": 30})
    schema = (
        HyperParam("variant", str, "grad_clip", "gradient clipping (PABI) or model clipping", choices=VARIANTS,
                   label="Variant"),
        HyperParam("epsilon", float, 1.0, "The privacy budget ε of the certificate: smaller is stronger and needs "
                   "more noise.", low=1e-3, high=100.0, log=True, level="basic", label="ε — privacy budget"),
        HyperParam("delta", float, 1e-5, "The failure probability δ of the certificate.", low=1e-12, high=0.5,
                   log=True, level="basic", label="δ — failure probability"),
        HyperParam(
            "accountant", str, "tightest",
            "grad_clip: which σ is used — the tightest valid accountant (default), the paper's closed form (valid "
            "only inside its conditions), the RDP accountant (Opacus conversion, valid everywhere), or the official "
            "code's (K1, comparison only; it never certifies)",
            choices=accounting.ACCOUNTANT_CHOICES, label="Accountant",
        ),
        HyperParam("C0", float, 0.3, "radius of the initial projection x_0 = Π_C0(A(D))", low=1e-6, high=1e4, log=True,
                   label="C₀ — initial projection radius"),
        HyperParam("C1", float, 0.3, "grad_clip: the batch-mean gradient is clipped to norm C1", low=1e-6, high=1e4,
                   log=True, label="C₁ — gradient clipping norm"),
        HyperParam("C2", float, 0.3, "model_clip: radius of the projection after every step", low=1e-6, high=1e4,
                   log=True, label="C₂ — model clipping radius"),
        HyperParam("lr", float, 0.01, "step size γ of the noisy phase (plain SGD, no momentum)", low=1e-6, high=10.0,
                   log=True, label="γ — noisy-phase step size"),
        HyperParam("lam", float, 50.0, "contraction term λ (x ← x − γ(g + λx)); needs lr·lam < 1", low=0.0,
                   high=1e6, label="λ — contraction term"),
        HyperParam(
            "T", int, "auto", "The number of noisy steps T. 'auto' uses the code's rule (gradient clipping) or the δ "
            "accountant (model clipping); σ is calibrated for this T.", low=1, high=1_000_000, auto=True,
            level="basic", label="T — noisy steps", unit="steps",
        ),
        HyperParam(
            "sigma", float, None, "noise std override; none = the required σ (grad_clip) or σ = C2 (model_clip); a "
            "σ below the required one is labelled 'not certified by the bound'", low=0.0, high=1e6, optional=True,
            label="σ override — noise std",
        ),
        HyperParam("sigma0", float, 0.0, "model_clip: noise std added after the initial projection (configs: 0)",
                   low=0.0, high=1e6, label="σ₀ — noise after the projection"),
        HyperParam("max_noisy_steps", int, 10_000, "model_clip: cap on the steps the δ accountant may ask for",
                   low=1, high=1_000_000, label="Cap on noisy steps", unit="steps"),
        *finetune_schema(epochs=10, lr=0.1),
        HyperParam("eval_every", int, 0, "retain loss/accuracy on a fixed subsample every this many noisy steps; "
                   "0 = about 50 points", low=0, high=1_000_000, label="Diagnostics every", unit="steps"),
        HyperParam("eval_size", int, 512, "size of the fixed retain subsample for the per-step diagnostics",
                   low=1, high=1_000_000, label="Diagnostics subsample", unit="points"),
    )

    def unsupported_reason(self, model: nn.Module, params: dict[str, Any]) -> str | None:
        if params.get("lr", 0.01) * params.get("lam", 0.0) >= 1.0:
            return f"lr·lam={params['lr'] * params['lam']:g} must be < 1 (the contraction factor 1 − lr·lam)"
        return None

    # -- certificate ---------------------------------------------------------------------------------------------

    def plan(self, params: dict[str, Any], *, batchnorm: bool = False, n: int | None = None) -> Certificate:
        """T, σ_used and the certificate, before any model work (also what the UI shows before running).

        ``n``: the training set's size, for the condition δ < 1/n (left out when unknown).
        """
        eps, delta = params["epsilon"], params["delta"]
        gamma, lam = params["lr"], params["lam"]
        if gamma * lam >= 1.0:
            raise ConfigError(f"lr·lam={gamma * lam:g} is not valid: expected lr·lam < 1")
        if params["variant"] == "grad_clip":
            cert = self._plan_grad_clip(params, eps=eps, delta=delta, gamma=gamma, lam=lam)
        else:
            cert = self._plan_model_clip(params, eps=eps, delta=delta)
        # BatchNorm statistics are reset and recomputed from D_r (post-processing on D_r): the condition holds.
        cert.conditions.insert(0, batchnorm_condition(has_batchnorm=batchnorm, recomputed_on_retain=True))
        if n is not None:
            cert.conditions.append(delta_condition(delta_guaranteed=cert.delta_guaranteed, n=n))
        cert.notes.append(BATCHNORM_RECOMPUTED if batchnorm else NO_BATCHNORM)
        cert.notes.append("the fine-tuning after the noise touches D_r only: post-processing, free under DP")
        return cert

    def _plan_grad_clip(
        self, params: dict[str, Any], *, eps: float, delta: float, gamma: float, lam: float
    ) -> Certificate:
        """σ calibrated by the chosen accountant; the run judged by the tightest *valid* accountant for σ_used.

        Why both: ``accountant`` only says how σ is computed. Whether the release is certified, and at which ε, is
        decided for the σ actually used by the accountants proven at this configuration (the RDP one always, the
        closed form where :func:`~unlearn_core.privacy.accounting.closed_form_validity` proves it), so the status
        and ε certified come from the same number and never disagree.
        """
        C0, C1 = params["C0"], params["C1"]
        T_rule = accounting.grad_clip_steps_rule(C0=C0, C1=C1, gamma=gamma, lam=lam)
        T = T_rule if params["T"] == "auto" else int(params["T"])
        args = {"C0": C0, "C1": C1, "gamma": gamma, "lam": lam, "T": T}
        required = accounting.grad_clip_accounting(epsilon=eps, delta=delta, **args)
        valid = required["valid"]
        tightest, sigma_tightest = accounting.tightest_valid(required["sigma"], valid)
        chosen = tightest if params["accountant"] == "tightest" else params["accountant"]
        sigma_required = required["sigma"][chosen]
        if not math.isfinite(sigma_required):
            raise ConfigError(f"epsilon={eps!r} is not valid for accountant=official_code: expected a larger epsilon")
        sigma_used = sigma_required if params["sigma"] is None else float(params["sigma"])
        eps_by = accounting.grad_clip_epsilons(sigma=sigma_used, delta=delta, **args)
        eps_valid = accounting.grad_clip_epsilon_validity(eps_by)
        # What σ_used certifies: the tightest *valid* accountant's ε (the official code's never counts, K1).
        judge, eps_cert = accounting.tightest_valid(eps_by, eps_valid)
        conditions = [
            Condition("contraction", "lr·lam < 1 (each step contracts by 1 − lr·lam)", f"lr·lam = {gamma * lam:g}",
                      "< 1", gamma * lam < 1, fix="lower lr or lam", source=THEOREM),
            noise_condition(sigma_used=sigma_used, sigma_required=sigma_tightest,
                            accountant=f"tightest valid accountant ({tightest})"),
        ]
        validity = required["closed_form_validity"]
        hypotheses = required["closed_form_hypotheses"]
        notes = []
        if not validity.holds:
            notes.append(f"the paper's closed form is not proven here: {validity.describe()}")
        if not valid[chosen]:
            notes.append(f"σ was calibrated by accountant={chosen}, which is not valid here; the release is judged by "
                         f"the tightest valid accountant ({judge}): ε certified = {eps_cert:.4g}")
        eps_r_used = accounting.official_epsilon_r(sigma=sigma_used, **args) if sigma_used > 0 else math.inf
        if chosen == "official_code":
            notes.append("accountant=official_code reproduces the reference code's σ, whose RDP→DP conversion is "
                         f"wrong (K1): its σ certifies only ε = {eps_by['rdp']:.3g} under a correct conversion")
        return Certificate(
            method=self.name, theorem=THEOREM, epsilon=eps, delta=delta, delta_guaranteed=delta,
            accountant=chosen, sigma_required=sigma_required, sigma_used=sigma_used, epsilon_certified=eps_cert,
            sigma_required_by={name: (value if valid[name] else math.inf) for name, value in required["sigma"].items()},
            epsilon_by={name: (value if eps_valid[name] else math.inf) for name, value in eps_by.items()},
            conditions=conditions,
            constants=[
                Constant("C0", C0, BOUND, "enforced: the trained model is projected onto the C0-ball"),
                Constant("C1", C1, BOUND, "enforced: the batch-mean gradient is clipped to norm C1"),
            ],
            notes=notes,
            details={
                "variant": "grad_clip", "T": T, "T_rule": T_rule, "tightest_accountant": tightest,
                "judged_by": judge, "calibrated_by": chosen, "calibration_valid": valid[chosen],
                "lr": gamma, "lam": lam,
                "sigma_by_accountant_unchecked": required["sigma"],
                "epsilon_by_accountant_unchecked": eps_by,
                "closed_form_validity": validity.describe(),
                "closed_form_hypotheses_quoted": [c.describe() for c in hypotheses],
                "k1": {
                    "official_epsilon_r_for_target": required["official_epsilon_r"],
                    "official_epsilon_r_of_sigma_used": eps_r_used,
                    "official_code_reported_epsilon": eps_by["official_code"],
                    "correct_epsilon_of_sigma_used": eps_by["rdp"],
                    "note": "the official code converts a constant RDP curve ε_R; the bound is α·ε_R (λ>0) or "
                            "2α·ε_R (λ=0) — pitfall K1 in docs/other_methods.md",
                },
            },
        )

    def _plan_model_clip(self, params: dict[str, Any], *, eps: float, delta: float) -> Certificate:
        C0, C2, sigma0 = params["C0"], params["C2"], params["sigma0"]
        sigma_used = C2 if params["sigma"] is None else float(params["sigma"])
        notes: list[str] = []
        if sigma_used <= 0:
            raise ConfigError("sigma=0 is not valid for variant=model_clip: the δ accountant needs noise (sigma > 0)")
        # The accountant's own run (what accounting.model_clip_steps does): until δ_t ≤ δ or max_noisy_steps.
        accountant_trajectory = accounting.model_clip_delta_trajectory(
            epsilon=eps, delta_target=delta, C0=C0, C2=C2, sigma=sigma_used, sigma0=sigma0,
            max_steps=params["max_noisy_steps"],
        )
        T_acc = len(accountant_trajectory) - 1 if accountant_trajectory[-1] <= delta else None
        if params["T"] == "auto":
            if T_acc is None:
                T = int(params["max_noisy_steps"])
                notes.append(f"the δ accountant needs more than max_noisy_steps={T} steps at this σ")
            else:
                T = T_acc
        else:
            T = int(params["T"])
        if T < len(accountant_trajectory):
            # δ_0 … δ_T follow the same deterministic recursion whether or not the run stops early: reuse them.
            trajectory = accountant_trajectory[: T + 1]
        else:
            trajectory = accounting.model_clip_delta_trajectory(
                epsilon=eps, delta_target=delta, C0=C0, C2=C2, sigma=sigma_used, sigma0=sigma0, steps=T
            )
        sigma_required = accounting.model_clip_sigma_required(
            epsilon=eps, delta=delta, T=T, C0=C0, C2=C2, sigma0=sigma0
        )
        eps_cert = accounting.model_clip_epsilon(sigma=sigma_used, delta=delta, T=T, C0=C0, C2=C2, sigma0=sigma0)
        if params["accountant"] not in ("tightest", "paper_closed_form"):
            notes.append(f"accountant={params['accountant']} applies to grad_clip only; model_clip uses its δ "
                         "accountant")
        notes.append("the δ accountant follows the released code's contraction argument (theorem text unverified)")
        stride = max(1, len(trajectory) // 200)
        return Certificate(
            method=self.name, theorem=THEOREM, epsilon=eps, delta=delta, delta_guaranteed=delta,
            accountant="model_clip_delta", sigma_required=sigma_required, sigma_used=sigma_used,
            epsilon_certified=eps_cert, sigma_required_by={"model_clip_delta": sigma_required},
            epsilon_by={"model_clip_delta": eps_cert},
            conditions=[
                Condition("delta_final", "the δ accountant reaches δ_T ≤ δ after the T noisy steps",
                          f"δ_T = {trajectory[-1]:.3g} after T = {T}", f"≤ δ = {delta:g}", trajectory[-1] <= delta,
                          fix="leave T on auto, or raise max_noisy_steps or sigma", source=THEOREM),
                noise_condition(sigma_used=sigma_used, sigma_required=sigma_required,
                                accountant="model-clipping δ accountant"),
            ],
            constants=[
                Constant("C0", C0, BOUND, "enforced: the trained model is projected onto the C0-ball"),
                Constant("C2", C2, BOUND, "enforced: every step is projected onto the C2-ball"),
            ],
            notes=notes,
            details={
                "variant": "model_clip", "T": T, "T_accountant": T_acc, "delta_final": trajectory[-1],
                "delta_trajectory": trajectory[::stride] + ([trajectory[-1]] if (len(trajectory) - 1) % stride else []),
                "C0": C0, "C2": C2, "sigma0": sigma0, "lr": params["lr"], "lam": params["lam"],
            },
        )

    # -- the run -------------------------------------------------------------------------------------------------

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """The noisy phase's T steps of ``batch_size`` (T from :meth:`plan`, which needs no model; its cap
        ``max_noisy_steps`` if the plan cannot be made) and the fine-tuning phase's ``finetune_epochs`` epochs over
        the retain set."""
        from unlearn_core.limits import estimate_minibatch_method

        n_retain = max(1, n_train - n_forget)
        batch = min(int(params["batch_size"]), n_retain)
        try:
            steps = int(self.plan(dict(params)).details["T"])
        except Exception:  # the plan's own checks speak at run time; the estimate takes the cap
            steps = int(params["max_noisy_steps"])
        estimate = estimate_minibatch_method(shape, batch_size=batch, n=n_retain, steps=float(steps))
        return estimate.merge(estimate_minibatch_method(shape, batch_size=batch, n=n_retain,
                                                        epochs=int(params["finetune_epochs"])))

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        self.check_supported(ctx.model, params)
        model = ctx.copy_model()
        bn = has_batchnorm(model)
        cert = self.plan(params, batchnorm=bn, n=ctx.n_train)
        cert.simulation = ctx.reproducible  # seeded release noise: a simulation, not a release
        params_list = trainable(model)
        if bn:
            reset_batchnorm_stats(model)
        x_r, y_r = ctx.x_retain, ctx.y_retain
        n = int(x_r.shape[0])
        gen_batches, gen_noise = ctx.generator(offset=0), ctx.release_noise(1)
        x_eval, y_eval = fixed_subsample(x_r, y_r, size=params["eval_size"], generator=ctx.generator(offset=3))
        variant, T, sigma = params["variant"], int(cert.details["T"]), float(cert.sigma_used)
        gamma, lam, bs = params["lr"], params["lam"], params["batch_size"]
        C0, C1, C2 = params["C0"], params["C1"], params["C2"]
        eval_every = params["eval_every"] or max(1, T // 50)
        record_every = max(1, math.ceil(T / 1000))

        start = time.perf_counter()
        diag = Diagnostics()
        norm_before = tensors_norm(params_list)
        projected = project_tensors_(params_list, C0)
        if variant == "model_clip":
            add_gaussian_(params_list, params["sigma0"], gen_noise)
        diag.add_curve("noisy", 0, **_prefixed("retain_subsample_", eval_split(model, x_eval, y_eval)))
        clipped_steps = 0
        order = torch.randperm(n, generator=gen_batches).to(x_r.device)
        cursor = 0
        if T > 0:
            model.train()  # the evaluations below restore the mode they find (evaluation.predict_logits)
        for t in range(1, T + 1):
            if cursor + bs > n and cursor > 0:
                order, cursor = torch.randperm(n, generator=gen_batches).to(x_r.device), 0
            idx = order[cursor : cursor + bs]
            cursor += bs
            loss = nn.functional.cross_entropy(model(x_r[idx]), y_r[idx])
            grads = torch.autograd.grad(loss, params_list)
            gnorm = tensors_norm(list(grads))
            with torch.no_grad():
                if variant == "grad_clip":
                    scale = min(1.0, C1 / gnorm) if gnorm > 0 else 1.0
                    clipped = scale < 1.0
                    for p, g in zip(params_list, grads, strict=True):
                        p.sub_(gamma * (scale * g + lam * p))
                else:
                    for p, g in zip(params_list, grads, strict=True):
                        p.sub_(gamma * (g + lam * p))
                    clipped = project_tensors_(params_list, C2)
                add_gaussian_(params_list, sigma, gen_noise)
            if not math.isfinite(gnorm):
                raise ConfigError(f"the noisy phase diverged at step {t} (non-finite gradient): lower lr or sigma")
            clipped_steps += int(clipped)
            pnorm = tensors_norm(params_list)
            if t % record_every == 0 or t == T:
                diag.add_curve("noisy", t, grad_norm=gnorm, param_norm=pnorm, clipped=float(clipped))
            if t % eval_every == 0 or t == T:
                diag.add_curve("noisy", t, **_prefixed("retain_subsample_", eval_split(model, x_eval, y_eval)))
            ctx.report(stage="noisy", step=t, steps=T, grad_norm=gnorm, param_norm=pnorm, loss=float(loss.detach()))
        diag.phases_s["noisy"] = time.perf_counter() - start
        after_noise = eval_split(model, x_eval, y_eval)
        record_phase(diag, "finetune", run_finetune_phase(model, ctx, params))
        if bn:
            recompute_batchnorm_stats(model, x_r)
        diag.time_s = time.perf_counter() - start
        diag.noise_norm = sigma * math.sqrt(num_params(model) * T) if T else 0.0
        diag.num_gradients = T + int(diag.details["finetune"].get("steps", 0))
        diag.details.update({
            "variant": variant,
            "noisy_steps": T,
            "clipped_steps": clipped_steps,
            "param_norm_trained": norm_before,
            "projected_to_C0": projected,
            "retain_subsample_after_noise": after_noise,
            "eval_subsample_size": int(x_eval.shape[0]),
            "noise_norm_per_step": sigma * math.sqrt(num_params(model)),
            "batchnorm_recomputed_on_retain": bn,
        })
        return UnlearnResult(model=model, certificate=cert, diagnostics=diag)


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {prefix + key: value for key, value in values.items()}
