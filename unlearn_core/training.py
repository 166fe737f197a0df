"""Training and retraining: one explicit loop, seeded, with an optional global norm constraint.

The recipe (:class:`TrainConfig`) is the same for the original model A(D) and the retrained oracle A(D_r):
same optimiser, epochs, batch size, weight decay, norm bound and the *same fresh initialisation* — that is what
makes the retrained model the reference every metric compares with.

Norm constraint (Zhang et al. §2.1, methods.md): after every optimiser step, if ‖w‖ > C the whole parameter
vector is rescaled by C/‖w‖, so ‖w*‖ ≤ C and ‖w̃*‖ ≤ C, as the certificate assumes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from unlearn_core.errors import ConfigError
from unlearn_core.progress import Cancelled, ProgressCallback

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe. Defaults are Zhang et al.'s paper recipe (Adam, lr 1e-3, wd 5e-4, C = 20).

    ``epochs`` defaults to 20 rather than the paper's 50 so the embedded default trains in seconds on a CPU;
    the "Paper: MNIST MLP" preset sets 50.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 128
    weight_decay: float = 5e-4
    momentum: float = 0.9
    norm_bound: float | None = 20.0
    seed: int = 0

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
        return self

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters training, projection and unlearning act on: those with ``requires_grad``, in model order."""
    return [p for p in model.parameters() if p.requires_grad]


def tensors_norm(tensors: Iterable[torch.Tensor]) -> float:
    """‖(t₁, …, t_k)‖, the ℓ2 norm of the tensors' concatenation (one device sync, no concatenated copy)."""
    with torch.no_grad():
        return float(torch.sqrt(sum((t.detach() ** 2).sum() for t in tensors)))


@torch.no_grad()
def project_tensors_(tensors: Sequence[torch.Tensor], radius: float) -> bool:
    """Π_C on the concatenation of ``tensors``, in place: rescale by C/‖w‖ when ‖w‖ > C (methods.md §1).

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
    """Coupled weight decay (``weight_decay`` in Adam/SGD), matching the objective L + (wd/2)‖w‖²."""
    params = trainable(model)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    stage: str = "train",
) -> dict[str, Any]:
    """Train ``model`` in place on (x, y) with ``config``; return a summary (final loss, accuracy, time, steps).

    Shuffling uses a CPU generator seeded with ``config.seed``, so two runs with the same seed see the same
    batches in the same order; on a CPU the whole run is bit-for-bit reproducible.

    ``progress`` receives ``{stage, epoch, epochs, step, steps, loss, acc, elapsed_s, eta_s}`` once per epoch
    and every few steps; ``cancel`` is checked every step and raises :class:`Cancelled` when set.
    """
    config.validate()
    device = x.device
    n = int(x.shape[0])
    gen = torch.Generator().manual_seed(int(config.seed))
    optimizer = make_optimizer(model, config)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    report_every = max(1, steps_per_epoch // 4)
    start = time.perf_counter()
    step = 0
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
    model.eval()
    return {
        "steps": step,
        "final_loss": loss_sum / seen if seen else None,
        "final_train_acc": correct / seen if seen else None,
        "time_s": time.perf_counter() - start,
        "param_norm": global_norm(model),
    }
