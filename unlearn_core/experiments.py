r"""The papers' figures as reusable experiments, plus an empirical audit of a certificate.

Every experiment is a plain function of a base :class:`~unlearn_core.pipeline.RunConfig`, method names from the
registry, hyperparameter overrides and a list of seeds; it returns a *tidy* :class:`pandas.DataFrame` (one row per
method / step / setting / seed) that :func:`summarize` turns into mean and spread, :mod:`unlearn_core.plots` turns
into figures, and ``python -m unlearn_core experiment ...`` writes as CSV and JSON.

* :func:`compare` — methods against retraining on one configuration (Zhang et al. Table 1 and Fig. 2).
* :func:`sequential` — k removal requests in a row (Zhang et al. Fig. 3).
* :func:`sensitivity` — a sweep over one numeric hyperparameter (Zhang et al. Fig. 4).
* :func:`budget` — accuracy against the unlearning budget in epochs (Koloskova et al. Fig. 1).
* :func:`audit` — an empirical lower bound on ε beside the certified ε (beyond the papers).
* :func:`frontier` — the privacy–utility frontier: each certified method's accuracy against ε (beyond the papers).

Seeds: seed ``s`` sets the model initialisation, the training shuffle and the unlearner's own randomness
(``RunConfig.seed``), so each seed has its own original and retrained models; the forget set is fixed by
``base.forget_seed``. Trained models come from the on-disk cache, so every method of one seed shares them and a
second experiment on the same configuration trains nothing.

Every row carries the retrained model's value of the same metric (rows with ``method == "retrained"``, or
``*_retrained`` columns), because every unlearning metric is read against retraining: closer is better, and
"better than retraining" (e.g. a lower forget accuracy) is over-unlearning, not success.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from unlearn_core import metrics as mt
from unlearn_core.certificate import Certificate
from unlearn_core.diagnostics import SPLITS, Diagnostics
from unlearn_core.errors import ConfigError
from unlearn_core.evaluation import evaluate, param_distance
from unlearn_core.functional import get_flat_params, set_flat_params
from unlearn_core.pipeline import Prepared, RunConfig, prepare, run_method
from unlearn_core.unlearners import get_unlearner, list_unlearners, resolve_params
from unlearn_core.verdict import THRESHOLDS

ProgressFn = Callable[[dict[str, Any]], None] | None

#: Metric columns of :func:`compare` rows (also what :func:`summarize` aggregates by default).
ACCURACY_COLUMNS = ("acc_forget", "acc_retain", "acc_test")

#: The hyperparameter that sets each method's unlearning budget in epochs (:func:`budget`).
BUDGET_PARAM = {
    "noisy_finetune": "finetune_epochs",
    "output_perturbation": "finetune_epochs",
    "finetune": "epochs",
    "neggrad_plus": "epochs",
    "retrain": "epochs",
}


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


def _report(progress: ProgressFn, **info: Any) -> None:
    if progress is not None:
        progress(info)


def prepare_seed(base: RunConfig, seed: int, *, progress: ProgressFn = None) -> Prepared:
    """The prepared configuration (data, split, cached original and retrained models) of ``base`` at ``seed``."""
    config = dataclasses.replace(base, seed=int(seed), compute_retrained=True)
    return prepare(config, progress=progress)


def _cert_columns(cert: Mapping[str, Any] | None) -> dict[str, Any]:
    """The certificate's table columns (all ``None`` for a method without one); ``delta_bound`` is Δ."""
    if not cert:
        return {"certified": None, "status": None, "epsilon": None, "delta": None, "delta_guaranteed": None,
                "epsilon_certified": None, "sigma_used": None, "sigma_required": None, "delta_bound": None}
    c = Certificate.from_dict(dict(cert))
    finite = c.sensitivity is not None and math.isfinite(c.sensitivity)
    return {
        "certified": c.certified,
        "status": c.status,
        "epsilon": c.epsilon,
        "delta": c.delta,
        "delta_guaranteed": c.delta_guaranteed,
        "epsilon_certified": c.epsilon_certified if math.isfinite(c.epsilon_certified) else None,
        "sigma_used": c.sigma_used,
        "sigma_required": c.sigma_required if math.isfinite(c.sigma_required) else None,
        "delta_bound": c.sensitivity if finite else None,
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

    ``original_metrics``: ``prepared.metrics(prepared.original)``, measured once per seed (the original's row and
    the relearn target). ``card``: the run card of ``model`` when it is a method's output; its
    ``models.unlearned`` block and ``distance`` are the same functions of the same models, so they are reused.
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
    """Mean, standard deviation, count and 95 % half-width (1.96·SE) over seeds of every numeric column.

    ``by`` names the grouping columns (e.g. ``"method"``, ``["method", "step"]``); the result has one row per group
    and columns ``<metric>_mean``, ``<metric>_std``, ``<metric>_n``, ``<metric>_ci95``. The 1.96·SE band is what
    Koloskova et al. plot; with 2-4 seeds it is a rough guide, not a test.
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise ConfigError(f"summarize: no column {missing[0]!r}; available: {', '.join(map(str, df.columns))}")
    if columns is None:
        columns = [c for c in df.columns if c not in keys and c != "seed"
                   and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    grouped = df.groupby(keys, sort=False, dropna=False)[list(columns)]
    mean, std, n = grouped.mean(), grouped.std(ddof=1), grouped.count()
    out = pd.DataFrame(index=mean.index)
    for c in columns:
        out[f"{c}_mean"] = mean[c]
        out[f"{c}_std"] = std[c]
        out[f"{c}_n"] = n[c]
        out[f"{c}_ci95"] = 1.96 * std[c] / np.sqrt(n[c].clip(lower=1))
    return out.reset_index()


# ----------------------------------------------------------------------------------------------------------------
# 1. compare
# ----------------------------------------------------------------------------------------------------------------


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
) -> pd.DataFrame:
    """Methods against retraining on one configuration (Zhang et al. Table 1 and Fig. 2).

    One row per (seed, method), plus the reference rows ``original`` and ``retrained`` of each seed (the cached
    models themselves, so their ``time_s`` is the training time). Columns: ``acc_*``/``loss_*`` on forget, retain
    and test; ``dist_to_retrained`` / ``dist_to_original`` (ℓ2 over parameters); ``kl_*``/``js_*`` to the
    retrained model's predictions; ``mia_*`` (held-out attacks, see :func:`unlearn_core.metrics.model_mia`);
    ``relearn_steps``/``relearn_capped``; ``time_s`` and ``speedup`` (retrain time / unlearning time); and the
    certificate's ``certified``, ``epsilon``, ``sigma_used``, ``delta_bound`` where the method has one.
    """
    seeds = _check_seeds(seeds)
    overrides = _check_methods(methods, params)
    relearn_kwargs = {"lr": relearn_lr, "batch_size": relearn_batch, "max_steps": relearn_max_steps}
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        _report(progress, stage="prepare", seed=seed)
        prepared = prepare_seed(base, seed)
        splits = mt.prepared_splits(prepared)
        retrain_s = prepared.timing_s.get("retrain")
        row_kwargs = {"splits": splits, "original_metrics": prepared.metrics(prepared.original), "mia": mia,
                      "relearn": relearn, "relearn_kwargs": relearn_kwargs, "seed": seed}
        common = {"seed": seed, "dataset": base.dataset, "model": base.model, "forget": base.forget,
                  "n_forget": int(prepared.forget_idx.numel())}
        for ref, model, t in (("original", prepared.original, prepared.timing_s.get("train")),
                              ("retrained", prepared.retrained, retrain_s)):
            row = {**common, "method": ref, "family": "reference", "time_s": t, "speedup": None,
                   **_cert_columns(None)}
            row.update(_model_row(prepared, model, **row_kwargs))
            rows.append(row)
        for i, name in enumerate(methods):
            _report(progress, stage="unlearn", seed=seed, method=name, run=i + 1, runs=len(methods))
            result = run_method(prepared, name, overrides[name], seed=seed)
            t = result.card["timing_s"]["unlearn"]
            row = {**common, "method": name, "family": result.card["method"]["family"], "time_s": t,
                   "speedup": (retrain_s / t) if retrain_s and t else None, **_cert_columns(result.card["certificate"])}
            row.update(_model_row(prepared, result.unlearned, card=result.card, **row_kwargs))
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 2. sequential
# ----------------------------------------------------------------------------------------------------------------


def sequential(
    base: RunConfig,
    *,
    requests: int = 10,
    method: str = "certified_newton",
    params: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0,),
    retrain_each_step: bool = True,
    progress: ProgressFn = None,
) -> pd.DataFrame:
    """k removal requests in a row (Zhang et al. Fig. 3): one row per (seed, step).

    Uses the method's own ``requests`` hyperparameter (certified_newton splits the forget set into k seeded chunks
    and chains the steps, §2.5) and its per-step diagnostics: ``grad_norm`` ‖∇L(w̃_{k−1}, D_{r_k})‖,
    ``delta_bound``, ``sigma_used``, accuracies of the released model on the points forgotten so far / the current
    retain set / test, and — with ``retrain_each_step`` (one retraining per step, the slow part) —
    ``approx_error`` = ‖w̃_k − w̃*_k‖ to that step's retrained model. The retrained model of the *last* step
    (the pipeline's oracle) gives the reference columns ``acc_*_retrained``.
    """
    seeds = _check_seeds(seeds)
    unlearner = get_unlearner(method)
    if "requests" not in {p.name for p in unlearner.schema}:
        raise ConfigError(f"method {method!r} has no 'requests' hyperparameter: sequential needs one "
                          "(e.g. certified_newton)")
    overrides = {**dict(params or {}), "requests": int(requests)}
    if "retrain_each_step" in {p.name for p in unlearner.schema}:
        overrides["retrain_each_step"] = bool(retrain_each_step)
    resolve_params(unlearner.schema, overrides, method=method)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        _report(progress, stage="prepare", seed=seed)
        prepared = prepare_seed(base, seed)
        _report(progress, stage="unlearn", seed=seed, method=method)
        result = run_method(prepared, method, overrides, seed=seed)
        ref = result.card["models"]["retrained"]  # prepared.metrics(prepared.retrained), computed by run_method
        for rec in result.result.diagnostics.requests:
            row = {"seed": seed, "method": method, "requests": int(requests), **rec.to_row()}
            row.update({f"{k}_retrained": ref[k] for k in ACCURACY_COLUMNS})
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 3. sensitivity
# ----------------------------------------------------------------------------------------------------------------


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
) -> pd.DataFrame:
    """A sweep over one numeric hyperparameter of ``method`` (Zhang et al. Fig. 4): one row per (seed, value).

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
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        prepared = prepare_seed(base, seed)
        splits = mt.prepared_splits(prepared)
        ref = prepared.metrics(prepared.retrained)
        ref_mia = mt.model_mia(prepared.retrained, original=prepared.original, seed=seed, **splits) if mia else {}
        for j, v in enumerate(values):
            _report(progress, stage="unlearn", seed=seed, value=v, run=j + 1, runs=len(values))
            result = run_method(prepared, method, {**fixed, param: v}, seed=seed)
            diag = result.result.diagnostics
            row: dict[str, Any] = {"seed": seed, "method": method, "param": param, "value": float(v)}
            row.update(_cert_columns(result.card["certificate"]))
            row["approx_error"] = diag.approx_error
            row["dist_to_retrained"] = result.card["distance"]["unlearned_to_retrained"]
            row.update(_sensitivity_extras(result.card["certificate"], diag))
            row.update(result.card["models"]["unlearned"])
            row.update({f"{k}_retrained": ref[k] for k in ACCURACY_COLUMNS})
            row["time_s"] = result.card["timing_s"]["unlearn"]
            if mia:
                m = mt.model_mia(result.unlearned, original=prepared.original, seed=seed, **splits)
                row.update({f"mia_{k}": x for k, x in m.items()})
                row.update({f"mia_{k}_retrained": x for k, x in ref_mia.items()})
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 4. budget
# ----------------------------------------------------------------------------------------------------------------


def budget(
    base: RunConfig,
    *,
    methods: Sequence[str] = ("noisy_finetune",),
    budgets: Sequence[int] = (1, 2, 5, 10),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0,),
    progress: ProgressFn = None,
) -> pd.DataFrame:
    """Accuracy against the unlearning budget in epochs (Koloskova et al. Fig. 1): one row per (seed, method, b).

    Each method's budget is set through its epoch hyperparameter (:data:`BUDGET_PARAM`): the fine-tuning epochs of
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
        if name not in BUDGET_PARAM:
            raise ConfigError(f"method {name!r} has no epoch budget: choose from {', '.join(sorted(BUDGET_PARAM))}")
    overrides = _check_methods(methods, params)
    budgets = [int(b) for b in budgets]
    if not budgets or any(b < 0 for b in budgets):
        raise ConfigError(f"budgets={budgets!r} is not valid: expected integers ≥ 0")
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        prepared = prepare_seed(base, seed)
        n_r = int(prepared.retain_idx.numel())
        for name in methods:
            for b in budgets:
                _report(progress, stage="unlearn", seed=seed, method=name, budget=b)
                result = run_method(prepared, name, {**overrides[name], BUDGET_PARAM[name]: b}, seed=seed)
                cert = result.card["certificate"] or {}
                batch = int(resolve_params(get_unlearner(name).schema, overrides[name], method=name).get(
                    "batch_size", prepared.train_config.batch_size))
                noisy_steps = int((cert.get("details") or {}).get("T") or 0)
                rows.append({
                    "seed": seed, "method": name, "budget_epochs": b,
                    "noisy_epochs": noisy_steps / max(1, math.ceil(n_r / batch)),
                    **result.card["models"]["unlearned"],
                    "dist_to_retrained": result.card["distance"]["unlearned_to_retrained"],
                    "time_s": result.card["timing_s"]["unlearn"],
                    **_cert_columns(result.card["certificate"]),
                })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# 5. audit
# ----------------------------------------------------------------------------------------------------------------

AUDIT_METHODS = ("certified_newton", "output_perturbation")
AUDIT_STATISTICS = ("projection", "forget_loss")


def _threshold_test(scores_a: np.ndarray, scores_b: np.ndarray, *, delta: float, alpha: float) -> dict[str, Any]:
    """Pick a one-sided threshold test on the first half of the trials, count its errors on the second half.

    The test says "A" (the unlearned arm) when the score is on A's side of the threshold. The threshold and its
    side are chosen to maximise the Clopper–Pearson ε lower bound on the first halves (selection half); FPR and
    FNR are then counted on the held-out halves, so the selection cannot inflate the reported bound.
    """
    ha, hb = len(scores_a) // 2, len(scores_b) // 2
    sel_a, sel_b, ev_a, ev_b = scores_a[:ha], scores_b[:hb], scores_a[ha:], scores_b[hb:]
    candidates = np.unique(np.quantile(np.concatenate([sel_a, sel_b]), np.linspace(0.005, 0.995, 199)))
    best = (-1.0, -1.0, 0.0, 1)
    for sign in (1, -1):
        for t in candidates:
            fp = int((sign * sel_b > sign * t).sum())  # B called "A"
            fn = int((sign * sel_a <= sign * t).sum())  # A called "B"
            eps = mt.epsilon_lower_bound(fpr=mt.clopper_pearson(fp, hb, alpha=alpha)[1],
                                         fnr=mt.clopper_pearson(fn, ha, alpha=alpha)[1], delta=delta)
            # Ties (typically all zero when the arms are indistinguishable) go to the most accurate threshold.
            key = (eps, 1.0 - 0.5 * (fp / hb + fn / ha))
            if key > best[:2]:
                best = (*key, float(t), sign)
    _, _, t, sign = best
    fp = int((sign * ev_b > sign * t).sum())
    fn = int((sign * ev_a <= sign * t).sum())
    na, nb = len(ev_a), len(ev_b)
    fpr_lo, fpr_hi = mt.clopper_pearson(fp, nb, alpha=alpha)
    fnr_lo, fnr_hi = mt.clopper_pearson(fn, na, alpha=alpha)
    # The largest ε_lower these many trials can show (a perfect test: no error at all).
    cap = mt.epsilon_lower_bound(fpr=mt.clopper_pearson(0, nb, alpha=alpha)[1],
                                 fnr=mt.clopper_pearson(0, na, alpha=alpha)[1], delta=delta)
    return {
        "threshold": t, "side": sign, "fpr": fp / nb, "fnr": fn / na, "fpr_ci": (fpr_lo, fpr_hi),
        "fnr_ci": (fnr_lo, fnr_hi), "n_eval": na + nb,
        "epsilon_lower": mt.epsilon_lower_bound(fpr=fpr_hi, fnr=fnr_hi, delta=delta),
        "epsilon_lower_cap": cap,
    }


def gaussian_release_audit(
    w_unlearned: torch.Tensor,
    w_retrained: torch.Tensor,
    *,
    sigma: float,
    delta: float,
    trials: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    statistic: str = "projection",
    score_fn: Callable[[torch.Tensor], float] | None = None,
) -> dict[str, Any]:
    r"""Audit the release :math:`w + N(0, \sigma^2 I)` of two fixed endpoints: how distinguishable are they?

    Draws ``trials`` releases of each arm, A = w_unlearned + ξ and B = w_retrained + ξ' (independent noise, one
    seeded generator), reduces each to a scalar statistic, and runs :func:`_threshold_test`.

    ``statistic="projection"``: the release's projection on the unlearning direction u = (w_A − w_B)/‖w_A − w_B‖.
    For two isotropic Gaussians this is the likelihood-ratio statistic, so no test on the parameters does better;
    its exact privacy curve is the Gaussian mechanism at sensitivity ‖w_A − w_B‖, returned as
    ``epsilon_gaussian_at_actual`` (the ε the *actual* distance implies at δ; the audit's ε_lower should not
    exceed it, beyond the 1 − α confidence). ``statistic="forget_loss"``: ``score_fn`` of each release, e.g. the
    mean loss on the forget set — a black-box attacker's view, weaker.
    """
    from unlearn_core.certificate import epsilon_for_sigma

    if statistic not in AUDIT_STATISTICS:
        raise ConfigError(f"statistic={statistic!r} is not valid: choose one of {', '.join(AUDIT_STATISTICS)}")
    if trials < 20:
        raise ConfigError(f"trials={trials!r} is not valid: expected an integer ≥ 20")
    if not sigma > 0:
        raise ConfigError(f"sigma={sigma!r} is not valid for an audit: expected a number > 0")
    a = w_unlearned.detach().double().cpu()
    b = w_retrained.detach().double().cpu()
    diff = a - b
    dist = float(torch.linalg.vector_norm(diff))
    u = diff / dist if dist > 0 else torch.zeros_like(diff)
    gen = torch.Generator().manual_seed(int(seed))
    chunk = max(1, min(trials, 2**22 // max(1, a.numel())))
    scores = {"A": [], "B": []}
    for arm, centre in (("A", a), ("B", b)):
        done = 0
        while done < trials:
            m = min(chunk, trials - done)
            releases = centre.unsqueeze(0) + sigma * torch.randn(m, a.numel(), generator=gen, dtype=torch.float64)
            if statistic == "projection":
                scores[arm].extend(((releases - b) @ u).tolist())
            else:
                if score_fn is None:
                    raise ConfigError("statistic=forget_loss needs a score function")
                scores[arm].extend(score_fn(r) for r in releases)
            done += m
    test = _threshold_test(np.asarray(scores["A"]), np.asarray(scores["B"]), delta=delta, alpha=alpha)
    test.update({
        "statistic": statistic, "trials": int(trials), "sigma": float(sigma), "delta": float(delta),
        "alpha": float(alpha), "actual_distance": dist,
        "epsilon_gaussian_at_actual": epsilon_for_sigma(sigma=sigma, delta=delta, sensitivity=dist)
        if dist > 0 else 0.0,
    })
    return test


def _audit_endpoints(prepared: Prepared, method: str, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The noise-free endpoints of ``method``, its σ and the bound on their distance."""
    if method == "certified_newton":
        resolved = resolve_params(get_unlearner(method).schema, dict(params), method=method)
        if resolved["requests"] != 1:
            raise ConfigError("the audit covers one request: set requests=1")
        # σ = 0 returns the noise-free estimate w̃ with the same certificate (Δ and σ_required do not depend on σ).
        result = run_method(prepared, method, {**params, "sigma": 0.0}, seed=seed)
        cert = Certificate.from_dict(result.card["certificate"])
        # A bound that does not apply (λ + λ_min ≤ 0) is Δ = ∞: no σ certifies anything.
        bound = math.inf if cert.sensitivity is None else float(cert.sensitivity)
        sigma = resolved["sigma"] if resolved["sigma"] is not None else (
            cert.sigma_required if math.isfinite(cert.sigma_required) else None)
        return {"w_a": get_flat_params(result.unlearned), "w_b": get_flat_params(prepared.retrained),
                "sigma": None if sigma is None else float(sigma), "delta": float(resolved["delta"]), "bound": bound,
                "epsilon_target": float(resolved["epsilon"]),
                "note": "LiSSA batches held fixed (the unlearner's seed): w̃ is one draw of the solver's randomness"}
    if method == "output_perturbation":
        unlearner = get_unlearner(method)
        resolved = resolve_params(unlearner.schema, dict(params), method=method)
        plan = unlearner.plan(resolved)  # type: ignore[attr-defined]
        from unlearn_core.training import project_to_ball

        ends = []
        for model in (prepared.original, prepared.retrained):
            m = copy.deepcopy(model)
            project_to_ball(m, float(resolved["C0"]))
            ends.append(get_flat_params(m))
        return {"w_a": ends[0], "w_b": ends[1], "sigma": float(plan.sigma_used), "delta": float(resolved["delta"]),
                "bound": 2.0 * float(resolved["C0"]), "epsilon_target": float(resolved["epsilon"]),
                "note": "audits the noisy release before fine-tuning (fine-tuning is post-processing)"}
    raise ConfigError(f"method {method!r} cannot be audited: choose one of {', '.join(AUDIT_METHODS)}")


def _forget_loss_scorer(work: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[torch.Tensor], float]:
    """Mean forget-set loss of the model whose flat parameters are ``w`` (``work`` is a private scratch copy)."""

    def score(w: torch.Tensor) -> float:
        set_flat_params(work, w.to(dtype=x.dtype, device=x.device))
        return evaluate(work, x, y)[0]

    return score


def _epsilon_certified(*, sigma: float, delta: float, bound: float) -> float:
    """The ε that noise σ certifies at δ for the bound Δ (analytic Gaussian); ∞ when Δ is."""
    from unlearn_core.certificate import epsilon_for_sigma

    if not math.isfinite(bound):
        return math.inf
    return epsilon_for_sigma(sigma=sigma, delta=delta, sensitivity=bound)


def audit(
    base: RunConfig,
    *,
    method: str = "certified_newton",
    params: Mapping[str, Any] | None = None,
    sigmas: Sequence[float | None] = (None,),
    trials: int = 2000,
    seeds: Sequence[int] = (0,),
    statistic: str = "projection",
    alpha: float = 0.05,
    progress: ProgressFn = None,
) -> pd.DataFrame:
    r"""An empirical lower bound on ε beside the certified ε: one row per (seed, σ).

    **Method.** A certified release is (ε, δ)-indistinguishable from the *noisy retrain*: the retrained model
    plus the same Gaussian noise. Both releases are "fixed endpoint + N(0, σ²I)", so after computing the two
    noise-free endpoints once (the unlearner run with σ = 0 — for certified_newton — or the C₀-projections of the
    original and retrained models — for output perturbation) each trial costs one noise draw. A threshold test on
    a scalar statistic (by default the projection on the unlearning direction, the likelihood-ratio test for this
    pair) is chosen on half the trials and evaluated on the other half; Clopper–Pearson upper limits on its FPR
    and FNR give, by the standard DP-auditing conversion (:func:`unlearn_core.metrics.epsilon_lower_bound`),
    ``epsilon_lower``, a lower bound on the ε of this pair that holds with confidence ≈ 1 − α.

    **Reading it.** ``epsilon_gaussian_at_actual`` is the exact ε of this pair (the Gaussian mechanism at the
    actual distance ‖w̃ − w̃*‖); ``epsilon_certified`` is what the bound Δ certifies at σ. With a valid bound,
    ε_lower ≲ ε_actual ≤ ε_certified; ε_lower > ε_certified would refute the certificate for this pair. The
    gap ε_actual ≪ ε_certified measures how loose the worst-case bound is here. ``sigmas`` overrides σ (``None`` =
    the σ the method uses), e.g. to show that the reference code's σ = 0.001 is audibly not private.

    **Limits.** One (D, D_u) pair and one training run: the certificate is a worst case over data sets, this is one
    point. The unlearner's own randomness (LiSSA's mini-batches) and the training randomness are held fixed, so
    the audit tests the Gaussian release given them, not the failure probability ρ of the LiSSA bound. A lower
    bound can only refute a certificate, never confirm it. Noisy fine-tuning (noise at every step) would need a
    full re-run per trial and is not audited here.
    """
    seeds = _check_seeds(seeds)
    if method not in AUDIT_METHODS:
        raise ConfigError(f"method {method!r} cannot be audited: choose one of {', '.join(AUDIT_METHODS)}")
    if statistic not in AUDIT_STATISTICS:
        raise ConfigError(f"statistic={statistic!r} is not valid: choose one of {', '.join(AUDIT_STATISTICS)}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha!r} is not valid: expected a number in (0, 1)")
    for s in sigmas:
        if s is not None and not (isinstance(s, (int, float)) and s > 0):
            raise ConfigError(f"sigma={s!r} is not valid: expected a number > 0 or none")
    params = dict(params or {})
    resolve_params(get_unlearner(method).schema, params, method=method)

    rows: list[dict[str, Any]] = []
    for seed in seeds:
        prepared = prepare_seed(base, seed)
        _report(progress, stage="endpoints", seed=seed)
        start = time.perf_counter()
        ends = _audit_endpoints(prepared, method, params, seed)
        endpoints_s = time.perf_counter() - start
        score_fn = None
        if statistic == "forget_loss":
            splits = mt.prepared_splits(prepared)
            score_fn = _forget_loss_scorer(copy.deepcopy(prepared.original).eval(), splits["x_forget"],
                                           splits["y_forget"])

        for s in sigmas:
            if s is None and ends["sigma"] is None:
                raise ConfigError(f"{method}'s bound Δ is infinite here (λ + λ_min ≤ 0), so it requires no finite σ: "
                                  "give explicit sigmas or a larger lam")
            sigma = float(s) if s is not None else float(ends["sigma"])
            eps_cert = _epsilon_certified(sigma=sigma, delta=ends["delta"], bound=ends["bound"])
            _report(progress, stage="audit", seed=seed, sigma=sigma)
            start = time.perf_counter()
            res = gaussian_release_audit(ends["w_a"], ends["w_b"], sigma=sigma, delta=ends["delta"], trials=trials,
                                         seed=seed, alpha=alpha, statistic=statistic, score_fn=score_fn)
            rows.append({
                "seed": seed, "method": method, "statistic": statistic, "sigma": sigma,
                "sigma_is_method_default": s is None, "delta": ends["delta"], "trials": trials, "alpha": alpha,
                "bound": ends["bound"], "actual_distance": res["actual_distance"],
                "epsilon_target": ends["epsilon_target"],
                "epsilon_certified": eps_cert,
                "epsilon_gaussian_at_actual": res["epsilon_gaussian_at_actual"],
                "epsilon_lower": res["epsilon_lower"], "epsilon_lower_cap": res["epsilon_lower_cap"],
                "fpr": res["fpr"], "fnr": res["fnr"], "fpr_hi": res["fpr_ci"][1], "fnr_hi": res["fnr_ci"][1],
                "refuted": bool(res["epsilon_lower"] > eps_cert + 1e-9),
                "endpoints_s": endpoints_s, "audit_s": time.perf_counter() - start, "note": ends["note"],
            })
    return pd.DataFrame(rows)



# ----------------------------------------------------------------------------------------------------------------
# 6. frontier
# ----------------------------------------------------------------------------------------------------------------

#: ε values of :func:`frontier` by default: log-spaced over three decades around the papers' ε = 1.
FRONTIER_EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)

#: The test-accuracy gap to the retrained model within which a method "stays like retraining" on the frontier: the
#: verdict's 2 points (:data:`unlearn_core.verdict.THRESHOLDS`); :func:`unlearn_core.verdict.frontier_first_epsilon`.
FRONTIER_POINTS = THRESHOLDS.accuracy_points


def frontier_methods() -> list[str]:
    """The registry's certified methods with an ``epsilon`` hyperparameter (what the frontier sweeps)."""
    return [cls.name for cls in list_unlearners()
            if cls.family == "certified" and any(p.name == "epsilon" for p in cls.schema)]


def _frontier_reference_rows(base: RunConfig, prepared: Prepared, seed: int) -> list[dict[str, Any]]:
    """The ``original`` and ``retrained`` rows of one seed: the frontier's horizontal reference lines."""
    rows = []
    for ref, model, t in (("original", prepared.original, prepared.timing_s.get("train")),
                          ("retrained", prepared.retrained, prepared.timing_s.get("retrain"))):
        rows.append({"seed": seed, "method": ref, "family": "reference", "epsilon": None,
                     **prepared.metrics(model), "dist_to_retrained": param_distance(model, prepared.retrained),
                     "time_s": t, "n_forget": int(prepared.forget_idx.numel()),
                     "n_test": int(prepared.data.y_test.numel())})
    return rows


def _frontier_cell(prepared: Prepared, *, seed: int, method: str, params: Mapping[str, Any],
                   epsilon: float) -> dict[str, Any]:
    """One method at one ε on one seed's prepared models: the released model's accuracies and distance, the
    certificate's status and σ, and the noise-free estimate's accuracies where the method reports them."""
    result = run_method(prepared, method, {**params, "epsilon": float(epsilon)}, seed=seed)
    card = result.card
    row: dict[str, Any] = {"seed": seed, "method": method, "family": card["method"]["family"],
                           **card["models"]["unlearned"],
                           "dist_to_retrained": card["distance"]["unlearned_to_retrained"],
                           "time_s": card["timing_s"]["unlearn"], "n_forget": int(prepared.forget_idx.numel()),
                           "n_test": int(prepared.data.y_test.numel()), **_cert_columns(card["certificate"])}
    row["epsilon"] = float(epsilon)  # the ε asked for (the certificate's own ε is the same number)
    diag = result.result.diagnostics
    row["approx_error"] = diag.approx_error
    if diag.noiseless_accuracy is not None:
        row.update({f"acc_{s}_noiseless": getattr(diag.noiseless_accuracy, s) for s in SPLITS})
    return row


def frontier(
    base: RunConfig,
    *,
    methods: Sequence[str] | None = None,
    epsilons: Sequence[float] = FRONTIER_EPSILONS,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0,),
    progress: ProgressFn = None,
) -> pd.DataFrame:
    """The privacy–utility frontier: each certified method's released model against ε, on one configuration.

    One row per (seed, method, ε) — test / forget / retain accuracy, distance to the retrained model, time, the
    certificate's status, σ used and ε certified — plus the ``original`` and ``retrained`` reference rows of each
    seed (``epsilon`` empty). Every method runs with ``params[method]`` and its ``epsilon`` set to each value; the
    trained models are shared by every run of a seed. It answers "what does certification cost us?": how much
    accuracy the noise of each ε takes, and from which ε on a method stays within :data:`FRONTIER_POINTS` of
    retraining (:func:`unlearn_core.verdict.frontier_first_epsilon`). Beyond both papers, which report single ε
    values.
    """
    seeds = _check_seeds(seeds)
    methods = list(methods) if methods is not None else frontier_methods()
    overrides = _check_methods(methods, params)
    for name in methods:
        if "epsilon" not in {p.name for p in get_unlearner(name).schema}:
            raise ConfigError(f"method {name!r} has no 'epsilon' hyperparameter: the frontier sweeps ε of the "
                              f"certified methods ({', '.join(frontier_methods())})")
    epsilons = [float(e) for e in epsilons]
    if not epsilons or any(not (math.isfinite(e) and e > 0) for e in epsilons):
        raise ConfigError(f"epsilons={epsilons!r} is not valid: expected numbers > 0, at least one")
    for name in methods:  # every (method, ε) validated before anything is trained
        for e in epsilons:
            resolve_params(get_unlearner(name).schema, {**overrides[name], "epsilon": e}, method=name)
    rows: list[dict[str, Any]] = []
    runs = len(methods) * len(epsilons)
    for seed in seeds:
        _report(progress, stage="prepare", seed=seed)
        prepared = prepare_seed(base, seed)
        rows += _frontier_reference_rows(base, prepared, seed)
        for i, name in enumerate(methods):
            for j, e in enumerate(epsilons):
                _report(progress, stage="unlearn", seed=seed, method=name, epsilon=e, run=i * len(epsilons) + j + 1,
                        runs=runs)
                rows.append(_frontier_cell(prepared, seed=seed, method=name, params=overrides[name], epsilon=e))
    return pd.DataFrame(rows)
