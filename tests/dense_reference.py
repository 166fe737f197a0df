"""The tests' oracle: dense Hessians and dense solves, written independently of the code under test.

Nothing here imports ``unlearn_core``: the loss is rebuilt from the model with ``torch.func.functional_call`` on
the flat vector of trainable parameters, and its Hessian comes from ``torch.autograd.functional.hessian`` (exact
to rounding in float64). The operators of ``unlearn_core.curvature`` are checked against these matrices, in the
manner of curvlinops' test cases. Only for tiny models: the matrix is p × p.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The trainable parameters, concatenated in ``named_parameters`` order (detached copy)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])


def mean_cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """``w ↦ mean cross-entropy of model at the flat parameters w on (x, y)`` (buffers held fixed)."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for p in model.parameters() if p.requires_grad]
    sizes = [p.numel() for p in model.parameters() if p.requires_grad]
    fixed = {name: p.detach() for name, p in model.named_parameters() if not p.requires_grad}
    fixed.update({name: b.detach() for name, b in model.named_buffers()})

    def loss(w: torch.Tensor) -> torch.Tensor:
        tensors = {n: t.reshape(s) for n, t, s in zip(names, torch.split(w, sizes), shapes, strict=True)}
        return nn.functional.cross_entropy(functional_call(model, {**fixed, **tensors}, (x,)), y)

    return loss


def dense_hessian(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, weight_decay: float = 0.0, lam: float = 0.0
) -> torch.Tensor:
    """∇²L(w; (x, y)) + (wd + λ)I as a dense p × p matrix, by ``torch.autograd.functional.hessian``."""
    w = flat_parameters(model)
    hess = torch.autograd.functional.hessian(mean_cross_entropy(model, x, y), w, vectorize=True)
    return hess + (float(weight_decay) + float(lam)) * torch.eye(w.numel(), dtype=w.dtype, device=w.device)


def dense_solve(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``matrix⁻¹ rhs`` by ``torch.linalg.solve`` (LU with pivoting)."""
    return torch.linalg.solve(matrix, rhs)
