"""Fine-tuning on the retain set (heuristic baseline): continue training on D_r with SGD.

The loop and the BatchNorm recomputation are the shared helpers of :mod:`unlearn_core.unlearners._finetuning`.
"""

from __future__ import annotations

from typing import Any

from unlearn_core.diagnostics import Diagnostics
from unlearn_core.unlearners._finetuning import SCHEDULES, recompute_batchnorm_stats, record_phase, sgd_finetune
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner


@register_unlearner
class FineTune(Unlearner):
    """Continue training on D_r only and hope the forget set fades (catastrophic forgetting as unlearning).

    Defaults (the R2D port used 10 epochs; the optimiser is the project's choice): SGD with momentum 0.9,
    lr 0.01, constant schedule, 5 epochs, batch 128 and the training recipe's weight decay. On digits-MLP this
    keeps the retain accuracy at the original level and lowers the forget accuracy only slightly — which is the
    point of the baseline: fine-tuning alone forgets little.
    """

    name = "finetune"
    family = "heuristic"
    paper = "fine-tuning baseline (e.g. Golatkar et al. 2020; Zhang et al. 2024)"
    summary = "Keep training on the retain set only (heuristic, no guarantee)."
    budget_param = "epochs"
    schema = (
        HyperParam("epochs", int, 5, "epochs of SGD on the retain set (R2D port: 10)", low=0, high=1000,
                   level="basic", label="Epochs", unit="epochs"),
        HyperParam("lr", float, 0.01, "SGD learning rate", low=1e-6, high=10.0, log=True,
                   level="basic", label="Learning rate"),
        HyperParam("momentum", float, 0.9, "SGD momentum", low=0.0, high=0.999, label="Momentum"),
        HyperParam("batch_size", int, 128, "mini-batch size", low=1, high=65536, label="Batch size", unit="points"),
        HyperParam(
            "weight_decay", float, None, "coupled weight decay; none = the training recipe's", low=0.0, high=1.0,
            optional=True, label="Weight decay",
        ),
        HyperParam("schedule", str, "constant", "learning-rate schedule", choices=SCHEDULES, label="Schedule"),
    )

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        model = ctx.copy_model()
        wd = ctx.weight_decay(params["weight_decay"])
        x_r, y_r = ctx.x_retain, ctx.y_retain
        summary = sgd_finetune(
            model, x_r, y_r, epochs=params["epochs"], lr=params["lr"], batch_size=params["batch_size"],
            weight_decay=wd, momentum=params["momentum"], generator=ctx.generator(), schedule=params["schedule"],
            ctx=ctx, divergence_hint=f"lower lr (now {params['lr']:g})",
        )
        # The fine-tuning ran in train mode (batch statistics), so nothing read the old running statistics:
        # resetting and recomputing them from D_r here is all it takes.
        bn = recompute_batchnorm_stats(model, x_r)
        diag = Diagnostics(time_s=summary["time_s"], num_gradients=summary["steps"],
                           details={"weight_decay": wd, "batchnorm_recomputed_on_retain": bn})
        record_phase(diag, "finetune", summary)
        return UnlearnResult(model=model, certificate=None, diagnostics=diag)
