"""Helpers shared by the gradient-descent certified methods (Descent-to-Delete, Langevin unlearning, Rewind-to-Delete).

Private to :mod:`unlearn_core.unlearners`, like ``_finetuning``: full-batch (projected, optionally noisy) gradient
descent on in-memory tensors with progress and cancellation through the context, the proven constants of softmax
regression gathered once per run, and the accuracy triple of a model. The maths lives in
:mod:`unlearn_core.descent`; nothing here decides a certificate.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unlearn_core.certificate import Certificate, Condition
from unlearn_core.descent import softmax_bounds
from unlearn_core.descent.release_noise import gaussian_noise
from unlearn_core.diagnostics import SplitAccuracy
from unlearn_core.errors import ConfigError, DivergenceError
from unlearn_core.evaluation import evaluate
from unlearn_core.functional import flat_gradient, get_flat_params
from unlearn_core.privacy.noise import NoiseSource
from unlearn_core.training import project_tensors_, tensors_norm, trainable
from unlearn_core.unlearners.base import UnlearnContext


def project_flat(w: torch.Tensor, radius: float | None) -> torch.Tensor:
    """Π onto the ball ‖w‖ ≤ radius (no-op for ``None``): the projection every method here applies after a step."""
    if radius is None:
        return w
    norm = float(torch.linalg.vector_norm(w))
    return w * (radius / norm) if norm > radius else w


def objective_gradient_(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, weight_decay: float,
                        chunk: int = 4096) -> float:
    """Fill ``p.grad`` of the trainable parameters with ∇F = ∇(mean CE + wd/2‖w‖²) over all of (x, y), by plain
    autograd over chunks (the chunk means weighted by their sizes: the exact mean); return F.

    The same objective as :func:`unlearn_core.functional.flat_objective`, several times faster per step on small
    models (no functional-call overhead), which matters for thousands of full-batch steps.
    """
    params = trainable(model)
    for q in params:
        q.grad = None
    n = int(x.shape[0])
    value = 0.0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        loss = nn.functional.cross_entropy(model(x[start:stop]), y[start:stop]) * ((stop - start) / n)
        loss.backward()
        value += float(loss.detach())
    if weight_decay:
        with torch.no_grad():
            for q in params:
                q.grad.add_(q, alpha=weight_decay)  # type: ignore[union-attr]
                value += 0.5 * weight_decay * float((q * q).sum())
    return value


def projected_step_length(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float, weight_decay: float,
                          radius: float | None) -> tuple[float, float]:
    """(‖θ − Π(θ − η∇F(θ))‖, ‖∇F(θ)‖) at the model's weights on (x, y): one full gradient; the model is not
    changed. The first number over (1 − γ) bounds the distance to the minimiser
    (:func:`unlearn_core.descent.contraction.distance_from_gradient_mapping`)."""
    w = get_flat_params(model)
    g = flat_gradient(model, x, y, weight_decay=weight_decay)
    step = project_flat(w - lr * g, radius)
    return float(torch.linalg.vector_norm(w - step)), float(torch.linalg.vector_norm(g))


def descend(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    radius: float | None,
    ctx: UnlearnContext,
    stage: str,
    noise_std: float = 0.0,
    noise: NoiseSource | None = None,
) -> dict[str, Any]:
    r"""``steps`` full-batch steps :math:`w \leftarrow \Pi(w - \eta\nabla F(w) + s\,\xi)` in place on (x, y), with
    F = mean cross-entropy + wd/2‖w‖² (:func:`objective_gradient_`), s = ``noise_std`` (drawn by
    :func:`unlearn_core.descent.release_noise.gaussian_noise` from ``noise``, the run's release-noise source, one
    vector per step over all trainable parameters in model order), Π the ``radius`` ball.

    Returns ``{steps, grad_norm_first, grad_norm_last, time_s, curve}`` (``curve``: (step, ‖∇F‖) about 100 times).
    Progress goes to ``ctx.report`` (which also honours cancellation).

    Raises:
        DivergenceError: the gradient became non-finite (the step size is too large).
    """
    start = time.perf_counter()
    model.eval()
    params = trainable(model)
    sizes = [q.numel() for q in params]
    first = last = None
    curve: list[tuple[int, float]] = []
    every = max(1, steps // 100)
    for t in range(1, int(steps) + 1):
        objective_gradient_(model, x, y, weight_decay=weight_decay)
        norm = tensors_norm([q.grad for q in params])  # type: ignore[misc]
        if not math.isfinite(norm):
            raise DivergenceError(f"{stage} diverged at step {t}/{steps} (non-finite gradient): lower lr "
                                  f"(now {lr:g})")
        first = norm if first is None else first
        last = norm
        with torch.no_grad():
            for q in params:
                q.sub_(q.grad, alpha=lr)  # type: ignore[arg-type]
            if noise_std > 0:
                xi = gaussian_noise(sum(sizes), noise_std, source=noise,  # type: ignore[arg-type]
                                    dtype=params[0].dtype, device=params[0].device)
                for q, part in zip(params, torch.split(xi, sizes), strict=True):
                    q.add_(part.view_as(q))
            if radius is not None:
                project_tensors_(params, radius)
        if t % every == 0 or t == steps:
            curve.append((t, norm))
            ctx.report(stage=stage, step=t, steps=int(steps), grad_norm=norm)
    for q in params:
        q.grad = None
    return {"steps": int(steps), "grad_norm_first": first, "grad_norm_last": last,
            "time_s": time.perf_counter() - start, "curve": curve}


@dataclass
class SoftmaxConstants:
    """The proven constants of softmax regression on the run's data (:mod:`unlearn_core.descent.softmax_bounds`).

    ``gram`` is the augmented features' Gram matrix of the *whole* training set; :meth:`beta` takes a Gram matrix
    less the points deleted so far.
    """

    gram: torch.Tensor
    n: int
    weight_decay: float

    @classmethod
    def of(cls, ctx: UnlearnContext, *, weight_decay: float) -> SoftmaxConstants:
        return cls(gram=softmax_bounds.augmented_gram(ctx.x_train), n=ctx.n_train, weight_decay=weight_decay)

    def beta(self, gram: torch.Tensor, n: int) -> float:
        """β of the objective on the n points whose Gram matrix is ``gram``."""
        return softmax_bounds.smoothness_from_lambda(softmax_bounds.gram_lambda_max(gram, n),
                                                     weight_decay=self.weight_decay)


def accuracies(model: nn.Module, ctx: UnlearnContext, *, forgotten: torch.Tensor, x_r: torch.Tensor,
               y_r: torch.Tensor) -> SplitAccuracy:
    """Accuracy of ``model`` on the points forgotten so far, the current retain set and the test set."""
    x_f, y_f = ctx.x_train[forgotten.to(ctx.device)], ctx.y_train[forgotten.to(ctx.device)]
    return SplitAccuracy(forget=evaluate(model, x_f, y_f)[1] if forgotten.numel() else math.nan,
                         retain=evaluate(model, x_r, y_r)[1], test=evaluate(model, ctx.x_test, ctx.y_test)[1])


def split_requests(ctx: UnlearnContext, requests: int, *, offset: int = 11) -> list[torch.Tensor]:
    """The forget set in ``requests`` equal chunks, in a seeded order (each chunk sorted): sequential deletions."""
    perm = torch.randperm(ctx.n_forget, generator=ctx.generator(offset=offset))
    return [c.sort().values for c in torch.tensor_split(ctx.forget_idx.cpu()[perm], requests)]


def estimated_smoothness(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, weight_decay: float, points: int,
                         steps: int, seed: int) -> float:
    """λ_max of the Hessian of F at the model's weights on a seeded subsample of ``points`` points, by ``steps``
    Lanczos steps (:func:`unlearn_core.curvature.lanczos`): a local *estimate* of the smoothness constant, used where
    no bound is known (a non-convex network). Ritz values lie below the true λ_max, and the Hessian elsewhere on
    the trajectory may be larger."""
    from unlearn_core.curvature import lanczos, make_data_hvp
    from unlearn_core.functional import num_params

    n = int(x.shape[0])
    if n > points:
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:points].to(x.device)
        x, y = x[idx], y[idx]
    hvp = make_data_hvp(model.eval(), x, y, weight_decay=weight_decay)
    dtype = next(p for p in model.parameters() if p.requires_grad).dtype
    return max(0.0, lanczos(hvp, num_params(model), num_iter=steps, seed=seed, dtype=dtype,
                            device=x.device).lambda_max)


def per_example_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch: int = 256) -> float:
    """max_i ‖∇_θ CE(f_θ(x_i), y_i)‖ over the points of x (vmapped per-example gradients, in chunks): a measured
    value at one θ, hence an *estimate* of a gradient bound along a trajectory."""
    from torch.func import functional_call, grad, vmap

    from unlearn_core.functional import buffer_dict, param_dict

    model.eval()
    params, buffers = param_dict(model), buffer_dict(model)

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return nn.functional.cross_entropy(out, yi.unsqueeze(0))

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    largest = 0.0
    for start in range(0, int(x.shape[0]), batch):
        grads = per_example(params, x[start : start + batch], y[start : start + batch])
        sq = sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads.values())
        largest = max(largest, float(sq.sqrt().max()))  # type: ignore[union-attr]
    return largest


def combine_requests(certificates: list[Certificate]) -> Certificate:
    """One certificate for k requests: the first failing one, else the largest Δ, with "every request" checked."""
    if len(certificates) == 1:
        return certificates[0]
    failing = [c for c in certificates if not c.certified]
    worst = failing[0] if failing else max(certificates, key=lambda c: c.sensitivity or 0.0)
    combined = copy.deepcopy(worst)
    k, ok = len(certificates), len(certificates) - len(failing)
    combined.conditions.append(Condition(
        "every_request", "every request is certified", f"{ok} of {k} requests", f"{k} of {k}", ok == k,
        fix="see the failing request's conditions", source="each request is a separate release"))
    combined.details.update({"requests": k, "per_request_sensitivity": [c.sensitivity for c in certificates],
                             "per_request_status": [c.status for c in certificates],
                             "per_request_terms": [dict(c.sensitivity_terms) for c in certificates]})
    return combined


def full_batch_work(steps: int, *, n_train: int, shape: Any) -> Any:
    """The work estimate of ``steps`` full-batch gradients over ``n_train`` points (≈ 3 forward passes of every
    training point each: forward, backward), with the memory of one full-batch gradient (batches of at most 4,096)."""
    from unlearn_core.limits import Estimate

    return Estimate(flops=3.0 * steps * n_train * shape.flops,
                    stages={"full-batch gradient": 2.0 * 4 * min(n_train, 4096) * shape.activations})


def checked_requests(ctx: UnlearnContext, params: Mapping[str, Any]) -> int:
    """``params["requests"]``, refused in one line when the forget set has fewer points than requests."""
    k = int(params["requests"])
    if ctx.n_forget < k:
        raise ConfigError(f"requests={k} is not valid: the forget set has only {ctx.n_forget} points")
    return k
