"""Certified methods side by side at the same target ε: what each costs and what its release keeps.

Two certified methods are only comparable at equal (ε, δ) on the same data, forget set and original model: one may
be fast because its bound is loose and its noise destroys the model, another accurate because it nearly retrains.
:func:`compare_at_equal_epsilon` runs each method with its ``epsilon_param`` set to the same ε (and its own other
hyperparameters), on one prepared configuration per seed, and returns one row per (seed, method) with the
certificate (status, ε certified, Δ, σ), the cost (wall time, gradient and Hessian-vector-product counts, both also
as a fraction of retraining's) and the utility (test accuracy of the release and of its noise-free state, distance
to the retrained model). :func:`cheaper_at_equal_epsilon` reads the rows: among the runs that are certified at the
target ε and keep the retrained model's accuracy (within a tolerance), which one costs least.

Used by ``bench/bench_equal_epsilon.py`` (Descent-to-Delete against certified Newton's strong-convexity bound on
logistic regression). A method with its own training recipe (Langevin unlearning, Rewind-to-Delete) is run on the
models of that recipe (``Prepared.for_method``), so its row's original model differs from the others'.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from unlearn_core.errors import ConfigError
from unlearn_core.pipeline import RunConfig, prepare, run_method, validate_config
from unlearn_core.unlearners import get_unlearner


def compare_at_equal_epsilon(
    base: RunConfig,
    methods: Sequence[str],
    *,
    epsilon: float,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: Sequence[int] = (0,),
) -> pd.DataFrame:
    """One row per (seed, method): every method run at target ``epsilon`` on ``base`` (see the module docstring).

    Raises:
        ConfigError: a method is not certified or has no ε hyperparameter, or ``epsilon`` is not positive.
    """
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"epsilon={epsilon!r} is not valid: expected a number > 0")
    overrides = {m: dict((params or {}).get(m, {})) for m in methods}
    for name in methods:
        cls = get_unlearner(name)
        if not cls.issues_certificate() or cls.epsilon_param is None:
            raise ConfigError(f"method {name!r} cannot be compared at equal ε: it has no certified ε hyperparameter")
        overrides[name][cls.epsilon_param] = float(epsilon)
        validate_config(dataclasses.replace(base, method=name, params=overrides[name]))
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        prepared = prepare(dataclasses.replace(base, seed=int(seed), compute_retrained=True), validated=True)
        for name in methods:
            result = run_method(prepared, name, overrides[name], seed=int(seed))
            card, cert, diag = result.card, result.result.certificate, result.result.diagnostics
            models = result.prepared
            retrain_s = models.timing_s.get("retrain")
            retrain_grads = _training_gradients(models.train_summaries.get("retrained", {}))
            grads = diag.num_gradients
            rows.append({
                "seed": int(seed), "method": name, "epsilon": float(epsilon),
                "status": cert.status if cert else None, "certified": bool(cert and cert.certified),
                "epsilon_certified": cert.epsilon_certified if cert else None,
                "delta": cert.delta_guaranteed if cert else None,
                "sensitivity": cert.sensitivity if cert else None,
                "sigma_used": cert.sigma_used if cert else None,
                "sigma_required": cert.sigma_required if cert else None,
                "time_s": card["timing_s"]["unlearn"], "retrain_s": retrain_s,
                "time_vs_retrain": card["timing_s"]["unlearn"] / retrain_s if retrain_s else None,
                "num_gradients": grads, "num_hvps": diag.num_hvps,
                "gradients_vs_retrain": grads / retrain_grads if grads is not None and retrain_grads else None,
                "acc_test": card["models"]["unlearned"]["acc_test"],
                "acc_test_noiseless": diag.noiseless_accuracy.test if diag.noiseless_accuracy else None,
                "acc_test_retrained": card["models"].get("retrained", {}).get("acc_test"),
                "dist_to_retrained": card["distance"]["unlearned_to_retrained"],
                "training": models.train_config.optimizer,
            })
    return pd.DataFrame(rows)


def _training_gradients(summary: Mapping[str, Any]) -> float | None:
    """Full-data gradients retraining took: one per L-BFGS iteration (plus its line search, not counted) or per
    full-batch step; for mini-batch recipes the epochs (a full pass each)."""
    steps = summary.get("iterations")
    return float(steps) if steps else None


def cheaper_at_equal_epsilon(rows: pd.DataFrame, *, tolerance: float = 0.05) -> str:
    """One sentence: among the rows certified at their target ε whose release keeps its test accuracy within
    ``tolerance`` of the retrained model's (a certified release that noise has destroyed is no alternative to
    retraining), which method took the least time — and which were certified but useless, or not certified."""
    if rows.empty:
        return "no run to compare"
    eps = float(rows["epsilon"].iloc[0])
    certified = rows[rows["certified"] & (rows["epsilon_certified"] <= rows["epsilon"] * (1 + 1e-9))]
    mean = certified.groupby("method")[["time_s", "acc_test", "acc_test_retrained"]].mean()
    useful = mean[mean["acc_test"] >= mean["acc_test_retrained"] - tolerance].sort_values("time_s")
    destroyed = mean[mean["acc_test"] < mean["acc_test_retrained"] - tolerance]
    parts: list[str] = []
    if useful.empty:
        parts.append(f"at ε = {eps:g}, no certified release keeps its test accuracy within {tolerance:.0%} of the "
                     "retrained model's")
    else:
        best = useful.index[0]
        parts.append(f"at ε = {eps:g}, {best} is the cheapest useful certified method "
                     f"({useful.loc[best, 'time_s']:.3g} s, test accuracy {useful.loc[best, 'acc_test']:.1%} against "
                     f"{useful.loc[best, 'acc_test_retrained']:.1%} retrained)")
        for other in useful.index[1:]:
            parts.append(f"{other} takes {useful.loc[other, 'time_s'] / max(useful.loc[best, 'time_s'], 1e-12):.3g}× "
                         f"as long (test accuracy {useful.loc[other, 'acc_test']:.1%})")
    for name in destroyed.index:
        parts.append(f"{name} is certified but its noise destroys the model (test accuracy "
                     f"{destroyed.loc[name, 'acc_test']:.1%} against {destroyed.loc[name, 'acc_test_retrained']:.1%})")
    missing = sorted(set(rows["method"]) - set(mean.index))
    if missing:
        parts.append(f"not certified at this ε: {', '.join(missing)}")
    return "; ".join(parts)
