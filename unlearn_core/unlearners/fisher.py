r"""Fisher forgetting (Golatkar, Achille, Soatto, CVPR 2020) — heuristic baseline, Golatkar et al.'s recipe.

1. The per-example diagonal Fisher on D_r, :math:`F = \mathbb E_x \sum_y p(y\mid x)\,(\partial\ell(x, y)/\partial w)^2`
   (the *true* Fisher: every class weighted by the model's own probability, not only the label).
2. Per tensor: :math:`\mathrm{var} = \alpha\cdot\min(1/(F + 10^{-8}), 10^3)` with the cap 10² on last-layer tensors
   (first dimension = number of classes); for matrices/kernels the variance is averaged over the input dimension
   (dim 1) row-wise; ×10 for last-layer and 1-D tensors (biases, norm affine parameters).
3. :math:`w \leftarrow w + \sqrt{\mathrm{var}}\cdot N(0, 1)`.

Why it forgets: directions the retain set does not constrain (small Fisher) get large noise, which should erase
what only the forget set determined. There is no guarantee. The original code's class-forgetting special case
(zeroing the forgotten class's output row) is not part of the recipe and is not applied.

Per-example, per-class gradients come from ``torch.func`` (``vmap`` over examples of ``jacrev`` of the
log-probabilities, chunked to bound memory); the model is in eval mode, as in the original code. BatchNorm
running statistics are not touched by the noise; they are recomputed from D_r at the end (without it they
would still carry D_u).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from unlearn_core.diagnostics import Diagnostics
from unlearn_core.functional import batches, buffer_dict, param_dict
from unlearn_core.unlearners._finetuning import fixed_subsample, recompute_batchnorm_stats
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner


def diagonal_fisher(
    model: nn.Module, x: torch.Tensor, *, chunk_elements: int = 50_000_000
) -> dict[str, torch.Tensor]:
    r"""The true diagonal Fisher :math:`\frac1n\sum_x\sum_y p(y|x)(\nabla_w \log p(y|x))^2` per parameter tensor.

    (∂ℓ(x, y)/∂w)² = (∂ log p(y|x)/∂w)² since ℓ = −log p. Chunks hold at most ``chunk_elements`` gradient
    entries (examples × classes × parameters).
    """
    model.eval()
    params = param_dict(model)
    buffers = buffer_dict(model)

    def log_probs(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(functional_call(model, (p, buffers), (xi.unsqueeze(0),)), dim=-1).squeeze(0)

    jac_fn = vmap(jacrev(log_probs), in_dims=(None, 0))
    n = int(x.shape[0])
    with torch.no_grad():
        num_classes = int(functional_call(model, (params, buffers), (x[:1],)).shape[-1])
    p_total = sum(t.numel() for t in params.values())
    chunk = max(1, min(n, chunk_elements // max(1, num_classes * p_total)))
    fisher = {k: torch.zeros_like(v) for k, v in params.items()}
    for sl in batches(n, chunk):
        xb = x[sl]
        jac = jac_fn(params, xb)  # name -> B × C × shape
        with torch.no_grad():
            probs = torch.softmax(functional_call(model, (params, buffers), (xb,)), dim=-1)  # B × C
            for k, j in jac.items():
                weights = probs.reshape(probs.shape + (1,) * (j.dim() - 2))
                fisher[k] += (weights * j.pow(2)).sum(dim=(0, 1))
    return {k: v / n for k, v in fisher.items()}


def fisher_noise_variance(
    fisher: dict[str, torch.Tensor], *, alpha: float, num_classes: int
) -> dict[str, torch.Tensor]:
    """Golatkar et al.'s per-tensor noise variance from the diagonal Fisher (Golatkar et al. 2020)."""
    out = {}
    for name, f in fisher.items():
        var = (1.0 / (f + 1e-8)).clamp(max=1e3)
        last_layer = f.shape[0] == num_classes
        if last_layer:
            var = var.clamp(max=1e2)
        var = alpha * var
        if f.dim() > 1:
            var = var.mean(dim=1, keepdim=True).expand_as(f).clone()
        if last_layer or f.dim() == 1:
            var = var * 10.0
        out[name] = var
    return out


@register_unlearner
class FisherForgetting(Unlearner):
    """Add Gaussian noise shaped by the inverse diagonal Fisher of the retain set (Golatkar et al. 2020).

    Default α = 1e-6 (see docs/other_methods.md#baselines-heuristic; R2D port 1e-6 / 1e-8, the canonical helper
    3e-6). ``max_samples`` (default
    2,000; 0 = all) makes the Fisher a Monte-Carlo estimate over a seeded random subset of D_r: the diagonal
    Fisher is a mean over examples, so a uniform subsample is unbiased, and its relative error per entry falls as
    1/√m. Why a default cap: the per-class gradients cost C backward passes per example — all 59,000 MNIST retain
    points took 163 s for a 784-32-32-10 MLP, 2,000 took 3.3 s — and the recipe's clamps (1/F capped at
    1e3 / 1e2, row-averaging) make the noise insensitive to a few per cent of error in F.
    """

    name = "fisher"
    family = "heuristic"
    paper = "Golatkar, Achille, Soatto, CVPR 2020 (Fisher forgetting)"
    summary = "Noise scaled by the inverse diagonal Fisher of the retain set (heuristic, no guarantee)."
    schema = (
        HyperParam("alpha", float, 1e-6, "noise scale α of var = α·min(1/F, 1e3)", low=0.0, high=1.0, log=True,
                   level="basic", label="α — noise scale"),
        HyperParam("max_samples", int, 2000, "retain examples in the Monte-Carlo estimate of the diagonal Fisher "
                   "(seeded random subset; 0 = all, slow on large data)", low=0, high=10_000_000,
                   label="Fisher samples", unit="points"),
    )

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """One per-example gradient for each of at most ``max_samples`` retain points (the diagonal Fisher)."""
        from unlearn_core import limits

        samples = min(int(params["max_samples"]), max(1, n_train - n_forget))
        return limits.Estimate().add_work("unlearn", 3.0 * samples * shape.flops, float(samples))

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        start = time.perf_counter()
        model = ctx.copy_model().eval()
        x_r = ctx.x_retain
        x_fisher = x_r
        if params["max_samples"]:  # 0 = all (fixed_subsample would take an empty subsample)
            x_fisher, _ = fixed_subsample(x_r, ctx.y_retain, size=params["max_samples"],
                                          generator=ctx.generator(offset=5))
        fisher = diagonal_fisher(model, x_fisher)
        fisher_s = time.perf_counter() - start
        var = fisher_noise_variance(fisher, alpha=params["alpha"], num_classes=ctx.num_classes)
        gen = ctx.generator(offset=1)
        noise_sq = 0.0
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name not in var:
                    continue
                noise = var[name].sqrt() * torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
                p.add_(noise)
                noise_sq += float(noise.pow(2).sum())
        bn = recompute_batchnorm_stats(model, x_r)
        diag = Diagnostics(
            time_s=time.perf_counter() - start,
            phases_s={"fisher": fisher_s},
            noise_norm=noise_sq**0.5,
            details={
                "alpha": params["alpha"],
                "fisher_samples": int(x_fisher.shape[0]),
                "fisher_mean_by_tensor": {k: float(v.mean()) for k, v in fisher.items()},
                "noise_std_mean_by_tensor": {k: float(v.sqrt().mean()) for k, v in var.items()},
                "batchnorm_recomputed_on_retain": bn,
            },
        )
        return UnlearnResult(model=model, certificate=None, diagnostics=diag)
