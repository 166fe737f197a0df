"""The experiments' own arguments, checked before their first training (the CLI's ``experiment`` subcommands).

Each experiment's argument check lives here, on the experiments' side of the layers: it may ask
:mod:`unlearn_core.experiments` (the audit's arguments, the forget-size sweep's specs) and the run-configuration
check (:func:`unlearn_core.preflight.check_estimate`), which the low layer :mod:`unlearn_core.limits` may not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from unlearn_core.data import get_dataset_info, load_dataset
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.experiments import check_audit_args, forget_size_specs
from unlearn_core.forget import select_forget
from unlearn_core.limits import (
    MAX_EPOCHS,
    MAX_SEED,
    MAX_SEEDS,
    MAX_SWEEP_POINTS,
    RELEARN_STEPS_RANGE,
    check_float,
    check_int,
    check_seed,
)
from unlearn_core.pipeline import RunConfig
from unlearn_core.preflight import check_estimate
from unlearn_core.unlearners import get_unlearner, resolve_params


def forget_size(config: RunConfig) -> int:
    """The number of forgotten points of ``config`` (loads the labels, memoised; trains nothing)."""
    data = load_dataset(config.dataset, data_dir=config.data_dir, download=config.download, device="cpu",
                        split_seed=config.split_seed)
    forget, _ = select_forget(config.forget, data.y_train, seed=config.forget_seed, num_classes=data.num_classes,
                              x_train=data.x_train)
    return int(forget.numel())


def check_experiment_options(
    kind: str,
    base: RunConfig,
    options: Mapping[str, Any],
    *,
    runs: Sequence[tuple[str, Mapping[str, Any]]] = (),
    device: Any = None,
) -> None:
    """The arguments of ``experiment <kind>`` that the experiment would check only after training.

    ``options`` are the subcommand's parsed flags by name (``seeds``, ``requests``, ``runs``, ``runs_per_cell``,
    ``sigma_factors``, ``statistic``, ``alpha``, ``methods``, ``sizes``, ``values``, ``budgets``,
    ``relearn_max_steps``); the ones a kind lacks are ignored. ``runs`` are the
    (method, hyperparameters) pairs the experiment will run: each is checked against the memory and compute limits
    (:func:`check_estimate`), e.g. a sensitivity sweep over ``reps`` up to 1000 at ``batch=100000``.

    Raises:
        ConfigError: one line naming the argument, its value and what is allowed.
    """
    seeds = list(options.get("seeds") or [])
    if not seeds or len(seeds) > MAX_SEEDS or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds={abbreviate(','.join(map(str, seeds)))} is not valid: expected 1 to {MAX_SEEDS} "
                          "distinct integers")
    for seed in seeds:
        check_seed("seed", seed)
    for name in ("sigma_factors", "sizes", "values", "budgets"):
        points = options.get(name)
        if points is not None and not 1 <= len(points) <= MAX_SWEEP_POINTS:
            raise ConfigError(f"{name} has {len(points)} entries: expected 1 to {MAX_SWEEP_POINTS}")
    if kind == "compare" and options.get("relearn", True):
        check_int("relearn-max-steps", options.get("relearn_max_steps"), low=RELEARN_STEPS_RANGE[0],
                  high=RELEARN_STEPS_RANGE[1])
    if kind == "budget":
        for budget in options.get("budgets") or []:
            check_int("budgets", budget, low=0, high=MAX_EPOCHS)
    if kind == "audit":
        check_audit_args(methods=options.get("methods"), params=options.get("params"),
                         sigma_factors=options.get("sigma_factors") or (1.0,), runs=options.get("runs"),
                         statistic=options.get("statistic", "auto"), alpha=options.get("alpha"),
                         runs_per_cell=options.get("runs_per_cell", 1))
    if kind in ("forget-size", "forget_size"):
        n_train = get_dataset_info(base.dataset).n_train
        for spec in forget_size_specs(options.get("sizes") or []):
            count = spec.split(":", 1)[1]
            if "." not in count and int(count) >= n_train:
                raise ConfigError(f"sizes={count} is not valid: the training split of {base.dataset} has {n_train:,} "
                                  f"points, so a forget set of at most {n_train - 1:,}")
    if kind == "sensitivity":
        for value in options.get("values") or []:
            check_float("values", value, low=-1e300, high=1e300)
    if kind == "sequential" and runs:
        method = runs[0][0]
        if not get_unlearner(method).sequential:
            raise ConfigError(f"method {method!r} has no 'requests' hyperparameter: sequential needs one "
                              "(e.g. certified_newton)")
    for method, params in runs:
        unlearner = get_unlearner(method)
        resolved = resolve_params(unlearner.schema, dict(params), method=method)
        check_estimate(dataclasses.replace(base, method=method), unlearner, resolved, device=device)
    if kind == "sequential":
        requests = options.get("requests")
        check_int("requests", requests, low=1, high=MAX_SEED)
        n_forget = forget_size(base)
        if requests > n_forget:
            raise ConfigError(f"requests={requests} is not valid: the forget set {abbreviate(base.forget)} has "
                              f"{n_forget} points, so at most {n_forget} requests")


