"""The fine-tuning helpers the methods share: SGD loops on in-memory tensors, BatchNorm statistics, noise.

Private to :mod:`unlearn_core.unlearners`: every method module imports its helpers from here (and from
``base``, the registry and the maths), never from another method's module.

The loops are deliberately explicit (torchvision-reference style): index-slice batches of in-memory tensors,
a seeded CPU ``torch.Generator`` for shuffling, coupled weight decay, and progress/cancellation through the
context. Fine-tuning, noisy fine-tuning, output perturbation, NegGrad and Fisher forgetting use them.

**BatchNorm.** Running statistics are buffers: no gradient step touches them, yet after training on D they carry
the forget set. :func:`recompute_batchnorm_stats` resets them and recomputes them from D_r alone (a cumulative
average over one pass, in train mode, without gradients), which every method does at its end on a model
with BatchNorm, so the released buffers depend on D_r only (``unlearn_core.models.has_batchnorm`` tells).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from unlearn_core.diagnostics import Diagnostics
from unlearn_core.errors import DivergenceError
from unlearn_core.evaluation import evaluate
from unlearn_core.functional import batches
from unlearn_core.privacy.noise import NoiseSource
from unlearn_core.training import trainable
from unlearn_core.unlearners.base import HyperParam, UnlearnContext

SCHEDULES = ("constant", "onecycle")


@torch.no_grad()
def reset_batchnorm_stats(model: nn.Module) -> None:
    """Forget the running statistics of every BatchNorm layer (they were estimated on D, forget set included)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()


@torch.no_grad()
def recompute_batchnorm_stats(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512) -> bool:
    """Recompute BatchNorm running statistics from ``x`` alone (cumulative average over one pass).

    Returns whether the model had BatchNorm. The model is left in eval mode. Why a cumulative average
    (``momentum=None``): the result is then the plain mean over the batches of ``x``, independent of the running
    statistics the model had before — so nothing of the forget set survives in the buffers.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return False
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for sl in batches(int(x.shape[0]), batch_size):
        model(x[sl])
    for m, mom in zip(layers, momenta, strict=True):
        m.momentum = mom
    model.eval()
    return True


def fixed_subsample(
    x: torch.Tensor, y: torch.Tensor, *, size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random subsample (for cheap loss/accuracy diagnostics every few steps)."""
    n = int(x.shape[0])
    if n <= size:
        return x, y
    idx = torch.randperm(n, generator=generator)[:size].to(x.device)
    return x[idx], y[idx]


def sgd_finetune(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    momentum: float,
    generator: torch.Generator,
    schedule: str = "constant",
    ctx: UnlearnContext | None = None,
    stage: str = "finetune",
    sign: float = 1.0,
    max_grad_norm: float | None = None,
    stop_when: Callable[[], bool] | None = None,
    divergence_hint: str = "lower lr",
) -> dict[str, Any]:
    """Train ``model`` in place with SGD on (x, y) for ``epochs`` epochs; return a summary.

    ``sign = -1`` turns the loop into gradient *ascent* on the cross-entropy (NegGrad); weight decay still pulls
    towards zero (it is part of the optimiser, not of the loss). ``schedule="onecycle"`` is Koloskova et al.'s
    post-unlearning schedule (one-cycle, max lr = ``lr``, as in Koloskova et al. 2025's configs). Batches are index
    slices of a fresh
    permutation per epoch drawn from ``generator``.

    ``max_grad_norm`` clips the mini-batch gradient's total norm before each step (ascent on an unbounded loss
    otherwise accelerates until it overflows). ``stop_when`` is called after every step (with the
    model in eval mode) and ends the loop when it returns True (NegGrad's early stop); ``summary["stopped_early"]``
    records it.

    Raises:
        DivergenceError: the loss or the weights became non-finite; the message names the stage, the step and
            ``divergence_hint`` (what to change). A diverged model is never returned silently.
    """
    n = int(x.shape[0])
    steps_per_epoch = max(1, math.ceil(n / batch_size)) if n else 0
    total = steps_per_epoch * int(epochs)
    summary: dict[str, Any] = {"steps": 0, "epochs": epochs, "lr": lr, "schedule": schedule, "time_s": 0.0,
                               "stopped_early": False}
    if total == 0 or n == 0:
        return summary
    if stop_when is not None and stop_when():
        summary["stopped_early"] = True
        check_finite(model, stage=stage, hint=divergence_hint)
        return summary
    params = trainable(model)
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = None
    if schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total, cycle_momentum=momentum > 0,
            base_momentum=min(0.85, momentum), max_momentum=momentum if momentum > 0 else 0.95,
        )
    start = time.perf_counter()
    model.train()
    step = 0
    losses: list[tuple[int, float]] = []
    report_every = max(1, total // 20)
    while step < total:
        order = torch.randperm(n, generator=generator).to(x.device)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            value = float(loss.detach())
            if not math.isfinite(value):
                raise DivergenceError(f"{stage} diverged at step {step + 1}/{total} (loss = {value}): "
                                      f"{divergence_hint}")
            optimizer.zero_grad(set_to_none=True)
            (sign * loss).backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            if step % report_every == 0 or step == total:
                losses.append((step, value))
                if ctx is not None:
                    ctx.report(stage=stage, step=step, steps=total, loss=value)
            if stop_when is not None:
                model.eval()
                done = stop_when()
                model.train()
                if done:
                    summary["stopped_early"] = True
                    break
        if summary["stopped_early"]:
            break
    model.eval()
    check_finite(model, stage=stage, hint=divergence_hint)
    summary.update({"steps": step, "loss_curve": losses, "time_s": time.perf_counter() - start})
    return summary


def record_phase(diag: Diagnostics, phase: str, summary: dict[str, Any]) -> None:
    """Put an :func:`sgd_finetune` summary into the typed diagnostics: its loss curve into ``curve`` (phase
    ``phase``), its time into ``phases_s``, and the rest (steps, lr, schedule, early stop) into ``details``."""
    for step, loss in summary.get("loss_curve", []):
        diag.add_curve(phase, step, loss=loss)
    diag.phases_s[phase] = diag.phases_s.get(phase, 0.0) + float(summary.get("time_s", 0.0))
    diag.details[phase] = {k: v for k, v in summary.items() if k not in ("loss_curve", "time_s")}


def check_finite(model: nn.Module, *, stage: str, hint: str) -> None:
    """Raise :class:`DivergenceError` when any parameter of ``model`` is NaN or infinite (never release one)."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise DivergenceError(f"{stage} diverged: non-finite weights in {', '.join(bad[:3])}"
                              f"{' …' if len(bad) > 3 else ''}; {hint}")


def eval_split(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """{loss, acc} of ``model`` on (x, y) (eval mode, no grad)."""
    loss, acc = evaluate(model, x, y)
    return {"loss": loss, "acc": acc}


# The noisy methods of Koloskova et al. (2025): noisy fine-tuning and output perturbation.

THEOREM = ("Koloskova, Allouah, Jha, Guerraoui & Koyejo (ICML 2025): noisy clipped fine-tuning on D_r — privacy "
           "amplification by iteration, then free post-processing")
#: The certificate's BatchNorm assumption (shared with output perturbation): with and without BatchNorm layers.
BATCHNORM_RECOMPUTED = "BatchNorm running statistics were reset and recomputed from D_r (post-processing)"
NO_BATCHNORM = "no BatchNorm buffers: the output is a function of the parameters alone"


def finetune_schema(*, epochs: int, lr: float) -> tuple[HyperParam, ...]:
    """The noise-free post-processing phase shared by noisy fine-tuning and output perturbation."""
    return (
        HyperParam(
            "finetune_epochs", int, epochs,
            "Epochs of noise-free fine-tuning on the retained data after the noise. It is post-processing, "
            "so it costs no privacy; 0 releases the noisy model as is.",
            low=0, high=1000, level="basic", label="Fine-tuning epochs", unit="epochs",
        ),
        HyperParam(
            "finetune_lr", float, lr, "max learning rate of the fine-tuning phase (paper: one-cycle SGD, 0.1)",
            low=1e-6, high=10.0, log=True, label="Fine-tuning learning rate",
        ),
        HyperParam("finetune_schedule", str, "onecycle", "fine-tuning learning-rate schedule", choices=SCHEDULES,
                   label="Fine-tuning schedule"),
        HyperParam("finetune_momentum", float, 0.9, "SGD momentum of the fine-tuning phase", low=0.0, high=0.999,
                   label="Fine-tuning momentum"),
        HyperParam(
            "finetune_weight_decay", float, 5e-4, "weight decay of the fine-tuning phase (paper: 5e-4)",
            low=0.0, high=1.0, label="Fine-tuning weight decay",
        ),
        HyperParam("batch_size", int, 128, "mini-batch size of every phase (paper: 128)", low=1, high=65536,
                   label="Batch size", unit="points"),
    )


def run_finetune_phase(model: nn.Module, ctx: UnlearnContext, params: dict[str, Any]) -> dict[str, Any]:
    """Noise-free fine-tuning on D_r with the ``finetune_*`` hyperparameters (post-processing)."""
    return sgd_finetune(
        model, ctx.x_retain, ctx.y_retain, epochs=params["finetune_epochs"], lr=params["finetune_lr"],
        batch_size=params["batch_size"], weight_decay=params["finetune_weight_decay"],
        momentum=params["finetune_momentum"], generator=ctx.generator(offset=2),
        schedule=params["finetune_schedule"], ctx=ctx, stage="finetune",
        divergence_hint=f"lower finetune_lr (now {params['finetune_lr']:g})",
    )


@torch.no_grad()
def add_gaussian_(tensors: list[torch.Tensor], sigma: float, source: NoiseSource | torch.Generator) -> None:
    """w ← w + N(0, σ²I) on every tensor, from ``source``.

    A certified method passes the run's :class:`~unlearn_core.privacy.noise.NoiseSource`
    (``ctx.release_noise(stream)``): secure unless the run is reproducible. A bare ``torch.Generator`` draws seeded
    noise — for noise that is not a release's (it can be regenerated from the seed).
    """
    if isinstance(source, torch.Generator):
        source = NoiseSource.reproducible(source)
    source.add_gaussian_(tensors, sigma)
