r"""The full-batch training recipes of Rewind-to-Delete and Langevin unlearning: ``gd`` and ``noisy_gd``.

Both take exactly one step per epoch on the whole training set, on the package's objective
:math:`F(w) = \frac1n\sum_i \ell(f_w(x_i), y_i) + \frac{\mathrm{wd}}2\lVert w\rVert^2`
(:func:`unlearn_core.functional.flat_objective`, exact over all points), from the model's seeded initialisation:

``gd`` (Mu & Klabjan, NeurIPS 2025: "vanilla gradient descent")
    :math:`w_{t+1} = \Pi_C(w_t - \eta\nabla F(w_t))` for T = ``epochs`` steps of η = ``lr``.
``noisy_gd`` (Chien, Wang, Chen & Li, NeurIPS 2024: projected noisy gradient descent)
    :math:`w_{t+1} = \Pi_C\big(w_t - \eta\nabla F(w_t) + \sqrt{2\eta}\,\sigma\,\xi_t\big)`,
    :math:`\xi_t \sim N(0, I_p)`, σ = ``noise``; the noise is drawn on the CPU from a generator seeded with the
    recipe's seed, so a rerun gives the same weights.

Π_C is the projection onto the ``norm_bound`` ball (none when ``norm_bound`` is None). Both are deterministic
functions of (data, recipe, seed), so the original model and the retrained oracle are cached like every model.

**Checkpoints** (``checkpoints`` = C > 0): the weights after the steps :func:`checkpoint_steps` lists (C evenly
spaced steps strictly between 0 and T) are handed to ``checkpoint(step, model)`` as training passes them; the
pipeline stores them in the model cache (:mod:`unlearn_core.trajectory`), C × (the model's size) of disk. Step 0 is
the seeded initialisation and step T the trained model, so neither is stored twice.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from unlearn_core.errors import DivergenceError
from unlearn_core.functional import batches, flat_objective, get_flat_params, num_params, set_flat_params
from unlearn_core.progress import Cancelled, ProgressCallback
from unlearn_core.training import TrainConfig, _summary


def checkpoint_steps(total_steps: int, count: int) -> list[int]:
    """The steps whose weights a trajectory of ``total_steps`` keeps: ``count`` evenly spaced steps in (0, T).

    ``round(j·T/(count + 1))`` for j = 1 … count, without duplicates and without 0 and T (the initialisation and
    the trained model are at hand anyway). Fewer than ``count`` when T is small.
    """
    total_steps, count = int(total_steps), int(count)
    if total_steps <= 1 or count <= 0:
        return []
    steps = {round(j * total_steps / (count + 1)) for j in range(1, count + 1)}
    return sorted(s for s in steps if 0 < s < total_steps)


def noise_std_per_step(*, lr: float, sigma: float) -> float:
    r"""The standard deviation :math:`\sqrt{2\eta}\,\sigma` of each coordinate's noise in one ``noisy_gd`` step.

    Chien, Wang, Chen & Li (NeurIPS 2024) write the step :math:`w - \eta\nabla F(w) + \sqrt{2\eta\sigma^2}\,\xi`:
    the Euler–Maruyama discretisation of the Langevin diffusion whose stationary law is
    :math:`\propto e^{-F/\sigma^2}`.
    """
    return math.sqrt(2.0 * float(lr)) * float(sigma)


def train_full_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    stage: str = "train",
    checkpoint: Callable[[int, nn.Module], None] | None = None,
) -> dict[str, Any]:
    """``gd`` or ``noisy_gd`` (the module docstring) in place on (x, y); the summary of :func:`training.train`.

    One full-data gradient per step (chunked exact mean, model in eval mode: the certificates treat the network as
    a function of its parameters). ``progress`` gets ``{stage, epoch, epochs, step, steps, loss, grad_norm, ...}``
    about 50 times; ``cancel`` is checked every step. A non-finite objective raises :class:`DivergenceError`.
    """
    noisy = config.optimizer == "noisy_gd"
    total = int(config.epochs)
    lr = float(config.lr)
    wd = float(config.weight_decay)
    std = noise_std_per_step(lr=lr, sigma=config.noise) if noisy else 0.0
    gen = torch.Generator().manual_seed(int(config.seed))
    keep = set(checkpoint_steps(total, config.checkpoints)) if checkpoint is not None else set()
    p = num_params(model)
    report_every = max(1, total // 50)
    start = time.perf_counter()
    model.eval()
    value = math.nan
    for step in range(1, total + 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{stage} cancelled at step {step}")
        value_t, gradient = flat_objective(model, x, y, weight_decay=wd)
        value = float(value_t)
        if not math.isfinite(value):
            raise DivergenceError(f"{stage} ({config.optimizer}) diverged at step {step}/{total} (objective = "
                                  f"{value}): lower lr (now {lr:g})")
        w = get_flat_params(model) - lr * gradient
        if std > 0:
            w = w + std * torch.randn(p, generator=gen, dtype=w.dtype).to(w.device)
        if config.norm_bound is not None:
            norm = float(torch.linalg.vector_norm(w))
            if norm > config.norm_bound:
                w = w * (config.norm_bound / norm)
        set_flat_params(model, w)
        if step in keep:
            checkpoint(step, model)  # type: ignore[misc]
        if progress is not None and (step % report_every == 0 or step == total):
            elapsed = time.perf_counter() - start
            progress({"stage": stage, "epoch": step, "epochs": total, "step": step, "steps": total, "loss": value,
                      "acc": None, "grad_norm": float(torch.linalg.vector_norm(gradient)), "elapsed_s": elapsed,
                      "eta_s": elapsed / step * (total - step)})
    objective, gradient = flat_objective(model, x, y, weight_decay=wd)
    grad_norm = float(torch.linalg.vector_norm(gradient))
    with torch.no_grad():
        logits = torch.cat([model(x[sl]) for sl in batches(int(x.shape[0]), 4096)])
        final_loss = float(nn.functional.cross_entropy(logits, y))
        final_acc = float((logits.argmax(1) == y).float().mean())
    what = f"projected noisy gradient descent (σ = {config.noise:g})" if noisy else "gradient descent"
    summary = _summary(
        model, config, start=start, steps=total, iterations=total, unit="step", max_iterations=total,
        final_loss=final_loss, final_acc=final_acc, objective=float(objective), grad_norm=grad_norm,
        reason=f"ran all {total} full-batch steps of {what}, lr = {lr:g}",
    )
    summary["checkpoint_steps"] = sorted(keep)
    summary["noise"] = float(config.noise) if noisy else 0.0
    return summary
