r"""Unlearning metrics beyond accuracy: membership inference, relearn time, output distance to the retrained model.

Every attack here is scored on **held-out** data (stratified k-fold over a balanced subsample), never on its own
training data (the anti-pattern of Zhang et al.'s released code; see docs/evaluation.md), and every number is meant
to be read
**next to the same number for the retrained model**: an unlearned model should land near the retrained value.
Far above it means the forget set is still recognisable; far *below* it (over-unlearning, e.g. NegGrad driving
the forget loss up) is a failure too, because the forget set then stands out by being forgotten too well.

The scorers are pure functions of per-sample losses or softmax outputs (numpy arrays or tensors) and a seed, so
they are tested on synthetic separable (AUC ≈ 1) and inseparable (AUC ≈ 0.5) data; :func:`model_mia` and
:func:`mia_report` compute those inputs from models.

Conventions:

* **ROC-AUC** of the attack's held-out scores, members = label 1.
* **TPR at 1 % FPR** (:func:`tpr_at_fpr`): the largest true-positive rate among the ROC points whose false-positive
  rate is ≤ 0.01 (scikit-learn's ``roc_curve`` points, i.e. thresholds at the observed scores; no interpolation).
  With fewer than 100 negatives the only such point may be FPR = 0.
* **Output distance**: KL(p_retrained ‖ p_model) and Jensen–Shannon divergence in nats, averaged over examples.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_core.errors import ConfigError
from unlearn_core.training import trainable

#: The TPR@FPR convention, quoted in reports and figure annotations.
TPR_AT_FPR_CONVENTION = "TPR at 1% FPR = the largest ROC true-positive rate whose false-positive rate is ≤ 0.01"

FEATURE_MODES = ("direct_diff", "sorted_diff", "l2_distance", "direct_concat", "sorted_concat")
ATTACK_MODELS = ("lr", "dt", "mlp", "rf")

ArrayLike = Any  # np.ndarray | torch.Tensor | Sequence[float]


def _np(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


# ----------------------------------------------------------------------------------------------------------------
# Scoring helpers
# ----------------------------------------------------------------------------------------------------------------


def tpr_at_fpr(labels: ArrayLike, scores: ArrayLike, *, fpr: float = 0.01) -> float:
    """The largest TPR among ROC points with FPR ≤ ``fpr`` (see the module docstring for the convention).

    Why this convention: it is what "TPR at 1 % FPR" means in the MIA literature (Carlini et al. 2022) and it
    never interpolates between ROC points, so it cannot overstate the attack.
    """
    from sklearn.metrics import roc_curve

    # drop_intermediate=False: collinear ROC points would otherwise be dropped, and one of them may be the
    # largest TPR under the FPR cap.
    fprs, tprs, _ = roc_curve(_np(labels).astype(int), _np(scores), drop_intermediate=False)
    ok = fprs <= fpr + 1e-12
    return float(tprs[ok].max()) if ok.any() else 0.0


def _balanced_indices(
    n_pos: int, n_neg: int, *, max_per_class: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-size random subsamples of the two classes (so AUC and accuracy are not driven by class imbalance)."""
    m = min(n_pos, n_neg)
    if max_per_class is not None:
        m = min(m, int(max_per_class))
    return np.sort(rng.choice(n_pos, size=m, replace=False)), np.sort(rng.choice(n_neg, size=m, replace=False))


def make_attack_model(name: str, *, seed: int) -> Any:
    """The attack classifiers of Zhang et al.'s posterior-difference attack (Chen et al. 2021), each with a scaler.

    ``lr`` (default): StandardScaler + LogisticRegression(lbfgs, max_iter 400); ``dt``: a decision tree with 10
    leaves; ``mlp``: MLPClassifier with early stopping, lr 0.01; ``rf``: 500 trees, min leaf 30.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if name == "lr":
        clf: Any = LogisticRegression(solver="lbfgs", max_iter=400)
    elif name == "dt":
        clf = DecisionTreeClassifier(max_leaf_nodes=10, random_state=seed)
    elif name == "mlp":
        clf = MLPClassifier(early_stopping=True, learning_rate_init=0.01, random_state=seed, max_iter=300)
    elif name == "rf":
        clf = RandomForestClassifier(n_estimators=500, min_samples_leaf=30, random_state=seed, n_jobs=1)
    else:
        raise ConfigError(f"attack model {name!r} is not valid: choose one of {', '.join(ATTACK_MODELS)}")
    return make_pipeline(StandardScaler(), clf)


@dataclass
class AttackResult:
    """Held-out scores of one membership-inference attack.

    ``auc`` and ``tpr_at_1fpr`` are computed on the pooled out-of-fold scores (each example scored by a model that
    never saw it); ``auc_fold_std`` is the spread of the per-fold AUCs; ``n_per_class`` the balanced sample size.
    """

    auc: float
    tpr_at_1fpr: float
    accuracy: float
    auc_fold_std: float
    n_per_class: int
    folds: int
    attack: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cross_validated_attack(
    member_features: ArrayLike,
    nonmember_features: ArrayLike,
    *,
    attack: str = "lr",
    folds: int = 5,
    seed: int = 0,
    max_per_class: int | None = 2000,
) -> AttackResult:
    """Fit ``attack`` to tell members (label 1) from non-members (label 0), scored by stratified k-fold.

    The two classes are first subsampled to equal size (at most ``max_per_class``), seeded by ``seed``; then every
    example is scored by the fold model that did not train on it, and AUC / TPR@1%FPR / accuracy are computed on
    those held-out scores.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    pos, neg = _np(member_features), _np(nonmember_features)
    pos = pos.reshape(len(pos), -1)
    neg = neg.reshape(len(neg), -1)
    if pos.shape[1] != neg.shape[1]:
        raise ConfigError(f"member and non-member features differ in width: {pos.shape[1]} vs {neg.shape[1]}")
    rng = np.random.default_rng(seed)
    ip, ineg = _balanced_indices(len(pos), len(neg), max_per_class=max_per_class, rng=rng)
    m = len(ip)
    k = int(folds)
    if k < 2:
        raise ConfigError(f"folds={folds!r} is not valid: expected an integer ≥ 2")
    if m < k:
        raise ConfigError(f"membership inference needs at least {k} examples per class (folds={k}); got {m}")
    x = np.concatenate([pos[ip], neg[ineg]])
    y = np.concatenate([np.ones(m, dtype=int), np.zeros(m, dtype=int)])
    scores = np.zeros(2 * m)
    fold_aucs = []
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train_idx, test_idx in skf.split(x, y):
        model = make_attack_model(attack, seed=seed)
        model.fit(x[train_idx], y[train_idx])
        s = model.predict_proba(x[test_idx])[:, 1]
        scores[test_idx] = s
        fold_aucs.append(roc_auc_score(y[test_idx], s))
    return AttackResult(
        auc=float(roc_auc_score(y, scores)),
        tpr_at_1fpr=tpr_at_fpr(y, scores, fpr=0.01),
        accuracy=float(((scores >= 0.5).astype(int) == y).mean()),
        auc_fold_std=float(np.std(fold_aucs)),
        n_per_class=m,
        folds=k,
        attack=attack,
    )


# ----------------------------------------------------------------------------------------------------------------
# The three attacks
# ----------------------------------------------------------------------------------------------------------------


def loss_mia(
    forget_losses: ArrayLike,
    test_losses: ArrayLike,
    *,
    folds: int = 5,
    seed: int = 0,
    max_per_class: int | None = 2000,
) -> AttackResult:
    """Loss-based membership inference: forget set (label 1) vs test set (label 0) from per-sample losses.

    A logistic regression on the (log) loss is a learned threshold, so its AUC is that of the loss itself, up to
    the sign that the training folds pick; it is scored held-out by :func:`cross_validated_attack`. For a
    retrained model the forget set is unseen data, so its AUC sits near 0.5 (or above it, if forget and test
    differ in distribution, e.g. a class forget set): that value, not 0.5, is the target.
    """
    f = np.log(np.clip(_np(forget_losses), 1e-12, None))
    t = np.log(np.clip(_np(test_losses), 1e-12, None))
    return cross_validated_attack(f, t, attack="lr", folds=folds, seed=seed, max_per_class=max_per_class)


def posterior_features(p_original: ArrayLike, p_unlearned: ArrayLike, *, mode: str = "sorted_concat") -> np.ndarray:
    """Attack features from two models' softmax outputs on the same examples (Chen et al. 2021, used by Zhang).

    ``direct_diff``: p_o − p_u; ``sorted_diff``: each posterior sorted descending, then subtracted; ``l2_distance``:
    ‖p_o − p_u‖₂ (one column); ``direct_concat``: [p_o, p_u]; ``sorted_concat`` (default): [sort(p_o), sort(p_u)].
    """
    po, pu = _np(p_original), _np(p_unlearned)
    if po.shape != pu.shape:
        raise ConfigError(f"posteriors differ in shape: {po.shape} vs {pu.shape}")
    if mode == "direct_diff":
        return po - pu
    so, su = -np.sort(-po, axis=1), -np.sort(-pu, axis=1)
    if mode == "sorted_diff":
        return so - su
    if mode == "l2_distance":
        return np.linalg.norm(po - pu, axis=1, keepdims=True)
    if mode == "direct_concat":
        return np.concatenate([po, pu], axis=1)
    if mode == "sorted_concat":
        return np.concatenate([so, su], axis=1)
    raise ConfigError(f"feature mode {mode!r} is not valid: choose one of {', '.join(FEATURE_MODES)}")


def posterior_difference_mia(
    p_original_forget: ArrayLike,
    p_unlearned_forget: ArrayLike,
    p_original_retain: ArrayLike,
    p_unlearned_retain: ArrayLike,
    *,
    mode: str = "sorted_concat",
    attack: str = "lr",
    folds: int = 5,
    seed: int = 0,
    max_per_class: int | None = 2000,
) -> AttackResult:
    """Zhang et al.'s MIA: do the original and unlearned posteriors differ more on D_u (label 1) than on D_r (0)?

    Features by :func:`posterior_features`; attack model by :func:`make_attack_model`. Unlike the reference code,
    which fits and scores the attack on the same 1,000 vs 59,000 examples, this subsamples D_r to the size of D_u
    and reports held-out k-fold scores.
    """
    members = posterior_features(p_original_forget, p_unlearned_forget, mode=mode)
    nonmembers = posterior_features(p_original_retain, p_unlearned_retain, mode=mode)
    return cross_validated_attack(
        members, nonmembers, attack=attack, folds=folds, seed=seed, max_per_class=max_per_class
    )


def true_class_confidence(probs: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """p(y | x), the softmax probability of the true label (OPTML's "confidence" feature)."""
    p = _np(probs)
    y = _np(labels).astype(int)
    return p[np.arange(len(y)), y]


def svc_confidence_mia(
    retain_confidence: ArrayLike,
    test_confidence: ArrayLike,
    forget_confidence: ArrayLike,
    *,
    seed: int = 0,
    max_per_class: int | None = 1000,
) -> dict[str, float]:
    """OPTML-style SVC MIA: fit an RBF SVC on retain (member) vs test (non-member) confidences, apply to D_u.

    Returns ``forget_member_rate`` (fraction of D_u the attack calls a member) and its complement
    ``forget_nonmember_rate`` (OPTML's "MIA-efficacy"), plus ``attack_auc``, the SVC's AUC on a held-out half of
    the retain/test sample (how good the attack is at all: near 0.5 means the rates say little).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    r = _np(retain_confidence).reshape(-1, 1)
    t = _np(test_confidence).reshape(-1, 1)
    f = _np(forget_confidence).reshape(-1, 1)
    rng = np.random.default_rng(seed)
    ir, it = _balanced_indices(len(r), len(t), max_per_class=max_per_class, rng=rng)
    m = len(ir)
    if m < 4 or len(f) == 0:
        raise ConfigError(f"the SVC MIA needs at least 4 retain/test examples and a non-empty forget set; got {m}")
    x = np.concatenate([r[ir], t[it]])
    y = np.concatenate([np.ones(m, dtype=int), np.zeros(m, dtype=int)])
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    svc = make_pipeline(StandardScaler(), SVC(C=3, gamma="auto", kernel="rbf"))
    svc.fit(x_fit, y_fit)
    auc = float(roc_auc_score(y_val, svc.decision_function(x_val)))
    member = float(svc.predict(f).mean())
    return {"forget_member_rate": member, "forget_nonmember_rate": 1.0 - member, "attack_auc": auc}


# ----------------------------------------------------------------------------------------------------------------
# Output distance
# ----------------------------------------------------------------------------------------------------------------


def kl_divergence(p: ArrayLike, q: ArrayLike, *, eps: float = 1e-12) -> np.ndarray:
    r"""Row-wise :math:`\mathrm{KL}(p\,\|\,q) = \sum_i p_i \ln(p_i / q_i)` in nats (0·ln 0 = 0; q clipped at eps)."""
    p_, q_ = _np(p), np.clip(_np(q), eps, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p_ > 0, p_ * (np.log(np.clip(p_, eps, None)) - np.log(q_)), 0.0)
    return terms.sum(axis=1)


def js_divergence(p: ArrayLike, q: ArrayLike) -> np.ndarray:
    r"""Row-wise Jensen–Shannon divergence :math:`\tfrac12 KL(p\|m) + \tfrac12 KL(q\|m)`, m = (p+q)/2, in nats.

    Symmetric and bounded by ln 2, so it stays readable when a model is confidently wrong (KL is unbounded).
    """
    p_, q_ = _np(p), _np(q)
    m = 0.5 * (p_ + q_)
    return 0.5 * kl_divergence(p_, m) + 0.5 * kl_divergence(q_, m)


def output_distance(p_model: ArrayLike, p_reference: ArrayLike) -> dict[str, float]:
    """Mean KL(p_reference ‖ p_model) and mean JS between predictive distributions on the same examples.

    The reference is the retrained model: KL(retrained ‖ model) asks how surprised the retrained model's
    predictions would be under the unlearned model. Lower is better; the floor is retrain-vs-retrain across seeds.
    """
    kl = float(kl_divergence(p_reference, p_model).mean())
    return {"kl": kl, "js": float(js_divergence(p_model, p_reference).mean())}


# ----------------------------------------------------------------------------------------------------------------
# Relearn time
# ----------------------------------------------------------------------------------------------------------------


def relearn_time(
    model: nn.Module,
    x_forget: torch.Tensor,
    y_forget: torch.Tensor,
    *,
    target_acc: float,
    lr: float = 0.01,
    batch_size: int = 32,
    max_steps: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """SGD steps on the forget set (fixed lr and batch, no momentum) until its accuracy reaches ``target_acc``.

    ``target_acc`` is normally the original model's forget accuracy. A model that truly forgot needs about as
    many steps as the retrained model; a model that only hid the data (e.g. by a small output change) relearns
    it in a handful. The model passed in is copied, never modified. Returns ``{steps, capped, final_acc,
    target_acc}``: ``capped`` means the target was not reached within ``max_steps`` (``steps`` is then the cap).
    """
    if x_forget.shape[0] == 0:
        raise ConfigError("relearn time needs a non-empty forget set")
    work = copy.deepcopy(model)
    params = trainable(work)
    opt = torch.optim.SGD(params, lr=lr, momentum=0.0)
    gen = torch.Generator().manual_seed(int(seed))
    n = int(x_forget.shape[0])

    @torch.no_grad()
    def acc() -> float:
        work.eval()
        return float((work(x_forget).argmax(1) == y_forget).float().mean())

    current = acc()
    steps = 0
    while current < target_acc - 1e-12 and steps < max_steps:
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen).to(x_forget.device)
        work.train()
        loss = nn.functional.cross_entropy(work(x_forget[idx]), y_forget[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        current = acc()
    return {"steps": steps, "capped": bool(current < target_acc - 1e-12), "final_acc": current,
            "target_acc": float(target_acc)}


# ----------------------------------------------------------------------------------------------------------------
# From models
# ----------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def _proba(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    from unlearn_core.evaluation import predict_proba

    p = predict_proba(model, x).double().cpu().numpy()
    # A diverged model (NaN/inf logits) carries no information: score its rows as the uniform distribution, so the
    # attacks see "no signal" instead of crashing. The loss features then equal ln(num_classes).
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        p[bad] = 1.0 / p.shape[1]
    return p


def _subsample(n: int, m: int, seed: int) -> torch.Tensor:
    if n <= m:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:m].sort().values


def model_mia(
    model: nn.Module,
    *,
    original: nn.Module,
    x_forget: torch.Tensor,
    y_forget: torch.Tensor,
    x_retain: torch.Tensor,
    y_retain: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    seed: int = 0,
    max_per_class: int = 1000,
    folds: int = 5,
    posterior: bool = True,
    svc: bool = True,
) -> dict[str, float]:
    """All attacks on one model, as a flat dict of numbers in [0, 1] (the run card's ``mia`` block).

    Keys: ``loss_auc``, ``loss_tpr_at_1fpr`` (forget vs test); ``posterior_auc``, ``posterior_tpr_at_1fpr``
    (original vs ``model`` on forget vs retain; skipped when ``model`` is ``original``, where every feature is
    zero); ``svc_forget_nonmember_rate``, ``svc_attack_auc``. The retain and test sets are subsampled (seeded)
    to ``max_per_class`` so the cost does not grow with the dataset.
    """
    r_sub = _subsample(int(x_retain.shape[0]), max_per_class, seed + 1).to(x_retain.device)
    t_sub = _subsample(int(x_test.shape[0]), max_per_class, seed + 2).to(x_test.device)
    f_sub = _subsample(int(x_forget.shape[0]), max_per_class, seed + 3).to(x_forget.device)
    xf, yf = x_forget[f_sub], y_forget[f_sub]
    xr, yr = x_retain[r_sub], y_retain[r_sub]
    xt, yt = x_test[t_sub], y_test[t_sub]
    pf, pr, pt = _proba(model, xf), _proba(model, xr), _proba(model, xt)
    out: dict[str, float] = {}
    lf = -np.log(np.clip(true_class_confidence(pf, yf), 1e-12, None))
    lt = -np.log(np.clip(true_class_confidence(pt, yt), 1e-12, None))
    res = loss_mia(lf, lt, folds=folds, seed=seed, max_per_class=max_per_class)
    out["loss_auc"], out["loss_tpr_at_1fpr"] = res.auc, res.tpr_at_1fpr
    if posterior and model is not original:
        res = posterior_difference_mia(
            _proba(original, xf), pf, _proba(original, xr), pr, folds=folds, seed=seed, max_per_class=max_per_class
        )
        out["posterior_auc"], out["posterior_tpr_at_1fpr"] = res.auc, res.tpr_at_1fpr
    if svc:
        s = svc_confidence_mia(
            true_class_confidence(pr, yr), true_class_confidence(pt, yt), true_class_confidence(pf, yf), seed=seed,
            max_per_class=max_per_class,
        )
        out["svc_forget_nonmember_rate"], out["svc_attack_auc"] = s["forget_nonmember_rate"], s["attack_auc"]
    return out


def prepared_splits(prepared: Any) -> dict[str, torch.Tensor]:
    """Forget / retain / test tensors of a :class:`~unlearn_core.pipeline.Prepared`, on its device."""
    data = prepared.data
    dev = data.x_train.device
    fi, ri = prepared.forget_idx.to(dev), prepared.retain_idx.to(dev)
    return {
        "x_forget": data.x_train[fi], "y_forget": data.y_train[fi],
        "x_retain": data.x_train[ri], "y_retain": data.y_train[ri],
        "x_test": data.x_test, "y_test": data.y_test,
    }


def output_distances(model: nn.Module, reference: nn.Module, splits: dict[str, torch.Tensor]) -> dict[str, float]:
    """KL and JS of ``model`` to ``reference`` (the retrained model) on the forget and test sets."""
    out: dict[str, float] = {}
    for split in ("forget", "test"):
        x = splits[f"x_{split}"]
        d = output_distance(_proba(model, x), _proba(reference, x))
        out[f"kl_{split}"], out[f"js_{split}"] = d["kl"], d["js"]
    return out


def mia_report(
    *,
    original: nn.Module,
    unlearned: nn.Module,
    retrained: nn.Module | None,
    splits: dict[str, torch.Tensor],
    seed: int = 0,
    max_per_class: int = 1000,
    folds: int = 5,
) -> dict[str, Any]:
    """The ``mia`` block of a run card: the same attacks on the original, retrained and unlearned models.

    ``{"original": {...}, "retrained": {...}, "unlearned": {...}, "output_distance": {...}, "convention": ...}``:
    the same attacks on every model (see :func:`model_mia`), so the unlearned value can be read against the
    retrained one; ``output_distance`` holds KL/JS of the unlearned and original models to the retrained one.
    ``splits`` holds ``x_forget``/``y_forget``/``x_retain``/``y_retain``/``x_test``/``y_test`` (e.g.
    :func:`prepared_splits`); ``retrained`` may be None (no retrained reference: its entries are left out).
    """
    models = {"original": original, "retrained": retrained, "unlearned": unlearned}
    out: dict[str, Any] = {}
    for name, model in models.items():
        if model is None:
            continue
        out[name] = model_mia(model, original=original, seed=seed, max_per_class=max_per_class,
                              folds=folds, **splits)
    if retrained is not None:
        out["output_distance"] = {
            "unlearned": output_distances(unlearned, retrained, splits),
            "original": output_distances(original, retrained, splits),
        }
    out["convention"] = (
        "held-out stratified 5-fold attacks on balanced subsamples; closer to the retrained model is better "
        "(far below it is over-unlearning); " + TPR_AT_FPR_CONVENTION
    )
    return out


def clopper_pearson(k: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided exact (Clopper–Pearson) 1 − α confidence interval for a binomial proportion k/n.

    Computed by ``scipy.stats.binomtest(k, n).proportion_ci(1 − α, method="exact")`` (tested against the
    beta-quantile form ``[B(α/2; k, n−k+1), B(1−α/2; k+1, n−k)]``).
    """
    from scipy.stats import binomtest

    if n <= 0 or not 0 <= k <= n:
        raise ConfigError(f"clopper_pearson needs 0 ≤ k ≤ n and n > 0; got k={k}, n={n}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=1.0 - alpha, method="exact")
    return float(ci.low), float(ci.high)


def epsilon_lower_bound(*, fpr: float, fnr: float, delta: float) -> float:
    r"""The DP-auditing conversion: the smallest ε consistent with a test achieving (FPR, FNR) at δ.

    An (ε, δ)-indistinguishable pair of distributions forces every test to satisfy
    :math:`\mathrm{FPR} + e^\varepsilon\,\mathrm{FNR} \ge 1 - \delta` and
    :math:`\mathrm{FNR} + e^\varepsilon\,\mathrm{FPR} \ge 1 - \delta` (Kairouz et al. 2015; used for auditing by
    Jagielski et al. 2020, Nasr et al. 2021), hence

    .. math:: \varepsilon \ge \max\Big(\ln\frac{1-\delta-\mathrm{FPR}}{\mathrm{FNR}},
              \ln\frac{1-\delta-\mathrm{FNR}}{\mathrm{FPR}}, 0\Big).

    Pass *upper* confidence limits of FPR and FNR to get a lower bound that holds with that confidence.
    """
    vals = [0.0]
    for a, b in ((fpr, fnr), (fnr, fpr)):
        num = 1.0 - delta - a
        if num <= 0:
            continue
        vals.append(math.inf if b <= 0 else math.log(num / b))
    return max(vals)


def audit_epsilon_ceiling(runs: int, *, alpha: float = 0.05, delta: float = 0.0) -> float:
    r"""The largest ε the many-run audit can ever show with ``runs`` runs per arm (computable before any work).

    Half the runs of each arm choose the test, the other ⌈runs/2⌉ = n count its errors; the best outcome is a test
    without a single error, whose Clopper–Pearson upper limits (:func:`clopper_pearson`, k = 0:
    :math:`1 - (\alpha/2)^{1/n}`) go through :func:`epsilon_lower_bound`. No outcome gives more, so a claim at or
    above this value cannot be refuted by the audit: 0.54 at 16 runs per arm, 1.02 at 24, 2.6 at 100, ≈ 11.8 at a
    million (α = 0.05).
    """
    n = int(runs) - int(runs) // 2
    if n < 1:
        return 0.0
    upper = clopper_pearson(0, n, alpha=alpha)[1]
    return epsilon_lower_bound(fpr=upper, fnr=upper, delta=delta)


def audit_runs_needed(epsilon: float, *, alpha: float = 0.05, delta: float = 0.0, low: int = 8,
                      high: int = 1_000_000) -> int | None:
    """The fewest runs per arm (in [low, high]) whose :func:`audit_epsilon_ceiling` exceeds ``epsilon`` — what
    refuting a claim of ε needs at the very least (a perfect test on the counted half); ``None`` if no count does."""
    if audit_epsilon_ceiling(high, alpha=alpha, delta=delta) <= epsilon:
        return None
    lo, hi = low, high  # the ceiling grows with the runs
    if audit_epsilon_ceiling(lo, alpha=alpha, delta=delta) > epsilon:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if audit_epsilon_ceiling(mid, alpha=alpha, delta=delta) > epsilon:
            hi = mid
        else:
            lo = mid
    return hi


# ----------------------------------------------------------------------------------------------------------------
# Distinguishing tests between two sets of models (the audit, per-example ε, LiRA)
# ----------------------------------------------------------------------------------------------------------------

#: Sides of a one-sided threshold test: "A" when the score is above (+1) or at/below (−1) the threshold.
SIDES = (1, -1)


def _threshold_counts(a: np.ndarray, b: np.ndarray, thresholds: np.ndarray, side: int) -> tuple[np.ndarray, ...]:
    """(false positives, false negatives) of the test "call A when side·(s − t) > 0" at every threshold t.

    A false positive is a B sample called A; a false negative an A sample called B. Side −1 calls A when s ≤ t.
    """
    a_sorted, b_sorted = np.sort(a), np.sort(b)
    a_le = np.searchsorted(a_sorted, thresholds, side="right")  # #(A ≤ t)
    b_le = np.searchsorted(b_sorted, thresholds, side="right")  # #(B ≤ t)
    if side == 1:
        return len(b) - b_le, a_le  # B > t called A; A ≤ t called B
    return b_le, len(a) - a_le  # B ≤ t called A; A > t called B


def _candidate_thresholds(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One threshold per distinct decision: −∞ (everything on one side), the midpoints between consecutive finite
    observed values, and the largest finite and overall values (midpoints keep a chosen threshold away from the
    samples it was chosen on)."""
    values = np.unique(np.concatenate([a, b]))
    finite = values[np.isfinite(values)]
    mids = 0.5 * (finite[:-1] + finite[1:]) if finite.size > 1 else finite[:0]
    return np.unique(np.concatenate([[-np.inf], mids, finite[-1:], values[-1:]]))


def _finite(scores: ArrayLike) -> np.ndarray:
    """Scores as float64 with NaN mapped to +∞ (a diverged model's loss): still ordered, still countable."""
    out = _np(scores).astype(np.float64).reshape(-1)
    return np.where(np.isnan(out), np.inf, out)


def distinguishing_test(
    select_a: ArrayLike,
    select_b: ArrayLike,
    eval_a: ArrayLike,
    eval_b: ArrayLike,
    *,
    delta: float,
    alpha: float = 0.05,
) -> dict[str, Any]:
    r"""An empirical lower bound on ε from two samples of a scalar statistic (A = unlearned, B = reference).

    The one-sided threshold test and its side are chosen on the *selection* samples to maximise the bound there;
    its false-positive and false-negative counts are then taken on the held-out *evaluation* samples, so the
    choice cannot inflate the reported bound. Clopper–Pearson upper limits (:func:`clopper_pearson`, confidence
    1 − α each) of both rates go through :func:`epsilon_lower_bound`: if A and B are (ε, δ)-indistinguishable,
    ``epsilon_lower`` exceeds ε with probability at most about α. ``epsilon_lower_cap`` is the largest value these
    evaluation sizes can show at all (a test without a single error).

    Returns ``threshold``, ``side``, ``fpr``, ``fnr`` (held-out point estimates), ``fpr_hi``, ``fnr_hi``,
    ``n_eval_a``, ``n_eval_b``, ``epsilon_selection`` and ``accuracy_selection`` (the bound and the balanced
    accuracy on the selection half, for choosing between statistics without looking at the evaluation half),
    ``epsilon_lower`` and ``epsilon_lower_cap``.
    """
    sa, sb, ea, eb = (_finite(v) for v in (select_a, select_b, eval_a, eval_b))
    if min(len(sa), len(sb), len(ea), len(eb)) < 1:
        raise ConfigError("a distinguishing test needs at least one selection and one evaluation sample per arm")
    na, nb = len(sa), len(sb)
    up_a, up_b = _cp_upper_all(na, alpha), _cp_upper_all(nb, alpha)
    thresholds = _candidate_thresholds(sa, sb)
    best: tuple[float, float, float, int] = (-1.0, -1.0, -np.inf, 1)
    for side in SIDES:
        fp, fn = _threshold_counts(sa, sb, thresholds, side)
        eps = _epsilon_lower_bounds(up_b[fp], up_a[fn], delta)
        # Ties (all zero when the arms look alike) go to the most accurate threshold.
        acc = 1.0 - 0.5 * (fp / nb + fn / na)
        top = np.flatnonzero((eps == eps.max()) & (acc == acc[eps == eps.max()].max()))
        i = int(top[len(top) // 2])  # the middle of a plateau of equally good thresholds
        if (eps[i], acc[i]) > best[:2]:
            best = (float(eps[i]), float(acc[i]), float(thresholds[i]), side)
    eps_sel, acc_sel, t, side = best
    fp, fn = (int(c[0]) for c in _threshold_counts(ea, eb, np.array([t]), side))
    n_ea, n_eb = len(ea), len(eb)
    fpr_hi, fnr_hi = clopper_pearson(fp, n_eb, alpha=alpha)[1], clopper_pearson(fn, n_ea, alpha=alpha)[1]
    cap = epsilon_lower_bound(fpr=clopper_pearson(0, n_eb, alpha=alpha)[1],
                              fnr=clopper_pearson(0, n_ea, alpha=alpha)[1], delta=delta)
    return {
        "threshold": t, "side": side, "fpr": fp / n_eb, "fnr": fn / n_ea, "fpr_hi": fpr_hi, "fnr_hi": fnr_hi,
        "n_eval_a": n_ea, "n_eval_b": n_eb, "epsilon_selection": eps_sel, "accuracy_selection": acc_sel,
        "epsilon_lower": epsilon_lower_bound(fpr=fpr_hi, fnr=fnr_hi, delta=delta), "epsilon_lower_cap": cap,
    }


def _cp_upper_all(n: int, alpha: float) -> np.ndarray:
    """Clopper–Pearson upper limits for k = 0…n at once (the beta-quantile form of :func:`clopper_pearson`)."""
    from scipy.stats import beta

    k = np.arange(n + 1)
    out = np.ones(n + 1)
    out[:-1] = beta.ppf(1 - alpha / 2, k[:-1] + 1, n - k[:-1])
    return out


def _epsilon_lower_bounds(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> np.ndarray:
    """:func:`epsilon_lower_bound` over arrays of (FPR, FNR) upper limits."""
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.where(1 - delta - fpr > 0, np.log(np.maximum(1 - delta - fpr, 1e-300)) - np.log(fnr), -np.inf)
        e2 = np.where(1 - delta - fnr > 0, np.log(np.maximum(1 - delta - fnr, 1e-300)) - np.log(fpr), -np.inf)
    return np.maximum(0.0, np.maximum(e1, e2))


def _pair_epsilon(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> float:
    """max over tests of ε(FPR, FNR) with Triantafillou et al.'s conventions (see :func:`per_example_epsilon`)."""
    both_zero = (fpr == 0) & (fnr == 0)
    if both_zero.any():
        return math.inf
    keep = (fpr > 0) & (fnr > 0)
    if not keep.any():
        return 0.0
    f, n = fpr[keep], fnr[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.log(1.0 - delta - f) - np.log(n)
        e2 = np.log(1.0 - delta - n) - np.log(f)
    values = np.concatenate([e1, e2])
    values = values[np.isfinite(values)]
    return float(max(0.0, values.max())) if values.size else 0.0


def per_example_epsilon(
    scores_unlearned: ArrayLike,
    scores_retrained: ArrayLike,
    *,
    delta: float = 0.01,
) -> np.ndarray:
    r"""Per-example ε of Triantafillou et al. (NeurIPS 2023 unlearning challenge), one value per forget example.

    Triantafillou, Kairouz, Pedregosa, Hayes et al., "Are we making progress in unlearning? Findings from the
    first NeurIPS unlearning competition" (arXiv 2406.09073, §3): for every forget example x, each of K unlearned
    and K retrained models gives one scalar (here: a column of ``scores_*``, shape ``(K, n)``, e.g. the
    example's loss); a family of attacks tries to tell the two sets of K numbers apart, and each attack's
    false-positive / false-negative rates give

    .. math:: \hat\varepsilon(x) = \max_{\text{attacks}}\ \max\Big(\ln\frac{1-\delta-\mathrm{FPR}}{\mathrm{FNR}},
              \ \ln\frac{1-\delta-\mathrm{FNR}}{\mathrm{FPR}}\Big),

    floored at 0. The attacks here are every one-sided threshold on the scalar, in both directions (the
    competition also fits a logistic regression on the scalar, itself a threshold rule). Their conventions are
    kept: an attack with FPR = FNR = 0 separates the samples perfectly (ε̂ = ∞); an attack with exactly one zero
    rate is discarded (with K samples a zero rate says little); the competition used δ = 0.01.

    This is an *estimate* from point rates, maximised over many thresholds, not a confidence bound: with few
    models it is biased upwards. For a bound with a stated confidence use :func:`distinguishing_test`.
    """
    u = _np(scores_unlearned)
    r = _np(scores_retrained)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ConfigError(f"per-example ε needs (K, n) score arrays with the same n; got {u.shape} and {r.shape}")
    if u.shape[0] < 1 or r.shape[0] < 1:
        raise ConfigError("per-example ε needs at least one model in each set")
    out = np.empty(u.shape[1])
    for j in range(u.shape[1]):
        a, b = _finite(u[:, j]), _finite(r[:, j])
        thresholds = _candidate_thresholds(a, b)
        fprs, fnrs = [], []
        for side in SIDES:
            fp, fn = _threshold_counts(a, b, thresholds, side)
            fprs.append(fp / len(b))
            fnrs.append(fn / len(a))
        out[j] = _pair_epsilon(np.concatenate(fprs), np.concatenate(fnrs), delta)
    return out


def forgetting_quality(epsilons: ArrayLike, *, bin_width: float = 0.5, bins: int = 13) -> float:
    r"""Triantafillou et al.'s aggregate of per-example ε: the mean of :math:`H(\varepsilon) = 2 / 2^{b(\varepsilon)}`.

    :math:`b(\varepsilon)` is the 1-based bin of ε among bins of width 0.5 starting at 0, the last one open
    (ε ≥ 6, and ε = ∞, land in bin 13): ε < 0.5 scores 1, [0.5, 1) scores ½, [1, 1.5) ¼, … So the value is in
    (0, 1], higher is better, and 1 means every example has ε̂ < 0.5 (arXiv 2406.09073, §3).
    """
    eps = _np(epsilons).reshape(-1)
    if eps.size == 0:
        raise ConfigError("forgetting quality needs at least one per-example ε")
    edges = np.arange(int(bins)) * float(bin_width)
    index = np.digitize(np.where(np.isnan(eps), np.inf, eps), edges)
    return float(np.mean(2.0 / 2.0 ** index))


def logit_confidence(logits: ArrayLike, labels: ArrayLike) -> np.ndarray:
    r"""LiRA's per-example statistic :math:`\phi = \ln\frac{p_y}{1-p_y} = z_y - \log\sum_{j\ne y} e^{z_j}`.

    Carlini et al. (2022, "Membership inference attacks from first principles", §IV-B) logit-scale the
    true-class confidence so that its distribution over models is close to Gaussian; computed from the logits
    directly, it stays finite where ``p_y`` rounds to 1.
    """
    z = _np(logits)
    y = _np(labels).astype(int)
    rows = np.arange(len(y))
    true = z[rows, y]
    others = z.copy()
    others[rows, y] = -np.inf
    m = others.max(axis=1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(others - m).sum(axis=1)))
    out = true - lse
    return np.where(np.isfinite(out), out, np.where(np.isnan(out), 0.0, np.sign(out) * 1e6))


def lira_offline_scores(
    target: ArrayLike,
    references: ArrayLike,
    *,
    global_variance: bool | None = None,
) -> np.ndarray:
    r"""Offline LiRA scores of one target model (Carlini et al. 2022, §IV-C, offline variant).

    ``target`` (n,) is the target model's :func:`logit_confidence` on n examples; ``references`` (K, n) the same
    statistic of K models that did *not* train on those examples ("OUT" models: here the retrained models).
    Per example, φ_out ~ N(μ, σ²) is fitted to the references and the score is the standardised
    :math:`(\phi - \mu)/\sigma`, monotone in the one-sided likelihood ratio Λ = Φ((φ − μ)/σ): high = looks like a
    member. With fewer than 64 references σ² is one global variance (Carlini et al.'s advice for few shadow
    models); ``global_variance`` forces either choice.
    """
    t = _np(target).reshape(-1)
    refs = _np(references)
    if refs.ndim != 2 or refs.shape[1] != t.shape[0]:
        raise ConfigError(f"LiRA needs references of shape (K, {t.shape[0]}); got {refs.shape}")
    k = refs.shape[0]
    if k < 2:
        raise ConfigError(f"LiRA needs at least 2 reference models; got {k}")
    mu = refs.mean(axis=0)
    var = refs.var(axis=0, ddof=1)
    if global_variance if global_variance is not None else k < 64:
        var = np.full_like(var, var.mean())
    return (t - mu) / np.sqrt(var + 1e-12)


def lira_mia(
    target_members: ArrayLike,
    target_nonmembers: ArrayLike,
    ref_members: ArrayLike,
    ref_nonmembers: ArrayLike,
    *,
    global_variance: bool | None = None,
) -> dict[str, float]:
    """Offline LiRA as a membership attack on one target model: ROC-AUC and TPR at 1 % FPR.

    Members (label 1) are the forget-set examples the original model trained on, non-members (label 0) held-out
    test examples; every reference model is OUT for both (retrained models never saw the forget set). Nothing is
    fitted on the target's scores, so the AUC needs no cross-validation. A model that forgot scores the forget
    set like unseen data: its AUC sits at the retrained model's value (near 0.5 for a random forget set).
    """
    from sklearn.metrics import roc_auc_score

    refs = np.concatenate([_np(ref_members), _np(ref_nonmembers)], axis=1)
    target = np.concatenate([_np(target_members).reshape(-1), _np(target_nonmembers).reshape(-1)])
    scores = lira_offline_scores(target, refs, global_variance=global_variance)
    labels = np.concatenate([np.ones(_np(target_members).size, dtype=int),
                             np.zeros(_np(target_nonmembers).size, dtype=int)])
    return {"auc": float(roc_auc_score(labels, scores)), "tpr_at_1fpr": tpr_at_fpr(labels, scores, fpr=0.01)}


@torch.no_grad()
def example_outputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-example cross-entropy loss and :func:`logit_confidence` of ``model`` on (x, y), as float64 arrays.

    What the per-example ε and LiRA need from each model; a diverged model's non-finite values are kept as
    ordered extremes (loss +∞, φ ±1e6) so the tests still count them.
    """
    from unlearn_core.evaluation import predict_logits

    logits = predict_logits(model, x).double()
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="none").cpu().numpy()
    loss = np.where(np.isnan(loss), np.inf, loss)
    return {"loss": loss, "phi": logit_confidence(logits.cpu().numpy(), y.cpu().numpy())}
