r"""NegGrad and NegGrad+ (heuristic baselines; methods.md §5).

* **NegGrad**: gradient *ascent* on the forget set's cross-entropy, :math:`w \leftarrow w + \eta\nabla L(w; D_u)`.
  It lowers the forget accuracy quickly and, unchecked, destroys the model (the loss is unbounded above), so
  the number of epochs is the real hyperparameter.
* **NegGrad+** (Kurmanji et al. 2023): each step descends
  :math:`\alpha\,L(w; B_r) - (1-\alpha)\,L(w; B_u)` on a retain batch and a forget batch, so the retain term
  keeps the model useful while the forget term pushes D_u away.

No guarantee of any kind; these are the heuristics every unlearning paper compares with.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.finetune import (
    has_batchnorm,
    recompute_batchnorm_stats,
    reset_batchnorm_stats,
    sgd_finetune,
)
from unlearn_core.unlearners.registry import register_unlearner


def _weight_decay(ctx: UnlearnContext, value: float | None) -> float:
    return float(getattr(ctx.train_config, "weight_decay", 0.0)) if value is None else float(value)


_WD = HyperParam(
    "weight_decay", float, None, "coupled weight decay; none = the training recipe's", low=0.0, high=1.0,
    optional=True,
)


@register_unlearner
class NegGrad(Unlearner):
    """Gradient ascent on D_u. Defaults: SGD (momentum 0.9) lr 0.01, 5 epochs over D_u, batch 64.

    On digits-MLP (10 % forgotten) this drives the forget accuracy well below the retrained model's, with a
    visible drop on the retain and test sets — the over-forgetting the metrics page warns about.
    """

    name = "neggrad"
    family = "heuristic"
    paper = "NegGrad baseline (gradient ascent on the forget set; e.g. Golatkar et al. 2020)"
    summary = "Gradient ascent on the forget set (heuristic, no guarantee; easily over-forgets)."
    schema = (
        HyperParam("epochs", int, 5, "epochs of gradient ascent over the forget set", low=0, high=10_000),
        HyperParam("lr", float, 0.01, "SGD learning rate", low=1e-6, high=10.0, log=True),
        HyperParam("momentum", float, 0.9, "SGD momentum", low=0.0, high=0.999),
        HyperParam("batch_size", int, 64, "mini-batch size on the forget set", low=1, high=65536),
        _WD,
    )

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        model = ctx.copy_model()
        wd = _weight_decay(ctx, params["weight_decay"])
        bn = has_batchnorm(model)
        summary = sgd_finetune(
            model, ctx.x_forget, ctx.y_forget, epochs=params["epochs"], lr=params["lr"],
            batch_size=params["batch_size"], weight_decay=wd, momentum=params["momentum"],
            generator=ctx.generator(), ctx=ctx, stage="neggrad", sign=-1.0,
        )
        if bn:
            recompute_batchnorm_stats(model, ctx.x_retain)
        return UnlearnResult(
            model=model, certificate=None,
            diagnostics={"ascent": summary, "weight_decay": wd, "batchnorm_recomputed_on_retain": bn},
        )


@register_unlearner
class NegGradPlus(Unlearner):
    """α·descent on D_r − (1−α)·ascent on D_u per step (Kurmanji et al. 2023).

    Defaults (α is unverified in the literature; chosen on digits-MLP): α = 0.9, SGD (momentum 0.9) lr 0.01,
    3 epochs over D_r with a forget batch drawn alongside every retain batch, batch 64 each.
    """

    name = "neggrad_plus"
    family = "heuristic"
    paper = "Kurmanji, Triantafillou, Hayes, Triantafillou, NeurIPS 2023 (NegGrad+)"
    summary = "Descend on the retain set while ascending on the forget set (heuristic, no guarantee)."
    schema = (
        HyperParam("alpha", float, 0.9, "weight of the retain descent; 1 − alpha weights the forget ascent",
                   low=0.0, high=1.0),
        HyperParam("epochs", int, 3, "epochs over the retain set", low=0, high=10_000),
        HyperParam("lr", float, 0.01, "SGD learning rate", low=1e-6, high=10.0, log=True),
        HyperParam("momentum", float, 0.9, "SGD momentum", low=0.0, high=0.999),
        HyperParam("batch_size", int, 64, "mini-batch size on each of the two sets", low=1, high=65536),
        _WD,
    )

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        model = ctx.copy_model()
        wd = _weight_decay(ctx, params["weight_decay"])
        bn = has_batchnorm(model)
        if bn:
            reset_batchnorm_stats(model)
        x_r, y_r, x_u, y_u = ctx.x_retain, ctx.y_retain, ctx.x_forget, ctx.y_forget
        n_r, n_u = int(x_r.shape[0]), int(x_u.shape[0])
        bs, alpha = params["batch_size"], params["alpha"]
        gen = ctx.generator()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=params["lr"],
                              momentum=params["momentum"], weight_decay=wd)
        steps_per_epoch = math.ceil(n_r / bs) if n_r else 0
        total = steps_per_epoch * params["epochs"]
        curve: list[dict[str, float]] = []
        start = time.perf_counter()
        step = 0
        model.train()
        for _ in range(params["epochs"]):
            order_r = torch.randperm(n_r, generator=gen).to(x_r.device)
            for b in range(steps_per_epoch):
                idx_r = order_r[b * bs : (b + 1) * bs]
                loss_r = nn.functional.cross_entropy(model(x_r[idx_r]), y_r[idx_r])
                loss = alpha * loss_r
                loss_u = torch.zeros(())
                if n_u and alpha < 1:
                    idx_u = torch.randint(n_u, (min(bs, n_u),), generator=gen).to(x_u.device)
                    loss_u = nn.functional.cross_entropy(model(x_u[idx_u]), y_u[idx_u])
                    loss = loss - (1.0 - alpha) * loss_u
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step % max(1, total // 20) == 0 or step == total:
                    curve.append({"step": step, "loss_retain": float(loss_r.detach()),
                                  "loss_forget": float(loss_u.detach())})
                    ctx.report(stage="neggrad_plus", step=step, steps=total, loss=float(loss.detach()))
        model.eval()
        if bn:
            recompute_batchnorm_stats(model, x_r)
        return UnlearnResult(
            model=model, certificate=None,
            diagnostics={"steps": step, "curve": curve, "time_s": time.perf_counter() - start, "weight_decay": wd,
                         "alpha": alpha, "batchnorm_recomputed_on_retain": bn},
        )
