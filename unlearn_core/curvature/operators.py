r"""The regularised Hessian of (model, x, y) as an operator: built here, one way, for every curvature routine.

The objective is the mean cross-entropy plus coupled weight decay and the paper's local convex term
(:mod:`unlearn_core.functional`), so its Hessian over data S is

.. math::
    A = \nabla^2 L(w; S) + (\mathrm{wd} + \lambda) I ,

with the (wd + λ)·v term added analytically, exactly the λI of Zhang et al. (2024, the Newton step
:math:`(H_{w^*} + \lambda I)^{-1}\nabla L`), never the reference code's per-tensor norm (derived: see
docs/certified_newton.md#hyperparameters, reg_form). Every product with A in the package comes from one builder:

* :func:`make_lissa_hvp` — the *batched* curvature of mini-batches, ``(V, X, Y) ↦ [∇²L(w; (X_r, Y_r)) V_r]_r``
  (no shift): the hand-written MLP product (:mod:`unlearn_core.curvature.mlp_hvp`) for plain MLPs, a vmapped
  forward-over-reverse ``torch.func`` product otherwise. LiSSA runs its repetitions on it; everything below is
  built from it.
* :func:`make_data_hvp` — ``v ↦ A v`` over *all* of (x, y): the size-weighted mean of the chunks' products
  (:func:`unlearn_core.functional.size_weighted_mean`) plus (wd + λ)·v once; it also takes a stack of vectors.
  Lanczos, CG, CureNewton and the a-posteriori residual use it.
* :func:`hessian_matrix` — the dense p × p matrix A, :func:`make_data_hvp` applied to blocks of unit vectors, for
  the exact solver (``solver=exact`` / ``dense`` / CureNewton's ``eigh``); for softmax regression its closed form
  (:func:`softmax_regression_hessian`).

The tests check these against an independent dense reference (``tests/dense_reference.py``). Nothing here
mutates a model; the callers put it in eval mode (dropout off, BatchNorm on running statistics).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.func import grad, jvp, vmap

from unlearn_core.curvature.mlp_hvp import MLPBatchedHVP, make_mlp_batched_hvp
from unlearn_core.errors import ConfigError
from unlearn_core.functional import (
    flatten,
    make_loss_fn,
    num_params,
    param_dict,
    size_weighted_mean,
    unflatten,
)

#: ``v ↦ A v`` on flat vectors (p,) — and, for :func:`make_data_hvp`, on stacks (R × p) too.
HVP = Callable[[torch.Tensor], torch.Tensor]
#: ``(V, X, Y) ↦ [∇²L(w; (X_r, Y_r)) V_r]_r`` for R vectors (R × p) and R batches (R × b × ...).
BatchedHVP = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
HVP_BACKENDS = ("auto", "functorch", "mlp")

# torch.func's jvp of cross-entropy runs a decomposition that calls torch.jit.script, which torch itself now
# deprecates: the FutureWarning is torch's own business, not something a user of this package can act on, so it
# is silenced for that one message from that one module (every other warning is left alone).
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning,
                        module=r"torch\.jit\._script")


def _functorch_hvp(model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(v, x, y) ↦ ∇²L(w; (x, y)) v`` for one flat v by forward-over-reverse, ``jvp(grad(loss))``.

    One forward and one backward-with-tangents pass, no ``create_graph=True`` double backward and no retained
    graph. The parameters are captured (copied) now; the model's later changes are not seen.
    """
    params = param_dict(model)
    grad_fn = grad(make_loss_fn(model, weight_decay=0.0))

    def one(v: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        _, hv = jvp(lambda p: grad_fn(p, xb, yb), (params,), (unflatten(v, params),))
        return flatten(hv)

    return one


def _vmapped(one: Callable[..., torch.Tensor], *, shared_data: bool) -> BatchedHVP:
    """``one`` over the rows of V, with a batch per row (LiSSA) or one batch for all rows (``shared_data``: the
    forward pass is then computed once, only the tangents are batched). One row skips vmap's overhead."""
    batched = vmap(one, in_dims=(0, None, None) if shared_data else (0, 0, 0), randomness="different")

    def product(v: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        if v.shape[0] == 1:
            return one(v[0], xs if shared_data else xs[0], ys if shared_data else ys[0]).unsqueeze(0)
        return batched(v, xs, ys)

    return product


def _mlp_fast_path(model: nn.Module, backend: str) -> MLPBatchedHVP | None:
    """The hand-written product when ``backend`` allows it and the model is a plain MLP (else None)."""
    if backend not in HVP_BACKENDS:
        raise ConfigError(f"hvp_backend={backend!r} is not valid: expected one of {', '.join(HVP_BACKENDS)}")
    if backend == "functorch":
        return None
    fast = make_mlp_batched_hvp(model)
    if fast is None and backend == "mlp":
        raise ConfigError("hvp_backend='mlp' needs a plain Sequential MLP (Flatten, Linear, ReLU/Tanh)")
    return fast


def make_lissa_hvp(model: nn.Module, *, backend: str = "auto") -> tuple[BatchedHVP, str]:
    """The batched mini-batch curvature (without the (wd+λ)·v term) and the backend's name.

    ``backend="auto"`` takes the hand-written MLP path (:func:`unlearn_core.curvature.mlp_hvp.make_mlp_batched_hvp`)
    when the model is a plain MLP and the vmapped ``torch.func`` product otherwise; ``"functorch"`` and ``"mlp"``
    force one (``"mlp"`` raises ConfigError for other models).
    """
    fast = _mlp_fast_path(model, backend)
    if fast is not None:
        return fast, "mlp"
    return _vmapped(_functorch_hvp(model), shared_data=False), "functorch"


def make_data_hvp(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float = 0.0,
    lam: float = 0.0,
    batch_size: int = 4096,
    backend: str = "auto",
) -> HVP:
    r"""Exact :math:`v \mapsto (\nabla^2 L(w; (x, y)) + (\mathrm{wd}+\lambda)I)\,v` over all the data.

    The Hessian of the mean loss is the size-weighted mean of the chunks' Hessians, so the product is
    accumulated chunk by chunk (:func:`unlearn_core.functional.size_weighted_mean`, ``batch_size`` points each)
    from the same per-backend products as :func:`make_lissa_hvp`, every vector against the same chunk, and
    (wd + λ)·v is added once. Accepts one flat vector (p,) or a stack (R × p), each row multiplied by the same
    full-data Hessian.
    """
    fast = _mlp_fast_path(model, backend)
    if fast is None:
        product = _vmapped(_functorch_hvp(model), shared_data=True)
    else:

        def product(v: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            reps = int(v.shape[0])
            return fast(v, xb.unsqueeze(0).expand(reps, *xb.shape), yb.unsqueeze(0).expand(reps, *yb.shape))

    n = int(x.shape[0])
    shift = float(weight_decay) + float(lam)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        stack = v.unsqueeze(0) if v.dim() == 1 else v
        out = size_weighted_mean(lambda sl: product(stack, x[sl], y[sl]), n, batch_size=batch_size,
                                 start=shift * stack if shift else None)
        return out[0] if v.dim() == 1 else out

    return hvp


def softmax_regression_layer(model: nn.Module) -> nn.Linear | None:
    """The one ``Linear`` layer of a softmax (multinomial logistic) regression — flattening around it, nothing
    else — or ``None`` for any other model."""
    layers = [m for m in model.modules() if not isinstance(m, nn.Sequential)]
    linear = [m for m in layers if isinstance(m, nn.Linear)]
    others = [m for m in layers if not isinstance(m, (nn.Linear, nn.Flatten, nn.Identity))]
    if len(linear) != 1 or others or not all(p.requires_grad for p in linear[0].parameters()):
        return None
    return linear[0]


def softmax_regression_hessian(
    layer: nn.Linear, x: torch.Tensor, *, weight_decay: float = 0.0, lam: float = 0.0, batch_size: int = 4096
) -> torch.Tensor:
    r"""The exact dense Hessian of softmax regression's mean cross-entropy, in closed form, plus (wd + λ)I.

    With logits z = Wx + b and p = softmax(z), :math:`\nabla_z^2\ell = S = \mathrm{diag}(p) - pp^\top` whatever the
    label, and z is linear in θ = (W, b), so with x̃ = (x, 1)

    .. math:: \partial^2 L/\partial\Theta_{ci}\partial\Theta_{c'j}
              = \frac1n\sum_n S_n[c, c']\,\tilde x_n[i]\,\tilde x_n[j]

    — C²(d+1)²n multiply-adds in chunks of ``batch_size`` points instead of p HVP columns (≈ 0.3 s against 1.4 s on
    digits in float64, one thread). Rows and columns in the order of the flat parameter vector (W row-major, then b).
    """
    n = int(x.shape[0])
    w = layer.weight
    num_classes, d = int(w.shape[0]), int(w.shape[1])
    has_bias = layer.bias is not None
    width = d + 1 if has_bias else d
    dtype = w.dtype
    k = torch.zeros(num_classes * num_classes, width, width, dtype=dtype, device=w.device)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            xb = x[start : start + batch_size].reshape(-1, d).to(dtype)
            probs = torch.softmax(layer(xb), dim=1)
            s = torch.diag_embed(probs) - probs.unsqueeze(2) * probs.unsqueeze(1)  # (b, C, C)
            xt = torch.cat([xb, torch.ones(xb.shape[0], 1, dtype=dtype, device=xb.device)], dim=1) if has_bias else xb
            weighted = s.reshape(-1, num_classes * num_classes).T.unsqueeze(2) * xt.unsqueeze(0)  # (C², b, width)
            k += torch.bmm(weighted.transpose(1, 2), xt.unsqueeze(0).expand(num_classes * num_classes, -1, -1))
    k /= max(n, 1)
    # (c, c', i, j) → rows (c, i), columns (c', j) in the augmented layout, then into the flat order [W, b].
    aug = k.reshape(num_classes, num_classes, width, width).permute(0, 2, 1, 3).reshape(num_classes * width,
                                                                                          num_classes * width)
    c_idx = torch.arange(num_classes).repeat_interleave(width)
    i_idx = torch.arange(width).repeat(num_classes)
    flat = torch.where(i_idx < d, c_idx * d + i_idx, num_classes * d + c_idx).to(w.device)
    p = num_classes * width
    hess = torch.empty(p, p, dtype=dtype, device=w.device)
    hess[flat.unsqueeze(1), flat.unsqueeze(0)] = aug
    shift = float(weight_decay) + float(lam)
    if shift:
        hess.diagonal().add_(shift)
    return hess


def hessian_matrix(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float = 0.0,
    lam: float = 0.0,
    batch_size: int = 4096,
    columns_per_call: int = 128,
) -> torch.Tensor:
    r"""The dense p×p matrix :math:`\nabla^2 L(w; (x, y)) + (\mathrm{wd}+\lambda) I` for the exact solvers.

    Assembled row block by row block, :math:`A\,[e_j]_{j\in\text{block}}`, from :func:`make_data_hvp`:
    ``columns_per_call`` unit vectors at a time against each data chunk. Why not ``torch.func.hessian``: it
    vmaps over all p basis vectors and all the data at once (memory p·n·activations), and on the 3,466-parameter
    digits MLP the blocks through the hand-written HVP take ≈ 4.6 s against ≈ 13 s (2 CPU threads). The
    result is symmetrised (the shift is added after, so it stays exact on the diagonal). Softmax regression takes its
    closed form instead (:func:`softmax_regression_hessian`: the same matrix, without p HVPs).
    """
    layer = softmax_regression_layer(model)
    if layer is not None:
        return softmax_regression_hessian(layer, x, weight_decay=weight_decay, lam=lam, batch_size=batch_size)
    p = num_params(model)
    product = make_data_hvp(model, x, y, batch_size=batch_size)
    hess = torch.empty(p, p, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for start in range(0, p, columns_per_call):
            stop = min(start + columns_per_call, p)
            eye = torch.zeros(stop - start, p, dtype=x.dtype, device=x.device)
            eye[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            hess[start:stop] = product(eye)
    hess = 0.5 * (hess + hess.T)
    shift = float(weight_decay) + float(lam)
    if shift:
        hess.diagonal().add_(shift)
    return hess
