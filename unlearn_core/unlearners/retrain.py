"""Retraining from scratch on the retain set: the exact-unlearning oracle every metric compares with."""

from __future__ import annotations

import dataclasses
from typing import Any

from unlearn_core.diagnostics import Diagnostics
from unlearn_core.training import train
from unlearn_core.unlearners.base import HyperParam, UnlearnContext, Unlearner, UnlearnResult
from unlearn_core.unlearners.registry import register_unlearner


@register_unlearner
class Retrain(Unlearner):
    """A(D_r): the same recipe from the same fresh initialisation, on the retain set only.

    This is exact unlearning by definition — the released model never saw D_u — and the cost every cheaper
    method is measured against. With ``seed_offset=0`` it reproduces the pipeline's retrained oracle exactly
    (on a CPU); other offsets give independent retrains, whose spread is the noise floor of every distance.
    """

    name = "retrain"
    family = "oracle"
    paper = "exact unlearning baseline (retrain from scratch on D_r)"
    summary = "Retrain from the same initialisation on the retain set (the gold standard, and the slowest)."
    budget_param = "epochs"
    schema = (
        HyperParam(
            "epochs", int, None, "epochs of retraining (an L-BFGS recipe: iterations); none = the recipe's budget",
            low=0, high=10_000, optional=True, level="basic", label="Epochs", unit="epochs",
        ),
        HyperParam(
            "seed_offset", int, 0, "added to the run seed for initialisation and shuffling; 0 = the oracle itself",
            low=0, high=1_000_000, label="Seed offset",
        ),
    )

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """Training from scratch on the retain set with the recipe (``epochs``, when set, replacing its budget)."""
        from unlearn_core import limits

        if train is None:
            return None
        epochs, max_iter = train.epochs, train.max_iter
        if params.get("epochs") is not None:
            epochs = max_iter = int(params["epochs"])
        return limits.Estimate().add_work("unlearn", *limits.training_work(
            shape, n=max(1, n_train - n_forget), batch_size=train.batch_size, epochs=epochs,
            optimizer=train.optimizer, max_iter=max_iter))

    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        config = ctx.train_config
        if params["epochs"] is not None:
            # An L-BFGS recipe counts iterations, not epochs: the budget caps those instead.
            budget = "max_iter" if config.optimizer == "lbfgs" else "epochs"
            config = dataclasses.replace(config, **{budget: int(params["epochs"])})
        config = dataclasses.replace(config, seed=config.seed + int(params["seed_offset"]))
        model = ctx.model_factory(int(params["seed_offset"]))
        summary = train(
            model, ctx.x_retain, ctx.y_retain, config, progress=ctx.progress, cancel=ctx.cancel, stage="unlearn"
        )
        diag = Diagnostics(time_s=summary["time_s"], num_gradients=summary["steps"],
                           details={"training": summary, "recipe": config.to_json()})
        return UnlearnResult(model=model, certificate=None, diagnostics=diag)
