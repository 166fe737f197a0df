r"""The hand-written batched HVP of a plain MLP with cross-entropy (Pearlmutter's R-operator), LiSSA's fast path.

Same contract as the generic ``torch.func`` product of :func:`unlearn_core.curvature.operators.make_lissa_hvp`:
row r of the result is :math:`\nabla^2 L(w; (X_r, Y_r))\,V_r` (mean cross-entropy over the batch, no shift).
:func:`make_mlp_batched_hvp` returns None for anything but a plain ``Sequential([Flatten], Linear, act, ...,
Linear)``; :class:`MLPBatchedHVP` also fuses LiSSA's update into the last stage of the product
(:meth:`MLPBatchedHVP.lissa_update_`). This module depends on nothing else in the package.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Identity, nn.Dropout)


def _mlp_plan(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The layer plan of a plain MLP — ``Sequential([Flatten], Linear, act, ..., Linear)`` — or None.

    Supported: ``Flatten`` (first, default dims), ``Linear`` (all parameters trainable), ``ReLU``, ``Tanh``,
    ``Identity`` and ``Dropout`` (identity in eval mode). Anything else returns None (use the generic path).
    """
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return None
    plan: list[tuple[str, nn.Module]] = []
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Flatten) and i == 0 and layer.start_dim == 1 and layer.end_dim == -1:
            plan.append(("flatten", layer))
        elif isinstance(layer, nn.Linear):
            if not all(p.requires_grad for p in layer.parameters()):
                return None
            plan.append(("linear", layer))
        elif isinstance(layer, _ELEMENTWISE):
            plan.append((type(layer).__name__.lower(), layer))
        else:
            return None
    if plan[-1][0] != "linear":
        return None
    return plan


def make_mlp_batched_hvp(model: nn.Module) -> MLPBatchedHVP | None:
    r"""An exact batched HVP for plain MLPs with cross-entropy, written out by hand (Pearlmutter's R-operator).

    Same contract as the generic product of :func:`unlearn_core.curvature.operators.make_lissa_hvp`: row r is
    :math:`\nabla^2 L(w; (X_r, Y_r))\,V_r` (mean cross-entropy over the batch). Returns None when the model is
    not a plain MLP (see :func:`_mlp_plan`); the callers then use the generic ``torch.func`` path.
    :meth:`MLPBatchedHVP.lissa_update_` fuses LiSSA's update into the last stage of the product.

    Why: LiSSA on small networks is dominated by per-operation overhead, not arithmetic, and the generic
    ``vmap(jvp(grad))`` issues several times more operations than the maths needs. For
    :math:`z_l = a_{l-1}W_l^\top + b_l`, :math:`a_l = \phi(z_l)` the forward tangent is
    :math:`\dot z_l = \dot a_{l-1}W_l^\top + a_{l-1}\dot W_l^\top + \dot b_l`, :math:`\dot a_l = \phi'(z_l)\dot z_l`;
    the backward pass :math:`\delta_L = (\mathrm{softmax}(z_L) - e_y)/b`, :math:`g_{W_l} = \delta_l^\top a_{l-1}`,
    :math:`\delta_{l-1} = \phi'(z_{l-1})\odot\delta_l W_l` has the tangent
    :math:`\dot g_{W_l} = \dot\delta_l^\top a_{l-1} + \delta_l^\top \dot a_{l-1}` with
    :math:`\dot\delta_L = (s\odot\dot z_L - s\,\langle s, \dot z_L\rangle)/b` and
    :math:`\dot\delta_{l-1} = \phi'\odot(\dot\delta_l W_l + \delta_l\dot W_l) + \phi''\odot\dot z_{l-1}\odot
    \delta_l W_l`. The shared weights multiply all R·b rows in one ``mm``; only the per-repetition tangents need
    ``bmm``. Verified against the ``torch.func`` path in ``tests/test_curvature.py``.
    """
    plan = _mlp_plan(model)
    return None if plan is None else MLPBatchedHVP(plan)


class MLPBatchedHVP:
    """The hand-written batched HVP of a plain MLP (see :func:`make_mlp_batched_hvp`): callable as a
    ``BatchedHVP``, plus the in-place LiSSA update :meth:`lissa_update_`."""

    def __init__(self, plan: list[tuple[str, nn.Module]]) -> None:
        self.plan = plan
        # Offsets of each Linear's weight and bias in the flat parameter vector (named_parameters order).
        self.offsets: dict[int, tuple[int, int | None]] = {}
        offset = 0
        for i, (kind, layer) in enumerate(plan):
            if kind == "linear":
                w_off = offset
                offset += layer.weight.numel()
                b_off = None
                if layer.bias is not None:
                    b_off = offset
                    offset += layer.bias.numel()
                self.offsets[i] = (w_off, b_off)
        self.num_params = offset
        self.first_linear = min(self.offsets)
        # Only Linear layers hold parameters, so the input layer's weight is the flat vector's first block.
        self.head = plan[self.first_linear][1].weight.numel()
        self._scratch: torch.Tensor | None = None

    def __call__(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pieces = self._pieces(v, x, y)
        return torch.cat([pieces[k] for k in sorted(pieces)], dim=1) if len(pieces) > 1 else pieces[0]

    def lissa_update_(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, g: torch.Tensor, decay: float,
                      alpha: float) -> None:
        r"""LiSSA's step :math:`v \leftarrow (g - \alpha\,\nabla^2 L(B)\,v) + \mathrm{decay}\cdot v`, in place.

        The same numbers as ``hv = self(v, x, y)`` followed by the update, without the (reps × p) temporaries:
        the input layer's block (most of p) is written into a reused buffer, and the update is two fused passes
        per block. Why: on CPU a fresh megabyte-sized tensor each step costs page faults that, with the
        ``cat`` of the pieces, took longer than the input layer's ``bmm`` itself. Every piece is computed before
        any block of v is overwritten (the backward pass still reads v).
        """
        reps, head = int(v.shape[0]), self.head
        weight = self.plan[self.first_linear][1].weight
        shape = (reps, *weight.shape)
        scratch = self._scratch
        if scratch is None or scratch.shape != shape or scratch.dtype != v.dtype or scratch.device != v.device:
            scratch = self._scratch = torch.empty(shape, dtype=v.dtype, device=v.device)
        pieces = self._pieces(v, x, y, head_out=scratch)
        rest = [pieces[k] for k in sorted(pieces) if k != 0]
        for block, hv, g_block in ((v[:, :head], scratch.view(reps, head), g[:head]),
                                   (v[:, head:], torch.cat(rest, dim=1) if rest else None, g[head:])):
            if hv is None:
                continue
            torch.add(g_block, hv, alpha=-alpha, out=hv)
            torch.add(hv, block, alpha=decay, out=block)

    def _pieces(self, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                head_out: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """The product's blocks keyed by flat offset, each (reps × size); the input layer's weight block is
        written into ``head_out`` (reps × out × in, contiguous) when given."""
        plan, offsets = self.plan, self.offsets
        reps, b = int(x.shape[0]), int(x.shape[1])
        a = x.reshape(reps, b, -1) if plan[0][0] == "flatten" else x
        da: torch.Tensor | None = None
        tape: list[tuple[Any, ...]] = []
        for i, (kind, layer) in enumerate(plan):
            if kind == "flatten":
                continue
            if kind == "linear":
                weight = layer.weight.detach()
                m, n = weight.shape
                w_off, b_off = offsets[i]
                d_w = v[:, w_off : w_off + m * n].reshape(reps, m, n)
                z = (a.reshape(reps * b, n) @ weight.T).reshape(reps, b, m)
                dz = torch.bmm(a, d_w.transpose(1, 2))
                if da is not None:
                    dz = dz + (da.reshape(reps * b, n) @ weight.T).reshape(reps, b, m)
                if b_off is not None:
                    z = z + layer.bias.detach()
                    dz = dz + v[:, b_off : b_off + m].unsqueeze(1)
                tape.append(("linear", i, a, da, weight, d_w))
                a, da = z, dz
            elif kind == "relu":
                mask = (a > 0).to(a.dtype)
                tape.append(("relu", mask))
                a, da = a * mask, da * mask  # type: ignore[operator]
            elif kind == "tanh":
                t = torch.tanh(a)
                tape.append(("tanh", t, da))
                a, da = t, (1 - t * t) * da  # type: ignore[operator]
            # identity / dropout (eval): nothing to do
        s = torch.softmax(a, dim=-1)
        delta = s.clone()
        delta.scatter_add_(-1, y.unsqueeze(-1), -torch.ones_like(y, dtype=s.dtype).unsqueeze(-1))
        delta = delta / b
        s_dz = s * da  # type: ignore[operator]
        ddelta = (s_dz - s * s_dz.sum(-1, keepdim=True)) / b
        pieces: dict[int, torch.Tensor] = {}
        for entry in reversed(tape):
            if entry[0] == "linear":
                _, i, a_in, da_in, weight, d_w = entry
                w_off, b_off = offsets[i]
                if i == self.first_linear and head_out is not None:
                    # The input has no tangent (da_in is None): one bmm straight into the reused buffer.
                    pieces[w_off] = torch.bmm(ddelta.transpose(1, 2), a_in, out=head_out).view(reps, -1)
                else:
                    g_w = torch.bmm(ddelta.transpose(1, 2), a_in)
                    if da_in is not None:
                        g_w = g_w + torch.bmm(delta.transpose(1, 2), da_in)
                    pieces[w_off] = g_w.reshape(reps, -1)
                if b_off is not None:
                    pieces[b_off] = ddelta.sum(1)
                if i != self.first_linear:
                    m, n = weight.shape
                    new_delta = (delta.reshape(reps * b, m) @ weight).reshape(reps, b, n)
                    ddelta = (ddelta.reshape(reps * b, m) @ weight).reshape(reps, b, n) + torch.bmm(delta, d_w)
                    delta = new_delta
            elif entry[0] == "relu":
                delta, ddelta = delta * entry[1], ddelta * entry[1]
            elif entry[0] == "tanh":
                _, t, dz_in = entry
                d1 = 1 - t * t
                ddelta = d1 * ddelta - 2 * t * d1 * dz_in * delta
                delta = d1 * delta
        return pieces

