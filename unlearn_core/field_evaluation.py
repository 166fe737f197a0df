r"""The field's evaluation of unlearning methods, on many models: the NeurIPS 2023 challenge score, tug-of-war and
U-LiRA, each certificate read against the attacks — every many-model loop a list of cells on the executors.

:func:`evaluate` runs, for one configuration (data, model, forget set, training recipe) and each method:

* **N released models** — the method applied N times to the *one* trained model A(D), each run with its own
  unlearning seed (the challenge's protocol: one original, N unlearning runs);
* **N retrained models** — A(D_r) at the N training seeds after the original's (independent of it, as the
  challenge's; shared by every method; cached);
* for a certified method, **N noisy retrains** — the method applied to the retrained model A(D_r), the other side
  of the pair its certificate covers (as :func:`unlearn_core.experiments.audit` runs it);
* for U-LiRA, **M shadow models** — A(D_r ∪ H_k) for random halves H_k of the forget set (complementary pairs),
  each then unlearning H_k with the method (:mod:`unlearn_core.ulira`).

From their logit-scaled confidences on the forget set (:func:`unlearn_core.challenge_score.logit_scaled_confidence`)
and accuracies it computes, per method: the challenge's per-example ε, F and final score (released vs retrained,
:mod:`unlearn_core.challenge_score`); ToW of the mean accuracies (:mod:`unlearn_core.tug_of_war`); U-LiRA's
per-example and population results against the retrained models (the field's protocol) and, for a certified method,
its lower bound against the noisy retrain; optionally the audit's Clopper–Pearson bound (``audit_runs``, calling
:func:`unlearn_core.experiments.audit`); and the reading of the certificate against the strongest bound
(:mod:`unlearn_core.refutation`).

**Controls** (``controls=True``, the default), with the same N and M: ``original`` — doing nothing (the trained
model as the "released" one; the challenge gives it 0 by its peaky rule; its U-LiRA shadows are trained on their
halves and not unlearned); ``retrained`` — a perfect unlearner (N further retrains at other seeds as the "released"
models, and M more as shadows): the values a method should be read against, since every estimate here is biased
with few models.

**Cells.** Phase ``prepare``: the seeds' original and retrained models (chunks of ``models_per_cell`` seeds), which
also return the retrained models' confidences; phase ``shadows``: the shadows' training; phase ``runs``: per method,
chunks of released runs, of noisy retrains and of shadow unlearnings. Every cell is a module-level function of
plain arguments returning numpy arrays, so every executor (serial, processes, Ray) gives the same rows.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from unlearn_core import challenge_score as cs
from unlearn_core import ulira as ul
from unlearn_core.errors import ConfigError
from unlearn_core.executors import Cell, Executor
from unlearn_core.executors import resolve as resolve_executor
from unlearn_core.experiments import _cert_columns, _check_methods, clear_prepared, prepare_seed
from unlearn_core.limits import MAX_SEED
from unlearn_core.pipeline import Prepared, RunConfig
from unlearn_core.refutation import read_certificate
from unlearn_core.tug_of_war import tug_of_war
from unlearn_core.unlearners import get_unlearner, resolve_params

#: The scores :func:`evaluate` computes (``scores=``): the challenge's, tug-of-war, U-LiRA.
SCORES = ("challenge", "tow", "ulira")
#: N, the released and the retrained models per method (at least 3: the challenge's first bucket needs N − 1 ≥ 2).
MODELS_RANGE = (4, 1024)
#: M, the shadow models per method (even: complementary halves).
SHADOWS_RANGE = (4, 1024)
#: Models per cell by default (a cell is the unit an executor ships; a few models amortise its start).
MODELS_PER_CELL = 4
#: Audit runs per arm when asked for (0 = no audit).
AUDIT_RUNS_DEFAULT = 0

ARMS = {"released": 0, "noisy": 1, "shadow": 2}


# ----------------------------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------------------------


def parse_scores(scores: Sequence[str] | str) -> list[str]:
    """``"challenge,tow,ulira"`` or a list → the scores in :data:`SCORES` order; one line naming a bad one."""
    items = [s.strip().lower() for s in (scores.split(",") if isinstance(scores, str) else scores) if s.strip()]
    bad = [s for s in items if s not in SCORES]
    if bad or not items:
        raise ConfigError(f"scores={','.join(items) or '(empty)'!s} is not valid: choose from {', '.join(SCORES)} "
                          "(comma-separated)")
    return [s for s in SCORES if s in items]


def check_evaluate_args(*, methods: Sequence[str], params: Mapping[str, Mapping[str, Any]] | None,
                        scores: Sequence[str] | str, models: int, shadows: int, audit_runs: int, alpha: float,
                        models_per_cell: int) -> tuple[list[str], dict[str, dict[str, Any]], list[str]]:
    """Check :func:`evaluate`'s own arguments before anything is trained; return (methods, overrides, scores).

    Raises:
        ConfigError: one line naming the argument, its value and what is allowed.
    """
    methods = list(methods)
    overrides = _check_methods(methods, params)
    chosen = parse_scores(scores)

    def integer(name: str, value: Any, low: int, high: int, even: bool = False) -> None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        if not ok or (even and value % 2):
            raise ConfigError(f"{name}={value!r} is not valid: expected {'an even' if even else 'an'} integer in "
                              f"[{low}, {high}]")

    integer("models", models, *MODELS_RANGE)
    if "ulira" in chosen:
        integer("shadows", shadows, *SHADOWS_RANGE, even=True)
    integer("models_per_cell", models_per_cell, 1, MODELS_RANGE[1])
    if not (isinstance(audit_runs, int) and not isinstance(audit_runs, bool)
            and (audit_runs == 0 or 8 <= audit_runs <= 100_000)):
        raise ConfigError(f"audit_runs={audit_runs!r} is not valid: 0 (no audit) or an integer in [8, 100000]")
    if audit_runs:
        from unlearn_core.experiments import check_audit_args

        certified = [m for m in methods if get_unlearner(m).issues_certificate()]
        if certified:
            check_audit_args(methods=certified, params={m: overrides[m] for m in certified}, sigma_factors=(1.0,),
                             runs=audit_runs, statistic="auto", alpha=alpha, runs_per_cell=models_per_cell)
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ConfigError(f"alpha={alpha!r} is not valid: expected a number in (0, 1)")
    return methods, overrides, chosen


# ----------------------------------------------------------------------------------------------------------------
# What one model gives
# ----------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def _confidences(model: nn.Module, prepared: Prepared, forget_idx: torch.Tensor) -> np.ndarray:
    """The challenge's logit-scaled confidences of ``model`` on the forget examples (full-data positions)."""
    from unlearn_core.evaluation import predict_logits

    data = prepared.data
    idx = forget_idx.to(data.x_train.device)
    logits = predict_logits(model, data.x_train[idx]).float()
    return cs.logit_scaled_confidence(logits, data.y_train[idx])


def _accuracies(model: nn.Module, prepared: Prepared) -> np.ndarray:
    m = prepared.metrics(model)
    return np.array([m["acc_forget"], m["acc_retain"], m["acc_test"]], dtype=np.float64)


def _unlearn_seed(base_seed: int, arm: str, run: int) -> int:
    """A distinct unlearning seed per (training seed, arm, run)."""
    return (ARMS[arm] + 1) * 10_000_000 + int(base_seed) * 100_000 + int(run)


def _unlearn(prepared: Prepared, method: str, params: Mapping[str, Any], *, seed: int, from_retrained: bool,
             cancel: Any) -> tuple[nn.Module, dict[str, Any] | None, float]:
    """One run of the method on ``prepared``: from its trained model A(D), or from A(D_r) (the noisy retrain).

    A method whose certificate needs its own training recipe (Langevin unlearning, Rewind-to-Delete:
    ``Unlearner.training_optimizer``) runs on models trained that way (``Prepared.for_method``, cached), as in
    :func:`unlearn_core.pipeline.run_method`: on the default recipe's models its certificate would not hold.
    """
    unlearner = get_unlearner(method)
    resolved = resolve_params(unlearner.schema, dict(params), method=method)
    prepared = prepared.for_method(unlearner, resolved, cancel=cancel)
    unlearner.check_supported(prepared.original, resolved, model_name=prepared.config.model)
    ctx = prepared.context(seed=seed, cancel=cancel)
    if from_retrained:
        ctx = dataclasses.replace(ctx, model=prepared.retrained, retrained=None)
    tic = time.perf_counter()
    result = unlearner.unlearn(ctx, **resolved)
    elapsed = time.perf_counter() - tic
    cert = None if result.certificate is None else result.certificate.to_dict()
    return result.model.eval(), cert, elapsed


# ----------------------------------------------------------------------------------------------------------------
# Cells
# ----------------------------------------------------------------------------------------------------------------


def _reference_cell(*, base: RunConfig, seeds: Sequence[int], original: bool, cancel: Any = None) -> dict[str, Any]:
    """Phase ``prepare``: train (or load) each seed's original and retrained models; return the retrained models'
    confidences and accuracies (and, with ``original``, the first seed's original model's)."""
    confs, accs = [], []
    out: dict[str, Any] = {}
    for i, s in enumerate(seeds):
        prepared = prepare_seed(base, int(s), cancel=cancel)
        confs.append(_confidences(prepared.retrained, prepared, prepared.forget_idx))
        accs.append(_accuracies(prepared.retrained, prepared))
        if original and i == 0:
            out["original_confs"] = _confidences(prepared.original, prepared, prepared.forget_idx)[None, :]
            out["original_accs"] = _accuracies(prepared.original, prepared)[None, :]
    out.update(confs=np.stack(confs), accs=np.stack(accs))
    return out


def _shadow_seed(base: RunConfig, k: int) -> int:
    """Shadow k's training seed (the k-th retrained model's: its oracle A(D_r) is then already trained)."""
    return base.seed + 1 + int(k)


def _shadow_config(base: RunConfig, forget_idx: Sequence[int], in_mask: Sequence[bool]) -> RunConfig:
    """The configuration whose *retrained* model is the shadow's training: the forget examples outside H_k are the
    ones left out, so A(D \\ (F \\ H_k)) = A(D_r ∪ H_k) — trained and cached like any retrained model."""
    out = [int(i) for i, inside in zip(forget_idx, in_mask, strict=True) if not inside]
    return dataclasses.replace(base, forget="indices:" + ",".join(map(str, out)))


def _shadow_prepared(base: RunConfig, seed: int, forget_idx: Sequence[int], in_mask: Sequence[bool], *,
                     cancel: Any) -> Prepared:
    """A :class:`Prepared` whose trained model is A_seed(D_r ∪ H_k) and whose forget set is H_k: the data is
    restricted to D_r ∪ H_k, and the oracle is A_seed(D_r) (the base configuration's retrained model)."""
    shadow = prepare_seed(_shadow_config(base, forget_idx, in_mask), seed, cancel=cancel)
    reference = prepare_seed(base, seed, cancel=cancel)
    keep = shadow.retain_idx  # sorted positions of D_r ∪ H_k in the training set
    half = torch.as_tensor([int(i) for i, inside in zip(forget_idx, in_mask, strict=True) if inside],
                           dtype=torch.int64)
    is_half = torch.isin(keep, half)
    positions = torch.arange(keep.numel(), dtype=torch.int64)
    device = shadow.data.x_train.device
    data = dataclasses.replace(shadow.data, x_train=shadow.data.x_train[keep.to(device)],
                               y_train=shadow.data.y_train[keep.to(device)])
    return Prepared(
        config=shadow.config, device=shadow.device, data=data, forget_idx=positions[is_half],
        retain_idx=positions[~is_half], train_config=shadow.train_config, original=shadow.retrained,
        retrained=reference.retrained, timing_s={"train": shadow.timing_s.get("retrain"),
                                                 "retrain": reference.timing_s.get("retrain")},
        cached={"original": shadow.cached.get("retrained", False), "retrained": reference.cached.get("retrained",
                                                                                                     False)},
        train_summaries={"original": dict(shadow.train_summaries.get("retrained", {})),
                         "retrained": dict(reference.train_summaries.get("retrained", {}))},
    )


def _shadow_train_cell(*, base: RunConfig, forget_idx: Sequence[int], masks: Sequence[Sequence[bool]],
                       ks: Sequence[int], cancel: Any = None) -> dict[str, Any]:
    """Phase ``shadows``: train (or load) shadows k — A_{s_k}(D_r ∪ H_k) — and return their confidences before any
    unlearning (the ``original`` control's shadows: members, never unlearned)."""
    reference = prepare_seed(base, base.seed, cancel=cancel)
    full = torch.as_tensor(list(forget_idx), dtype=torch.int64)
    confs = []
    for k in ks:
        shadow = prepare_seed(_shadow_config(base, forget_idx, masks[k]), _shadow_seed(base, k), cancel=cancel)
        confs.append(_confidences(shadow.retrained, reference, full))
    return {"confs": np.stack(confs)}


def _shadow_unlearn_cell(*, base: RunConfig, method: str, params: Mapping[str, Any], forget_idx: Sequence[int],
                         masks: Sequence[Sequence[bool]], ks: Sequence[int], cancel: Any = None) -> dict[str, Any]:
    """Phase ``runs``: shadows k unlearn their halves H_k with the method; their confidences on the whole forget set."""
    reference = prepare_seed(base, base.seed, cancel=cancel)
    full = torch.as_tensor(list(forget_idx), dtype=torch.int64)
    confs = []
    for k in ks:
        sub = _shadow_prepared(base, _shadow_seed(base, k), forget_idx, masks[k], cancel=cancel)
        model, _, _ = _unlearn(sub, method, params, seed=_unlearn_seed(base.seed, "shadow", k), from_retrained=False,
                               cancel=cancel)
        confs.append(_confidences(model, reference, full))
    return {"confs": np.stack(confs)}


def _released_cell(*, base: RunConfig, method: str, params: Mapping[str, Any], arm: str, runs: Sequence[int],
                   cancel: Any = None) -> dict[str, Any]:
    """Phase ``runs``: released models (``arm="released"``, from A(D)) or noisy retrains (``"noisy"``, from A(D_r)):
    confidences, accuracies, unlearning time; the first run's certificate."""
    prepared = prepare_seed(base, base.seed, cancel=cancel)
    confs, accs, times = [], [], []
    cert_first: dict[str, Any] | None = None
    for r in runs:
        model, cert, elapsed = _unlearn(prepared, method, params, seed=_unlearn_seed(base.seed, arm, r),
                                        from_retrained=arm == "noisy", cancel=cancel)
        if r == runs[0]:
            cert_first = cert
        confs.append(_confidences(model, prepared, prepared.forget_idx))
        accs.append(_accuracies(model, prepared))
        times.append(elapsed)
    return {"confs": np.stack(confs), "accs": np.stack(accs), "time_s": np.asarray(times), "cert": cert_first}


def _chunks(n: int, size: int, start: int = 0) -> list[list[int]]:
    return [list(range(i, min(start + n, i + size))) for i in range(start, start + n, size)]


# ----------------------------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------------------------


def _gather(results: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.concatenate([r[key] for r in results], axis=0)


def _score_row(*, name: str, family: str, scores: Sequence[str], released: np.ndarray, released_accs: np.ndarray,
               retrained: np.ndarray, retrained_accs: np.ndarray, shadows: tuple[np.ndarray, np.ndarray] | None,
               noisy: np.ndarray | None, cert: Mapping[str, Any] | None, alpha: float) -> dict[str, Any]:
    """One method's (or control's) row from its models' confidences and accuracies."""
    n_models = retrained.shape[0]
    row: dict[str, Any] = {"method": name, "family": family, "models": int(n_models), **_cert_columns(cert)}
    mean_u, mean_r = released_accs.mean(axis=0), retrained_accs.mean(axis=0)
    for i, split in enumerate(("forget", "retain", "test")):
        row[f"acc_{split}"] = float(mean_u[i])
        row[f"acc_{split}_retrained"] = float(mean_r[i])
    if "tow" in scores:
        row["tow"] = tug_of_war(forget_unlearned=mean_u[0], retain_unlearned=mean_u[1], test_unlearned=mean_u[2],
                                forget_retrained=mean_r[0], retain_retrained=mean_r[1], test_retrained=mean_r[2])
    if "challenge" in scores:
        # The challenge takes N from the unlearned set; a control with one model (the original) is repeated N times.
        unlearned = np.repeat(released, n_models, axis=0) if released.shape[0] == 1 else released
        score = cs.challenge_score(unlearned, retrained, retain_acc_unlearned=released_accs[:, 1],
                                   retain_acc_retrained=retrained_accs[:, 1], test_acc_unlearned=released_accs[:, 2],
                                   test_acc_retrained=retrained_accs[:, 2])
        row.update(score.summary())
        row["challenge_eps"] = [float(e) for e in score.epsilons]
    if "ulira" in scores and shadows is not None:
        confs, mask = shadows
        res = ul.ulira(confs, mask, released, retrained, delta=cs.DELTA, alpha=alpha)
        row.update(res.summary("ulira"))
        row["shadows"] = int(confs.shape[0])
        row["ulira_eps"] = [float(e) for e in res.epsilon]
        if noisy is not None and cert:
            delta = cert.get("delta_guaranteed") or cert.get("delta") or cs.DELTA
            noisy_res = ul.ulira(confs, mask, released, noisy, delta=float(delta), alpha=alpha)
            row.update({"ulira_noisy_auc": noisy_res.auc, "ulira_noisy_accuracy": noisy_res.population_accuracy,
                        "ulira_noisy_epsilon_lower": float(np.max(noisy_res.epsilon_lower))})
    return row


def _read(row: dict[str, Any], alpha: float) -> None:
    """Add the certificate's reading against the bounds on its pair (U-LiRA vs the noisy retrain, the audit)."""
    bounds = {"U-LiRA vs noisy retrain": row.get("ulira_noisy_epsilon_lower"),
              "audit": row.get("audit_epsilon_lower")}
    reading = read_certificate(status=row.get("status"), epsilon=row.get("epsilon"),
                               epsilon_certified=row.get("epsilon_certified"), lower_bounds=bounds, alpha=alpha)
    row.update(reading=reading.kind, reading_text=reading.text, attacked_epsilon=reading.attacked_epsilon,
               attacked_by=reading.attacked_by)


def evaluate(
    base: RunConfig,
    methods: Sequence[str] = ("noisy_finetune",),
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    scores: Sequence[str] | str = SCORES,
    models: int = 16,
    shadows: int = 16,
    audit_runs: int = AUDIT_RUNS_DEFAULT,
    alpha: float = 0.05,
    controls: bool = True,
    models_per_cell: int = MODELS_PER_CELL,
    seeds: Sequence[int] | None = None,
    progress: Any = None,
    cancel: Any = None,
    executor: Executor | str | None = None,
) -> pd.DataFrame:
    """The field's scores and the certificate against the attacks, one row per method (+ the controls ``original``
    and ``retrained``); see the module docstring.

    Columns: the certificate's (``status``, ``epsilon``, ``epsilon_certified``, ``delta``, ``sigma_used``…); the
    mean accuracies of the released and the retrained models (``acc_*``, ``acc_*_retrained``); ``tow``;
    ``challenge_forget_score`` (F), ``challenge_utility``, ``challenge_final``, ``challenge_eps_median`` /
    ``_max`` / ``_capped`` and ``challenge_eps`` (the per-example list); ``ulira_auc``, ``ulira_tpr_at_1fpr``,
    ``ulira_accuracy``, ``ulira_eps_median`` / ``_max``, ``ulira_epsilon_lower`` and ``ulira_eps`` (the list), all
    against exact retraining; for certified methods ``ulira_noisy_epsilon_lower`` (against the noisy retrain);
    with ``audit_runs`` the audit's ``audit_epsilon_lower`` / ``audit_epsilon_lower_cap`` / ``audit_statistic``;
    ``reading`` / ``reading_text`` / ``attacked_epsilon`` / ``attacked_by`` (:mod:`unlearn_core.refutation`);
    ``time_s`` (mean unlearning time of a released run).

    ``seeds``: at most one (the training seed of the one original model; the N retrained models take the next N);
    default ``base.seed``.
    """
    if seeds is not None and len(list(seeds)) > 0:
        seeds = [int(s) for s in seeds]
        if len(seeds) != 1:
            raise ConfigError(f"seeds={seeds} is not valid: the evaluation runs on one training seed (its N models "
                              "are the repeats); give one")
        base = dataclasses.replace(base, seed=seeds[0])
    methods, overrides, chosen = check_evaluate_args(methods=methods, params=params, scores=scores, models=models,
                                                     shadows=shadows, audit_runs=audit_runs, alpha=alpha,
                                                     models_per_cell=models_per_cell)
    base = dataclasses.replace(base, compute_retrained=True)
    want_ulira = "ulira" in chosen
    certified = {m for m in methods if get_unlearner(m).issues_certificate()}
    size = int(models_per_cell)
    n, m = int(models), int(shadows)
    # Training seeds: base.seed trains the one original (and the noisy retrains' A(D_r)); the N retrained models take
    # the next N seeds — independent of the original, as the challenge's — and shadow k takes seed base.seed + 1 + k.
    seeds_main = [base.seed + 1 + k for k in range(n)]
    seeds_control = [base.seed + 1 + n + k for k in range(n)] if controls else []
    seeds_control_shadow = [base.seed + 1 + 2 * n + k for k in range(m)] if controls and want_ulira else []
    seeds_shadow_only = [base.seed + 1 + k for k in range(n, m)] if want_ulira else []  # M > N: their oracles
    last = max([base.seed, *seeds_main, *seeds_control, *seeds_control_shadow, *seeds_shadow_only])
    if last > MAX_SEED:
        raise ConfigError(f"seed={base.seed} is not valid here: the evaluation trains seeds up to seed + "
                          f"{last - base.seed}, which must stay ≤ {MAX_SEED}")

    executor_ = resolve_executor(executor)
    try:
        ref_seeds = [base.seed, *seeds_main, *seeds_control, *seeds_control_shadow, *seeds_shadow_only]
        chunks = [ref_seeds[i:i + size] for i in range(0, len(ref_seeds), size)]
        ref = executor_.map([Cell(_reference_cell, {"base": base, "seeds": c, "original": i == 0},
                                  label=f"seeds {c[0]}–{c[-1]}: original and retrained")
                             for i, c in enumerate(chunks)], progress=progress, cancel=cancel, phase="prepare")
        ref_confs, ref_accs = _gather(ref, "confs"), _gather(ref, "accs")
        at = {s: i for i, s in enumerate(ref_seeds)}
        forget_idx = prepare_seed(base, base.seed, cancel=cancel).forget_idx.tolist()
        n_forget = len(forget_idx)
        mask = ul.complementary_halves(n_forget, m, seed=base.forget_seed) if want_ulira else None

        trained_shadows = None
        if want_ulira:
            shadow_cells = [Cell(_shadow_train_cell, {"base": base, "forget_idx": forget_idx, "masks": mask.tolist(),
                                                      "ks": ks}, label=f"shadows {ks[0]}–{ks[-1]}: training")
                            for ks in _chunks(m, size)]
            trained_shadows = _gather(executor_.map(shadow_cells, progress=progress, cancel=cancel,
                                                    phase="shadows"), "confs")

        cells: list[Cell] = []
        keys: list[tuple[str, str]] = []
        for name in methods:
            arms = ["released"] + (["noisy"] if want_ulira and name in certified else [])
            for arm in arms:
                for runs in _chunks(n, size):
                    cells.append(Cell(_released_cell, {"base": base, "method": name, "params": overrides[name],
                                                       "arm": arm, "runs": runs},
                                      label=f"{name}: {arm} runs {runs[0]}–{runs[-1]}"))
                    keys.append((name, arm))
            if want_ulira:
                for ks in _chunks(m, size):
                    cells.append(Cell(_shadow_unlearn_cell, {"base": base, "method": name, "params": overrides[name],
                                                             "forget_idx": forget_idx, "masks": mask.tolist(),
                                                             "ks": ks},
                                      label=f"{name}: shadows {ks[0]}–{ks[-1]}"))
                    keys.append((name, "shadow"))
        results = executor_.map(cells, progress=progress, cancel=cancel, phase="runs")
        audit_rows = _audit(base, [x for x in methods if x in certified], overrides, audit_runs, alpha, executor_,
                            progress, cancel) if audit_runs else {}
    finally:
        clear_prepared()
        if not isinstance(executor, Executor):
            executor_.close()

    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key, res in zip(keys, results, strict=True):
        by.setdefault(key, []).append(res)
    main = [at[s] for s in seeds_main]
    retrained, retrained_accs = ref_confs[main], ref_accs[main]
    common = {"dataset": base.dataset, "model": base.model, "forget": base.forget, "n_forget": n_forget,
              "seed": base.seed}
    rows = []
    if controls:
        ctrl = [at[s] for s in seeds_control]
        shadow_ctrl = (ref_confs[[at[s] for s in seeds_control_shadow]], mask) if want_ulira else None
        rows.append({**common, **_score_row(
            name="original", family="reference", scores=chosen, released=ref[0]["original_confs"],
            released_accs=ref[0]["original_accs"], retrained=retrained, retrained_accs=retrained_accs,
            shadows=(trained_shadows, mask) if want_ulira else None, noisy=None, cert=None, alpha=alpha)})
        rows.append({**common, **_score_row(
            name="retrained", family="reference", scores=chosen, released=ref_confs[ctrl],
            released_accs=ref_accs[ctrl], retrained=retrained, retrained_accs=retrained_accs, shadows=shadow_ctrl,
            noisy=None, cert=None, alpha=alpha)})
    for name in methods:
        released = by[(name, "released")]
        cert = released[0]["cert"]
        row = {**common, **_score_row(
            name=name, family=get_unlearner(name).family, scores=chosen, released=_gather(released, "confs"),
            released_accs=_gather(released, "accs"), retrained=retrained, retrained_accs=retrained_accs,
            shadows=(_gather(by[(name, "shadow")], "confs"), mask) if want_ulira else None,
            noisy=_gather(by[(name, "noisy")], "confs") if (name, "noisy") in by else None, cert=cert, alpha=alpha)}
        row["time_s"] = float(np.mean(_gather(released, "time_s")))
        row.update(audit_rows.get(name, {}))
        rows.append(row)
    for row in rows:
        _read(row, alpha)
    return pd.DataFrame(rows)


def _audit(base: RunConfig, methods: list[str], overrides: Mapping[str, dict[str, Any]], runs: int, alpha: float,
           executor: Executor, progress: Any, cancel: Any) -> dict[str, dict[str, Any]]:
    """The audit's bound for each certified method (σ as configured), by :func:`unlearn_core.experiments.audit`."""
    if not methods:
        return {}
    from unlearn_core.experiments import audit

    df = audit(base, methods=methods, params={m: overrides[m] for m in methods}, sigma_factors=(1.0,), runs=runs,
               seeds=[base.seed], alpha=alpha, progress=progress, cancel=cancel, executor=executor)
    out = {}
    for _, r in df.iterrows():
        out[str(r["method"])] = {"audit_runs": int(r["runs"]), "audit_epsilon_lower": float(r["epsilon_lower"]),
                                 "audit_epsilon_lower_cap": float(r["epsilon_lower_cap"]),
                                 "audit_statistic": str(r["statistic"])}
    return out


#: Columns of :func:`evaluate` that hold one value per forget example (lists): kept out of the summary CSV.
PER_EXAMPLE_COLUMNS = ("challenge_eps", "ulira_eps")


def per_example_table(df: pd.DataFrame) -> pd.DataFrame:
    """The per-example lists of :func:`evaluate`'s rows as a long table: method, example, score, ε."""
    records = []
    for _, row in df.iterrows():
        for col in PER_EXAMPLE_COLUMNS:
            values = row.get(col) if col in df.columns else None
            if not isinstance(values, (list, tuple, np.ndarray)):
                continue
            score = col.removesuffix("_eps")
            records += [{"method": row["method"], "example": i, "score": score, "epsilon": float(v)}
                        for i, v in enumerate(values)]
    return pd.DataFrame(records, columns=["method", "example", "score", "epsilon"])


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`evaluate`'s rows without the per-example lists (what a CSV holds)."""
    return df.drop(columns=[c for c in PER_EXAMPLE_COLUMNS if c in df.columns])



# ----------------------------------------------------------------------------------------------------------------
# With `experiment compare`
# ----------------------------------------------------------------------------------------------------------------

#: The columns of :func:`evaluate` that join each method's rows of :func:`unlearn_core.experiments.compare`.
SCORE_PREFIXES = ("challenge_", "ulira_", "audit_", "reading", "attacked_")


def paired_tow(df: pd.DataFrame) -> pd.Series:
    """ToW of every row of a compare table against the retrained row of the same seed (Zhao et al. score each run
    against its own retraining); the ``retrained`` rows get 1."""
    refs = {r["seed"]: r for _, r in df[df["method"] == "retrained"].iterrows()}
    values = []
    for _, row in df.iterrows():
        ref = refs.get(row["seed"])
        values.append(None if ref is None else tug_of_war(
            forget_unlearned=row["acc_forget"], retain_unlearned=row["acc_retain"], test_unlearned=row["acc_test"],
            forget_retrained=ref["acc_forget"], retain_retrained=ref["acc_retain"], test_retrained=ref["acc_test"]))
    return pd.Series(values, index=df.index, dtype="float64")


def with_scores(compare_df: pd.DataFrame, scores_df: pd.DataFrame | None, scores: Sequence[str]) -> pd.DataFrame:
    """A compare table with the field's scores: ``tow`` per row (paired by seed), and each method's (and reference
    row's) many-model columns from :func:`evaluate` — ``challenge_*``, ``ulira_*``, ``audit_*``, the reading,
    ``models``/``shadows`` and ``tow_models`` (ToW of the N models' mean accuracies). The per-example lists stay out
    (:func:`per_example_table`)."""
    out = compare_df.copy()
    if "tow" in scores:
        out["tow"] = paired_tow(out)
    if scores_df is None or not len(scores_df):
        return out
    keep = [c for c in scores_df.columns if c.startswith(SCORE_PREFIXES) and c not in PER_EXAMPLE_COLUMNS]
    keep += [c for c in ("models", "shadows") if c in scores_df.columns]
    extra = scores_df[["method", *keep]].copy()
    if "tow" in scores_df.columns:
        extra["tow_models"] = scores_df["tow"]
    return out.merge(extra, on="method", how="left")
