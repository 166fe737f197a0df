"""Evaluation basics: loss and accuracy on the forget, retain and test sets; distances between models.

All evaluation runs in eval mode under ``torch.no_grad`` in chunks, and restores the model's previous mode.
"""

from __future__ import annotations

import torch
from torch import nn

from unlearn_core.functional import batches, get_flat_params


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """Logits of ``model`` on ``x``, computed in chunks in eval mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[sl]) for sl in batches(int(x.shape[0]), batch_size)]) if x.shape[0] else x.new_zeros(0)
    model.train(was_training)
    return out


def predict_proba(model: nn.Module, x: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """Softmax probabilities of ``model`` on ``x``."""
    return torch.softmax(predict_logits(model, x, batch_size=batch_size), dim=1)


def per_sample_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """Cross-entropy of every example (the input of loss-based membership inference)."""
    logits = predict_logits(model, x, batch_size=batch_size)
    return nn.functional.cross_entropy(logits, y, reduction="none")


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 4096) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on (x, y); (nan, nan) for an empty set."""
    if x.shape[0] == 0:
        return float("nan"), float("nan")
    logits = predict_logits(model, x, batch_size=batch_size)
    loss = float(nn.functional.cross_entropy(logits, y))
    acc = float((logits.argmax(1) == y).float().mean())
    return loss, acc


def split_metrics(
    model: nn.Module,
    *,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    forget_idx: torch.Tensor,
    retain_idx: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
) -> dict[str, float]:
    """``{acc_forget, acc_retain, acc_test, loss_forget, loss_retain, loss_test}`` — the run card's per-model block."""
    device = x_train.device
    out: dict[str, float] = {}
    for split, (xs, ys) in {
        "forget": (x_train[forget_idx.to(device)], y_train[forget_idx.to(device)]),
        "retain": (x_train[retain_idx.to(device)], y_train[retain_idx.to(device)]),
        "test": (x_test, y_test),
    }.items():
        loss, acc = evaluate(model, xs, ys)
        out[f"acc_{split}"] = acc
        out[f"loss_{split}"] = loss
    return {k: out[k] for k in (
        "acc_forget", "acc_retain", "acc_test", "loss_forget", "loss_retain", "loss_test",
    )}


def param_distance(a: nn.Module, b: nn.Module) -> float:
    """‖w_a − w_b‖ over trainable parameters (buffers are not parameters and are reported separately)."""
    return float(torch.linalg.vector_norm(get_flat_params(a) - get_flat_params(b).to(get_flat_params(a).device)))


def buffer_distance(a: nn.Module, b: nn.Module) -> float:
    """‖buffers_a − buffers_b‖ over floating-point buffers (BatchNorm running statistics); 0 without buffers."""
    total = 0.0
    for (_, ba), (_, bb) in zip(a.named_buffers(), b.named_buffers(), strict=True):
        if ba.is_floating_point():
            total += float(((ba - bb.to(ba.device)) ** 2).sum())
    return total**0.5
