"""Training and retraining: one explicit loop, seeded, with an optional global norm constraint.

The recipe (:class:`TrainConfig`) is the same for the original model A(D) and the retrained oracle A(D_r):
same optimiser, epochs, batch size, weight decay, norm bound and the *same fresh initialisation* — that is what
makes the retrained model the reference every metric compares with.

Norm constraint (Zhang et al. 2024, §2.1: projected training): after every optimiser step, if ‖w‖ > C the whole
parameter vector is rescaled by C/‖w‖, so ‖w*‖ ≤ C and ‖w̃*‖ ≤ C, as the certificate assumes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from unlearn_core import limits
from unlearn_core.config import CLI_GROUPS, setting
from unlearn_core.errors import ConfigError
from unlearn_core.functional import batches, flat_objective, get_flat_params
from unlearn_core.progress import Cancelled, ProgressCallback

#: ``auto`` resolves per model (:func:`resolve_train_config`): full-batch L-BFGS with a gradient tolerance where the
#: objective is convex (logistic regression), Adam elsewhere. ``gd`` (full-batch gradient descent, checkpoints kept)
#: and ``noisy_gd`` (projected noisy full-batch gradient descent) are the recipes of Rewind-to-Delete and Langevin
#: unlearning (:mod:`unlearn_core.recipes`).
OPTIMIZERS = ("auto", "adam", "sgd", "lbfgs", "gd", "noisy_gd")
#: The optimisers whose loop is in :mod:`unlearn_core.recipes` (one full-batch step per epoch; checkpoints).
FULL_BATCH_RECIPES = ("gd", "noisy_gd")

#: The gradient tolerance ``optimizer="auto"`` gives a convex model whose recipe sets none. L-BFGS (in float64,
#: :func:`lbfgs_dtype`) reaches it on digits logistic regression in ≈ 100 iterations (≈ 1 s) and on MNIST in
#: ≈ 250–300 (the problem is ill-conditioned: λ_min = wd = 5e-4; progress below 1e-5 slows to a crawl there,
#: 1.2e-6 after 1,000 iterations). The float32 model it returns evaluates its gradient to ≈ 5e-8, far below.
CONVEX_GRAD_TOL = 1e-5
#: The working-precision target is this fraction of ``grad_tol`` when L-BFGS works in a finer dtype than the model:
#: rounding the result to the model's dtype perturbs the gradient (by ≈ 5e-8 in float32 on digits), and the
#: rule is judged after the rounding.
ROUNDING_MARGIN = 0.9

#: L-BFGS curvature pairs kept (torch's ``history_size``): memory is 2 × history × p floats.
LBFGS_HISTORY = 20
#: Most objective evaluations one L-BFGS iteration's strong-Wolfe line search may spend.
LBFGS_MAX_LINE_SEARCH = 25
#: Consecutive L-BFGS iterations without a decrease of the objective after which training stops ("stalled"): the
#: float32 objective cannot resolve smaller changes, or the norm projection undoes every step.
LBFGS_STALL_PATIENCE = 10

_RECIPE = CLI_GROUPS[1]  # the CLI's "training recipe" flags


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe. Defaults are Zhang et al.'s paper recipe (Adam, lr 1e-3, wd 5e-4, C = 20), with
    ``optimizer="auto"``: Adam for every model except the convex one (logistic regression), which is trained by
    full-batch L-BFGS until ‖∇‖ ≤ :data:`CONVEX_GRAD_TOL` (see :func:`resolve_train_config`).

    ``epochs`` defaults to 20 rather than the paper's 50 so the embedded default trains in seconds on a CPU;
    the "Paper: MNIST MLP" preset sets 50.

    Attributes:
        optimizer: ``auto``, ``adam``, ``sgd`` or ``lbfgs`` (full-batch L-BFGS with a strong-Wolfe line search
            on the objective mean cross-entropy + (wd/2)‖w‖²; it ignores ``lr``, ``batch_size``, ``momentum`` and
            ``epochs`` — the line search picks the step, every iteration sees all the data).
        epochs: passes over the data of adam/sgd (the cap when ``grad_tol`` is set).
        max_iter: the most L-BFGS iterations (each one full-data gradient plus a line search); adam/sgd ignore it.
        grad_tol: stop as soon as the full-data gradient of the objective, weight decay included, has
            ‖∇(L(w, D) + wd/2‖w‖²)‖ ≤ ``grad_tol`` — checked after every L-BFGS iteration, after every adam/sgd
            epoch. ``None``: no such rule (run all epochs / iterations). The same rule trains the original model
            and the retrained oracle, so a converged oracle satisfies it: G = ``grad_tol`` bounds its gradient
            (:func:`gradient_bound_from_recipe`).
    """

    # Each field is declared once, for every surface (CLI flag, URL key, widget): unlearn_core.config.
    optimizer: str = setting(
        "auto", type=str, choices=OPTIMIZERS, cli="--optimizer", cli_group=_RECIPE, url="optimizer", widget="select",
        label="Optimiser", row=1, column=0,
        help="auto, adam, sgd, lbfgs (full-batch L-BFGS, strong-Wolfe line search; ignores --lr, --batch-size, "
             "--momentum, --epochs), gd (full-batch gradient descent: --epochs steps of --lr, checkpoints kept) or "
             "noisy_gd (projected noisy full-batch gradient descent, noise --train-noise). auto (default): lbfgs with "
             f"--grad-tol {CONVEX_GRAD_TOL:g} for the convex model (logreg), adam for every other model; a method that "
             "trains with its own recipe (langevin: noisy_gd, rewind_to_delete: gd) sets it",
        widget_help="**auto**: full-batch L-BFGS until ‖∇‖ ≤ the tolerance for the convex model (logistic "
                    f"regression; tolerance {CONVEX_GRAD_TOL:g} unless set below), Adam for the others. **lbfgs**: "
                    "full-batch L-BFGS with a line search on cross-entropy + (wd/2)‖w‖² — it reaches a minimiser, "
                    "where one Newton step lands on the retrained model; it ignores the epochs, learning rate and "
                    "batch size. **adam**, **sgd**: mini-batch, as in the paper. **gd**: full-batch gradient descent, "
                    "one step per epoch, with checkpoints (Rewind-to-Delete's recipe). **noisy_gd**: projected noisy "
                    "full-batch gradient descent (Langevin unlearning's recipe). Langevin unlearning and "
                    "Rewind-to-Delete set their own recipe when this is auto.")
    lr: float = setting(
        1e-3, type=float, low=limits.LR_RANGE[0], high=limits.LR_RANGE[1], cli="--lr", cli_group=_RECIPE, url="lr",
        widget="number", label="Learning rate", row=1, column=2, help="learning rate of adam/sgd (default 0.001)")
    epochs: int = setting(
        20, type=int, low=0, high=limits.MAX_EPOCHS, cli="--epochs", cli_group=_RECIPE, url="epochs",
        widget="number", label="Epochs", row=0, column=1, step=1, help="epochs of adam/sgd (default 20)",
        widget_help="The same recipe trains the original model and the retrained oracle. Epochs of Adam/SGD; "
                    "L-BFGS counts iterations instead (Max L-BFGS iterations).")
    batch_size: int = setting(
        128, type=int, low=1, high=limits.MAX_BATCH_SIZE, cli="--batch-size", cli_group=_RECIPE, url="batch_size",
        widget="number", label="Batch size", row=1, column=2, step=1, help="batch size (default 128)")
    weight_decay: float = setting(
        5e-4, type=float, low=0.0, high=limits.MAX_WEIGHT_DECAY, cli="--weight-decay", cli_group=_RECIPE, url="wd",
        widget="number", label="Weight decay", row=1, column=3, help="weight decay (default 0.0005)")
    momentum: float = setting(
        0.9, type=float, low=0.0, high=1.0, high_open=True, cli="--momentum", cli_group=_RECIPE, url="momentum",
        widget="number", label="SGD momentum", row=1, column=2, help="SGD momentum (default 0.9)",
        widget_help="Momentum of the sgd optimiser (Adam and L-BFGS ignore it).")
    norm_bound: float | None = setting(
        20.0, type=float, optional=True, low=limits.NORM_BOUND_RANGE[0], high=limits.NORM_BOUND_RANGE[1],
        cli="--norm-bound", cli_group=_RECIPE, url="C", widget="number", label="Training norm bound C", row=1,
        column=3, toggle="Project onto ‖w‖ ≤ C while training", toggle_key="use_C", placeholder=20.0,
        toggle_help="Zhang et al. project onto the C-ball after every step; the certificate assumes it.",
        help="project ‖w‖ onto the C-ball after every step; 'none' disables (default 20)",
        widget_help="The radius of the training projection (not the method's own C, which is the radius the bound "
                    "assumes; the certificate checks that the two agree).")
    seed: int = 0  # not a setting: the run's seed (RunConfig.seed) is copied here
    grad_tol: float | None = setting(
        None, type=float, optional=True, low=limits.GRAD_TOL_RANGE[0], high=limits.GRAD_TOL_RANGE[1], low_open=True,
        cli="--grad-tol", cli_group=_RECIPE, cli_metavar="TOL", url="grad_tol", widget="number",
        label="Gradient tolerance", row=1, column=1, toggle="Stop at a gradient tolerance", toggle_key="use_tol",
        placeholder=CONVEX_GRAD_TOL,
        toggle_help="Train until ‖∇(L(w, D) + wd/2‖w‖²)‖ ≤ tolerance on the whole training set (checked after every "
                    "L-BFGS iteration, every Adam/SGD epoch), for the original and the retrained model alike. A "
                    "retrained model that meets it makes G = tolerance a bound.",
        help="stop training once ‖∇(L(w, D) + wd/2‖w‖²)‖ ≤ TOL on the full training set (checked every L-BFGS "
             "iteration, every adam/sgd epoch), for the original and the retrained model alike; 'none' (default, "
             "except for auto on logreg): no such rule")
    max_iter: int = setting(
        500, type=int, low=0, high=limits.MAX_LBFGS_ITER, cli="--max-iter", cli_group=_RECIPE, url="max_iter",
        widget="number", label="Max L-BFGS iterations", row=1, column=0, step=50,
        help="most L-BFGS iterations (default 500)",
        widget_help="The cap of the lbfgs optimiser (Adam/SGD run epochs).")
    noise: float = setting(
        0.0, type=float, low=0.0, high=limits.MAX_TRAIN_NOISE, cli="--train-noise", cli_group=_RECIPE,
        url="train_noise", widget="number", label="Training noise σ", row=1, column=1,
        help="noisy_gd only: the noise σ of each step w ← Π_C(w − lr·∇ + √(2·lr)·σ·ξ) (default 0)",
        widget_help="Only for the noisy_gd optimiser (Langevin unlearning's recipe): each full-batch step adds "
                    "Gaussian noise of standard deviation √(2·lr)·σ to every weight.")
    checkpoints: int = setting(
        0, type=int, low=0, high=limits.MAX_CHECKPOINTS, cli="--checkpoints", cli_group=_RECIPE, url="checkpoints",
        widget="number", label="Checkpoints kept", row=1, column=1, step=1,
        help="gd/noisy_gd only: keep this many evenly spaced checkpoints of the training trajectory in the cache, "
             "for Rewind-to-Delete (default 0)",
        widget_help="Only for the gd and noisy_gd optimisers: the training keeps this many evenly spaced weights "
                    "of its trajectory (each as large as the model) for Rewind-to-Delete to rewind to.")

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` for a value out of range; return self for chaining."""
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r} is not valid: choose one of {', '.join(OPTIMIZERS)}")
        if not (isinstance(self.epochs, int) and self.epochs >= 0):
            raise ConfigError(f"epochs={self.epochs!r} is not valid: expected an integer ≥ 0")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError(f"batch_size={self.batch_size!r} is not valid: expected an integer ≥ 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr={self.lr!r} is not valid: expected a number > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay={self.weight_decay!r} is not valid: expected a number ≥ 0")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ConfigError(f"momentum={self.momentum!r} is not valid: expected a number in [0, 1)")
        if self.norm_bound is not None and not (math.isfinite(self.norm_bound) and self.norm_bound > 0):
            raise ConfigError(f"norm_bound={self.norm_bound!r} is not valid: expected a number > 0 or none")
        if self.grad_tol is not None and not (
            isinstance(self.grad_tol, (int, float)) and math.isfinite(self.grad_tol) and self.grad_tol > 0
        ):
            raise ConfigError(f"grad_tol={self.grad_tol!r} is not valid: expected a number > 0 or none")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 0):
            raise ConfigError(f"max_iter={self.max_iter!r} is not valid: expected an integer ≥ 0")
        if not (isinstance(self.noise, (int, float)) and math.isfinite(self.noise) and self.noise >= 0):
            raise ConfigError(f"noise={self.noise!r} is not valid: expected a number ≥ 0")
        if not (isinstance(self.checkpoints, int) and self.checkpoints >= 0):
            raise ConfigError(f"checkpoints={self.checkpoints!r} is not valid: expected an integer ≥ 0")
        if self.checkpoints and self.optimizer not in FULL_BATCH_RECIPES:
            raise ConfigError(f"checkpoints={self.checkpoints} is not valid with optimizer {self.optimizer!r}: only "
                              f"{' and '.join(FULL_BATCH_RECIPES)} keep checkpoints (use 0)")
        if self.grad_tol is not None and self.optimizer in FULL_BATCH_RECIPES:
            raise ConfigError(f"grad_tol={self.grad_tol:g} is not valid with optimizer {self.optimizer!r}: it runs a "
                              "fixed number of steps (--epochs); use none")
        if self.noise and self.optimizer != "noisy_gd":
            raise ConfigError(f"noise={self.noise:g} is not valid with optimizer {self.optimizer!r}: only noisy_gd "
                              "adds training noise (use 0)")
        return self

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def resolve_train_config(config: TrainConfig, *, convex: bool) -> TrainConfig:
    """The recipe with ``optimizer="auto"`` resolved; any other optimizer is returned unchanged.

    The rule: a convex model (``models.MODELS[name].convex``, i.e. logistic regression) is trained by full-batch
    L-BFGS until ‖∇(L + wd/2‖w‖²)‖ ≤ ``grad_tol`` (:data:`CONVEX_GRAD_TOL` when the recipe sets none), because
    that is the only recipe under which the original and the retrained models are minimisers, the point where
    one Newton step from the original lands on the retrained model (Zhang et al. 2024, §3; Koh & Liang 2017).
    Every other model keeps the paper's Adam recipe (and its ``grad_tol``, ``None`` by default): full-batch
    L-BFGS does not scale to them and a non-convex network has no unique minimiser to converge to.
    """
    if config.optimizer != "auto":
        return config
    if convex:
        tol = config.grad_tol if config.grad_tol is not None else CONVEX_GRAD_TOL
        return dataclasses.replace(config, optimizer="lbfgs", grad_tol=tol)
    return dataclasses.replace(config, optimizer="adam")


def gradient_bound_from_recipe(
    train_config: TrainConfig, summaries: Mapping[str, Mapping[str, Any]] | None
) -> float | None:
    """G = ``grad_tol`` when the recipe guarantees ‖∇(L(w̃*, D_r) + wd/2‖w̃*‖²)‖ ≤ ``grad_tol``; else ``None``.

    The guarantee holds when the recipe has a gradient tolerance *and* the retrained oracle, trained by that very
    recipe on D_r (deterministically: a rerun gives the same weights), stopped because it reached it:
    ``summaries["retrained"]`` has ``converged`` True, the same ``grad_tol`` and ``grad_norm ≤ grad_tol``. The
    norm is evaluated in the model's float precision at the stored weights, so the bound is exact up to that
    rounding. ``None`` when there is no tolerance, no retrained summary (``compute_retrained=False``: whether the
    recipe would converge on D_r is then unknown), or the oracle did not converge (e.g. the norm constraint was
    active, or the iteration cap came first) — the caller then has no bound from the recipe.

    Args:
        train_config: the (resolved) recipe of the run, ``Prepared.train_config`` / ``UnlearnContext.train_config``.
        summaries: ``Prepared.train_summaries`` / ``UnlearnContext.train_summaries``.
    """
    tol = train_config.grad_tol
    retrained = (summaries or {}).get("retrained")
    if tol is None or not retrained:
        return None
    grad_norm = retrained.get("grad_norm")
    if retrained.get("converged") is not True or retrained.get("grad_tol") != tol or grad_norm is None:
        return None
    return float(tol) if float(grad_norm) <= float(tol) else None


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters training, projection and unlearning act on: those with ``requires_grad``, in model order."""
    return [p for p in model.parameters() if p.requires_grad]


def tensors_norm(tensors: Iterable[torch.Tensor]) -> float:
    """‖(t₁, …, t_k)‖, the ℓ2 norm of the tensors' concatenation (one device sync, no concatenated copy)."""
    with torch.no_grad():
        return float(torch.sqrt(sum((t.detach() ** 2).sum() for t in tensors)))


@torch.no_grad()
def project_tensors_(tensors: Sequence[torch.Tensor], radius: float) -> bool:
    """Π_C on the concatenation of ``tensors``, in place: rescale by C/‖w‖ when ‖w‖ > C (the projection onto
    the C-ball of Zhang et al. 2024, §2.1; see docs/certified_newton.md#the-certificate).

    Returns whether it rescaled. Training, noisy fine-tuning and output perturbation all project with this.
    """
    norm = tensors_norm(tensors)
    if norm <= radius:
        return False
    scale = radius / norm
    for t in tensors:
        t.mul_(scale)
    return True


def global_norm(model: nn.Module) -> float:
    """‖w‖, the ℓ2 norm over all trainable parameters."""
    return tensors_norm(trainable(model))


def project_to_ball(model: nn.Module, radius: float) -> bool:
    """Π_C on all trainable parameters (see :func:`project_tensors_`). Returns whether it rescaled."""
    return project_tensors_(trainable(model), radius)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Coupled weight decay (``weight_decay`` in Adam/SGD), matching the objective L + (wd/2)‖w‖².

    Only the mini-batch optimizers; L-BFGS is built by :func:`_train_lbfgs`, which evaluates the objective itself.
    """
    params = trainable(model)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    raise ConfigError(f"optimizer {config.optimizer!r} has no mini-batch optimiser: choose adam or sgd")


def objective_grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, weight_decay: float) -> float:
    """‖∇(L(w; (x, y)) + wd/2‖w‖²)‖ over all of (x, y) at the model's weights (:func:`functional.flat_objective`).

    The quantity the stopping rule ``grad_tol`` compares and the training summary reports as ``grad_norm``.
    """
    return _objective_and_grad_norm(model, x, y, weight_decay=weight_decay)[1]


def _objective_and_grad_norm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, weight_decay: float
) -> tuple[float, float]:
    value, gradient = flat_objective(model, x, y, weight_decay=weight_decay)
    return float(value), float(torch.linalg.vector_norm(gradient))


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    convex: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    stage: str = "train",
    checkpoint: Callable[[int, nn.Module], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place on (x, y) with ``config``; return its summary (see below).

    ``optimizer="auto"`` is resolved with ``convex`` (:func:`resolve_train_config`); the pipeline passes the
    model registry's flag, and a bare module is taken as non-convex (it cannot say whether its loss is convex).

    Adam/SGD: shuffling uses a CPU generator seeded with ``config.seed``, so two runs with the same seed see the
    same batches in the same order; on a CPU the whole run is bit-for-bit reproducible. L-BFGS is full-batch and
    has no randomness. ``progress`` receives ``{stage, epoch, epochs, step, steps, loss, acc, elapsed_s, eta_s}``
    once per epoch and every few steps (L-BFGS: once per iteration, with ``iteration``/``iterations`` and
    ``grad_norm``); ``cancel`` is checked every step (every L-BFGS iteration) and raises :class:`Cancelled`.

    The summary: ``optimizer`` (resolved), ``steps`` (optimiser steps), ``iterations`` and ``iteration_unit``
    (epochs run, or L-BFGS iterations), ``max_iterations`` (the cap), ``final_loss`` and ``final_train_acc``
    (over the last epoch; L-BFGS: at the final weights), ``objective`` and ``grad_norm`` (the full-data objective
    L + wd/2‖w‖² and the norm of its gradient at the final weights, :func:`objective_grad_norm`), ``grad_tol``,
    ``converged`` (``grad_norm ≤ grad_tol``; ``None`` without a tolerance), ``stop_reason`` (one sentence),
    ``norm_constraint_active`` (‖w‖ = C at the end: the constrained minimiser need not have a zero gradient),
    ``param_norm`` and ``time_s``.

    ``gd`` and ``noisy_gd`` (:func:`unlearn_core.recipes.train_full_batch`) take one full-batch step per epoch and
    call ``checkpoint(step, model)`` at the recipe's checkpoint steps (their summary lists them under
    ``checkpoint_steps``).
    """
    config = resolve_train_config(config, convex=convex).validate()
    if config.optimizer == "lbfgs":
        return _train_lbfgs(model, x, y, config, progress=progress, cancel=cancel, stage=stage)
    if config.optimizer in FULL_BATCH_RECIPES:
        from unlearn_core.recipes import train_full_batch  # the recipes import this module

        return train_full_batch(model, x, y, config, progress=progress, cancel=cancel, stage=stage,
                                checkpoint=checkpoint)
    device = x.device
    n = int(x.shape[0])
    gen = torch.Generator().manual_seed(int(config.seed))
    optimizer = make_optimizer(model, config)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    report_every = max(1, steps_per_epoch // 4)
    start = time.perf_counter()
    step = 0
    epochs_run = 0
    checked: tuple[float, float] | None = None  # (objective, ‖∇‖) at the current weights, when the rule checked
    loss_sum, correct, seen = 0.0, 0, 0
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(steps_per_epoch):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{stage} cancelled at epoch {epoch + 1}")
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            xb, yb = x[idx], y[idx]
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if config.norm_bound is not None:
                project_to_ball(model, config.norm_bound)
            step += 1
            loss_sum += float(loss.detach()) * yb.shape[0]
            correct += int((logits.detach().argmax(1) == yb).sum())
            seen += int(yb.shape[0])
            if progress is not None and (step % report_every == 0 or b == steps_per_epoch - 1):
                elapsed = time.perf_counter() - start
                progress({
                    "stage": stage, "epoch": epoch + 1, "epochs": config.epochs, "step": step,
                    "steps": total_steps, "loss": loss_sum / seen, "acc": correct / seen, "elapsed_s": elapsed,
                    "eta_s": elapsed / step * (total_steps - step),
                })
        epochs_run = epoch + 1
        if config.grad_tol is not None:
            # The stopping rule, once per epoch: the full-data gradient of the objective at the current weights.
            checked = _objective_and_grad_norm(model, x, y, weight_decay=config.weight_decay)
            if checked[1] <= config.grad_tol:
                break
            model.train()
    model.eval()
    if checked is None:
        checked = _objective_and_grad_norm(model, x, y, weight_decay=config.weight_decay)
    objective, grad_norm = checked
    if config.grad_tol is not None and grad_norm <= config.grad_tol:
        reason = f"‖∇‖ = {grad_norm:.3g} ≤ grad_tol = {config.grad_tol:g} after {epochs_run} epoch(s)"
    elif config.grad_tol is not None:
        reason = f"grad_tol = {config.grad_tol:g} not reached in {config.epochs} epochs (‖∇‖ = {grad_norm:.3g})"
    else:
        reason = f"ran all {config.epochs} epochs (no grad_tol)"
    return _summary(
        model, config, start=start, steps=step, iterations=epochs_run, unit="epoch",
        max_iterations=config.epochs, final_loss=loss_sum / seen if seen else None,
        final_acc=correct / seen if seen else None, objective=objective, grad_norm=grad_norm, reason=reason,
    )


def lbfgs_dtype(model: nn.Module, device: torch.device) -> torch.dtype:
    """The precision L-BFGS works in: float64, except on MPS (no float64 there), where the model's own dtype.

    Why float64: the strong-Wolfe line search compares objective values, and in float32 a mean cross-entropy of
    ≈ 0.05 is resolved only to ≈ 4e-9, so near the minimiser the decrease of a step is invisible and L-BFGS
    stalls: on digits logistic regression at ‖∇‖ ≈ 1e-5–4e-5. The gradient itself is accurate far below that
    (≈ 3e-8 in float32 at the float64 minimiser rounded to float32), so the float32 model that float64 L-BFGS
    returns meets a tolerance far below the float32 stall.
    """
    if device.type == "mps":
        return next(iter(trainable(model))).dtype
    return torch.float64


def _train_lbfgs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    stage: str,
) -> dict[str, Any]:
    r"""Full-batch L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search) on L(w; (x, y)) + (wd/2)‖w‖².

    It works on a copy of the model in :func:`lbfgs_dtype` (float64 where available) and writes the result back
    into ``model`` at the end, rounded to the model's dtype; the summary's ``grad_norm`` is then evaluated on
    ``model`` itself, in its own precision, and ``converged`` is decided on that number.

    One ``optimizer.step`` is one L-BFGS iteration (``max_iter=1``; the curvature history persists across
    steps), so that progress, cancellation, the norm projection and the ``grad_tol`` rule act between iterations.
    The objective and its gradient come from :func:`functional.flat_objective` (exact over all points, evaluated
    in chunks, model in eval mode: BatchNorm uses its running statistics, which L-BFGS does not update) and are
    memoised on the weights, so the rule's check and the next iteration's first evaluation at the same point
    cost one pass. torch's own stopping tests are switched off (``tolerance_grad=0``, ``tolerance_change=0``):
    the rule is ours, on the ℓ2 norm. Training stops at the first of: ‖∇‖ ≤ ``grad_tol``; ``max_iter``
    iterations; :data:`LBFGS_STALL_PATIENCE` iterations without a decrease of the objective (the working
    precision's resolution, or a norm projection that undoes every step); a step that cannot move even from a
    fresh history.

    After a projection onto the C-ball the stored curvature pairs describe steps that were not taken, so the
    history is dropped (the next iteration starts again from the steepest-descent direction).
    """
    start = time.perf_counter()
    work = copy.deepcopy(model).to(dtype=lbfgs_dtype(model, x.device)).eval()
    params = trainable(work)
    wd = config.weight_decay
    optimizer = torch.optim.LBFGS(
        params, lr=1.0, max_iter=1, max_eval=LBFGS_MAX_LINE_SEARCH + 1, tolerance_grad=0.0, tolerance_change=0.0,
        history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe",
    )
    memo: dict[str, Any] = {"w": None, "value": None, "grad": None}

    def evaluate_objective() -> tuple[torch.Tensor, torch.Tensor]:
        w = get_flat_params(work)
        if memo["w"] is None or not torch.equal(memo["w"], w):
            value, gradient = flat_objective(work, x, y, weight_decay=wd)
            memo.update(w=w, value=value, grad=gradient)
        return memo["value"], memo["grad"]

    def closure() -> torch.Tensor:
        value, gradient = evaluate_objective()
        offset = 0
        for p in params:
            k = p.numel()
            p.grad = gradient[offset : offset + k].view_as(p).clone()
            offset += k
        return value

    value_t, gradient = evaluate_objective()
    value, grad_norm = float(value_t), float(torch.linalg.vector_norm(gradient))
    best = value
    since_best = 0
    iterations = 0
    reason = ""
    # When the working precision is finer than the model's, aim a little below the tolerance (ROUNDING_MARGIN).
    target = config.grad_tol
    if target is not None and params and params[0].dtype != next(iter(trainable(model))).dtype:
        target = target * ROUNDING_MARGIN
    done = target is not None and grad_norm <= target
    while not done and iterations < config.max_iter:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{stage} cancelled at L-BFGS iteration {iterations + 1}")
        before = get_flat_params(work)
        fresh = not optimizer.state  # this iteration starts without curvature pairs (steepest descent)
        optimizer.step(closure)
        if config.norm_bound is not None and project_to_ball(work, config.norm_bound):
            optimizer.state.clear()
        iterations += 1
        moved = not torch.equal(before, get_flat_params(work))
        value_t, gradient = evaluate_objective()
        value, grad_norm = float(value_t), float(torch.linalg.vector_norm(gradient))
        if progress is not None:
            elapsed = time.perf_counter() - start
            progress({
                "stage": stage, "iteration": iterations, "iterations": config.max_iter, "epoch": iterations,
                "epochs": config.max_iter, "step": iterations, "steps": config.max_iter, "loss": value, "acc": None,
                "grad_norm": grad_norm, "elapsed_s": elapsed,
                "eta_s": elapsed / iterations * (config.max_iter - iterations),
            })
        if target is not None and grad_norm <= target:
            break
        if not moved:
            if not fresh:  # the line search found no descent along the L-BFGS direction: retry from −∇
                optimizer.state.clear()
                continue
            reason = "L-BFGS could not move from a fresh history"
            break
        if value < best:
            best, since_best = value, 0
        else:
            since_best += 1
            if since_best >= LBFGS_STALL_PATIENCE:
                reason = f"L-BFGS stalled: no decrease of the objective in {LBFGS_STALL_PATIENCE} iterations"
                break
    if not reason:
        reason = f"reached max_iter = {config.max_iter}"

    # Back into the caller's model, in its dtype; the rounding may leave ‖w‖ a hair above C, so project again.
    with torch.no_grad():
        for dst, src in zip(trainable(model), params, strict=True):
            dst.copy_(src)
    if config.norm_bound is not None:
        project_to_ball(model, config.norm_bound)
    model.eval()
    objective, final_norm = _objective_and_grad_norm(model, x, y, weight_decay=config.weight_decay)
    tol = config.grad_tol
    if tol is not None and final_norm <= tol:
        reason = f"‖∇‖ = {final_norm:.3g} ≤ grad_tol = {tol:g} after {iterations} L-BFGS iterations"
    elif tol is not None and grad_norm <= tol:
        reason = (f"‖∇‖ = {grad_norm:.3g} ≤ grad_tol = {tol:g} in {_dtype_name(work)} after {iterations} "
                  f"L-BFGS iterations, but {final_norm:.3g} once rounded to the model's precision")
    else:
        reason = f"{reason} (‖∇‖ = {final_norm:.3g} after {iterations} L-BFGS iterations)"
    with torch.no_grad():
        logits = torch.cat([model(x[sl]) for sl in batches(int(x.shape[0]), 4096)])
        final_loss = float(nn.functional.cross_entropy(logits, y))
        final_acc = float((logits.argmax(1) == y).float().mean())
    return _summary(
        model, config, start=start, steps=iterations, iterations=iterations, unit="lbfgs_iteration",
        max_iterations=config.max_iter, final_loss=final_loss, final_acc=final_acc, objective=objective,
        grad_norm=final_norm, reason=reason,
    )


def _dtype_name(model: nn.Module) -> str:
    return str(next(iter(trainable(model))).dtype).removeprefix("torch.")


def _summary(
    model: nn.Module,
    config: TrainConfig,
    *,
    start: float,
    steps: int,
    iterations: int,
    unit: str,
    max_iterations: int,
    final_loss: float | None,
    final_acc: float | None,
    objective: float,
    grad_norm: float,
    reason: str,
) -> dict[str, Any]:
    """The training summary (documented in :func:`train`), with the norm-constraint caveat on the reason."""
    model.eval()
    norm = global_norm(model)
    active = config.norm_bound is not None and norm >= config.norm_bound * (1 - 1e-5)
    converged = None if config.grad_tol is None else bool(grad_norm <= config.grad_tol)
    if active and not converged:
        reason += (f"; the norm constraint ‖w‖ ≤ C = {config.norm_bound:g} is active, so the constrained minimiser "
                   "need not have a zero gradient")
    return {
        "optimizer": config.optimizer,
        "steps": steps,
        "iterations": iterations,
        "iteration_unit": unit,
        "max_iterations": max_iterations,
        "final_loss": final_loss,
        "final_train_acc": final_acc,
        "objective": float(objective),
        "grad_norm": float(grad_norm),
        "grad_tol": config.grad_tol,
        "converged": converged,
        "stop_reason": reason,
        "norm_constraint_active": bool(active),
        "param_norm": norm,
        "time_s": time.perf_counter() - start,
    }
