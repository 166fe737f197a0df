r"""LiSSA: the stochastic inverse-HVP of Agarwal, Bullins & Hazan (2017), as Zhang et al. (2024) use it.

:func:`lissa` estimates :math:`(\nabla^2 L(w; D_r) + (\mathrm{wd}+\lambda) I)^{-1} g` by the truncated Neumann
series over mini-batch Hessians drawn with replacement (:func:`lissa_batch_indices`), its repetitions run
together as one batch of vectors on the batched product of :mod:`unlearn_core.curvature.operators` (the MLP fast
path fuses the update, :meth:`unlearn_core.curvature.mlp_hvp.MLPBatchedHVP.lissa_update_`). Its error bound —
Agarwal et al.'s Lemma 3.6 as Zhang et al. add it to Δ, and the depth it needs — is
:func:`unlearn_core.certificate.delta_lissa` and :func:`unlearn_core.certificate.lissa_depth_required`; ζ_min,
the smallest eigenvalue of the sampled Hessians it divides by, is
:func:`unlearn_core.curvature.spectrum.sampled_lambda_min`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unlearn_core.curvature.mlp_hvp import MLPBatchedHVP
from unlearn_core.curvature.operators import make_lissa_hvp
from unlearn_core.curvature.spectrum import sampled_lambda_max
from unlearn_core.errors import ConfigError, DivergenceError


@dataclass
class LissaResult:
    r"""The outcome of :func:`lissa`.

    Attributes:
        ihvp: the estimate of :math:`(\nabla^2 L(w; D_r) + (\mathrm{wd}+\lambda)I)^{-1} g`, averaged over the
            repetitions (flat).
        scale: the H used (the resolved value when ``"auto"`` was asked).
        lambda_max_sampled: the mini-batch λ_max estimate behind ``scale="auto"`` (None otherwise).
        steps: the recursion steps t at which ``norms`` were recorded (subsampled, always including the last).
        norms: ``norms[i][r]`` = ‖v_t‖/H of repetition r at step ``steps[i]`` — the repetition's current estimate
            of the inverse-HVP; a converging run flattens out (the LiSSA convergence plot).
        num_hvps: depth × reps mini-batch HVPs.
        hvp_backend: which batched HVP ran (``"mlp"`` or ``"functorch"``).
        rep_spread: ‖std over repetitions‖ / ‖mean‖ of the final estimates (how noisy one repetition is).
    """

    ihvp: torch.Tensor
    scale: float
    depth: int
    reps: int
    batch_size: int
    lambda_max_sampled: float | None
    steps: list[int]
    norms: list[list[float]]
    num_hvps: int
    rep_spread: float
    hvp_backend: str = "functorch"

    def diagnostics(self) -> dict[str, Any]:
        """A JSON-serialisable summary (the per-step norms included)."""
        return {
            "scale": self.scale,
            "depth": self.depth,
            "reps": self.reps,
            "batch_size": self.batch_size,
            "lambda_max_sampled": self.lambda_max_sampled,
            "num_hvps": self.num_hvps,
            "rep_spread": self.rep_spread,
            "hvp_backend": self.hvp_backend,
            "ihvp_norm": float(torch.linalg.vector_norm(self.ihvp)),
            "norm_steps": self.steps,
            "norms": self.norms,
        }


def _record_steps(depth: int, max_points: int) -> list[int]:
    """Steps 1..depth to record, at most ``max_points`` of them, evenly spaced, the last one always included."""
    if depth <= max_points:
        return list(range(1, depth + 1))
    stride = math.ceil(depth / max_points)
    steps = list(range(stride, depth + 1, stride))
    if steps[-1] != depth:
        steps.append(depth)
    return steps


def lissa_batch_indices(n: int, *, depth: int, reps: int, batch_size: int, seed: int) -> torch.Tensor:
    """The (depth × reps × batch_size) indices LiSSA draws, uniformly **with replacement** from range(n).

    One seeded CPU generator draws them all up front (with replacement, as in Agarwal, Bullins & Hazan 2017,
    Alg. 1, and Zhang et al. 2024's LiSSA step), so
    a reference loop (tests, ``bench/bench_lissa.py``) can replay exactly the same batches.
    """
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(int(n), (int(depth), int(reps), int(batch_size)), generator=gen)


def lissa(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    *,
    lam: float,
    scale: float | str = 1000.0,
    depth: int = 1000,
    reps: int = 10,
    batch_size: int = 10,
    weight_decay: float = 0.0,
    seed: int = 0,
    max_points: int = 500,
    blowup: float = 10.0,
    auto_margin: float = 1.5,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 50,
    hvp_backend: str = "auto",
    extra_hvp: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LissaResult:
    r"""Stochastic LiSSA estimate of :math:`(\nabla^2 L(w; D) + (\mathrm{wd}+\lambda) I)^{-1} g`.

    The recursion of Agarwal, Bullins & Hazan (2017, Alg. 1), as Zhang et al. (2024) use it for the Newton step
    (on HVPs only: see docs/certified_newton.md#the-method): with
    :math:`A_t = \nabla^2 L(w; B_t) + (\mathrm{wd}+\lambda)I` the Hessian of a batch :math:`B_t` of
    ``batch_size`` points drawn **with replacement** from (x, y),

    .. math::
        v_0 = g,\qquad v_t = g + v_{t-1} - A_t v_{t-1} / H,\qquad \widehat{A^{-1}g} = v_s / H ,

    i.e. :math:`v_s/H = \frac1H\sum_{j=0}^{s}\prod (I - A/H)\,g`, the Neumann series of
    :math:`(A/H)^{-1}/H`. It converges when every :math:`A_t` has spectrum in (0, 2H) — H above the
    mini-batch λ_max (``scale="auto"`` measures it with :func:`sampled_lambda_max` and multiplies by
    ``auto_margin``). The local convex term is the paper's λI, added analytically (not the reference code's
    Σ_l‖w_l‖), and weight decay enters as wd·v in every HVP. The ``reps`` independent repetitions run
    *together*: one vmapped forward-over-reverse call per step on a (reps × p) block of vectors; their final
    estimates are averaged.

    Divergence: a step where some repetition's norm is non-finite or exceeds ``blowup``·(t+1)·‖g‖ (the bound
    :math:`\lVert v_t\rVert \le (t+1)\lVert g\rVert` holds whenever the recursion contracts) raises
    :class:`DivergenceError` naming the step, the norm and the measured mini-batch λ_max.

    Args:
        model: the network at w (eval mode is set here and restored); not modified.
        x, y: the data the Hessian is taken over (the retain set).
        g: the flat right-hand side (e.g. the retain gradient).
        lam: the local convex coefficient λ (≥ 0).
        scale: H > 0, or ``"auto"``.
        depth: the recursion depth s.
        reps: independent repetitions, averaged.
        batch_size: points per sampled Hessian.
        weight_decay: coupled weight decay wd, added as wd·v.
        seed: seeds the batch sampling (and the λ_max estimate).
        max_points: at most this many recorded steps for the norm curves.
        blowup: the divergence threshold factor (see above).
        auto_margin: H = auto_margin × sampled λ_max when ``scale="auto"``.
        progress: called with the step number about every ``progress_every`` steps (may raise to cancel).
        hvp_backend: ``"auto"`` (hand-written exact HVP for plain MLPs, ``torch.func`` otherwise), ``"functorch"``
            or ``"mlp"`` — see :func:`make_lissa_hvp`.
        extra_hvp: a further curvature term added to every sampled Hessian, applied to the (reps × p) block of
            iterates (the reference code's regulariser for ``reg_form="official"``); ``scale="auto"`` and the
            divergence message do not include it.

    Raises:
        ConfigError: a non-positive scale, depth, reps or batch size.
        DivergenceError: the recursion blew up (the message says what to change).
    """
    for name, value in (("depth", depth), ("reps", reps), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ConfigError(f"{name}={value!r} is not valid: expected an integer >= 1")
    if lam < 0:
        raise ConfigError(f"lam={lam!r} is not valid: expected a number >= 0")
    was_training = model.training
    model.eval()
    try:
        lambda_max_sampled: float | None = None
        if scale == "auto":
            lambda_max_sampled = sampled_lambda_max(
                model, x, y, batch_size=batch_size, lam=lam, weight_decay=weight_decay, seed=seed + 1,
                hvp_backend=hvp_backend,
            )
            h = auto_margin * max(lambda_max_sampled, 1e-12)
        else:
            h = float(scale)
            if not h > 0 or not math.isfinite(h):
                raise ConfigError(f"H={scale!r} is not valid: expected a number > 0 or 'auto'")
        return _lissa_run(
            model, x, y, g, lam=lam, h=h, depth=int(depth), reps=int(reps), batch_size=int(batch_size),
            weight_decay=weight_decay, seed=seed, max_points=max_points, blowup=blowup,
            lambda_max_sampled=lambda_max_sampled, progress=progress, progress_every=progress_every,
            hvp_backend=hvp_backend, extra_hvp=extra_hvp,
        )
    finally:
        model.train(was_training)


def _lissa_run(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    *,
    lam: float,
    h: float,
    depth: int,
    reps: int,
    batch_size: int,
    weight_decay: float,
    seed: int,
    max_points: int,
    blowup: float,
    lambda_max_sampled: float | None,
    progress: Callable[[int], None] | None,
    progress_every: int,
    hvp_backend: str,
    extra_hvp: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LissaResult:
    # All batch indices up front; one gather per step, no DataLoader.
    indices = lissa_batch_indices(int(x.shape[0]), depth=depth, reps=reps, batch_size=batch_size,
                                  seed=seed).to(x.device)
    # (wd + λ) enters through the update's scalar factor instead of inside the HVP: one fewer (reps × p) op.
    bhvp, backend = make_lissa_hvp(model, backend=hvp_backend)
    shift = float(weight_decay) + float(lam)
    decay = 1.0 - shift / h
    g_norm = float(torch.linalg.vector_norm(g))
    record = _record_steps(depth, max_points)
    record_pos = {t: i for i, t in enumerate(record)}
    norms = torch.zeros(len(record), reps, dtype=torch.float64, device=x.device)
    check_every = 1 if x.device.type == "cpu" else 25
    v = g.unsqueeze(0).repeat(reps, 1)
    # One batch buffer for all steps, and the labels gathered at once: no per-step allocations (see below).
    x_batch = torch.empty((reps * batch_size, *x.shape[1:]), dtype=x.dtype, device=x.device)
    y_batches = y[indices.reshape(-1)].view(depth, reps, batch_size)
    with torch.no_grad():
        for t in range(1, depth + 1):
            # index_select on dim 0 is about twice as fast as advanced indexing with a 2-D index here (CPU).
            xb = torch.index_select(x, 0, indices[t - 1].reshape(-1), out=x_batch)
            xb = xb.view(reps, batch_size, *x.shape[1:])
            # v ← g + (1 − (wd+λ)/H)·v − ∇²L(B_t)v / H, written in place.
            if isinstance(bhvp, MLPBatchedHVP) and extra_hvp is None:
                bhvp.lissa_update_(v, xb, y_batches[t - 1], g=g, decay=decay, alpha=1.0 / h)
            else:
                hv = bhvp(v, xb, y_batches[t - 1])  # before v changes
                if extra_hvp is not None:
                    hv = hv + extra_hvp(v)
                v.mul_(decay).add_(g).sub_(hv, alpha=1.0 / h)
            pos = record_pos.get(t)
            check = t % check_every == 0 or t == depth
            if pos is not None or check:
                step_norm = torch.linalg.vector_norm(v, dim=1)
                if pos is not None:
                    norms[pos] = step_norm / h
            if check:
                worst = float(step_norm.max())
                if not math.isfinite(worst) or worst > blowup * (t + 1) * max(g_norm, 1e-30):
                    _raise_divergence(model, x, y, t=t, norm=worst / h, h=h, lam=lam, weight_decay=weight_decay,
                                      batch_size=batch_size, seed=seed, known=lambda_max_sampled,
                                      hvp_backend=hvp_backend)
            if progress is not None and t % progress_every == 0:
                progress(t)
    final = v / h
    mean = final.mean(dim=0)
    spread = 0.0
    if reps > 1:
        spread = float(torch.linalg.vector_norm(final.std(dim=0)) / torch.linalg.vector_norm(mean).clamp_min(1e-30))
    return LissaResult(
        ihvp=mean,
        scale=h,
        depth=depth,
        reps=reps,
        batch_size=batch_size,
        lambda_max_sampled=lambda_max_sampled,
        steps=record,
        norms=norms.cpu().tolist(),
        num_hvps=depth * reps,
        rep_spread=spread,
        hvp_backend=backend,
    )


def _raise_divergence(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    t: int,
    norm: float,
    h: float,
    lam: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    known: float | None,
    hvp_backend: str = "auto",
) -> None:
    """Raise the DivergenceError with a measured λ_max so the message says what H would do."""
    try:
        lmax = known if known is not None else sampled_lambda_max(
            model, x, y, batch_size=batch_size, lam=lam, weight_decay=weight_decay, seed=seed + 1,
            hvp_backend=hvp_backend,
        )
        hint = f"increase H above the mini-batch λ_max≈{lmax:.4g} (e.g. H={1.5 * lmax:.3g} or H=auto)"
        if lmax < h:
            hint = (
                f"H={h:g} already exceeds the mini-batch λ_max≈{lmax:.4g}, so the growth comes from negative "
                "curvature: increase lam (the local convex term) or reduce depth"
            )
    except DivergenceError:
        hint = "increase H (or use H=auto) and/or lam"
    shown = "nan" if not math.isfinite(norm) else f"{norm:.3g}"
    raise DivergenceError(f"LiSSA diverged at step {t} (‖v‖/H={shown}, H={h:g}): {hint}")

