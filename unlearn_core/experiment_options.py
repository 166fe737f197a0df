"""The experiments' own arguments, checked before their first training (the CLI's ``experiment`` subcommands).

Each experiment's argument check lives here, on the experiments' side of the layers: it may ask
:mod:`unlearn_core.experiments` (the audit's arguments, the forget-size sweep's specs) and the run-configuration
check (:func:`unlearn_core.preflight.check_estimate`), which the low layer :mod:`unlearn_core.limits` may not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from unlearn_core.data import get_dataset_info, load_dataset
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.experiments import check_audit_args, forget_size_specs
from unlearn_core.forget import check_forget_spec, select_forget
from unlearn_core.limits import (
    MAX_EPOCHS,
    MAX_SEED,
    MAX_SEEDS,
    MAX_SWEEP_POINTS,
    RELEARN_STEPS_RANGE,
    Estimate,
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


def check_forget_sizes(base: RunConfig, sizes: Sequence[float]) -> list[int]:
    """The forget-set sizes of ``experiment forget-size`` as point counts, each in [1, n_train − 1] and distinct.

    A fraction is a share of the training split (rounded as :func:`unlearn_core.forget.select_forget` rounds it):
    ``--sizes 1e-9`` was an ``int('1e-09')`` traceback, ``0.9999999`` became the count 1, ``1e300`` was echoed as a
    301-digit number.

    Raises:
        ConfigError: one line naming the size (abbreviated), what it amounts to, and what is allowed.
    """
    info = get_dataset_info(base.dataset)
    n_train = info.n_train
    counts = []
    for size, spec in zip(sizes, forget_size_specs(sizes), strict=True):
        amount = spec.split(":", 1)[1]
        count = int(amount) if amount.isdigit() else round(float(amount) * n_train)
        if not 1 <= count < n_train:
            what = "" if amount.isdigit() else f" ({count:,} of its points)"
            shown = f"{int(size)}" if float(size).is_integer() and abs(size) < 1e15 else repr(float(size))
            raise ConfigError(f"sizes={shown} is not valid{what}: the training split of {base.dataset} "
                              f"has {n_train:,} points, so a forget set of at least 1 and at most {n_train - 1:,}")
        check_forget_spec(spec, num_classes=info.num_classes, n_train=n_train, dataset=info.name)
        counts.append(count)
    if len(set(counts)) != len(counts):
        listed = abbreviate(",".join(f"{s:g}" for s in sizes))
        raise ConfigError(f"sizes={listed} is not valid: two sizes give the same number of points "
                          f"({', '.join(map(str, counts))} of {n_train:,})")
    return counts


# -- the Sensitivity sweep's choices and grid (the page asks these; the CLI's --param/--values are free) -----------


def sweepable_params(method: str) -> list[str]:
    """The hyperparameters of ``method`` a log-spaced sweep can take, in schema order: its ``basic`` knobs that are
    numbers on a log scale (``HyperParam.log``), with no ``auto`` and no ``none`` (a sweep sets a number).

    Derived from the schema, never from a list of names: certified Newton's λ, ε and δ, noisy fine-tuning's ε and
    δ, and — the same rule — output perturbation's C₀ or fine-tuning's learning rate; a method whose ε is named
    otherwise offers it under its own name.

    Raises:
        ConfigError: an unknown method (naming the registered ones).
    """
    return [p.name for p in get_unlearner(method).schema
            if p.type is float and p.log and p.level == "basic" and not p.auto and not p.optional
            and p.choices is None and (p.low is None or p.low >= 0)]


def sweep_values(method: str, param: str, *, low: float, high: float, count: int) -> list[float]:
    """The Sensitivity sweep's values: ``count`` log-spaced points from ``low`` to ``high`` (both included), each
    checked against ``method``'s schema for ``param`` before any work.

    Raises:
        ConfigError: a parameter that cannot be swept, a range that is not 0 < low < high, a count outside
            [2, MAX_SWEEP_POINTS], or a point outside the parameter's range — one line naming it.
    """
    names = sweepable_params(method)
    if param not in names:
        raise ConfigError(f"sweep={abbreviate(param)} is not valid for {method}: choose one of "
                          f"{', '.join(names) or '(none: it has no number on a log scale to sweep)'}")
    check_int("values", count, low=2, high=MAX_SWEEP_POINTS)
    low, high = float(low), float(high)
    if not (0 < low < high) or not np.isfinite(high):
        raise ConfigError(f"sweep range [{low:g}, {high:g}] is not valid: expected 0 < from < to")
    schema = {p.name: p for p in get_unlearner(method).schema}
    values = [float(v) for v in np.geomspace(low, high, int(count))]
    for value in values:
        schema[param].validate(value)
    return values


# -- the frontier's ε values (the Compare page's field; the CLI's --epsilons are checked by check_frontier_args) ---


def epsilon_range(methods: Sequence[str] | None = None) -> tuple[float, float]:
    """The ε values every method of ``methods`` accepts (the intersection of their ε hyperparameters' schema ranges;
    ``Unlearner.epsilon_param``), or with ``methods=None`` the values some method of the frontier accepts (the hull
    of every certified method's range) — what a link's ``eps=`` may hold before the methods are chosen.

    Raises:
        ConfigError: a method without an ε hyperparameter, or methods whose ranges do not overlap.
    """
    from unlearn_core.experiments import frontier_methods

    names = list(frontier_methods() if methods is None else methods)
    ranges = []
    for name in names:
        unlearner = get_unlearner(name)
        if unlearner.epsilon_param is None:
            raise ConfigError(f"method {name!r} has no ε hyperparameter: the frontier sweeps ε of the certified "
                              "methods")
        p = next(p for p in unlearner.schema if p.name == unlearner.epsilon_param)
        ranges.append((0.0 if p.low is None else float(p.low), math.inf if p.high is None else float(p.high)))
    if not ranges:
        return (0.0, math.inf)
    low, high = ((min(r[0] for r in ranges), max(r[1] for r in ranges)) if methods is None
                 else (max(r[0] for r in ranges), min(r[1] for r in ranges)))
    if low > high:
        raise ConfigError(f"methods {', '.join(names)} have no ε in common: their ε ranges do not overlap")
    return low, high


def parse_epsilons(text: str, methods: Sequence[str] | None = None) -> list[float]:
    """Comma-separated ε values (the Compare page's frontier field, its URL's ``eps=``), each in
    :func:`epsilon_range` ``(methods)`` — the schema's range, not a copy of it.

    Raises:
        ConfigError: one line naming the text and the allowed range.
    """
    low, high = epsilon_range(methods)
    try:
        values = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or len(values) > MAX_SWEEP_POINTS or any(not (low <= v <= high) for v in values):
        raise ConfigError(f"eps={abbreviate(text)} is not valid: expected 1 to {MAX_SWEEP_POINTS} comma-separated "
                          f"numbers in [{low:g}, {high:g}]"
                          + (f" (the ε of {', '.join(methods)})" if methods else "") + ", e.g. 0.1,1,10")
    return values


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
                         runs_per_cell=options.get("runs_per_cell", 1), mode=options.get("mode", "runs"),
                         canaries=options.get("canaries"), guesses=options.get("guesses"),
                         allow_weak=options.get("allow_weak", True), n_train=get_dataset_info(base.dataset).n_train)
    if kind in ("forget-size", "forget_size"):
        check_forget_sizes(base, options.get("sizes") or [])
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




# -- the whole experiment's work, before any of it (issue 24: runs of hundreds of hours were accepted silently) -----


def experiment_estimate(kind: str, base: RunConfig, *, seeds: Sequence[int], **options: Any) -> Estimate:
    """The work of ``unlearn_core.experiments.<kind>(base, seeds=seeds, **options)``, by stage, before any of it.

    Counts what the experiment's cells do: per seed, the original and the retrained model (per forget-set size
    for ``forget_size``); per cell, the method's own work (:func:`unlearn_core.preflight.estimate_run`'s
    ``unlearn`` stage) and the metrics — for every method of ``compare`` (plus relearning, at most
    ``relearn_max_steps`` steps per model), every value of ``sensitivity``, every budget of ``budget``, every ε of
    ``frontier``, and ``1 + 2 × runs`` releases per σ factor of the ``audit`` (a pilot, then both arms). Iteration
    caps are counted in full (``Estimate.caps``).

    Raises:
        ConfigError: an unknown kind or method (the experiment's own checks say more, first).
    """
    from unlearn_core import limits
    from unlearn_core.preflight import config_shape, estimate_run

    kind = kind.replace("-", "_")
    info = get_dataset_info(base.dataset)
    shape = config_shape(base, info)
    n_seeds = max(1, len(list(seeds)))
    total = limits.Estimate()

    def prepare(config: RunConfig, times: float, *, original: bool = True) -> None:
        est = estimate_run(dataclasses.replace(config, method="retrain", params={}), get_unlearner("retrain"),
                           {"epochs": 0, "seed_offset": 0}, shape)
        for stage in ("train", "retrain") if original else ("retrain",):
            flops, steps = est.work.get(stage, (0.0, 0.0))
            total.add_work(stage, times * flops, times * steps)
        total.caps += [c for c in est.caps if c not in total.caps]

    def runs(method: str, params: Mapping[str, Any], times: float, config: RunConfig = base) -> None:
        unlearner = get_unlearner(method)
        resolved = resolve_params(unlearner.schema, dict(params), method=method)
        est = estimate_run(dataclasses.replace(config, method=method), unlearner, resolved, shape)
        for stage in ("unlearn", "metrics"):
            flops, steps = est.work.get(stage, (0.0, 0.0))
            total.add_work(stage, times * flops, times * steps)
        total.caps += [c for c in est.caps if c not in total.caps]

    def by_method(name: str) -> dict[str, dict[str, Any]]:
        given = options.get("params") or {}
        return {m: dict(given.get(m, {})) for m in options.get(name) or []}

    if kind == "forget_size":
        prepare(base, n_seeds)
        sizes = list(options.get("sizes") or (10, 50, 100, 200))
        for spec in forget_size_specs(sizes):
            config = dataclasses.replace(base, forget=spec)
            prepare(config, n_seeds, original=False)
            for method, params in by_method("methods").items():
                runs(method, params, n_seeds, config)
        return total
    prepare(base, n_seeds)
    if kind == "compare":
        methods = by_method("methods")
        for method, params in methods.items():
            runs(method, params, n_seeds)
        if options.get("relearn", True):
            batch = int(options.get("relearn_batch", 32))
            steps = (len(methods) + 2) * n_seeds * int(options.get("relearn_max_steps", 200))
            total.add_work("unlearn", 3.0 * steps * batch * shape.flops, steps)
            total.caps.append("relearn_max_steps")
    elif kind == "sequential":
        params = {**dict(options.get("params") or {}), "requests": int(options.get("requests", 10))}
        if options.get("retrain_each_step", True) and "retrain_each_step" in {
                p.name for p in get_unlearner(options.get("method", "certified_newton")).schema}:
            params["retrain_each_step"] = True
        runs(options.get("method", "certified_newton"), params, n_seeds)
    elif kind == "sensitivity":
        for value in options.get("values") or ():
            runs(options.get("method", "certified_newton"),
                 {**dict(options.get("params") or {}), options.get("param", "lam"): value}, n_seeds)
    elif kind == "budget":
        for method, params in by_method("methods").items():
            budget_param = get_unlearner(method).budget_param
            for b in options.get("budgets") or ():
                runs(method, {**params, **({budget_param: int(b)} if budget_param else {})}, n_seeds)
    elif kind == "audit":
        from unlearn_core.experiments import certified_methods

        given = options.get("params") or {}
        factors = len(list(options.get("sigma_factors") or (1.0,)))
        for method in options.get("methods") or certified_methods():
            runs(method, dict(given.get(method, {})), n_seeds * (1 + 2 * factors * int(options.get("runs", 100))))
    elif kind == "frontier":
        for method, params in by_method("methods").items():
            epsilon_param = get_unlearner(method).epsilon_param
            for epsilon in options.get("epsilons") or ():
                runs(method, {**params, **({epsilon_param: epsilon} if epsilon_param else {})}, n_seeds)
    elif kind == "evaluate":
        # field_evaluation.evaluate: one original; N retrained models (N more as the `retrained` control) and M
        # shadows (M more for the controls), each a training on about the retained set; per method N released runs,
        # N noisy retrains for a certified method and M shadow unlearnings; the optional audit's 1 + 2 × runs.
        models, shadows = int(options.get("models", 16)), int(options.get("shadows", 16))
        controls = 2 if options.get("controls", True) else 1
        prepare(base, controls * (models + shadows) - 1, original=False)
        given = options.get("params") or {}
        audit_runs = int(options.get("audit_runs") or 0)
        for method in options.get("methods") or ():
            certified = get_unlearner(method).epsilon_param is not None
            times = models * (2 if certified else 1) + shadows + (1 + 2 * audit_runs if certified and audit_runs else 0)
            runs(method, dict(given.get(method, {})), times)
    else:
        raise ConfigError(f"experiment {kind!r} is not valid: choose one of compare, sequential, sensitivity, budget, "
                          "audit, forget_size, frontier, evaluate")
    return total


def check_experiment_estimate(kind: str, base: RunConfig, *, seeds: Sequence[int], device: Any = None,
                              **options: Any) -> Estimate:
    """:func:`experiment_estimate`, refused over the limits (a week at the reference speed: ``--runs 1000000``,
    a sweep of a thousand-epoch fine-tuning) before any work.

    Raises:
        ConfigError: one line with the experiment, its estimate and the limit.
    """
    from unlearn_core import limits

    estimate = experiment_estimate(kind, base, seeds=seeds, **options)
    what = f"experiment {kind.replace('_', '-')} ({len(list(seeds))} seed{'s' if len(list(seeds)) != 1 else ''})"
    parts = limits.reference_seconds(estimate, device)
    total = sum(parts.values())
    limit_s, how = limits.max_run_seconds()
    if total > limit_s or estimate.flops > limits.MAX_FLOPS:
        stage = max(parts, key=parts.__getitem__)
        kind_name = getattr(device, "type", str(device or "cpu")).upper()
        raise ConfigError(f"{what} needs an estimated {estimate.flops:.2g} floating-point operations in "
                          f"{estimate.steps:,.0f} steps, about {total / 3600:,.0f} h even on a fast {kind_name} "
                          f"(largest part: {stage}), above the limit of {limit_s / 3600:,.0f} h ({how})")
    return estimate
