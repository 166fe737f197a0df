r"""The papers' figures as reusable experiments, an audit of every certified method, and a forget-set size sweep.

Every experiment is a plain function of a base :class:`~unlearn_core.pipeline.RunConfig`, method names from the
registry, hyperparameter overrides and a list of seeds; it returns a *tidy* :class:`pandas.DataFrame` (one row per
method / step / setting / seed) that :func:`summarize` turns into mean and spread, :mod:`unlearn_core.plots` turns
into figures, and ``python -m unlearn_core experiment ...`` writes as CSV and JSON.

* :func:`compare` — methods against retraining on one configuration (Zhang et al. Table 1 and Fig. 2).
* :func:`sequential` — k removal requests in a row (Zhang et al. Fig. 3).
* :func:`sensitivity` — a sweep over one numeric hyperparameter (Zhang et al. Fig. 4).
* :func:`budget` — accuracy against the unlearning budget in epochs (Koloskova et al. Fig. 1).
* :func:`audit` — every certified method: many runs of the unlearner and of the noisy retrain, an empirical lower
  bound on ε beside the certified (ε, δ), per-example ε and an offline LiRA (beyond the papers).
* :func:`forget_size` — cost, accuracy and the certificate as the forget set grows.
* :func:`frontier` — the privacy–utility frontier: each certified method's accuracy against ε (beyond the papers).

**Cells and executors.** Every experiment is a list of independent *cells* (seed × setting × method), each a
module-level ``_*_cell`` function of plain arguments that returns plain rows. An executor
(:mod:`unlearn_core.executors`: ``serial`` by default, ``processes``, ``ray``) maps them and the rows are gathered
in cell order, so every executor gives the same rows in the same order with the same values for the same seeds.
A first phase of *prepare* cells trains (or loads) each seed's original and retrained models, in parallel where
the executor allows; later cells find them in the disk cache (whose file lock trains a model once). Workers only
return rows; the caller writes files and the run store.

Seeds: seed ``s`` sets the model initialisation, the training shuffle and the unlearner's own randomness
(``RunConfig.seed``), so each seed has its own original and retrained models; the forget set is fixed by
``base.forget_seed``. Trained models come from the on-disk cache, so every method of one seed shares them and a
second experiment on the same configuration trains nothing.

Every row carries the retrained model's value of the same metric (rows with ``method == "retrained"``, or
``*_retrained`` columns), because every unlearning metric is read against retraining: closer is better, and
"better than retraining" (e.g. a lower forget accuracy) is over-unlearning, not success.

Certificates are read only from a run card's ``certificate`` dict (``epsilon``, ``delta``, ``sigma_used``,
``sigma_required``, ``epsilon_certified``, ``certified``, and ``status`` / ``delta_guaranteed`` where present).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from unlearn_core import metrics as mt
from unlearn_core.cache import config_hash
from unlearn_core.certificate import Certificate
from unlearn_core.data import get_dataset_info
from unlearn_core.diagnostics import SPLITS, Diagnostics
from unlearn_core.errors import ConfigError
from unlearn_core.evaluation import evaluate, param_distance
from unlearn_core.executors import Cell, Executor
from unlearn_core.executors import resolve as resolve_executor
from unlearn_core.forget import parse_forget_spec
from unlearn_core.functional import get_flat_params
from unlearn_core.limits import AUDIT_RUNS_RANGE
from unlearn_core.paths import cache_dir, data_dir
from unlearn_core.pipeline import Prepared, RunConfig, prepare, run_method, validate_config
from unlearn_core.unlearners import get_unlearner, methods_with, resolve_params
from unlearn_core.verdict import THRESHOLDS, infinite_cause, not_certified_cause

ProgressFn = Callable[[dict[str, Any]], None] | None

#: Metric columns of :func:`compare` rows (also what :func:`summarize` aggregates by default).
ACCURACY_COLUMNS = ("acc_forget", "acc_retain", "acc_test")

#: Columns that measure wall time: the only ones that differ between two runs of the same cells.
TIMING_COLUMNS = ("time_s", "speedup", "retrain_time_s", "runs_s", "pilot_s")

#: Test examples (a fixed, seeded subsample) on which the cross-model metrics (LiRA) score non-members.
OUTPUT_TEST_POINTS = 500


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------------------------


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ConfigError(f"seeds={list(seeds)!r} is not valid: expected distinct integers ≥ 0, at least one")
    return out


def _check_methods(methods: Sequence[str], params: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict]:
    """Validate method names and their overrides before anything is trained; return the resolved overrides."""
    if not methods:
        raise ConfigError("methods is empty: name at least one method (see 'python -m unlearn_core methods')")
    params = dict(params or {})
    unknown = sorted(set(params) - set(methods))
    if unknown:
        raise ConfigError(f"hyperparameters given for {unknown[0]!r}, which is not among the methods {list(methods)}")
    out = {}
    for name in methods:
        unlearner = get_unlearner(name)
        resolve_params(unlearner.schema, dict(params.get(name, {})), method=name)
        out[name] = dict(params.get(name, {}))
    return out


def certified_methods() -> list[str]:
    """The registry's methods that issue a certificate (``Unlearner.issues_certificate``), in registry order: what
    :func:`audit` audits."""
    return methods_with("certificate")


# -- prepared configurations, memoised per process -----------------------------------------------------------

#: Prepared configurations kept per process (a worker runs many cells of one seed; the driver of a serial run
#: every cell). Two entries bound memory (MNIST's tensors are ≈ 200 MB per entry).
PREPARED_MEMO = 2
_PREPARED: OrderedDict[str, Prepared] = OrderedDict()
_DERIVED: dict[str, dict[str, Any]] = {}
_MEMO_LOCK = threading.Lock()


def _memo_key(config: RunConfig) -> str:
    return config_hash({"config": config.to_json(), "cache": str(cache_dir(config.cache_dir)),
                        "data": str(data_dir(config.data_dir)), "use_cache": config.use_cache,
                        "retrained": config.compute_retrained})


#: Memo keys of the configurations this process knows to be valid: the driver validated them before dispatching
#: its cells (:func:`_run_cells`) and tells each worker with its warm-up, so a worker does not check them again
#: (the check builds a probe model on the meta device, which imports seconds of torch).
_VALIDATED: set[str] = set()


def _seed_config(base: RunConfig, seed: int) -> RunConfig:
    """``base`` at ``seed`` as an experiment runs it: with its retrained reference, and reproducible (a simulation)."""
    return dataclasses.replace(base, seed=int(seed), compute_retrained=True, reproducible=True)


def prepare_seed(base: RunConfig, seed: int, *, progress: ProgressFn = None, cancel: Any = None) -> Prepared:
    """The prepared configuration (data, split, cached original and retrained models) of ``base`` at ``seed``.

    Memoised per process (:data:`PREPARED_MEMO` entries): the models are never mutated, so cells of one seed
    share them, as one loop over seeds would. A configuration is validated here unless this process was told it is
    valid (:func:`_run_cells` in the driver, the warm-up in a worker).

    Every experiment is a **simulation**: it runs many seeded releases and compares them, so its runs draw their
    release noise reproducibly (``reproducible=True``, whatever ``base`` says; :mod:`unlearn_core.privacy.noise`) and
    their certificates and rows say ``simulation``. None of them releases a model.
    """
    config = _seed_config(base, seed)
    key = _memo_key(config)
    with _MEMO_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
        validated = key in _VALIDATED
    prepared = prepare(config, progress=progress, cancel=cancel, validated=validated)
    with _MEMO_LOCK:
        _PREPARED[key] = prepared
        while len(_PREPARED) > PREPARED_MEMO:
            old, _ = _PREPARED.popitem(last=False)
            _DERIVED.pop(old, None)
    return prepared


def _derived(prepared: Prepared, name: str, make: Callable[[], Any]) -> Any:
    """A value computed once per prepared configuration and process (e.g. the retrained model's MIA)."""
    key = _memo_key(prepared.config)
    with _MEMO_LOCK:
        store = _DERIVED.setdefault(key, {})
        if name in store:
            return store[name]
    value = make()
    with _MEMO_LOCK:
        _DERIVED.setdefault(key, {})[name] = value
    return value


def clear_prepared() -> None:
    """Forget the memoised configurations of this process (the driver does after each experiment)."""
    with _MEMO_LOCK:
        _PREPARED.clear()
        _DERIVED.clear()


def _prepare_cell(*, base: RunConfig, seed: int, cancel: Any = None) -> dict[str, Any]:
    """Phase 1 of every experiment: train (or load) one seed's original and retrained models."""
    prepared = prepare_seed(base, seed, cancel=cancel)
    return {"seed": int(seed), "timing_s": dict(prepared.timing_s), "cached": dict(prepared.cached)}


def _warm_cell(*, configs: Sequence[tuple[RunConfig, int]], validated: Sequence[str], estimates: bool = True,
               cancel: Any = None) -> None:
    """A fresh worker's warm-up: trust what the driver validated, load the first configurations into the memo."""
    with _MEMO_LOCK:
        _VALIDATED.update(validated)
    for base, seed in configs:
        prepare_seed(base, seed, cancel=cancel)
        if estimates:
            # Cells that call run_method check each method's estimate on the meta device: its first call imports
            # ≈ 1.8 s of torch, which belongs to the worker's start-up (measured by the warm-up), not to a cell.
            from unlearn_core.preflight import config_shape

            config_shape(base)


def _cell_config(cell: Cell) -> tuple[RunConfig, int] | None:
    base, seed = cell.kwargs.get("base"), cell.kwargs.get("seed")
    return (base, int(seed)) if isinstance(base, RunConfig) and isinstance(seed, int) else None


def _run_cells(
    executor: Executor,
    cells: list[Cell],
    *,
    progress: ProgressFn,
    cancel: Any,
    phase: str,
    prepare: bool = True,
    estimates: bool = True,
) -> list[Any]:
    """Map ``cells`` on ``executor``: each distinct configuration validated once here, in the driver; cells grouped
    by the configuration they load (a worker gets cells of one configuration together); a warm-up that loads the
    first configurations into a fresh worker's memo (``prepare=False``: cells that do not use
    :func:`prepare_seed`, whose warm-up only imports; ``estimates=False``: cells that never call
    :func:`~unlearn_core.pipeline.run_method`, such as the audit's)."""
    keys: dict[tuple[int, int], str] = {}
    order: list[tuple[RunConfig, int]] = []
    grouped: list[Cell] = []
    for cell in cells:
        found = _cell_config(cell)
        if found is None:
            grouped.append(cell)
            continue
        ident = (id(found[0]), found[1])
        if ident not in keys:
            config = _seed_config(*found)
            key = _memo_key(config)
            with _MEMO_LOCK:
                known = key in _VALIDATED
            if not known:
                validate_config(config)
                with _MEMO_LOCK:
                    _VALIDATED.add(key)
            keys[ident] = key
            order.append(found)
        grouped.append(dataclasses.replace(cell, group=keys[ident]))
    warmup = Cell(_warm_cell, {"configs": order[:PREPARED_MEMO] if prepare else [],
                               "validated": sorted(set(keys.values())), "estimates": estimates},
                  label="warm-up")
    return executor.map(grouped, progress=progress, cancel=cancel, phase=phase, warmup=warmup)


def _prepare_all(executor: Executor, configs: Sequence[tuple[RunConfig, int]], *, progress: ProgressFn,
                 cancel: Any) -> None:
    cells = [Cell(_prepare_cell, {"base": b, "seed": s}, label=f"prepare seed {s}") for b, s in configs]
    _run_cells(executor, cells, progress=progress, cancel=cancel, phase="prepare")


class _Scope:
    """Resolve the executor; forget the driver's memoised models when the experiment ends (also on error)."""

    def __init__(self, executor: Executor | str | None) -> None:
        self.executor = resolve_executor(executor)

    def __enter__(self) -> Executor:
        return self.executor

    def __exit__(self, *exc: Any) -> None:
        clear_prepared()


def _status(cert: Mapping[str, Any]) -> str:
    """The certificate's status; older cards without ``status`` map ``certified`` to the two-label form."""
    status = cert.get("status")
    if status:
        return str(status)
    return "certified" if cert.get("certified") else "not certified"


def _cert_columns(cert: Mapping[str, Any] | None) -> dict[str, Any]:
    """The certificate's table columns (all ``None`` for a method without one); ``delta_bound`` is Δ."""
    if not cert:
        return {"certified": None, "status": None, "epsilon": None, "delta": None, "delta_guaranteed": None,
                "epsilon_certified": None, "sigma_used": None, "sigma_required": None, "delta_bound": None,
                "delta_bound_infinite": None, "why_not_certified": None, "why_infinite": None,
                "simulation": None}
    c = Certificate.from_dict(dict(cert))
    finite = c.sensitivity is not None and math.isfinite(c.sensitivity)
    return {
        # Why a row is not certified, and why its Δ is infinite (the table shows "∞ (cause)", never "None").
        "delta_bound_infinite": c.sensitivity is not None and not finite,
        "why_not_certified": not_certified_cause(c),
        "why_infinite": infinite_cause(c),
        "certified": c.certified,
        "status": c.status,
        "epsilon": c.epsilon,
        "delta": c.delta,
        "delta_guaranteed": c.delta_guaranteed,
        "epsilon_certified": c.epsilon_certified if math.isfinite(c.epsilon_certified) else None,
        "sigma_used": c.sigma_used,
        "sigma_required": c.sigma_required if math.isfinite(c.sigma_required) else None,
        "delta_bound": c.sensitivity if finite else None,
        "simulation": c.simulation,
    }


def _sensitivity_extras(cert: Mapping[str, Any] | None, diag: Diagnostics) -> dict[str, Any]:
    """The constant the bound hinges on (λ_min, with its tag) and the noise-free estimate's accuracies.

    Why: when Δ is infinite (λ + λ_min ≤ 0) or σ destroys the release, these are what a sweep over λ can show.
    """
    out: dict[str, Any] = {}
    if cert:
        for constant in Certificate.from_dict(dict(cert)).constants:
            if constant.name == "λ_min":
                out["lambda_min"], out["lambda_min_tag"] = constant.value, constant.tag
    if diag.noiseless_accuracy is not None:
        out.update({f"acc_{s}_noiseless": getattr(diag.noiseless_accuracy, s) for s in SPLITS})
    return out


def _test_subsample(prepared: Prepared) -> torch.Tensor:
    """Fixed test indices (the same for every seed and model) on which cross-model metrics score non-members."""
    n = int(prepared.data.y_test.numel())
    if n <= OUTPUT_TEST_POINTS:
        return torch.arange(n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(20231))
    return perm[:OUTPUT_TEST_POINTS].sort().values


def _outputs(prepared: Prepared, model: nn.Module) -> dict[str, np.ndarray]:
    """Per-example forget-set loss and φ, and test-subsample φ, of one model (for per-example ε and LiRA)."""
    splits = mt.prepared_splits(prepared)
    sub = _test_subsample(prepared).to(splits["x_test"].device)
    forget = mt.example_outputs(model, splits["x_forget"], splits["y_forget"])
    test = mt.example_outputs(model, splits["x_test"][sub], splits["y_test"][sub])
    return {"loss_forget": forget["loss"], "phi_forget": forget["phi"], "phi_test": test["phi"]}


def _model_row(
    prepared: Prepared,
    model: nn.Module,
    *,
    splits: dict[str, torch.Tensor],
    original_metrics: Mapping[str, float],
    mia: bool,
    relearn: bool,
    relearn_kwargs: Mapping[str, Any],
    seed: int,
    card: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Accuracies, distances, MIA, output distance and relearn time of one model of a prepared configuration.

    ``original_metrics``: ``prepared.metrics(prepared.original)`` (the original's row and the relearn target).
    ``card``: the run card of ``model`` when it is a method's output; its ``models.unlearned`` block and
    ``distance`` are the same functions of the same models, so they are reused.
    """
    retrained = prepared.retrained
    if card is not None:
        row: dict[str, Any] = dict(card["models"]["unlearned"])
        row["dist_to_retrained"] = card["distance"]["unlearned_to_retrained"]
        row["dist_to_original"] = card["distance"]["unlearned_to_original"]
    else:
        row = dict(original_metrics if model is prepared.original else prepared.metrics(model))
        row["dist_to_retrained"] = param_distance(model, retrained) if retrained is not None else None
        row["dist_to_original"] = param_distance(model, prepared.original)
    if retrained is not None:
        row.update(mt.output_distances(model, retrained, splits))
    if mia:
        row.update({f"mia_{k}": v for k, v in mt.model_mia(model, original=prepared.original, seed=seed,
                                                            **splits).items()})
    if relearn:
        target = original_metrics["acc_forget"]
        out = mt.relearn_time(model, splits["x_forget"], splits["y_forget"], target_acc=target, seed=seed,
                              **relearn_kwargs)
        row["relearn_steps"], row["relearn_capped"] = out["steps"], out["capped"]
    return row


def summarize(
    df: pd.DataFrame,
    *,
    by: Sequence[str] | str = "method",
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean, standard deviation, count and 95 % half-width (1.96·SE) over seeds of every numeric column (rows whose
    ``role`` is ``candidate`` — the frontier's grid runs behind its points — are left out).

    ``by`` names the grouping columns (e.g. ``"method"``, ``["method", "step"]``); the result has one row per group
    and columns ``<metric>_mean``, ``<metric>_std``, ``<metric>_n``, ``<metric>_ci95``. The 1.96·SE band is what
    Koloskova et al. plot; with 2-4 seeds it is a rough guide, not a test.
    """
    keys = [by] if isinstance(by, str) else list(by)
    if "role" in df.columns:  # the frontier's candidate rows are the evidence behind its points, not results
        df = df[df["role"] != "candidate"]
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ConfigError(f"summarize: no column {missing[0]!r}; available: {', '.join(map(str, df.columns))}")
    if columns is None:
        columns = [c for c in df.columns if c not in keys and c != "seed"
                   and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    grouped = df.groupby(keys, sort=False, dropna=False)[list(columns)]
    mean, std, n = grouped.mean(), grouped.std(ddof=1), grouped.count()
    out: dict[str, pd.Series] = {}
    for c in columns:
        out[f"{c}_mean"] = mean[c]
        out[f"{c}_std"] = std[c]
        out[f"{c}_n"] = n[c]
        out[f"{c}_ci95"] = 1.96 * std[c] / np.sqrt(n[c].clip(lower=1))
    return pd.DataFrame(out, index=mean.index).reset_index()


# ----------------------------------------------------------------------------------------------------------------
# 1. compare
# ----------------------------------------------------------------------------------------------------------------


def _compare_common(base: RunConfig, prepared: Prepared, seed: int) -> dict[str, Any]:
    return {"seed": seed, "dataset": base.dataset, "model": base.model, "forget": base.forget,
            "n_forget": int(prepared.forget_idx.numel())}


def _compare_row_kwargs(prepared: Prepared, seed: int, mia: bool, relearn: bool,
                        relearn_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    original_metrics = _derived(prepared, "original_metrics", lambda: prepared.metrics(prepared.original))
    return {"splits": mt.prepared_splits(prepared), "original_metrics": original_metrics, "mia": mia,
            "relearn": relearn, "relearn_kwargs": relearn_kwargs, "seed": seed}


def _compare_reference_cell(*, base: RunConfig, seed: int, mia: bool, relearn: bool,
                            relearn_kwargs: Mapping[str, Any], outputs: bool, cancel: Any = None) -> dict[str, Any]:
    """The ``original`` and ``retrained`` rows of one seed (the cached models themselves)."""
    prepared = prepare_seed(base, seed, cancel=cancel)
    kwargs = _compare_row_kwargs(prepared, seed, mia, relearn, relearn_kwargs)
    common = _compare_common(base, prepared, seed)
    rows, outs = [], []
    for ref, model, t in (("original", prepared.original, prepared.timing_s.get("train")),
                          ("retrained", prepared.retrained, prepared.timing_s.get("retrain"))):
        row = {**common, "method": ref, "family": "reference", "time_s": t, "speedup": None, **_cert_columns(None)}
        row.update(_model_row(prepared, model, **kwargs))
        rows.append(row)
        outs.append(_outputs(prepared, model) if outputs else None)
    return {"rows": rows, "outputs": outs}


def _compare_method_cell(*, base: RunConfig, seed: int, method: str, params: Mapping[str, Any], mia: bool,
                         relearn: bool, relearn_kwargs: Mapping[str, Any], outputs: bool,
                         cancel: Any = None) -> dict[str, Any]:
    """One method's row at one seed."""
    prepared = prepare_seed(base, seed, cancel=cancel)
    kwargs = _compare_row_kwargs(prepared, seed, mia, relearn, relearn_kwargs)
    result = run_method(prepared, method, dict(params), seed=seed, cancel=cancel)
    retrain_s = prepared.timing_s.get("retrain")
    t = result.card["timing_s"]["unlearn"]
    row = {**_compare_common(base, prepared, seed), "method": method, "family": result.card["method"]["family"],
           "time_s": t, "speedup": (retrain_s / t) if retrain_s and t else None,
           **_cert_columns(result.card["certificate"])}
    row.update(_model_row(prepared, result.unlearned, card=result.card, **kwargs))
    return {"rows": [row], "outputs": [_outputs(prepared, result.unlearned) if outputs else None]}


def _cross_seed_metrics(rows: list[dict[str, Any]], outputs: list[dict[str, np.ndarray] | None]) -> None:
    """Add LiRA (per row) and Triantafillou et al.'s per-example ε (per method) across seeds, in place.

    LiRA: each model is the target, the *other* seeds' retrained models are the OUT references (never the
    target's own seed, whose retrained model shares its initialisation). Per-example ε: the K seeds' models of a
    method against the K seeds' retrained models, on each forget example's loss.
    """
    seeds = sorted({r["seed"] for r in rows})
    retrained = {r["seed"]: o for r, o in zip(rows, outputs, strict=True) if r["method"] == "retrained"}
    for row, out in zip(rows, outputs, strict=True):
        refs = [retrained[s] for s in seeds if s != row["seed"]]
        if out is None or len(refs) < 2:
            continue
        res = mt.lira_mia(out["phi_forget"], out["phi_test"], np.stack([r["phi_forget"] for r in refs]),
                          np.stack([r["phi_test"] for r in refs]))
        row["mia_lira_auc"], row["mia_lira_tpr_at_1fpr"] = res["auc"], res["tpr_at_1fpr"]
    by_method: dict[str, list[tuple[int, np.ndarray]]] = {}
    for row, out in zip(rows, outputs, strict=True):
        if out is not None and row["method"] != "retrained":
            by_method.setdefault(row["method"], []).append((row["seed"], out["loss_forget"]))
    reference = np.stack([retrained[s]["loss_forget"] for s in seeds])
    for method, items in by_method.items():
        if len(items) < 2:
            continue
        eps = mt.per_example_epsilon(np.stack([v for _, v in sorted(items, key=lambda t: t[0])]), reference)
        summary = {"pe_epsilon_median": float(np.median(eps)), "pe_epsilon_max": float(np.max(eps)),
                   "forgetting_quality": mt.forgetting_quality(eps)}
        for row in rows:
            if row["method"] == method:
                row.update(summary)


def compare(
    base: RunConfig,
    methods: Sequence[str],
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0,),
    mia: bool = True,
    relearn: bool = True,
    relearn_lr: float = 0.01,
    relearn_batch: int = 32,
    relearn_max_steps: int = 200,
    progress: ProgressFn = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    """Methods against retraining on one configuration (Zhang et al. Table 1 and Fig. 2).

    One row per (seed, method), plus the reference rows ``original`` and ``retrained`` of each seed (the cached
    models themselves, so their ``time_s`` is the training time). Columns: ``acc_*``/``loss_*`` on forget, retain
    and test; ``dist_to_retrained`` / ``dist_to_original`` (ℓ2 over parameters); ``kl_*``/``js_*`` to the
    retrained model's predictions; ``mia_*`` (held-out attacks, see :func:`unlearn_core.metrics.model_mia`);
    ``relearn_steps``/``relearn_capped``; ``time_s`` and ``speedup`` (retrain time / unlearning time); and the
    certificate's ``certified``, ``status``, ``epsilon``, ``sigma_used``, ``delta_bound`` where the method has one.

    With MIA and several seeds, the cross-seed metrics are added: ``mia_lira_auc`` / ``mia_lira_tpr_at_1fpr``
    (offline LiRA against the other seeds' retrained models, ≥ 3 seeds) and, per method, the per-example ε of
    Triantafillou et al. (``pe_epsilon_median``, ``pe_epsilon_max``, ``forgetting_quality``; ≥ 2 seeds, and
    meaningful only with many). One cell per seed for the reference rows and one per (seed, method).
    """
    seeds = _check_seeds(seeds)
    overrides = _check_methods(methods, params)
    relearn_kwargs = {"lr": relearn_lr, "batch_size": relearn_batch, "max_steps": relearn_max_steps}
    outputs = bool(mia) and len(seeds) >= 2
    common = {"base": base, "mia": mia, "relearn": relearn, "relearn_kwargs": relearn_kwargs, "outputs": outputs}
    cells: list[Cell] = []
    for seed in seeds:
        cells.append(Cell(_compare_reference_cell, {**common, "seed": seed}, label=f"seed {seed}: references"))
        cells += [Cell(_compare_method_cell, {**common, "seed": seed, "method": name, "params": overrides[name]},
                       label=f"seed {seed}: {name}") for name in methods]
    with _Scope(executor) as ex:
        _prepare_all(ex, [(base, s) for s in seeds], progress=progress, cancel=cancel)
        results = _run_cells(ex, cells, progress=progress, cancel=cancel, phase="runs")
    rows = [row for r in results for row in r["rows"]]
    if outputs:
        _cross_seed_metrics(rows, [o for r in results for o in r["outputs"]])
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 2. sequential
# ----------------------------------------------------------------------------------------------------------------


def _sequential_cell(*, base: RunConfig, seed: int, method: str, requests: int, params: Mapping[str, Any],
                     cancel: Any = None) -> list[dict[str, Any]]:
    prepared = prepare_seed(base, seed, cancel=cancel)
    result = run_method(prepared, method, dict(params), seed=seed, cancel=cancel)
    ref = result.card["models"]["retrained"]  # prepared.metrics(prepared.retrained), computed by run_method
    rows = []
    for rec in result.result.diagnostics.requests:
        row = {"seed": seed, "method": method, "requests": int(requests), **rec.to_row()}
        row.update({f"{k}_retrained": ref[k] for k in ACCURACY_COLUMNS})
        rows.append(row)
    return rows


def sequential(
    base: RunConfig,
    *,
    requests: int = 10,
    method: str = "certified_newton",
    params: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0,),
    retrain_each_step: bool = True,
    progress: ProgressFn = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    """k removal requests in a row (Zhang et al. Fig. 3): one row per (seed, step); one cell per seed.

    Uses the method's own ``requests`` hyperparameter (certified_newton splits the forget set into k seeded chunks
    and chains the steps, §2.5) and its per-step diagnostics: ``grad_norm`` ‖∇L(w̃_{k−1}, D_{r_k})‖,
    ``delta_bound``, ``sigma_used``, accuracies of the released model on the points forgotten so far / the current
    retain set / test, and — with ``retrain_each_step`` (one retraining per step, the slow part) —
    ``approx_error`` = ‖w̃_k − w̃*_k‖ to that step's retrained model. The retrained model of the *last* step
    (the pipeline's oracle) gives the reference columns ``acc_*_retrained``.
    """
    seeds = _check_seeds(seeds)
    unlearner = get_unlearner(method)
    if not unlearner.sequential:
        raise ConfigError(f"method {method!r} has no 'requests' hyperparameter: sequential needs one "
                          "(e.g. certified_newton)")
    overrides = {**dict(params or {}), "requests": int(requests)}
    if "retrain_each_step" in {p.name for p in unlearner.schema}:
        overrides["retrain_each_step"] = bool(retrain_each_step)
    resolve_params(unlearner.schema, overrides, method=method)
    cells = [Cell(_sequential_cell, {"base": base, "seed": s, "method": method, "requests": int(requests),
                                     "params": overrides}, label=f"seed {s}") for s in seeds]
    with _Scope(executor) as ex:
        _prepare_all(ex, [(base, s) for s in seeds], progress=progress, cancel=cancel)
        results = _run_cells(ex, cells, progress=progress, cancel=cancel, phase="runs")
    return pd.DataFrame([row for rows in results for row in rows])


# ----------------------------------------------------------------------------------------------------------------
# 3. sensitivity
# ----------------------------------------------------------------------------------------------------------------


def _sensitivity_cell(*, base: RunConfig, seed: int, method: str, param: str, value: float,
                      params: Mapping[str, Any], mia: bool, cancel: Any = None) -> dict[str, Any]:
    prepared = prepare_seed(base, seed, cancel=cancel)
    splits = mt.prepared_splits(prepared)
    ref = _derived(prepared, "retrained_metrics", lambda: prepared.metrics(prepared.retrained))
    result = run_method(prepared, method, {**params, param: value}, seed=seed, cancel=cancel)
    diag = result.result.diagnostics
    row: dict[str, Any] = {"seed": seed, "method": method, "param": param, "value": float(value)}
    row.update(_cert_columns(result.card["certificate"]))
    row["approx_error"] = diag.approx_error
    row["dist_to_retrained"] = result.card["distance"]["unlearned_to_retrained"]
    row.update(_sensitivity_extras(result.card["certificate"], diag))
    row.update(result.card["models"]["unlearned"])
    row.update({f"{k}_retrained": ref[k] for k in ACCURACY_COLUMNS})
    row["time_s"] = result.card["timing_s"]["unlearn"]
    if mia:
        ref_mia = _derived(prepared, f"retrained_mia_{seed}", lambda: mt.model_mia(
            prepared.retrained, original=prepared.original, seed=seed, **splits))
        m = mt.model_mia(result.unlearned, original=prepared.original, seed=seed, **splits)
        row.update({f"mia_{k}": x for k, x in m.items()})
        row.update({f"mia_{k}_retrained": x for k, x in ref_mia.items()})
    return row


def sensitivity(
    base: RunConfig,
    *,
    method: str = "certified_newton",
    param: str = "lam",
    values: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    params: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0,),
    mia: bool = False,
    progress: ProgressFn = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    """A sweep over one numeric hyperparameter of ``method`` (Zhang et al. Fig. 4): one row (and cell) per
    (seed, value).

    Columns: ``value``; the certificate's ``delta_bound``, ``sigma_required``, ``sigma_used``, ``certified``;
    ``approx_error`` (‖w̃ − w̃*‖ before noise, from the method's diagnostics where it reports it) and
    ``dist_to_retrained`` (after noise); accuracies; MIA when asked; and the retrained reference
    ``acc_*_retrained`` / ``mia_*_retrained``. The trained models are shared by every value of a seed.
    """
    seeds = _check_seeds(seeds)
    unlearner = get_unlearner(method)
    schema = {p.name: p for p in unlearner.schema}
    if param not in schema or schema[param].type not in (int, float):
        numeric = [p.name for p in unlearner.schema if p.type in (int, float)]
        raise ConfigError(f"param {param!r} is not a numeric hyperparameter of {method!r}: choose one of "
                          f"{', '.join(numeric)}")
    if not values:
        raise ConfigError("values is empty: give at least one value to sweep")
    fixed = dict(params or {})
    for v in values:
        resolve_params(unlearner.schema, {**fixed, param: v}, method=method)
    cells = [Cell(_sensitivity_cell, {"base": base, "seed": s, "method": method, "param": param, "value": v,
                                      "params": fixed, "mia": mia}, label=f"seed {s}: {param}={v:g}")
             for s in seeds for v in values]
    with _Scope(executor) as ex:
        _prepare_all(ex, [(base, s) for s in seeds], progress=progress, cancel=cancel)
        rows = _run_cells(ex, cells, progress=progress, cancel=cancel, phase="runs")
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 4. budget
# ----------------------------------------------------------------------------------------------------------------


def _budget_cell(*, base: RunConfig, seed: int, method: str, budget: int, params: Mapping[str, Any],
                 cancel: Any = None) -> dict[str, Any]:
    prepared = prepare_seed(base, seed, cancel=cancel)
    n_r = int(prepared.retain_idx.numel())
    budget_param = get_unlearner(method).budget_param
    result = run_method(prepared, method, {**params, budget_param: budget}, seed=seed, cancel=cancel)
    cert = result.card["certificate"] or {}
    batch = int(resolve_params(get_unlearner(method).schema, dict(params), method=method).get(
        "batch_size", prepared.train_config.batch_size))
    noisy_steps = int((cert.get("details") or {}).get("T") or 0)
    return {
        "seed": seed, "method": method, "budget_epochs": budget,
        "noisy_epochs": noisy_steps / max(1, math.ceil(n_r / batch)),
        **result.card["models"]["unlearned"],
        "dist_to_retrained": result.card["distance"]["unlearned_to_retrained"],
        "time_s": result.card["timing_s"]["unlearn"],
        **_cert_columns(result.card["certificate"]),
    }


def budget(
    base: RunConfig,
    *,
    methods: Sequence[str] = ("noisy_finetune",),
    budgets: Sequence[int] = (1, 2, 5, 10),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0,),
    progress: ProgressFn = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    """Accuracy against the unlearning budget in epochs (Koloskova et al. Fig. 1): one row (and cell) per
    (seed, method, b).

    Each method's budget is set through its epoch hyperparameter (``Unlearner.budget_param``): the fine-tuning epochs of
    noisy fine-tuning and output perturbation (their noisy phase is reported in ``noisy_epochs`` = T / steps per
    epoch, on top of the budget), the epochs of fine-tuning, and — always included as the reference — retraining
    from a fresh initialisation for the same number of epochs (``method == "retrain"``). ``acc_test`` plays the
    papers' validation accuracy. Koloskova et al. pick, per budget, the best hyperparameters over a grid (oracle
    selection); this function runs the given hyperparameters only.
    """
    seeds = _check_seeds(seeds)
    methods = list(methods)
    if "retrain" not in methods:
        methods.append("retrain")
    for name in methods:
        if get_unlearner(name).budget_param is None:
            raise ConfigError(f"method {name!r} has no epoch budget: choose from "
                              f"{', '.join(sorted(methods_with('budget_param')))}")
    overrides = _check_methods(methods, params)
    budgets = [int(b) for b in budgets]
    if not budgets or any(b < 0 for b in budgets):
        raise ConfigError(f"budgets={budgets!r} is not valid: expected integers ≥ 0")
    cells = [Cell(_budget_cell, {"base": base, "seed": s, "method": name, "budget": b, "params": overrides[name]},
                  label=f"seed {s}: {name}, {b} epochs") for s in seeds for name in methods for b in budgets]
    with _Scope(executor) as ex:
        _prepare_all(ex, [(base, s) for s in seeds], progress=progress, cancel=cancel)
        rows = _run_cells(ex, cells, progress=progress, cancel=cancel, phase="runs")
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 5. audit
# ----------------------------------------------------------------------------------------------------------------

#: Scalar statistics the audit's distinguishing test may use; ``auto`` picks one on the selection half.
AUDIT_STATISTICS = ("auto", "projection", "direction", "forget_loss")
#: Above this many parameters, the white-box statistic sees a fixed random subset of this many coordinates.
AUDIT_MAX_COORDS = 20_000
#: Unlearner runs per audit cell (several runs per cell amortise a cell's fixed cost; more cells balance load).
AUDIT_RUNS_PER_CELL = 10
#: At most this many target models per arm enter the LiRA average (its cost grows with targets × references).
AUDIT_LIRA_TARGETS = 64
#: The reference each arm is compared with, stated in every audit row.
AUDIT_REFERENCE = ("the same unlearner applied to the retrained model on the same retain set, U(A(D_r), D_r), "
                   "with σ pinned to the audited σ: the 'noisy retrain' of the unlearning definition")


def _run_seed(seed: int, arm: int, run: int) -> int:
    """The unlearner's seed of run ``run`` of ``arm`` (0 = unlearned, 1 = noisy retrain): distinct streams."""
    return 1_000_000 * (int(seed) + 1) + 2 * int(run) + int(arm)


def _coords(p: int) -> np.ndarray | None:
    """Coordinates the white-box statistic sees: all (None) up to :data:`AUDIT_MAX_COORDS`, else a fixed subset."""
    if p <= AUDIT_MAX_COORDS:
        return None
    return np.sort(np.random.default_rng(7).choice(p, size=AUDIT_MAX_COORDS, replace=False))


def _cert_summary(cert: Mapping[str, Any] | None) -> dict[str, Any]:
    cert = cert or {}
    return {
        "epsilon": cert.get("epsilon"),
        "delta": cert.get("delta"),
        "delta_guaranteed": cert.get("delta_guaranteed", cert.get("delta")),
        "status": _status(cert) if cert else None,
        "certified": cert.get("certified"),
        "epsilon_certified": cert.get("epsilon_certified"),
        "sigma_used": cert.get("sigma_used"),
        "sigma_required": cert.get("sigma_required"),
    }


def _release(prepared: Prepared, method: str, params: Mapping[str, Any], *, run_seed: int, from_retrained: bool,
             cancel: Any) -> tuple[nn.Module, dict[str, Any] | None]:
    """One run of the unlearner: from the trained model A(D), or — the noisy retrain — from A(D_r).

    Both see the same retain set D_r; ``from_retrained`` swaps the starting model only (an UnlearnContext whose
    model is the retrained one), which is U(A(D_r), D_r) of the unlearning definition. The oracle is not
    attached (no per-run distances to compute).
    """
    unlearner = get_unlearner(method)
    resolved = resolve_params(unlearner.schema, dict(params), method=method)
    prepared = prepared.for_method(unlearner, resolved, cancel=cancel)  # a method with its own training recipe
    unlearner.check_supported(prepared.original, resolved, model_name=prepared.config.model)
    ctx = prepared.context(seed=run_seed, cancel=cancel)
    start = prepared.retrained if from_retrained else prepared.original
    ctx = dataclasses.replace(ctx, model=start, retrained=None)
    result = unlearner.unlearn(ctx, **resolved)
    return result.model.eval(), None if result.certificate is None else result.certificate.to_dict()


def _audit_pilot_cell(*, base: RunConfig, seed: int, method: str, params: Mapping[str, Any],
                      cancel: Any = None) -> dict[str, Any]:
    """Prepare the seed and run the unlearner once as configured: the σ the audit scales and the certificate."""
    prepared = prepare_seed(base, seed, cancel=cancel)
    tic = time.perf_counter()
    # The pilot is run 0 of the unlearned arm at the configured σ: with σ pinned to its σ_used, that run repeats it.
    _, cert = _release(prepared, method, params, run_seed=_run_seed(seed, 0, 0), from_retrained=False,
                       cancel=cancel)
    # The direction in which the two arms' starting models differ, A(D) − A(D_r), on the statistic's coordinates:
    # known before any run, so the "direction" statistic spends no runs estimating it.
    start_a, start_b = (get_flat_params(m).detach().double() for m in (prepared.original, prepared.retrained))
    coords = _coords(int(start_a.numel()))
    if coords is not None:
        index = torch.as_tensor(coords, device=start_a.device)
        start_a, start_b = start_a[index], start_b[index]
    return {**_cert_summary(cert), "pilot_s": time.perf_counter() - tic,
            "direction": (start_a - start_b).cpu().numpy(), "centre": (0.5 * (start_a + start_b)).cpu().numpy()}


def _audit_runs_cell(*, base: RunConfig, seed: int, method: str, params: Mapping[str, Any], arm: int,
                     runs: Sequence[int], cancel: Any = None) -> dict[str, Any]:
    """Several independent runs of one arm: per run, the release's (sub)coordinates, per-example outputs on the
    forget set and a test subsample, its test accuracy and its time; plus the first run's certificate."""
    prepared = prepare_seed(base, seed, cancel=cancel)
    splits = mt.prepared_splits(prepared)
    sub = _test_subsample(prepared).to(splits["x_test"].device)
    coords = None
    out: dict[str, list] = {"coords": [], "loss_forget": [], "phi_forget": [], "phi_test": [], "acc_test": [],
                            "time_s": []}
    cert_first = None
    for r in runs:
        tic = time.perf_counter()
        model, cert = _release(prepared, method, params, run_seed=_run_seed(seed, arm, r), from_retrained=arm == 1,
                               cancel=cancel)
        out["time_s"].append(time.perf_counter() - tic)
        if cert_first is None:
            cert_first = _cert_summary(cert)
        flat = get_flat_params(model).detach()
        if coords is None:
            coords = _coords(int(flat.numel()))
        flat = flat if coords is None else flat[torch.as_tensor(coords, device=flat.device)]
        out["coords"].append(flat.float().cpu().numpy())  # the release's own precision (float32 models)
        forget = mt.example_outputs(model, splits["x_forget"], splits["y_forget"])
        out["loss_forget"].append(forget["loss"])
        out["phi_forget"].append(forget["phi"])
        out["phi_test"].append(mt.example_outputs(model, splits["x_test"][sub], splits["y_test"][sub])["phi"])
        out["acc_test"].append(evaluate(model, splits["x_test"], splits["y_test"])[1])
    return {**{k: np.asarray(v) for k, v in out.items()}, "cert": cert_first}


def _gather_arm(chunks: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([c[k] for c in chunks]) for k in ("coords", "loss_forget", "phi_forget", "phi_test",
                                                                 "acc_test", "time_s")}


def _audit_statistics(a: dict[str, np.ndarray], b: dict[str, np.ndarray], half_a: int, half_b: int,
                      pilot: Mapping[str, Any] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each candidate statistic of every run of both arms (A = unlearned, B = noisy retrain).

    ``projection`` (white-box): the release's projection on the difference of the arms' means *estimated on the
    selection halves*, centred between them — for two Gaussians around fixed points, the likelihood-ratio test; in
    p dimensions its estimated direction carries noise of norm ≈ σ·√(2p/n), so with few runs it sees little.
    ``direction`` (white-box): the release's projection on A(D) − A(D_r), the difference of the two arms' starting
    models (from the pilot), centred between them — known before any run, so no run is spent estimating it; for
    output perturbation it is exactly the likelihood-ratio direction.
    ``forget_loss`` (black-box): the release's mean loss on the forget set.
    """
    xa, xb = a["coords"].astype(np.float64), b["coords"].astype(np.float64)
    mean_a, mean_b = xa[:half_a].mean(axis=0), xb[:half_b].mean(axis=0)
    u = mean_a - mean_b
    centre = 0.5 * (mean_a + mean_b)
    out = {
        "projection": ((xa - centre) @ u, (xb - centre) @ u),
        "forget_loss": (a["loss_forget"].mean(axis=1), b["loss_forget"].mean(axis=1)),
    }
    if pilot is not None and pilot.get("direction") is not None:
        d, c = np.asarray(pilot["direction"], dtype=np.float64), np.asarray(pilot["centre"], dtype=np.float64)
        if d.shape == xa.shape[1:] and np.any(d):
            out["direction"] = ((xa - c) @ d, (xb - c) @ d)
    return out


def _audit_lira(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Offline LiRA: unlearned releases as targets against the noisy-retrain releases as OUT references, and the
    noisy retrain against itself (leave-one-out) as the value to read it against.

    Both sides use the same number of references, k_B − 1 (a target of arm A leaves out one reference too, chosen by
    its index): the attack's variance estimate changes at 64 references (per-example above, pooled below —
    :func:`unlearn_core.metrics.lira_offline_scores`), so with unequal counts the target and its null would be scored
    by different attacks (64 against 63 at exactly 64 runs).
    """
    k_b = len(b["phi_forget"])
    if k_b < 3:
        return {}

    def spaced(n: int) -> np.ndarray:
        return np.unique(np.linspace(0, n - 1, min(n, AUDIT_LIRA_TARGETS)).astype(int))

    def lira(target: int, arm: dict[str, np.ndarray], refs: np.ndarray) -> dict[str, float]:
        return mt.lira_mia(arm["phi_forget"][target], arm["phi_test"][target], b["phi_forget"][refs],
                           b["phi_test"][refs])

    all_b = np.arange(k_b)
    on_a = [lira(i, a, all_b[all_b != i % k_b]) for i in spaced(len(a["phi_forget"]))]
    on_b = [lira(i, b, all_b[all_b != i]) for i in spaced(k_b)]
    return {"lira_auc": float(np.mean([r["auc"] for r in on_a])),
            "lira_tpr_at_1fpr": float(np.mean([r["tpr_at_1fpr"] for r in on_a])),
            "lira_auc_reference": float(np.mean([r["auc"] for r in on_b]))}


def _audit_row(*, seed: int, method: str, factor: float, sigma: float | None, pilot: Mapping[str, Any],
               chunks_a: list[dict[str, Any]], chunks_b: list[dict[str, Any]], statistic: str,
               alpha: float) -> dict[str, Any]:
    a, b = _gather_arm(chunks_a), _gather_arm(chunks_b)
    cert = chunks_a[0]["cert"] or {}
    runs = len(a["acc_test"])
    half = runs // 2
    delta_g = cert.get("delta_guaranteed")
    delta_g = float(delta_g) if delta_g is not None else float(cert.get("delta") or 0.0)
    stats = _audit_statistics(a, b, half, half, pilot)
    names = list(stats) if statistic == "auto" else [statistic if statistic in stats else "projection"]
    tests = {n: mt.distinguishing_test(stats[n][0][:half], stats[n][1][:half], stats[n][0][half:],
                                       stats[n][1][half:], delta=delta_g, alpha=alpha) for n in names}
    # The statistic is chosen on the selection half only, so the held-out bound stays valid.
    chosen = max(names, key=lambda n: (tests[n]["epsilon_selection"], tests[n]["accuracy_selection"]))
    test = tests[chosen]
    eps_claim = cert.get("epsilon")
    eps_cert = cert.get("epsilon_certified")
    # Per-example ε on the held-out halves, and the same estimate between the two halves of the noisy retrain:
    # the value identical distributions give with this many models (the estimate is biased upwards).
    pe = mt.per_example_epsilon(a["loss_forget"][half:], b["loss_forget"][half:])
    pe_null = mt.per_example_epsilon(b["loss_forget"][:half], b["loss_forget"][half:])
    pe_q90 = float(np.quantile(pe, 0.9, method="inverted_cdf"))  # an observed value: ∞ stays ∞, never NaN
    row: dict[str, Any] = {
        "seed": seed, "method": method, "mode": "runs", "sigma_factor": float(factor), "sigma": sigma,
        "sigma_required": pilot.get("sigma_required"), "epsilon": eps_claim, "delta": cert.get("delta"),
        "delta_guaranteed": delta_g, "status": cert.get("status"), "certified": cert.get("certified"),
        "epsilon_certified": eps_cert, "runs": runs, "n_eval": runs - half, "alpha": float(alpha),
        "statistic": chosen, "epsilon_lower": test["epsilon_lower"], "epsilon_lower_cap": test["epsilon_lower_cap"],
        "fpr": test["fpr"], "fnr": test["fnr"], "fpr_hi": test["fpr_hi"], "fnr_hi": test["fnr_hi"],
        "refutes_claim": bool(eps_claim is not None and test["epsilon_lower"] > float(eps_claim) + 1e-9),
        "refutes_certificate": bool(eps_cert is not None and test["epsilon_lower"] > float(eps_cert) + 1e-9),
        "pe_epsilon_median": float(np.median(pe)), "pe_epsilon_q90": pe_q90,
        "pe_epsilon_max": float(np.max(pe)), "forgetting_quality": mt.forgetting_quality(pe),
        "pe_epsilon_median_null": float(np.median(pe_null)), "forgetting_quality_null": mt.forgetting_quality(pe_null),
        **_audit_lira(a, b),
        "acc_test": float(np.mean(a["acc_test"])), "acc_test_reference": float(np.mean(b["acc_test"])),
        "time_s": float(np.mean(a["time_s"])), "runs_s": float(np.sum(a["time_s"]) + np.sum(b["time_s"])),
        "pilot_s": pilot.get("pilot_s"), "reference": AUDIT_REFERENCE,
    }
    return row


def audit_per_example_note(row: Mapping[str, Any]) -> str | None:
    """How to read a per-example ε (median) above the claimed ε in one audit row — or ``None`` when it is not.

    Triantafillou et al.'s per-example ε is an estimate from point rates maximised over thresholds, biased upwards
    with few models, not a bound: it is read against the same estimate between the two halves of the noisy retrain
    (``pe_epsilon_median_null``, what identical distributions give with as many models).
    """
    pe, claim, null = row.get("pe_epsilon_median"), row.get("epsilon"), row.get("pe_epsilon_median_null")

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not (number(pe) and number(claim)) or pe <= claim:
        return None
    where = (f"**{row.get('method')}** at σ × {float(row.get('sigma_factor', 1.0)):g}: per-example ε (median) "
             f"{pe:.2f} exceeds the claimed ε = {claim:g}")
    if number(null) and null >= claim:
        return (f"{where} — but the same estimate between two halves of the noisy retrain is {null:.2f}: with this "
                "many runs it reads this high even for identical distributions (it is biased upwards, not a bound), "
                "so it is not evidence of a leak; more runs lower both.")
    null_text = f"{null:.2f}" if number(null) else "not available"
    return (f"{where}, while the noisy retrain against itself gives {null_text}: a sign of leakage — but an "
            "estimate; only the audit's lower bound can refute the claim, and more runs sharpen both.")


#: Audit modes: many runs of both arms (the distinguishing test), or one run with many canaries.
AUDIT_MODES = ("runs", "one_run")


@dataclasses.dataclass(frozen=True)
class AuditPower:
    """What an audit of one method can show, known before any work: the claimed ε, the largest ε the design can
    show (its ceiling), and the runs per arm (many-run mode) a claim this large needs."""

    method: str
    epsilon: float | None
    ceiling: float
    runs_needed: int | None

    @property
    def can_refute(self) -> bool:
        return self.epsilon is None or self.ceiling > self.epsilon

    def message(self, *, mode: str = "runs", runs: int | None = None) -> str:
        design = f"{runs} runs per arm" if mode == "runs" else "this many canaries and guesses"
        if self.epsilon is None:
            return f"{self.method}: {design} can show ε up to {self.ceiling:.2f}"
        if self.can_refute:
            return (f"{self.method}: {design} can show ε up to {self.ceiling:.2f}, above the claimed ε = "
                    f"{self.epsilon:g} — a perfect test would refute it")
        need = (f"refuting it needs at least {self.runs_needed:,} runs per arm" if self.runs_needed is not None
                else "no number of runs can refute it")
        if mode == "one_run":
            need = "more canaries and guesses (or the many-run mode) are needed to refute it"
        return (f"{self.method}: {design} can show ε up to {self.ceiling:.2f} at most, below the claimed ε = "
                f"{self.epsilon:g}: {need}")


def _claimed(name: str, override: Mapping[str, Any]) -> tuple[float | None, float]:
    """(claimed ε, δ) of ``name`` with ``override``, before any work (``None`` when it has no ε hyperparameter)."""
    unlearner = get_unlearner(name)
    resolved = resolve_params(unlearner.schema, dict(override), method=name)
    eps = resolved.get(unlearner.epsilon_param) if unlearner.epsilon_param else None
    delta = resolved.get("delta")
    return (float(eps) if isinstance(eps, (int, float)) else None,
            float(delta) if isinstance(delta, (int, float)) else 0.0)


def audit_power(
    *,
    methods: Sequence[str],
    params: Mapping[str, Mapping[str, Any]] | None,
    runs: int,
    alpha: float = 0.05,
    mode: str = "runs",
    canaries: int | None = None,
    guesses: int | None = None,
) -> list[AuditPower]:
    """Per method, what the audit can show before any work (the page and the CLI state it before Run).

    Many-run mode: :func:`unlearn_core.metrics.audit_epsilon_ceiling` of ``runs`` and, for the claimed ε,
    :func:`unlearn_core.metrics.audit_runs_needed`. One-run mode: the bound with every guess correct
    (:func:`unlearn_core.one_run_audit.unlearning_epsilon_ceiling`).
    """
    from unlearn_core import one_run_audit as ora

    out = []
    for name in methods:
        eps, delta = _claimed(name, (params or {}).get(name, {}))
        if mode == "one_run":
            k = int(guesses or ora.ONE_RUN_GUESSES)
            ceiling = ora.unlearning_epsilon_ceiling(m=int(canaries or ora.ONE_RUN_CANARIES), r=2 * k, delta=delta,
                                                     beta=alpha)
            out.append(AuditPower(name, eps, ceiling, None))
            continue
        ceiling = mt.audit_epsilon_ceiling(runs, alpha=alpha, delta=delta)
        need = mt.audit_runs_needed(eps, alpha=alpha, delta=delta) if eps is not None else None
        out.append(AuditPower(name, eps, ceiling, need))
    return out


def check_audit_args(
    *,
    methods: Sequence[str] | None,
    params: Mapping[str, Mapping[str, Any]] | None,
    sigma_factors: Sequence[float],
    runs: int,
    statistic: str,
    alpha: float,
    runs_per_cell: int,
    mode: str = "runs",
    canaries: int | None = None,
    guesses: int | None = None,
    allow_weak: bool = True,
    n_train: int | None = None,
) -> tuple[list[str], dict[str, dict[str, Any]], list[float]]:
    """Check :func:`audit`'s own arguments (before any training: the CLI and the dashboard call it first).

    Returns the methods (default: every certified method), their hyperparameter overrides and the σ factors.
    With ``allow_weak=False`` an audit that cannot refute anything is refused: every method's claimed ε is at or
    above the largest ε the design can show (:func:`audit_power`) and no σ factor above 1 (whose certificate claims
    a smaller ε) is audited.

    Raises:
        ConfigError: one line naming the argument, its value and what is allowed.
    """
    from unlearn_core import one_run_audit as ora

    certified = certified_methods()
    methods = list(methods) if methods is not None else certified
    for name in methods:
        cls = get_unlearner(name)
        if not cls.issues_certificate():
            raise ConfigError(f"method {name!r} cannot be audited: it carries no certificate (family {cls.family}); "
                              f"choose from {', '.join(certified)}")
    overrides = _check_methods(methods, params)
    if mode not in AUDIT_MODES:
        raise ConfigError(f"mode={mode!r} is not valid: choose one of {', '.join(AUDIT_MODES)}")
    if statistic not in AUDIT_STATISTICS:
        raise ConfigError(f"statistic={statistic!r} is not valid: choose one of {', '.join(AUDIT_STATISTICS)}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ConfigError(f"alpha={alpha!r} is not valid: expected a number in (0, 1)")
    low, high = AUDIT_RUNS_RANGE
    if not isinstance(runs, int) or isinstance(runs, bool) or not low <= runs <= high:
        raise ConfigError(f"runs={runs!r} is not valid: expected an integer in [{low}, {high:,}] (half select the "
                          "test, half count its errors; each run holds a parameter vector)")
    if not isinstance(runs_per_cell, int) or isinstance(runs_per_cell, bool) or not 1 <= runs_per_cell <= high:
        raise ConfigError(f"runs_per_cell={runs_per_cell!r} is not valid: expected an integer in [1, {high:,}]")
    if mode == "one_run":
        ora.check_one_run_args(canaries=ora.ONE_RUN_CANARIES if canaries is None else canaries,
                               guesses=ora.ONE_RUN_GUESSES if guesses is None else guesses, n_train=n_train)
    factors = [float(f) for f in sigma_factors]
    if not factors or any(not (math.isfinite(f) and f > 0) for f in factors):
        raise ConfigError(f"sigma_factors={list(sigma_factors)!r} is not valid: expected numbers > 0")
    for name in methods:
        if any(f != 1.0 for f in factors) and get_unlearner(name).noise_param is None:
            raise ConfigError(f"method {name!r} has no 'sigma' hyperparameter: only sigma_factors=1 applies")
    if not allow_weak and max(factors) <= 1.0:
        power = audit_power(methods=methods, params=overrides, runs=runs, alpha=alpha, mode=mode,
                            canaries=canaries, guesses=guesses)
        if not any(p.can_refute for p in power):
            weakest = min(power, key=lambda p: p.epsilon if p.epsilon is not None else math.inf)
            raise ConfigError(("runs=" + str(runs) if mode == "runs" else "this design") + " cannot refute any claim: "
                              + weakest.message(mode=mode, runs=runs) + " (run it anyway with allow_weak)")
    return methods, overrides, factors


def audit(
    base: RunConfig,
    *,
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    sigma_factors: Sequence[float] = (1.0,),
    runs: int = 100,
    seeds: Sequence[int] = (0,),
    statistic: str = "auto",
    alpha: float = 0.05,
    runs_per_cell: int = AUDIT_RUNS_PER_CELL,
    mode: str = "runs",
    canaries: int | None = None,
    guesses: int | None = None,
    allow_weak: bool = True,
    progress: ProgressFn = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    r"""An empirical lower bound on ε beside the certified (ε, δ), for every certified method: one row per
    (seed, method, σ factor).

    ``mode="one_run"`` runs the one-run audit with ``canaries`` canaries and ``guesses`` guesses per side instead
    (:func:`unlearn_core.one_run_audit.one_run_audit`: one training and one unlearning run per σ factor); ``runs``,
    ``statistic`` and ``runs_per_cell`` then do not apply. ``allow_weak=False`` refuses an audit whose design cannot
    refute any claim (:func:`check_audit_args`).

    **What is compared.** A certificate claims that the unlearner's output U(A(D), D_r) is (ε, δ)-indistinguishable
    from the *noisy retrain*, the same mechanism applied to the retrained model, U(A(D_r), D_r) — the definition
    both Zhang et al. and Koloskova et al. certify (for certified Newton, U(A(D_r), D_r) is w̃* + N(0, σ²I) up to
    the Newton step at w̃*, which vanishes at a minimiser). So the audit runs the unlearner ``runs`` times from the
    trained model (arm A) and ``runs`` times from the retrained model (arm B), every run with its own seed (LiSSA
    batches, noise, fine-tuning order: all of the method's randomness) and the *same* σ in both arms.

    **σ.** A pilot run with the given hyperparameters fixes the reference σ (its ``sigma_used``: the σ the
    certificate requires, or the user's ``sigma``); each audited σ is ``factor × σ_ref`` (``sigma_factors``;
    1 = as released, 1e-6 = deliberately under-noised). Methods without a ``sigma`` hyperparameter allow factor 1
    only.

    **The test.** Each run is reduced to a scalar (``statistic``: ``projection`` on the difference of the arm
    means — white-box —, ``forget_loss`` — black-box —, or ``auto``: whichever separates better on the selection
    half). The threshold test is chosen on the first half of the runs and its errors counted on the second
    (:func:`unlearn_core.metrics.distinguishing_test`); Clopper–Pearson limits give ``epsilon_lower``, a lower bound
    on ε at the claimed ``delta_guaranteed`` holding with confidence ≈ 1 − α.

    **Reading it.** ``epsilon_lower`` > ``epsilon`` (the claimed ε) refutes the claim (``refutes_claim``);
    > ``epsilon_certified`` (what the bound certifies at this σ) refutes the certificate (``refutes_certificate``).
    ``epsilon_lower`` ≤ both refutes nothing and confirms nothing: a lower bound can only refute. It is capped
    by the number of runs (``epsilon_lower_cap``). Beside it: Triantafillou et al.'s per-example ε on the forget
    losses of the counted halves (``pe_epsilon_*``, ``forgetting_quality``: an estimate, not a bound, read against
    ``pe_epsilon_median_null`` / ``forgetting_quality_null``, the same estimate between the two halves of the noisy
    retrain) and an offline LiRA with the noisy retrain as references (``lira_auc``, read against
    ``lira_auc_reference``, the noisy retrain scored against itself).

    **Limits.** One (D, D_u) pair and one trained model per seed, whereas the certificate is a worst case over
    data sets; finitely many runs, so a small ε is invisible (the cap); the hypotheses behind the certificate
    (e.g. assumed constants) are what the certificate's ``status`` reports, not what the audit checks.

    Cells: one pilot per (seed, method) (which also trains the seed's models), then chunks of ``runs_per_cell``
    runs per (seed, method, σ, arm).
    """
    seeds = _check_seeds(seeds)
    methods, overrides, factors = check_audit_args(methods=methods, params=params, sigma_factors=sigma_factors,
                                                   runs=runs, statistic=statistic, alpha=alpha,
                                                   runs_per_cell=runs_per_cell, mode=mode, canaries=canaries,
                                                   guesses=guesses, allow_weak=allow_weak,
                                                   n_train=get_dataset_info(base.dataset).n_train)
    if mode == "one_run":
        from unlearn_core import one_run_audit as ora

        return ora.one_run_audit(base, methods=methods, params=overrides, sigma_factors=factors,
                                 canaries=canaries or ora.ONE_RUN_CANARIES, guesses=guesses or ora.ONE_RUN_GUESSES,
                                 seeds=seeds, alpha=alpha, progress=progress, cancel=cancel, executor=executor)

    pairs = [(s, m) for s in seeds for m in methods]
    with _Scope(executor) as ex:
        pilots = _run_cells(ex, [Cell(_audit_pilot_cell, {"base": base, "seed": s, "method": m,
                                                          "params": overrides[m]}, label=f"seed {s}: {m} pilot")
                                 for s, m in pairs], progress=progress, cancel=cancel, phase="prepare",
                            estimates=False)
        plan: list[tuple[int, str, float, float | None, dict[str, Any]]] = []
        cells: list[Cell] = []
        keys: list[tuple[int, int]] = []
        for (s, m), pilot in zip(pairs, pilots, strict=True):
            noise_param = get_unlearner(m).noise_param
            for f in factors:
                sigma_ref = pilot.get("sigma_used")
                sigma = None if noise_param is None else f * float(sigma_ref or 0.0)
                run_params = {**overrides[m], **({noise_param: sigma} if noise_param is not None else {})}
                plan.append((s, m, f, sigma, pilot))
                for arm in (0, 1):
                    for start in range(0, runs, runs_per_cell):
                        chunk = list(range(start, min(runs, start + runs_per_cell)))
                        cells.append(Cell(_audit_runs_cell, {"base": base, "seed": s, "method": m,
                                                             "params": run_params, "arm": arm, "runs": chunk},
                                          label=f"seed {s}: {m} ×{f:g}, arm {'AB'[arm]}, runs {chunk[0]}–"))
                        keys.append((len(plan) - 1, arm))
        results = _run_cells(ex, cells, progress=progress, cancel=cancel, phase="runs", estimates=False)
    by_plan: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for key, res in zip(keys, results, strict=True):
        by_plan.setdefault(key, []).append(res)
    rows = []
    for i, (s, m, f, sigma, pilot) in enumerate(plan):
        rows.append(_audit_row(seed=s, method=m, factor=f, sigma=sigma, pilot=pilot, chunks_a=by_plan[(i, 0)],
                               chunks_b=by_plan[(i, 1)], statistic=statistic, alpha=alpha))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 6. forget-set size
# ----------------------------------------------------------------------------------------------------------------


def _size_spec(size: float) -> str:
    """``random:N`` for a count ≥ 1, ``random:F`` for a fraction in (0, 1)."""
    if size >= 1:
        if not float(size).is_integer():
            raise ConfigError(f"size {size!r} is not valid: expected a count (integer ≥ 1) or a fraction in (0, 1)")
        return f"random:{int(size)}"
    if not size > 0:
        raise ConfigError(f"size {size!r} is not valid: expected a count (integer ≥ 1) or a fraction in (0, 1)")
    return f"random:{size!r}"  # not :g, which made 0.9999999 the count "random:1"


def _forget_size_reference_cell(*, base: RunConfig, seed: int, cancel: Any = None) -> dict[str, Any]:
    prepared = prepare_seed(base, seed, cancel=cancel)
    retrain_s = prepared.timing_s.get("retrain")
    return {"seed": seed, "forget": base.forget, "n_forget": int(prepared.forget_idx.numel()), "method": "retrained",
            "family": "reference", "time_s": retrain_s, "retrain_time_s": retrain_s, "speedup": None,
            **prepared.metrics(prepared.retrained), "dist_to_retrained": 0.0, **_cert_columns(None)}


def _forget_size_method_cell(*, base: RunConfig, seed: int, method: str, params: Mapping[str, Any],
                             cancel: Any = None) -> dict[str, Any]:
    prepared = prepare_seed(base, seed, cancel=cancel)
    result = run_method(prepared, method, dict(params), seed=seed, cancel=cancel)
    retrain_s = prepared.timing_s.get("retrain")
    t = result.card["timing_s"]["unlearn"]
    return {"seed": seed, "forget": base.forget, "n_forget": int(prepared.forget_idx.numel()), "method": method,
            "family": result.card["method"]["family"], "time_s": t, "retrain_time_s": retrain_s,
            "speedup": (retrain_s / t) if retrain_s and t else None, **result.card["models"]["unlearned"],
            "dist_to_retrained": result.card["distance"]["unlearned_to_retrained"],
            **{f"{k}_retrained": result.card["models"]["retrained"][k] for k in ACCURACY_COLUMNS},
            **_cert_columns(result.card["certificate"])}


def forget_size_specs(sizes: Sequence[float]) -> list[str]:
    """The forget specs of :func:`forget_size`'s sizes (``random:N`` or ``random:F``), checked before any work.

    Raises:
        ConfigError: an empty list, a size that is neither a count ≥ 1 nor a fraction in (0, 1), or repeated sizes.
    """
    if not sizes:
        raise ConfigError("sizes is empty: give at least one forget-set size (a count or a fraction)")
    specs = [_size_spec(float(s)) for s in sizes]
    for spec in specs:
        parse_forget_spec(spec)
    if len(set(specs)) != len(specs):
        raise ConfigError(f"sizes={list(sizes)!r} is not valid: the sizes must be distinct")
    return specs


def forget_size(
    base: RunConfig,
    *,
    methods: Sequence[str] = ("certified_newton", "noisy_finetune"),
    sizes: Sequence[float] = (10, 50, 100, 200),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0,),
    progress: ProgressFn = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    """How cost, accuracy and the certificate scale with the forget-set size n_u (as in the MUSE and Guo et al.
    suites): one row per (seed, size, method) plus a ``retrained`` reference row per (seed, size).

    Each size is a random forget set (``random:N``, or a fraction below 1) drawn with ``base.forget_seed``; each
    needs its own retrained model (trained once, cached), while the original model is shared. Columns:
    ``n_forget``; ``time_s`` (unlearning; retraining for the reference row), ``retrain_time_s``, ``speedup``;
    accuracies and ``dist_to_retrained`` with the retrained ``acc_*_retrained``; the certificate's ``status``,
    ``epsilon_certified``, ``sigma_required``, ``sigma_used``, ``delta_bound``, ``delta_guaranteed``.
    """
    seeds = _check_seeds(seeds)
    overrides = _check_methods(methods, params)
    specs = forget_size_specs(sizes)
    configs = [(dataclasses.replace(base, forget=spec), s) for s in seeds for spec in specs]
    cells: list[Cell] = []
    for config, s in configs:
        cells.append(Cell(_forget_size_reference_cell, {"base": config, "seed": s},
                          label=f"seed {s}: {config.forget} retrained"))
        cells += [Cell(_forget_size_method_cell, {"base": config, "seed": s, "method": m, "params": overrides[m]},
                       label=f"seed {s}: {config.forget} {m}") for m in methods]
    with _Scope(executor) as ex:
        _prepare_all(ex, configs, progress=progress, cancel=cancel)
        rows = _run_cells(ex, cells, progress=progress, cancel=cancel, phase="runs")
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 7. frontier
# ----------------------------------------------------------------------------------------------------------------

#: ε values of :func:`frontier` by default: log-spaced over three decades around the papers' ε = 1.
FRONTIER_EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)

#: How far below the retrained model's test accuracy a method may be and still count as "like retraining" on the
#: frontier: the verdict's 2 points (:data:`unlearn_core.verdict.THRESHOLDS`, one-sided as its "loses accuracy";
#: :func:`unlearn_core.verdict.frontier_first_epsilon`).
FRONTIER_POINTS = THRESHOLDS.accuracy_points


def frontier_methods() -> list[str]:
    """The registry's certificate-issuing methods with a target ε (``Unlearner.epsilon_param``): what the frontier
    sweeps."""
    return [name for name in methods_with("certificate") if get_unlearner(name).epsilon_param is not None]


def _frontier_reference_cell(*, base: RunConfig, seed: int, cancel: Any = None) -> dict[str, Any]:
    """The ``original`` and ``retrained`` rows of one seed: the frontier's horizontal reference lines."""
    prepared = prepare_seed(base, seed, cancel=cancel)
    rows = []
    for ref, model, t in (("original", prepared.original, prepared.timing_s.get("train")),
                          ("retrained", prepared.retrained, prepared.timing_s.get("retrain"))):
        rows.append({"seed": seed, "method": ref, "family": "reference", "role": "reference", "epsilon": None,
                     **prepared.metrics(model), "dist_to_retrained": param_distance(model, prepared.retrained),
                     "time_s": t, "n_forget": int(prepared.forget_idx.numel()),
                     "n_test": int(prepared.data.y_test.numel())})
    return {"rows": rows}


def _setting_text(setting: Mapping[str, Any]) -> str:
    """``"C0=0.3, finetune_epochs=30"`` (``"defaults"`` for the empty setting): the frontier's tooltip and CSV."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items()) or "defaults"


def frontier_settings(method: str, pinned: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The settings the frontier runs ``method`` with at every ε: its declared grid (``Unlearner.frontier_grid``)
    without the hyperparameters the user pinned, duplicates removed; ``[{}]`` (the user's settings alone) when
    nothing is left to sweep.

    Pinned: an entry of ``pinned`` whose value differs from the schema's default. A value equal to the default is
    not a choice the user made (the dashboard sends every widget's value, defaults included), so the grid replaces
    it; to run one setting only, set the grid's hyperparameters to other values, or pass the method no grid."""
    schema = {p.name: p for p in get_unlearner(method).schema}
    chosen = {k for k, v in pinned.items() if k in schema and v != schema[k].default}
    out: list[dict[str, Any]] = []
    for setting in get_unlearner(method).frontier_grid:
        free = {k: v for k, v in setting.items() if k not in chosen}
        if free not in out:
            out.append(free)
    return out or [{}]


def _frontier_cell(*, base: RunConfig, seed: int, method: str, params: Mapping[str, Any], epsilon: float,
                   setting: Mapping[str, Any] | None = None, cancel: Any = None) -> dict[str, Any]:
    """One method at one ε and one grid setting on one seed's models: a *candidate* row — the released model's
    accuracies and distance, the certificate's status, σ and ε certified, the setting — for :func:`frontier_envelope`.

    Its ``epsilon`` column is empty: a candidate is not a frontier point (``epsilon_run`` is the ε it ran for)."""
    prepared = prepare_seed(base, seed, cancel=cancel)
    epsilon_param = get_unlearner(method).epsilon_param
    setting = dict(setting or {})
    result = run_method(prepared, method, {**params, **setting, epsilon_param: float(epsilon)}, seed=seed,
                        cancel=cancel)
    card = result.card
    row: dict[str, Any] = {"seed": seed, "method": method, "family": card["method"]["family"],
                           **card["models"]["unlearned"],
                           "dist_to_retrained": card["distance"]["unlearned_to_retrained"],
                           "time_s": card["timing_s"]["unlearn"], "n_forget": int(prepared.forget_idx.numel()),
                           "n_test": int(prepared.data.y_test.numel()), **_cert_columns(card["certificate"])}
    row.update(role="candidate", epsilon=None, epsilon_run=float(epsilon), setting=_setting_text(setting),
               **{f"param.{k}": v for k, v in setting.items()})
    diag = result.result.diagnostics
    row["approx_error"] = diag.approx_error
    if diag.noiseless_accuracy is not None:
        row.update({f"acc_{s}_noiseless": getattr(diag.noiseless_accuracy, s) for s in SPLITS})
    return {"rows": [row]}


#: Relative slack of "ε certified ≤ ε" when a candidate is admitted at a frontier ε (the calibrations' last bits).
FRONTIER_RTOL = 1e-9


def frontier_envelope(candidates: pd.DataFrame, epsilons: Sequence[float]) -> pd.DataFrame:
    """The frontier's points from its candidate rows: per method and frontier ε, the best certified release.

    A candidate (a grid setting run for ε_run, over the seeds) is *admitted* at ε when every seed's release is
    certified at ε or below — its ``epsilon_certified`` (finite only when every hypothesis of its bound holds) is at
    most ε. Among the admitted candidates the one with the best mean test accuracy is the point (ties: the one run
    for ε itself, then the grid's order). Why the curve cannot fall as ε grows: a release certified at ε is certified
    at every ε' ≥ ε (the (ε, δ) guarantee only weakens), so every candidate admitted at ε is admitted at ε', and the
    best over a larger set is at least as good — the envelope of the grid, not one setting's curve.

    Returns one row per (method, ε, seed) of the chosen candidate, ``role="frontier"``, ``epsilon`` = the frontier ε
    and ``epsilon_run``/``setting`` saying which run it is. A method with no admitted candidate at ε has no point
    there (its uncertified candidates stay in the candidate rows).
    """
    rows: list[dict[str, Any]] = []
    if not len(candidates):
        return pd.DataFrame(rows)
    cands = candidates.assign(
        acc_test=pd.to_numeric(candidates["acc_test"], errors="coerce"),
        epsilon_certified=pd.to_numeric(candidates["epsilon_certified"], errors="coerce"),
    )
    for _method, part in cands.groupby("method", sort=False):
        groups = []
        for order, ((eps_run, setting), g) in enumerate(part.groupby(["epsilon_run", "setting"], sort=False)):
            certified = g["epsilon_certified"]
            worst = float(certified.max()) if certified.notna().all() else math.inf
            groups.append({"eps_run": float(eps_run), "setting": setting, "order": order, "worst": worst,
                           "acc": float(g["acc_test"].mean()), "rows": g})
        for eps in sorted({float(e) for e in epsilons}):
            admitted = [c for c in groups if c["worst"] <= eps * (1.0 + FRONTIER_RTOL)]
            if not admitted:
                continue
            best = max(admitted, key=lambda c: (c["acc"], c["eps_run"] == eps, -c["order"]))
            for record in best["rows"].to_dict(orient="records"):
                record.update(role="frontier", epsilon=eps, epsilon_run=best["eps_run"])
                rows.append(record)
    return pd.DataFrame(rows)


def check_frontier_args(
    *, methods: Sequence[str] | None, epsilons: Sequence[float], params: Mapping[str, Mapping[str, Any]] | None
) -> tuple[list[str], dict[str, dict[str, Any]], list[float]]:
    """Check :func:`frontier`'s own arguments before any training: every (method, grid setting, ε) is resolved.

    Raises:
        ConfigError: a method without an ``epsilon`` hyperparameter, an ε that is not > 0, or a value the
            method's schema refuses.
    """
    methods = list(methods) if methods is not None else frontier_methods()
    overrides = _check_methods(methods, params)
    for name in methods:
        if get_unlearner(name).epsilon_param is None:
            raise ConfigError(f"method {name!r} has no 'epsilon' hyperparameter: the frontier sweeps ε of the "
                              f"certified methods ({', '.join(frontier_methods())})")
    values = [float(e) for e in epsilons]
    if not values or any(not (math.isfinite(e) and e > 0) for e in values):
        raise ConfigError(f"epsilons={values!r} is not valid: expected numbers > 0, at least one")
    for name in methods:  # every (method, setting, ε) validated before anything is trained
        unlearner = get_unlearner(name)
        for setting in frontier_settings(name, overrides[name]):
            for e in values:
                resolve_params(unlearner.schema, {**overrides[name], **setting, unlearner.epsilon_param: e},
                               method=name)
    return methods, overrides, values


def frontier(
    base: RunConfig,
    *,
    methods: Sequence[str] | None = None,
    epsilons: Sequence[float] = FRONTIER_EPSILONS,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0,),
    progress: ProgressFn = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    """The privacy–utility frontier: each certified method's best certified release against ε, on one configuration.

    Every method runs at every ε with each setting of its declared grid (``Unlearner.frontier_grid``, less what
    ``params[method]`` sets to a value other than its default: :func:`frontier_settings`) on every seed; those are
    the ``candidate`` rows (``epsilon`` empty, ``epsilon_run`` the ε asked for, ``setting`` and ``param.<name>`` the
    grid values). The ``frontier`` rows are the envelope
    (:func:`frontier_envelope`): per method and ε, the admitted candidate — certified at ε or below — with the best
    mean test accuracy, so only certified releases form the frontier and it cannot fall as ε grows. The
    ``original`` and ``retrained`` reference rows of each seed have ``role="reference"``. A simulation, like every
    experiment (seeded release noise). It answers "what does certification cost us?" and from which ε on a method is
    at most :data:`FRONTIER_POINTS` below retraining (:func:`unlearn_core.verdict.frontier_first_epsilon`, which
    reads the frontier rows). Beyond both papers, which report single ε values. Choosing the setting by test
    accuracy is optimistic, and tuning on private data is itself not covered by the certificate (Papernot &
    Steinke, ICLR 2022): the frontier is what the method *can* reach, not a tuned release.
    """
    seeds = _check_seeds(seeds)
    methods, overrides, epsilons = check_frontier_args(methods=methods, epsilons=epsilons, params=params)
    cells: list[Cell] = []
    for seed in seeds:
        cells.append(Cell(_frontier_reference_cell, {"base": base, "seed": seed}, label=f"seed {seed}: references"))
        cells += [Cell(_frontier_cell, {"base": base, "seed": seed, "method": name, "params": overrides[name],
                                        "epsilon": e, "setting": setting},
                       label=f"seed {seed}: {name}, ε = {e:g}, {_setting_text(setting)}")
                  for name in methods for e in epsilons for setting in frontier_settings(name, overrides[name])]
    with _Scope(executor) as ex:
        _prepare_all(ex, [(base, s) for s in seeds], progress=progress, cancel=cancel)
        results = _run_cells(ex, cells, progress=progress, cancel=cancel, phase="runs")
    rows = [row for r in results for row in r["rows"]]
    references = pd.DataFrame([r for r in rows if r["role"] == "reference"])
    candidates = pd.DataFrame([r for r in rows if r["role"] == "candidate"])
    parts = [references, frontier_envelope(candidates, epsilons), candidates]
    return pd.concat([p for p in parts if len(p)], ignore_index=True)
