r"""The NeurIPS 2023 Machine Unlearning Challenge score, as the organisers' evaluation code computes it.

Source: Triantafillou, Kairouz, Pedregosa, Hayes et al., "Are we making progress in unlearning? Findings from the
first NeurIPS unlearning competition" (arXiv 2406.09073, §3), and its public evaluation code,
``google-deepmind/unlearning_evaluation`` (``metric.py``: ``compute_logit_scaled_confidence``, ``_get_epsilons``,
``compute_forget_score_from_confs``; ``main.py``: the utility adjustment). Read there to understand, reimplemented
here (numpy, vectorised; no GPU needed). The steps, for N unlearned and N retrained models:

1. **Confidences.** Every model gives each forget example its *logit-scaled confidence*
   :math:`\ln(p_y + 10^{-45}) - \ln(1 - p_y + 10^{-45})` (:func:`logit_scaled_confidence`).
2. **Per-example ε** (:func:`per_example_epsilons`). For each example, the set with the larger median is the
   "positive" one; two families of decision rules try to tell the N unlearned from the N retrained values — one
   threshold ("positive if c ≥ t", :func:`single_threshold_rates`) and two thresholds ("the peakier set if
   l ≤ c ≤ r", :func:`double_threshold_rates`), each on a grid of 100 thresholds per unit. Every rule's FPR and FNR
   give :math:`\max\{\ln(1-\delta-\mathrm{FPR}) - \ln\mathrm{FNR},\ \ln(1-\delta-\mathrm{FNR}) - \ln\mathrm{FPR}\}`
   floored at 0, with δ = 1e-5; a rule with FPR = FNR = 0 gives ∞, a rule with exactly one zero rate is discarded;
   the example's ε is the largest, capped at 50. An example whose smaller spread is below 1 % of the larger one
   (a "peaky" set, e.g. a deterministic unlearner's N identical outputs) gets the cap at once.
3. **Points** (:func:`bucket_points`, :func:`forget_score`). ε is bucketed in steps of 0.5 up to
   :math:`\lceil\ln(N-1)\rceil`, the largest ε N models can show: [0, 0.5) scores 1, [0.5, 1) ½, [1, 1.5) ¼, …;
   beyond the last bucket 0. F = the mean over the forget set.
4. **Final score** (:func:`final_score`): :math:`F \cdot (RA_U / RA_R) \cdot (TA_U / TA_R)`, with the retain and test
   accuracies averaged over the N unlearned and the N retrained models.

**Where this differs from the reference code, and why.** (a) The reference asserts when every rule of an example
is discarded (both sets constant and equal: no rule has two non-zero rates); here that example gets ε = 0 — no rule
tells the sets apart. (b) Nothing else: rates are rounded to float32 and ε computed in float32 as the reference's
``torch.mean(...float32)`` and numpy's float32 ``log`` do, and the single-threshold grid is ``torch.linspace`` in
the default float32, as there; the double-threshold grid is numpy's float64 ``linspace``. Counting uses sorted
arrays (``searchsorted``) instead of an N × thresholds matrix, which gives the same counts.

**Reading it.** The score is a point *estimate* maximised over ~160,000 rules per example, so it is biased towards
large ε with few models: read a method's F next to the same score of retraining itself (an independent set of
retrained models), never against 1. It compares the unlearned models with *exact* retraining, not with the noisy
retrain a certificate is about, so a certified method's ε here may exceed its certified ε without refuting it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_core.errors import ConfigError

#: The challenge's δ.
DELTA = 1e-5
#: The challenge's cap on a per-example ε (∞ — perfect separation — is capped here too).
EPSILON_CAP = 50.0
#: Thresholds per unit of confidence in both rule families.
THRESHOLDS_PER_UNIT = 100
#: The double-threshold family's margin around the peakier set (the reference's ``buffer``).
DOUBLE_BUFFER = 2.0
#: An example whose smaller spread is below this fraction of the larger one gets :data:`EPSILON_CAP` at once.
PEAKY_RATIO = 0.01
#: Width of a points bucket.
BUCKET_WIDTH = 0.5
#: The smallest number of models per set with at least one points bucket (⌈ln(N − 1)⌉ ≥ 1 needs N ≥ 3).
MIN_MODELS = 3


def logit_scaled_confidence(logits: Any, labels: Any) -> np.ndarray:
    r"""The challenge's per-example statistic :math:`\ln(p_y + 10^{-45}) - \ln(\sum_{j\ne y} p_j + 10^{-45})`.

    As the reference: the largest logit is subtracted, ``exp`` is taken in the logits' own dtype (float32 for a
    float32 model) and the softmax normalised in float64. The 1e-45 terms bound the value to about ±103.6, where
    :func:`unlearn_core.metrics.logit_confidence` (Carlini et al.'s φ from the logits) keeps going; the two agree
    wherever neither probability underflows. The input is not modified (the reference subtracts in place).
    """
    z = logits.detach().cpu().numpy() if hasattr(logits, "detach") else np.asarray(logits)
    y = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
    y = y.astype(np.int64).reshape(-1)
    if z.ndim != 2 or z.shape[0] != y.shape[0]:
        raise ConfigError(f"logit-scaled confidence needs (n, classes) logits and n labels; got {z.shape} and "
                          f"{y.shape}")
    z = z - np.max(z, axis=1, keepdims=True)
    probs = np.array(np.exp(z), dtype=np.float64)
    probs /= np.sum(probs, axis=1, keepdims=True)
    rows = np.arange(len(y))
    correct = probs[rows, y].copy()
    probs[rows, y] = 0.0
    wrong = np.sum(probs, axis=1)
    return np.log(correct + 1e-45) - np.log(wrong + 1e-45)


def _counts_at_least(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """#{v ≥ t} for every threshold (``values`` sorted)."""
    return len(values) - np.searchsorted(values, thresholds, side="left")


def _counts_between(values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """#{left ≤ v ≤ right} for every pair (``values`` sorted); 0 when left > right."""
    count = np.searchsorted(values, right, side="right") - np.searchsorted(values, left, side="left")
    return np.maximum(count, 0)


def _rate(count: np.ndarray, n: int) -> np.ndarray:
    """count / n as the reference's float32 ``torch.mean`` of 0/1 values gives it (a correctly rounded float32)."""
    return np.asarray(count, dtype=np.float32) / np.float32(n)


def _single_threshold_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positives, false negatives) of every rule of :func:`single_threshold_rates`."""
    import torch

    both = np.concatenate([pos, neg])
    low, high = torch.tensor(both.min(), dtype=torch.float64), torch.tensor(both.max(), dtype=torch.float64)
    num = int(torch.ceil((high - low) * THRESHOLDS_PER_UNIT))
    thresholds = torch.linspace(low, high, num).numpy().astype(np.float64)
    p, n = np.sort(pos), np.sort(neg)
    return _counts_at_least(n, thresholds), len(p) - _counts_at_least(p, thresholds)


def single_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of "positive if c ≥ t" on the reference's grid: ⌈(max − min)·100⌉ thresholds spanning both sets,
    ``torch.linspace`` in float32 (the default dtype the reference's grid gets)."""
    fp, fn = _single_threshold_counts(pos, neg)
    return _rate(fp, len(neg)), _rate(fn, len(pos))


def _double_threshold_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(false positives, false negatives, #positives, #negatives) of every rule of :func:`double_threshold_rates`,
    the peakier set counted as the positive one."""
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    if pos_diff >= neg_diff:
        pos, neg = neg, pos
    width = smallest
    low = pos.min() + width - DOUBLE_BUFFER
    high = pos.max() + DOUBLE_BUFFER
    right = np.linspace(low, high, num=int(np.ceil((high - low) * THRESHOLDS_PER_UNIT)))
    n_left = int(np.ceil(2 * DOUBLE_BUFFER * THRESHOLDS_PER_UNIT))
    # np.linspace with array ends computes each row exactly as a scalar call would.
    left = np.linspace(right - width - DOUBLE_BUFFER, right - width + DOUBLE_BUFFER, num=n_left, axis=1).reshape(-1)
    right = np.repeat(right, n_left)
    p, n = np.sort(pos), np.sort(neg)
    return _counts_between(n, left, right), len(p) - _counts_between(p, left, right), len(p), len(n)


def double_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of "the peakier set if l ≤ c ≤ r" on the reference's grid.

    The peakier set (the smaller spread; on a tie, the *negative* set) plays the positive class. Its spread w fixes
    the grid: right thresholds from min + w − 2 to max + 2 at 100 per unit, and for each right threshold r, 400
    left thresholds from r − w − 2 to r − w + 2.
    """
    fp, fn, n_pos, n_neg = _double_threshold_counts(pos, neg)
    return _rate(fp, n_neg), _rate(fn, n_pos)


def rule_epsilons(fpr: np.ndarray, fnr: np.ndarray, *, delta: float = DELTA) -> np.ndarray:
    r"""ε of each decision rule from its rates, with the reference's conventions (float32, as there).

    :math:`\max\{\ln(1-\delta-\mathrm{FPR}) - \ln\mathrm{FNR},\ \ln(1-\delta-\mathrm{FNR}) - \ln\mathrm{FPR}\}`
    floored at 0 (Kairouz et al. 2015's hypothesis-testing bound, as Triantafillou et al. eq. 1 state it); ∞ where
    FPR = FNR = 0; NaN (the rule is discarded) where exactly one rate is 0.
    """
    fpr = np.asarray(fpr, dtype=np.float32)
    fnr = np.asarray(fnr, dtype=np.float32)
    one = np.float32(1 - delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.stack([np.log(one - fpr) - np.log(fnr), np.log(one - fnr) - np.log(fpr)])
        both_nan = np.isnan(terms).all(axis=0)
        value = np.where(both_nan, np.float32(np.nan), np.nanmax(np.where(np.isnan(terms), -np.inf, terms), axis=0))
    value = np.clip(value, 0, None)
    perfect = (fpr + fnr == 0)
    value = np.where(perfect, np.float32(np.inf), value)
    value = np.where(~perfect & (fpr * fnr == 0), np.float32(np.nan), value)
    return value.astype(np.float32)


def example_epsilon(pos: np.ndarray, neg: np.ndarray, *, delta: float = DELTA, cap: float = EPSILON_CAP) -> float:
    """One example's ε from its N positive and N negative confidences (step 2 of the module docstring), capped."""
    pos = np.asarray(pos, dtype=np.float64).reshape(-1)
    neg = np.asarray(neg, dtype=np.float64).reshape(-1)
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    largest = max(pos_diff, neg_diff)
    smallest = min(pos_diff, neg_diff)
    if largest > 0 and smallest / largest < PEAKY_RATIO:
        return float(cap)
    # A rule's ε depends on its two error counts only: score each distinct (FP, FN) pair once (at most
    # (N + 1)² of them, against ~160,000 rules).
    fp_d, fn_d, n_pos_d, n_neg_d = _double_threshold_counts(pos, neg)
    fp_s, fn_s = _single_threshold_counts(pos, neg)
    eps_parts = []
    for fp, fn, n_pos, n_neg in ((fp_d, fn_d, n_pos_d, n_neg_d), (fp_s, fn_s, len(pos), len(neg))):
        code = np.unique(fp.astype(np.int64) * (n_pos + 1) + fn.astype(np.int64))
        eps_parts.append(rule_epsilons(_rate(code // (n_pos + 1), n_neg), _rate(code % (n_pos + 1), n_pos),
                                       delta=delta))
    eps = np.concatenate(eps_parts)
    kept = eps[~np.isnan(eps)]
    value = float(np.max(kept)) if kept.size else 0.0  # the reference asserts here (see the module docstring)
    return float(min(max(value, 0.0), cap))


def _check_confs(unlearned: Any, retrained: Any) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ConfigError(f"the challenge score needs (models, examples) confidences with the same examples; got "
                          f"{u.shape} and {r.shape}")
    if min(u.shape[0], r.shape[0]) < 2 or u.shape[1] < 1:
        raise ConfigError(f"the challenge score needs at least 2 models per set and 1 example; got {u.shape} and "
                          f"{r.shape}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ConfigError("the challenge score needs finite confidences (a model diverged?)")
    return u, r


def per_example_epsilons(unlearned: Any, retrained: Any, *, delta: float = DELTA,
                         cap: float = EPSILON_CAP) -> np.ndarray:
    """Each forget example's ε from (N, n) confidences under the unlearned and the retrained models.

    Per example, the positive set is the one with the larger median; on a tie the unlearned set (the reference's
    ``retrain_is_positive = retrain_means > unlearned_means``).
    """
    u, r = _check_confs(unlearned, retrained)
    retrain_positive = np.median(r, axis=0) > np.median(u, axis=0)
    out = np.empty(u.shape[1])
    for j in range(u.shape[1]):
        pos, neg = (r[:, j], u[:, j]) if retrain_positive[j] else (u[:, j], r[:, j])
        out[j] = example_epsilon(pos, neg, delta=delta, cap=cap)
    return out


def max_epsilon(num_models: int) -> float:
    """⌈ln(N − 1)⌉: the reference's "back-of-the-envelope" largest ε that N models per set can show."""
    if num_models < 2:
        return -math.inf
    return float(np.ceil(np.log(num_models - 1)))


def bucket_points(num_models: int) -> dict[float, float]:
    """{bucket start: points}: buckets of width 0.5 from 0 while they end at or below :func:`max_epsilon`,
    worth 1, ½, ¼, … (N = 16 → 6 buckets up to ε = 3; N = 512, the challenge's, → 14 up to ε = 7)."""
    top = max_epsilon(num_models)
    out: dict[float, float] = {}
    start, points = 0.0, 1.0
    while start + BUCKET_WIDTH <= top:
        out[start] = points
        points /= 2
        start += BUCKET_WIDTH
    return out


def points(epsilons: Any, num_models: int) -> np.ndarray:
    """Each ε's points: its bucket's, 0 beyond the last bucket (ε ≥ ⌈ln(N − 1)⌉, ∞ and the cap included)."""
    eps = np.asarray(epsilons, dtype=np.float64).reshape(-1)
    buckets = bucket_points(num_models)
    out = np.zeros(eps.shape)
    for i, e in enumerate(eps):
        for start, pts in buckets.items():
            if e < start + BUCKET_WIDTH:
                out[i] = pts
                break
    return out


def forget_score(unlearned: Any, retrained: Any, *, delta: float = DELTA) -> float:
    """F: the mean points of the forget examples' ε (N taken from the unlearned set, as the reference does)."""
    u, r = _check_confs(unlearned, retrained)
    return float(points(per_example_epsilons(u, r, delta=delta), u.shape[0]).mean())


def final_score(forget: float, *, retain_acc_unlearned: float, retain_acc_retrained: float,
                test_acc_unlearned: float, test_acc_retrained: float) -> float:
    """The challenge's final score: F × (RA_U / RA_R) × (TA_U / TA_R) (the reference's ``main.py``), with each
    accuracy the mean over its N models."""
    if retain_acc_retrained <= 0 or test_acc_retrained <= 0:
        raise ConfigError("the challenge's utility ratio needs retrained accuracies > 0")
    return float(forget * (retain_acc_unlearned / retain_acc_retrained) * (test_acc_unlearned / test_acc_retrained))


@dataclass(frozen=True)
class ChallengeScore:
    """One method's challenge result: ``epsilons`` per forget example, F, the utility ratio and the final score."""

    epsilons: np.ndarray
    forget_score: float
    utility: float
    final: float
    num_models: int

    def summary(self) -> dict[str, float]:
        eps = self.epsilons
        return {"challenge_forget_score": self.forget_score, "challenge_utility": self.utility,
                "challenge_final": self.final, "challenge_eps_median": float(np.median(eps)),
                "challenge_eps_max": float(np.max(eps)),
                "challenge_eps_capped": float(np.mean(eps >= max_epsilon(self.num_models)))}


def challenge_score(unlearned_confs: Any, retrained_confs: Any, *, retain_acc_unlearned: Any,
                    retain_acc_retrained: Any, test_acc_unlearned: Any, test_acc_retrained: Any,
                    delta: float = DELTA) -> ChallengeScore:
    """Steps 2–4 of the module docstring from the models' confidences and per-model accuracies."""
    u, r = _check_confs(unlearned_confs, retrained_confs)
    eps = per_example_epsilons(u, r, delta=delta)
    f = float(points(eps, u.shape[0]).mean())
    ra_u, ra_r = float(np.mean(retain_acc_unlearned)), float(np.mean(retain_acc_retrained))
    ta_u, ta_r = float(np.mean(test_acc_unlearned)), float(np.mean(test_acc_retrained))
    final = final_score(f, retain_acc_unlearned=ra_u, retain_acc_retrained=ra_r, test_acc_unlearned=ta_u,
                        test_acc_retrained=ta_r)
    return ChallengeScore(epsilons=eps, forget_score=f, utility=(ra_u / ra_r) * (ta_u / ta_r), final=final,
                          num_models=int(u.shape[0]))
