r"""The one-run audit with many canaries (Steinke, Nasr & Jagielski, NeurIPS 2023), for certified unlearning.

Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training Run" (NeurIPS 2023, arXiv 2305.08846), audit a
differentially private training algorithm with *one* run: m canaries are each included or not by a fair coin
S_i ∈ {−1, +1}, the algorithm runs once, the auditor scores every canary and guesses T_i ∈ {−1, 0, +1} (+1 for the
k₊ highest scores, −1 for the k₋ lowest, 0 — abstain — for the rest). Their main theorem (Thm. 3.1): if the
algorithm is ε-DP in each canary, the number W of correct guesses among the r = k₊ + k₋ made is stochastically
dominated by Binomial(r, e^ε/(1 + e^ε)) — the accuracy of ε-randomised response —, with an additive term for δ > 0
(:func:`p_value`). A large W is then unlikely under the claim, and the largest ε the observed W still rejects at
confidence 1 − β is a lower bound on ε (:func:`epsilon_lower_bound`).

**Unlearning's version of the game.** A certificate says that the released model U(A(D ∪ F), D) is (ε, δ)-
indistinguishable from the noisy retrain R = U(A(D), D) for the forget set F it was given. Here each canary is
*inserted into the training set and then deleted* (S_i = +1: it is in F) or *never inserted* (S_i = −1) — not
"kept": a canary kept in the retain set is trained on by the noisy retrain too, and telling it from a deleted one is
membership inference, which every correct unlearner fails. With σ pinned (the same for every S) and the retain set D
the same whatever the coins, R does not depend on S, and the certificate for every F = {i : S_i = +1} gives
M(S) ≈_{ε,δ} R for all S. For two coin vectors that differ in one canary,

.. math:: P[M(S) \in E] \le e^{\varepsilon}(e^{\varepsilon} P[M(S') \in E] + \delta) + \delta,

so the map S ↦ M(S) is (2ε, (1 + e^ε)δ)-DP in each canary and the theorem applies with those parameters
(:func:`unlearning_p_value`). The factor 2 is the price of comparing two releases through the reference; it is what
the bound of a correct certificate allows, so the audit stays sound.

**Canaries and scores.** The canaries are m seeded noise inputs (Gaussian, at the training inputs' scale) with
random labels: far from every real example, a model that trains on one memorises it, and deleting it deletes
nothing else. D is the whole training split; the original model trains on D plus the inserted canaries (cached like
every model), the unlearner deletes them (forget set F, retain set D), and a canary's score is minus the released
model's loss on it: remembered canaries score high. The guesses: +1 for the k highest scores, −1 for the k lowest.
Memorising needs capacity and epochs: on digits the MLP (32-32) trained for 20 epochs barely remembers 128 of them
(guesses at chance even without unlearning), for 60 epochs it remembers nearly all.

**Ceiling.** With r guesses all correct the bound is the largest ε it can ever show
(:func:`unlearning_epsilon_ceiling`); it is printed beside the bound, and a claim above it cannot be refuted by this
design (more guesses — and so more canaries — raise it, slowly: ≈ ln r).

**Cost.** One training of the canary model per seed and one unlearning run per σ factor — against 2 × runs
unlearning runs per σ factor for the many-run audit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from unlearn_core.errors import ConfigError

#: Canaries per seed, and guesses on each side (k₊ = k₋), by default: r = 64 guesses, which can show ε up to ≈ 1.5.
ONE_RUN_CANARIES = 256
ONE_RUN_GUESSES = 32
#: At most this share of the training set may be canaries (the rest is D).
MAX_CANARY_FRACTION = 0.5
#: What the one-run audit compares, stated in every row.
ONE_RUN_REFERENCE = ("one run: each canary inserted into training then deleted (coin +1) or never inserted (−1); a "
                     "certificate for every forget set makes each canary (2ε, (1+e^ε)δ)-DP (Steinke, Nasr & "
                     "Jagielski 2023)")

# ----------------------------------------------------------------------------------------------------------------
# The bound (pure maths)
# ----------------------------------------------------------------------------------------------------------------


def _check_counts(m: int, r: int, v: int) -> None:
    if not (isinstance(m, (int, np.integer)) and isinstance(r, (int, np.integer)) and isinstance(v, (int, np.integer))
            and 0 <= v <= r <= m):
        raise ConfigError(f"the one-run bound needs integers 0 ≤ v ≤ r ≤ m; got m={m}, r={r}, v={v}")


def p_value(*, m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    r"""P[W ≥ v] bounded under an (ε, δ)-DP claim: Steinke, Nasr & Jagielski (NeurIPS 2023), main theorem.

    With q = e^ε/(1 + e^ε) and B ~ Binomial(r, q),

    .. math:: P[W \ge v] \le \beta + 2m\delta\,\alpha,\quad \beta = P[B \ge v],\quad
              \alpha = \max_{1 \le i \le v} \tfrac{1}{i} P[v - i \le B < v]

    (δ = 0: the stochastic domination W ⪯ Binomial(r, q) of their Theorem 3.1; the δ term is the paper's (ε, δ)
    extension, computed as in its p-value algorithm). ``m`` canaries, ``r`` guesses made, ``v`` of them correct.
    """
    from scipy.stats import binom

    _check_counts(m, r, v)
    if not (epsilon >= 0 and math.isfinite(epsilon)) or not 0 <= delta <= 1:
        raise ConfigError(f"the one-run bound needs ε ≥ 0 and δ in [0, 1]; got ε={epsilon!r}, δ={delta!r}")
    q = 1.0 / (1.0 + math.exp(-epsilon))
    beta = float(binom.sf(v - 1, r, q))  # P[B ≥ v]
    alpha = 0.0
    if delta > 0 and v > 0:
        pmf = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v−1], P[B = v−2], …, P[B = 0]
        below = np.cumsum(pmf)  # P[v − i ≤ B < v] for i = 1 … v
        alpha = float(np.max(below / np.arange(1, v + 1)))
    return min(1.0, beta + 2.0 * m * delta * alpha)


def _largest_rejected(p_of: Any, *, beta: float, high: float = 50.0, iterations: int = 60) -> float:
    """The largest ε ≥ 0 with ``p_of(ε) < beta`` (``p_of`` increases with ε); 0 when even ε = 0 is not rejected."""
    if p_of(0.0) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_of(hi) < beta:
        lo, hi = hi, hi * 2
        if hi > high:
            return math.inf
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if p_of(mid) < beta:
            lo = mid
        else:
            hi = mid
    return lo


def epsilon_lower_bound(*, m: int, r: int, v: int, delta: float, beta: float = 0.05) -> float:
    """The largest ε whose (ε, δ)-DP claim the observed ``v`` correct of ``r`` guesses rejects at level ``beta``
    (:func:`p_value` < beta): a lower bound on the DP ε of the canary mechanism, with confidence 1 − β."""
    return _largest_rejected(lambda e: p_value(m=m, r=r, v=v, epsilon=e, delta=delta), beta=beta)


def unlearning_p_value(*, m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """:func:`p_value` under an unlearning certificate (ε, δ): the canary mechanism is (2ε, (1 + e^ε)δ)-DP."""
    return p_value(m=m, r=r, v=v, epsilon=2.0 * epsilon, delta=min(1.0, (1.0 + math.exp(epsilon)) * delta))


def unlearning_epsilon_lower(*, m: int, r: int, v: int, delta: float, beta: float = 0.05) -> float:
    """The largest certificate ε that ``v`` correct of ``r`` guesses reject at level ``beta``: the one-run audit's
    lower bound on the unlearning ε (confidence 1 − β)."""
    return _largest_rejected(lambda e: unlearning_p_value(m=m, r=r, v=v, epsilon=e, delta=delta), beta=beta)


def unlearning_epsilon_ceiling(*, m: int, r: int, delta: float, beta: float = 0.05) -> float:
    """The largest ε this design can ever show: every one of the ``r`` guesses correct."""
    return unlearning_epsilon_lower(m=m, r=r, v=r, delta=delta, beta=beta)


def guesses_from_scores(scores: Sequence[float] | np.ndarray, k: int) -> np.ndarray:
    """T ∈ {−1, 0, +1}: +1 for the ``k`` highest scores, −1 for the ``k`` lowest, 0 (abstain) for the rest.

    Ties are broken by the canary's index (a fixed order chosen before looking at the coins).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    s = np.where(np.isnan(s), -np.inf, s)
    if not 1 <= 2 * k <= s.size:
        raise ConfigError(f"guesses={k} is not valid: expected 1 ≤ 2·guesses ≤ canaries ({s.size})")
    order = np.argsort(-s, kind="stable")
    t = np.zeros(s.size, dtype=np.int64)
    t[order[:k]] = 1
    t[order[-k:]] = -1
    return t


# ----------------------------------------------------------------------------------------------------------------
# Arguments, checked before any work
# ----------------------------------------------------------------------------------------------------------------


def check_one_run_args(*, canaries: int, guesses: int, n_train: int | None = None) -> tuple[int, int]:
    """``canaries`` m and ``guesses`` k per side: 2k ≤ m, and at most :data:`MAX_CANARY_FRACTION` of the training
    set (when ``n_train`` is known)."""
    if not isinstance(canaries, int) or isinstance(canaries, bool) or canaries < 2:
        raise ConfigError(f"canaries={canaries!r} is not valid: expected an integer ≥ 2")
    if n_train is not None and canaries > MAX_CANARY_FRACTION * n_train:
        raise ConfigError(f"canaries={canaries} is not valid: at most {int(MAX_CANARY_FRACTION * n_train):,} "
                          f"({MAX_CANARY_FRACTION:.0%} of the {n_train:,} training examples) can be canaries")
    if not isinstance(guesses, int) or isinstance(guesses, bool) or not 1 <= 2 * guesses <= canaries:
        raise ConfigError(f"guesses={guesses!r} is not valid: expected an integer in [1, {canaries // 2}] (the "
                          "guesses on each side; 2·guesses ≤ canaries)")
    return canaries, guesses


# ----------------------------------------------------------------------------------------------------------------
# The game on a prepared configuration
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CanaryDesign:
    """The canaries (seeded noise inputs with random labels) and their coins (+1: inserted then deleted)."""

    x: torch.Tensor
    label: np.ndarray
    coins: np.ndarray

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.x.detach().cpu().numpy().astype(np.float32)).tobytes())
        for a in (self.label, self.coins):
            h.update(np.ascontiguousarray(a.astype(np.int64)).tobytes())
        return h.hexdigest()


def canary_design(x_train: torch.Tensor, *, canaries: int, num_classes: int, seed: int) -> CanaryDesign:
    """m canaries: inputs drawn from N(0, s²) with s the training inputs' standard deviation (far from every real
    example, so a model that trains on one memorises it without unlearning anything else), a label drawn uniformly,
    and a fair coin each — all seeded by ``seed``."""
    gen = torch.Generator().manual_seed(20230508 + int(seed))
    scale = float(x_train.float().std().cpu())
    x = torch.randn((canaries, *x_train.shape[1:]), generator=gen) * scale
    rng = np.random.default_rng([20230508, int(seed)])
    label = rng.integers(0, num_classes, size=canaries)
    coins = rng.choice(np.array([-1, 1]), size=canaries)
    return CanaryDesign(x=x.to(x_train.dtype), label=label, coins=coins)


def _canary_prepared(base: Any, seed: int, design: CanaryDesign, *, cancel: Any) -> tuple[Any, Any]:
    """A :class:`~unlearn_core.pipeline.Prepared` for the game: train set D ∪ {inserted canaries}, forget set = the
    inserted canaries, retain set = D (the whole training split); the original model trained on it (cached)."""
    from unlearn_core.cache import ModelCache
    from unlearn_core.data import load_dataset
    from unlearn_core.device import resolve_device
    from unlearn_core.models import get_model_info
    from unlearn_core.pipeline import Prepared, _model_key, _summary_from_meta, _train_cached
    from unlearn_core.training import resolve_train_config

    config = dataclasses.replace(base, seed=int(seed), compute_retrained=False)
    device = resolve_device(config.device)
    data = load_dataset(config.dataset, data_dir=config.data_dir, download=config.download, device=device,
                        split_seed=config.split_seed)
    inserted = design.coins == 1
    x = torch.cat([data.x_train, design.x[torch.as_tensor(inserted)].to(device)])
    y = torch.cat([data.y_train, torch.as_tensor(design.label[inserted], dtype=data.y_train.dtype, device=device)])
    game = dataclasses.replace(data, x_train=x, y_train=y)
    n = data.n_train
    retain_idx = torch.arange(n)
    forget_idx = torch.arange(n, n + int(inserted.sum()))
    train_config = resolve_train_config(dataclasses.replace(config.train, seed=config.seed),
                                        convex=get_model_info(config.model).convex)
    prep = Prepared(config=config, device=device, data=game, forget_idx=forget_idx, retain_idx=retain_idx,
                    train_config=train_config, original=None, retrained=None,  # type: ignore[arg-type]
                    timing_s={"train": None, "retrain": None}, cached={"original": False, "retrained": False})
    model = prep.model_factory()
    cache = ModelCache(config.cache_dir) if config.use_cache else None
    key = _model_key(config, train_config, device, kind="canary-original", canaries=design.digest())
    meta, hit, _ = _train_cached(cache, key, model, x, y, train_config, stage="train", progress=None,
                                 cancel=cancel)
    model.eval()
    prep.original, prep.timing_s["train"], prep.cached["original"] = model, meta.get("time_s"), hit
    prep.train_summaries["original"] = _summary_from_meta(meta)
    return prep, data


def _one_run_cell(*, base: Any, seed: int, method: str, params: Mapping[str, Any], sigma_factors: Sequence[float],
                  canaries: int, guesses: int, alpha: float, cancel: Any = None) -> list[dict[str, Any]]:
    """One seed and method: train the canary model, unlearn once per σ factor, score, guess, bound.

    The first run uses the configured hyperparameters and fixes the reference σ (its ``sigma_used``); every other
    factor pins σ = factor × that σ, the same whatever the coins.
    """
    from unlearn_core import experiments as ex
    from unlearn_core.data import load_dataset
    from unlearn_core.device import resolve_device
    from unlearn_core.evaluation import evaluate
    from unlearn_core.metrics import example_outputs
    from unlearn_core.unlearners import get_unlearner

    tic = time.perf_counter()
    data = load_dataset(base.dataset, data_dir=base.data_dir, download=base.download,
                        device=resolve_device(base.device), split_seed=base.split_seed)
    design = canary_design(data.x_train, canaries=canaries, num_classes=data.num_classes, seed=seed)
    prepared, data = _canary_prepared(base, seed, design, cancel=cancel)
    train_s = time.perf_counter() - tic
    x_can = design.x.to(prepared.device)
    y_can = torch.as_tensor(design.label, dtype=data.y_train.dtype, device=prepared.device)
    noise_param = get_unlearner(method).noise_param
    acc_original = evaluate(prepared.original, data.x_test, data.y_test)[1]
    deleted = design.coins == 1

    def release(run_params: Mapping[str, Any]) -> tuple[Any, dict[str, Any], float]:
        tic = time.perf_counter()
        model, cert = ex._release(prepared, method, run_params, run_seed=ex._run_seed(seed, 0, 0),
                                  from_retrained=False, cancel=cancel)
        return model, cert or {}, time.perf_counter() - tic

    first = release(dict(params))
    sigma_ref = float(first[1].get("sigma_used") or 0.0)
    rows = []
    for factor in sigma_factors:
        if factor == 1.0 or noise_param is None:
            model, cert, run_s = first
        else:
            model, cert, run_s = release({**params, noise_param: factor * sigma_ref})
        scores = -example_outputs(model, x_can, y_can)["loss"]
        t = guesses_from_scores(scores, guesses)
        r = int(np.count_nonzero(t))
        v = int(np.sum(t * design.coins == 1))
        delta = cert.get("delta_guaranteed", cert.get("delta"))
        delta = float(delta) if delta is not None else 0.0
        eps_lower = unlearning_epsilon_lower(m=canaries, r=r, v=v, delta=delta, beta=alpha)
        ceiling = unlearning_epsilon_ceiling(m=canaries, r=r, delta=delta, beta=alpha)
        eps_claim, eps_cert = cert.get("epsilon"), cert.get("epsilon_certified")
        rows.append({
            "seed": seed, "method": method, "mode": "one_run", "sigma_factor": float(factor),
            "sigma": cert.get("sigma_used"), "sigma_required": cert.get("sigma_required"),
            "epsilon": eps_claim, "delta": cert.get("delta"), "delta_guaranteed": delta,
            "status": cert.get("status"), "certified": cert.get("certified"), "epsilon_certified": eps_cert,
            "canaries": canaries, "n_deleted": int(deleted.sum()), "guesses": r, "correct": v,
            "alpha": float(alpha), "epsilon_lower": eps_lower, "epsilon_lower_cap": ceiling,
            "refutes_claim": bool(eps_claim is not None and eps_lower > float(eps_claim) + 1e-9),
            "refutes_certificate": bool(eps_cert is not None and eps_lower > float(eps_cert) + 1e-9),
            "score_deleted_mean": float(np.mean(scores[deleted])) if deleted.any() else None,
            "score_never_mean": float(np.mean(scores[~deleted])) if (~deleted).any() else None,
            "acc_test": evaluate(model, data.x_test, data.y_test)[1], "acc_test_original": acc_original,
            "time_s": run_s, "train_s": train_s, "reference": ONE_RUN_REFERENCE,
        })
    return rows


def one_run_audit(
    base: Any,
    *,
    methods: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    sigma_factors: Sequence[float],
    canaries: int = ONE_RUN_CANARIES,
    guesses: int = ONE_RUN_GUESSES,
    seeds: Sequence[int] = (0,),
    alpha: float = 0.05,
    progress: Any = None,
    cancel: Any = None,
    executor: Any = None,
) -> pd.DataFrame:
    """The one-run audit of every (seed, method): one row per σ factor (``mode == "one_run"``).

    Columns shared with the many-run audit (``epsilon_lower``, ``epsilon_lower_cap``, ``refutes_claim``,
    ``refutes_certificate``, the certificate's columns, ``acc_test``) plus ``canaries``, ``guesses`` (r made),
    ``correct`` (v), the mean score of deleted and of never-inserted canaries, and ``acc_test_original``.
    Arguments are checked by :func:`unlearn_core.experiments.check_audit_args` first.
    """
    from unlearn_core import experiments as ex
    from unlearn_core.executors import Cell

    cells = [Cell(_one_run_cell, {"base": base, "seed": s, "method": m, "params": dict(params.get(m, {})),
                                  "sigma_factors": list(sigma_factors), "canaries": canaries, "guesses": guesses,
                                  "alpha": alpha}, label=f"seed {s}: {m}, one run with {canaries} canaries")
             for s in seeds for m in methods]
    with ex._Scope(executor) as scope:
        results = ex._run_cells(scope, cells, progress=progress, cancel=cancel, phase="runs", prepare=False)
    return pd.DataFrame([row for rows in results for row in rows])
