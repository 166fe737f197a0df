r"""NegGrad and NegGrad+ (heuristic baselines; NegGrad+ of Kurmanji et al. 2023).

* **NegGrad**: gradient *ascent* on the forget set's cross-entropy, :math:`w \leftarrow w + \eta\nabla L(w; D_u)`.
  It lowers the forget accuracy quickly and, unchecked, destroys the model (the loss is unbounded above), so
  the gradients are clipped and the ascent stops once the forget accuracy reaches a retrained model's
  expected level.
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

from unlearn_core.diagnostics import Diagnostics
from unlearn_core.errors import DivergenceError
from unlearn_core.training import trainable
from unlearn_core.unlearners._finetuning import (
    check_finite,
    fixed_subsample,
    recompute_batchnorm_stats,
    record_phase,
    sgd_finetune,
)
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner

_WD = HyperParam(
    "weight_decay", float, None, "coupled weight decay; none = the training recipe's", low=0.0, high=1.0,
    optional=True, label="Weight decay",
)


#: Forget points (a fixed seeded subsample) on which NegGrad's early-stop rule measures the forget accuracy.
STOP_EVAL_POINTS = 512


@torch.no_grad()
def forget_accuracy_target(model: nn.Module, ctx: UnlearnContext) -> float:
    """What a retrained model's accuracy on D_u should be, estimated without retraining.

    A forgotten point whose class still has retain points is, to the retrained model, an unseen point of that
    class, so its expected accuracy is the original model's test accuracy on that class (a proxy: the original
    model generalises about as well as the retrained one). A point whose class was removed entirely (class
    forgetting) should be classified correctly with probability ≈ 0. The target is the mean over D_u.
    """
    y_u = ctx.y_forget
    if y_u.numel() == 0:
        return 0.0
    model.eval()
    correct = torch.zeros(ctx.num_classes, dtype=torch.float64)
    count = torch.zeros(ctx.num_classes, dtype=torch.float64)
    for start in range(0, int(ctx.x_test.shape[0]), 1024):
        xb, yb = ctx.x_test[start : start + 1024], ctx.y_test[start : start + 1024]
        hit = (model(xb).argmax(1) == yb).double().cpu()
        correct.index_add_(0, yb.cpu(), hit)
        count.index_add_(0, yb.cpu(), torch.ones_like(hit))
    per_class = correct / count.clamp(min=1)
    per_class[count == 0] = float(correct.sum() / count.sum().clamp(min=1))  # no test point of the class
    kept = torch.zeros(ctx.num_classes, dtype=torch.bool)
    kept[ctx.y_retain.cpu().unique()] = True
    expected = torch.where(kept, per_class, torch.zeros_like(per_class))
    return float(expected[y_u.cpu()].mean())


@register_unlearner
class NegGrad(Unlearner):
    """Gradient ascent on D_u, clipped and stopped early at the retrained model's expected forget accuracy.

    Defaults: SGD lr 0.01 without momentum, at most 20 epochs over D_u, batch 64, mini-batch gradients clipped to
    norm 1, and an early stop as soon as the forget accuracy (on ≤ 512 fixed forget points, checked after every
    step) falls to the level a retrained model should have there (:func:`forget_accuracy_target`: the original
    model's per-class test accuracy, 0 for a class removed entirely). NegGrad papers stop early too: ascent on an
    unbounded loss has no fixed point, so unchecked it drives every split to chance and then overflows (the
    earlier defaults — momentum 0.9, no clipping, no stop — gave NaN weights on MNIST). A non-finite loss or
    weight raises :class:`~unlearn_core.errors.DivergenceError` instead of returning the model.
    """

    name = "neggrad"
    family = "heuristic"
    paper = "NegGrad baseline (gradient ascent on the forget set; e.g. Golatkar et al. 2020)"
    summary = "Gradient ascent on the forget set, stopped early (heuristic, no guarantee; easily over-forgets)."
    schema = (
        HyperParam("epochs", int, 20, "maximum epochs of gradient ascent over the forget set (the early stop "
                   "usually ends it sooner)", low=0, high=10_000,
                   level="basic", label="Epochs (at most)", unit="epochs"),
        HyperParam("lr", float, 0.01, "SGD learning rate", low=1e-6, high=10.0, log=True,
                   level="basic", label="Learning rate"),
        HyperParam("momentum", float, 0.0, "SGD momentum (momentum accelerates the ascent past the stop)",
                   low=0.0, high=0.999, label="Momentum"),
        HyperParam("batch_size", int, 64, "mini-batch size on the forget set", low=1, high=65536,
                   label="Batch size", unit="points"),
        HyperParam("max_grad_norm", float, 1.0, "clip each mini-batch gradient to this norm; none = no clipping",
                   low=1e-9, log=True, optional=True, label="Gradient clipping norm"),
        HyperParam("stop_forget_acc", float, "auto", "stop once the forget accuracy is at or below this; 'auto' = "
                   "a retrained model's expected level (original per-class test accuracy, 0 for a removed "
                   "class); none = run every epoch", low=0.0, high=1.0, auto=True, optional=True,
                   level="basic", label="Stop at forget accuracy"),
        _WD,
    )

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """At most ``epochs`` epochs of gradient ascent over the forget set (it stops early at ``stop_forget_acc``)."""
        from unlearn_core.limits import estimate_minibatch_method

        n_forget = max(1, n_forget)
        estimate = estimate_minibatch_method(shape, batch_size=min(int(params["batch_size"]), n_forget), n=n_forget,
                                             epochs=int(params["epochs"]))
        estimate.caps.append("epochs (gradient ascent stops early)")
        return estimate

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        model = ctx.copy_model()
        wd = ctx.weight_decay(params["weight_decay"])
        target = params["stop_forget_acc"]
        if target == "auto":
            target = forget_accuracy_target(model, ctx)
        stop_when = None
        trace: list[float] = []
        if target is not None:
            x_check, y_check = fixed_subsample(ctx.x_forget, ctx.y_forget, size=STOP_EVAL_POINTS,
                                               generator=ctx.generator(offset=3))

            @torch.no_grad()
            def stop_when() -> bool:
                acc = float((model(x_check).argmax(1) == y_check).float().mean())
                trace.append(acc)
                return acc <= target

        hint = (f"lower lr (now {params['lr']:g}) or momentum (now {params['momentum']:g}), set max_grad_norm "
                f"(now {params['max_grad_norm']}), or stop earlier (epochs={params['epochs']}, stop_forget_acc)")
        summary = sgd_finetune(
            model, ctx.x_forget, ctx.y_forget, epochs=params["epochs"], lr=params["lr"],
            batch_size=params["batch_size"], weight_decay=wd, momentum=params["momentum"],
            generator=ctx.generator(), ctx=ctx, stage="neggrad", sign=-1.0, max_grad_norm=params["max_grad_norm"],
            stop_when=stop_when, divergence_hint=hint,
        )
        bn = recompute_batchnorm_stats(model, ctx.x_retain)
        diag = Diagnostics(time_s=summary["time_s"], num_gradients=summary["steps"],
                           details={"weight_decay": wd, "batchnorm_recomputed_on_retain": bn,
                                    "stop_forget_acc": target, "stopped_early": summary.get("stopped_early", False)})
        record_phase(diag, "ascent", summary)
        for step, acc in enumerate(trace):  # checked before the first step and after every step
            diag.add_curve("ascent", step, forget_accuracy=acc)
        return UnlearnResult(model=model, certificate=None, diagnostics=diag)


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
    budget_param = "epochs"
    schema = (
        HyperParam("alpha", float, 0.9, "weight of the retain descent; 1 − alpha weights the forget ascent",
                   low=0.0, high=1.0, level="basic", label="α — retain weight"),
        HyperParam("epochs", int, 3, "epochs over the retain set", low=0, high=10_000,
                   level="basic", label="Epochs", unit="epochs"),
        HyperParam("lr", float, 0.01, "SGD learning rate", low=1e-6, high=10.0, log=True,
                   level="basic", label="Learning rate"),
        HyperParam("momentum", float, 0.9, "SGD momentum", low=0.0, high=0.999, label="Momentum"),
        HyperParam("batch_size", int, 64, "mini-batch size on each of the two sets", low=1, high=65536,
                   label="Batch size", unit="points"),
        _WD,
    )

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """``epochs`` epochs over the retain set, a forget batch drawn beside each retain batch (two batches a step)."""
        from unlearn_core.limits import estimate_minibatch_method

        n_retain = max(1, n_train - n_forget)
        batch = min(int(params["batch_size"]), n_retain)
        estimate = estimate_minibatch_method(shape, batch_size=batch, n=n_retain, epochs=int(params["epochs"]))
        for stage in estimate.work.values():
            stage[0] *= 2.0
        estimate.flops *= 2.0
        return estimate

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        model = ctx.copy_model()
        wd = ctx.weight_decay(params["weight_decay"])
        x_r, y_r, x_u, y_u = ctx.x_retain, ctx.y_retain, ctx.x_forget, ctx.y_forget
        n_r, n_u = int(x_r.shape[0]), int(x_u.shape[0])
        bs, alpha = params["batch_size"], params["alpha"]
        gen = ctx.generator()
        opt = torch.optim.SGD(trainable(model), lr=params["lr"],
                              momentum=params["momentum"], weight_decay=wd)
        steps_per_epoch = math.ceil(n_r / bs) if n_r else 0
        total = steps_per_epoch * params["epochs"]
        hint = (f"raise alpha (now {alpha:g}) or lower lr (now {params['lr']:g}) or momentum "
                f"(now {params['momentum']:g})")
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
                if not torch.isfinite(loss):
                    value = float(loss.detach())
                    raise DivergenceError(f"neggrad_plus diverged at step {step + 1}/{total} (loss = {value}): {hint}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step % max(1, total // 20) == 0 or step == total:
                    curve.append({"step": step, "loss_retain": float(loss_r.detach()),
                                  "loss_forget": float(loss_u.detach())})
                    ctx.report(stage="neggrad_plus", step=step, steps=total, loss=float(loss.detach()))
        model.eval()
        check_finite(model, stage="neggrad_plus", hint=hint)
        # Every forward above ran in train mode (batch statistics), so the old running statistics were never
        # read: resetting and recomputing them from D_r here is all it takes.
        bn = recompute_batchnorm_stats(model, x_r)
        diag = Diagnostics(time_s=time.perf_counter() - start, num_gradients=2 * step,
                           details={"steps": step, "weight_decay": wd, "alpha": alpha,
                                    "batchnorm_recomputed_on_retain": bn})
        for point in curve:
            diag.add_curve("neggrad_plus", point["step"], loss_retain=point["loss_retain"],
                           loss_forget=point["loss_forget"])
        return UnlearnResult(model=model, certificate=None, diagnostics=diag)
