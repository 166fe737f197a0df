r"""Functional views of a model: flat parameter vectors, the regularised loss, its gradient and HVPs.

Every curvature method in the package (LiSSA, CG, Lanczos, the cubic sub-problem) works on flat vectors of
the *trainable* parameters, in the order of ``model.named_parameters()``. Buffers (BatchNorm running
statistics) are held fixed: the certificates treat the network output as a function of the parameters alone.

The objective is the mean cross-entropy plus coupled weight decay and an optional local convex term

.. math::
    \mathcal{L}_{\lambda}(w; S) = \frac{1}{|S|}\sum_{(x, y)\in S} \ell(f_w(x), y)
        + \frac{\mathrm{wd}}{2}\lVert w\rVert^2 + \frac{\lambda}{2}\lVert w - w_0\rVert^2 ,

so that :math:`\nabla^2 \mathcal{L}_\lambda = \nabla^2 \mathcal{L} + (\mathrm{wd} + \lambda) I`
(Zhang et al. 2024's local convex term λI, not the reference code's per-tensor norm; derived: see
docs/certified_newton.md#hyperparameters, ``reg_form``).
Only HVPs add ``lam``; gradients take it as zero because the local term vanishes at its centre.

HVPs are forward-over-reverse (``torch.func.jvp`` of ``torch.func.grad``): one forward and one
backward-with-tangents pass, no ``create_graph=True`` double backward and no retained graph.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

ParamDict = dict[str, torch.Tensor]

# torch.func's jvp of cross-entropy runs a decomposition that calls torch.jit.script, which torch itself now
# deprecates: the FutureWarning is torch's own business, not something a user of this package can act on, so it
# is silenced for that one message from that one module (every other warning is left alone).
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning,
                        module=r"torch\.jit\._script")


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters with ``requires_grad``, in ``named_parameters`` order."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def param_dict(model: nn.Module) -> ParamDict:
    """Detached copies of the trainable parameters (safe to perturb without touching the model)."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def buffer_dict(model: nn.Module) -> ParamDict:
    return {name: b.detach() for name, b in model.named_buffers()}


def num_params(model: nn.Module) -> int:
    """p, the number of trainable parameters (the dimension of the Gaussian release)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flatten(params: ParamDict) -> torch.Tensor:
    """Concatenate a parameter dict into one flat vector."""
    return torch.cat([t.reshape(-1) for t in params.values()])


def unflatten(vector: torch.Tensor, like: ParamDict) -> ParamDict:
    """Split a flat vector back into tensors shaped like ``like`` (same key order)."""
    out: ParamDict = {}
    offset = 0
    for name, t in like.items():
        n = t.numel()
        out[name] = vector[offset : offset + n].view_as(t)
        offset += n
    if offset != vector.numel():
        raise ValueError(f"vector has {vector.numel()} entries, parameters have {offset}")
    return out


def get_flat_params(model: nn.Module) -> torch.Tensor:
    """The trainable parameters of ``model`` as one detached flat vector w."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])


@torch.no_grad()
def set_flat_params(model: nn.Module, vector: torch.Tensor) -> None:
    """Write a flat vector into the trainable parameters of ``model`` (in place)."""
    offset = 0
    for p in model.parameters():
        if not p.requires_grad:
            continue
        n = p.numel()
        p.copy_(vector[offset : offset + n].view_as(p))
        offset += n
    if offset != vector.numel():
        raise ValueError(f"vector has {vector.numel()} entries, model has {offset} trainable parameters")


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Contiguous slices covering ``range(n)``; the data are tensors, so a batch is an index slice."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def size_weighted_mean(
    term: Callable[[slice], torch.Tensor],
    n: int,
    *,
    batch_size: int,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    r""":math:`\sum_k \frac{|S_k|}{|S|}\,\mathrm{term}(S_k)` over the chunks S_k of ``range(n)``, plus ``start``.

    The mean loss over S is the size-weighted mean of its chunks' mean losses, and so are its gradient and its
    Hessian (linearity), so every full-data quantity of the package (the objective and its gradient, the
    full-data HVP, the dense Hessian) is accumulated here, chunk by chunk: chunking bounds memory without changing
    the value. ``term(sl)`` is the chunk's *mean*; ``start`` (e.g. the (wd + λ)·v of an HVP) is added once, first.
    """
    total = start
    for sl in batches(n, batch_size):
        part = term(sl) * ((sl.stop - sl.start) / n)
        total = part if total is None else total + part
    if total is None:
        raise ValueError("size_weighted_mean over no data (n = 0) and no start value")
    return total


LossFn = Callable[[ParamDict, torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss_fn(model: nn.Module, *, weight_decay: float = 0.0) -> LossFn:
    r"""``loss(params, x, y)`` = mean cross-entropy of ``model`` at ``params`` + (wd/2)‖params‖².

    The model must be in eval mode for curvature work (dropout off, BatchNorm using running statistics), which
    the callers in this package ensure. Buffers are captured once, as constants.
    """
    buffers = buffer_dict(model)

    def loss(params: ParamDict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (params, buffers), (x,))
        value = nn.functional.cross_entropy(logits, y)
        if weight_decay:
            value = value + 0.5 * weight_decay * sum((t * t).sum() for t in params.values())
        return value

    return loss


def flat_objective(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float = 0.0,
    batch_size: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The objective :math:`\mathcal{L}(w; S) + \tfrac{\mathrm{wd}}{2}\lVert w\rVert^2` and its exact gradient over
    all of (x, y), accumulated in chunks; returns ``(value, flat gradient)``.

    The mean over S is the size-weighted mean of chunk means, so chunking changes memory, not the value.
    Weight decay is added once (not per chunk). This is *the* objective of the package: the certificate's
    gradients, the L-BFGS training recipe and its gradient-tolerance stopping rule all evaluate it here.
    Floating-point inputs are cast chunk by chunk to the parameters' dtype, so a float64 copy of a model is
    evaluated in float64 without a float64 copy of the data.
    """
    was_training = model.training
    model.eval()
    loss_fn = make_loss_fn(model, weight_decay=0.0)
    params = param_dict(model)
    grad_fn = grad_and_value(loss_fn)
    dtype = next(iter(params.values())).dtype if params else x.dtype

    def chunk(sl: slice) -> torch.Tensor:
        xb = x[sl].to(dtype) if x.is_floating_point() else x[sl]
        g, v = grad_fn(params, xb, y[sl])
        return torch.cat([flatten(g), v.detach().reshape(1)])  # the gradient, then the value: one weighted sum

    both = size_weighted_mean(chunk, int(x.shape[0]), batch_size=batch_size)
    total, value = both[:-1], both[-1]
    if weight_decay:
        flat = flatten(params)
        total += weight_decay * flat
        value += 0.5 * weight_decay * flat.dot(flat)
    model.train(was_training)
    return value, total


def flat_gradient(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float = 0.0,
    batch_size: int = 4096,
) -> torch.Tensor:
    r"""Exact :math:`\nabla \mathcal{L}(w; S)` (+ wd·w) of the mean loss over all of (x, y), accumulated in chunks
    (the gradient of :func:`flat_objective`)."""
    return flat_objective(model, x, y, weight_decay=weight_decay, batch_size=batch_size)[1]


class SumOfNormsRegulariser:
    r"""The reference code's regulariser :math:`R(w) = \sum_l \lVert w_l\rVert_2` (unsquared, one term per
    parameter tensor, as in Zhang et al.'s released code), for ``certified_newton``'s ``reg_form="official"`` only.

    .. math::
        \nabla R(w) = \Bigl[\frac{w_l}{\lVert w_l\rVert}\Bigr]_l ,\qquad
        \nabla^2 R(w)\,v = \Bigl[\frac{v_l - \hat w_l\,\hat w_l^\top v_l}{\lVert w_l\rVert}\Bigr]_l ,
        \quad \hat w_l = \frac{w_l}{\lVert w_l\rVert}.

    Why it exists: the released code adds :math:`\mathrm{wd}\,\nabla R` to the retain gradient and
    :math:`(\lambda+\mathrm{wd})\,\nabla^2 R` to every sampled Hessian, where the paper adds :math:`\mathrm{wd}\,w`
    and :math:`(\lambda+\mathrm{wd})I`. Its Hessian is zero along each :math:`\hat w_l`, so it is not the
    paper's local convex term, and the paper's bound does not cover the step. Offering it as a labelled option
    lets a user put the code's step next to the paper's. Taken at the model's current weights (a tensor with
    zero norm contributes nothing).
    """

    def __init__(self, model: nn.Module) -> None:
        blocks = [p.detach().reshape(-1) for p in model.parameters() if p.requires_grad]
        self.sizes = [b.numel() for b in blocks]
        norms = torch.stack([torch.linalg.vector_norm(b) for b in blocks])
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        self.segments = torch.repeat_interleave(torch.arange(len(blocks), device=norms.device),
                                                torch.tensor(self.sizes, device=norms.device))
        self.inv_norm = torch.where(norms > 0, 1.0 / safe, torch.zeros_like(norms))  # per tensor
        self.unit = torch.cat(blocks) * self.inv_norm[self.segments]  # ŵ, flat

    def grad(self) -> torch.Tensor:
        """∇R(w) = [ŵ_l]_l as a flat vector."""
        return self.unit.clone()

    def hvp(self, v: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
        """``scale``·∇²R(w)·v for a flat vector (p,) or a stack of them (R × p)."""
        stack = v.unsqueeze(0) if v.dim() == 1 else v
        dots = torch.zeros(stack.shape[0], len(self.sizes), dtype=v.dtype, device=v.device)
        dots.index_add_(1, self.segments, stack * self.unit)  # ŵ_lᵀ v_l per tensor
        out = (stack - dots[:, self.segments] * self.unit) * (scale * self.inv_norm)[self.segments]
        return out[0] if v.dim() == 1 else out
