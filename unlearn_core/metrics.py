r"""Unlearning metrics beyond accuracy: membership inference, relearn time, output distance to the retrained model.

Every attack here is scored on **held-out** data (stratified k-fold over a balanced subsample), never on its own
training data (the anti-pattern of the reference code, methods.md §6), and every number is meant to be read
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
    """The attack classifiers of Zhang et al.'s posterior-difference attack (methods.md §6), each with a scaler.

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


def mia_report(result: Any, *, seed: int = 0, max_per_class: int = 1000, folds: int = 5) -> dict[str, Any]:
    """The ``mia`` block of a run card from a :class:`~unlearn_core.pipeline.RunResult`.

    ``{"original": {...}, "retrained": {...}, "unlearned": {...}, "output_distance": {...}, "convention": ...}``:
    the same attacks on every model (see :func:`model_mia`), so the unlearned value can be read against the
    retrained one; ``output_distance`` holds KL/JS of the unlearned and original models to the retrained one.
    """
    prepared = result.prepared
    splits = prepared_splits(prepared)
    models = {"original": prepared.original, "retrained": prepared.retrained, "unlearned": result.unlearned}
    out: dict[str, Any] = {}
    for name, model in models.items():
        if model is None:
            continue
        out[name] = model_mia(model, original=prepared.original, seed=seed, max_per_class=max_per_class,
                              folds=folds, **splits)
    if prepared.retrained is not None:
        out["output_distance"] = {
            "unlearned": output_distances(result.unlearned, prepared.retrained, splits),
            "original": output_distances(prepared.original, prepared.retrained, splits),
        }
    out["convention"] = (
        "held-out stratified 5-fold attacks on balanced subsamples; closer to the retrained model is better "
        "(far below it is over-unlearning); " + TPR_AT_FPR_CONVENTION
    )
    return out


def clopper_pearson(k: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided exact (Clopper–Pearson) 1 − α confidence interval for a binomial proportion k/n."""
    from scipy.stats import beta

    if n <= 0 or not 0 <= k <= n:
        raise ConfigError(f"clopper_pearson needs 0 ≤ k ≤ n and n > 0; got k={k}, n={n}")
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


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
