"""The checks before any work: a run configuration's bounds and its memory and compute estimate.

:func:`unlearn_core.pipeline.validate_config` calls :func:`check_run_config` once per run, at the entry (the CLI,
the dashboard's job submission, the experiments' entry). This module has the model: it builds the model's shape on
the ``meta`` device (:func:`unlearn_core.models.model_shape`, nothing allocated) and hands it to the pure estimate
functions of :mod:`unlearn_core.limits`, which hold the numbers.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from unlearn_core import limits
from unlearn_core.data import DatasetInfo, get_dataset_info
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.limits import Estimate, ModelShape
from unlearn_core.models import model_shape
from unlearn_core.run_config import RunConfig

if TYPE_CHECKING:  # the type only, for the reader
    from unlearn_core.unlearners import Unlearner


def config_shape(config: RunConfig, info: DatasetInfo | None = None) -> ModelShape:
    """The :class:`~unlearn_core.limits.ModelShape` of ``config``'s model on its dataset (meta device)."""
    info = info or get_dataset_info(config.dataset)
    return model_shape(config.model, input_shape=info.input_shape, num_classes=info.num_classes,
                       hidden=tuple(config.hidden), norm=config.norm, width=config.width)


def forget_count(spec: str, info: DatasetInfo) -> int:
    """How many training points a forget spec removes, known without the labels (a class's share is taken as
    ``n_train / num_classes``): what the retrained model's and the methods' work depend on."""
    from unlearn_core.forget import parse_forget_spec

    parsed = parse_forget_spec(spec)
    n = info.n_train
    if parsed.kind == "random":
        count = parsed.count if parsed.count is not None else round((parsed.fraction or 0.0) * n)
    elif parsed.kind == "class":
        count = round(n * len(parsed.classes) / max(1, info.num_classes))
    elif parsed.kind == "class-fraction":
        count = round(n / max(1, info.num_classes) * (parsed.fraction or 0.0))
    else:
        count = len(parsed.indices)
    return int(min(max(count, 1), max(1, n - 1)))


def method_estimate(unlearner: Unlearner, params: Mapping[str, Any], *, shape: ModelShape, n_train: int,
                    n_forget: int, train: Any) -> Estimate | None:
    """The method's own :meth:`~unlearn_core.unlearners.base.Unlearner.work_estimate`, given what it accepts of
    the forget set's size and the training recipe (a method written before those keywords existed still works)."""
    fn = unlearner.work_estimate
    try:
        accepted = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        accepted = {}
    extra = {"n_forget": n_forget, "train": train}
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        extra = {k: v for k, v in extra.items() if k in accepted}
    return fn(dict(params), shape=shape, n_train=n_train, **extra)


def estimate_run(config: RunConfig, unlearner: Unlearner, params: Mapping[str, Any],
                 shape: ModelShape | None = None) -> Estimate:
    """The whole run's estimate: data, training (original and retrained, with the recipe as it will run: L-BFGS
    for a convex model on ``auto``), the method's own work, and the metrics."""
    from unlearn_core.models import get_model_info
    from unlearn_core.training import resolve_train_config

    info = get_dataset_info(config.dataset)
    if shape is None:
        shape = config_shape(config, info)
    train = resolve_train_config(config.train, convex=get_model_info(config.model).convex)
    n_forget = forget_count(config.forget, info)
    total = limits.estimate_training(shape, n_train=info.n_train, n_test=info.n_test,
                                     batch_size=train.batch_size, epochs=train.epochs, optimizer=train.optimizer,
                                     max_iter=train.max_iter, n_retain=info.n_train - n_forget,
                                     retrain=config.compute_retrained)
    return total.merge(method_estimate(unlearner, params, shape=shape, n_train=info.n_train, n_forget=n_forget,
                                       train=train))


def check_run_config(config: RunConfig, unlearner: Unlearner, params: Mapping[str, Any], *,
                     device: Any = None) -> Estimate:
    """Every bound of a :class:`~unlearn_core.pipeline.RunConfig`, then its memory and compute estimate.

    Raises:
        ConfigError: one line naming the value, and for the estimate the estimate and the limit.
    """
    for name in ("seed", "forget_seed", "split_seed"):
        limits.check_seed(name, getattr(config, name))
    limits.check_train_limits(config.train)
    hidden = tuple(config.hidden)
    if not 1 <= len(hidden) <= limits.MAX_HIDDEN_LAYERS:
        raise ConfigError(f"hidden={abbreviate(hidden)} is not valid: expected 1-{limits.MAX_HIDDEN_LAYERS} widths")
    for h in hidden:
        limits.check_int("hidden", h, low=1, high=limits.MAX_HIDDEN_WIDTH)
    if config.width is not None:
        limits.check_int("width", config.width, low=1, high=limits.MAX_CONV_WIDTH,
                         why=_width_cost(config) if isinstance(config.width, int) and config.width > 0 else "")
    return check_estimate(config, unlearner, params, device=device)


def check_estimate(config: RunConfig, unlearner: Unlearner, params: Mapping[str, Any], *,
                   device: Any = None) -> Estimate:
    """Refuse a run whose estimated memory or arithmetic is above the limits (:func:`estimate_run`,
    :func:`unlearn_core.limits.refuse_over_limits`)."""
    return limits.refuse_over_limits(estimate_run(config, unlearner, params), what=_what(config, params),
                                     device=device)


def _width_cost(config: RunConfig) -> str:
    info = get_dataset_info(config.dataset)
    shape = model_shape(config.model, input_shape=info.input_shape, num_classes=info.num_classes, norm=config.norm,
                        width=config.width)
    return f"{config.model} at width {config.width:,} has {shape.num_params:,} parameters, " \
           f"{limits.format_bytes(limits.FLOAT_BYTES * shape.num_params)} before gradients"


def _what(config: RunConfig, params: Mapping[str, Any]) -> str:
    """The values that drive the estimate, for the message (``model=cnn width=100000 batch_size=128 ...``)."""
    parts = [f"dataset={config.dataset}", f"model={config.model}"]
    if config.model == "mlp":
        parts.append("hidden=" + "-".join(map(str, config.hidden)))
    if config.width is not None:
        parts.append(f"width={config.width}")
    parts += [f"batch_size={config.train.batch_size}", f"epochs={config.train.epochs}"]
    for name in ("depth", "reps", "batch", "batch_size", "requests", "hvp_batch"):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and (name != "requests" or value > 1):
            parts.append(f"{config.method}.{name}={value}")
    return "the run (" + " ".join(parts) + ")"


def threads_for(config: RunConfig, *, cores: int | None = None) -> int:
    """torch's intra-op threads for ``config``'s training steps (:func:`unlearn_core.device.intra_op_threads` of the
    step's arithmetic: 3 forward passes × the batch). One thread for the digits MLP, every core for a CNN on CIFAR."""
    from unlearn_core.device import intra_op_threads

    info = get_dataset_info(config.dataset)
    shape = config_shape(config, info)
    batch = min(config.train.batch_size, info.n_train)
    return intra_op_threads(step_flops=3.0 * shape.flops * batch, cores=cores)
