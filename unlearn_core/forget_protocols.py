r"""The forget-set protocols that need the training inputs, not just the labels: sub-class and memorisation-stratified.

:mod:`unlearn_core.forget` parses ``subclass:K:C[:M]`` and ``memorised:high|low:AMOUNT`` and calls these to select.

**Sub-class** (:func:`subclass_members`). Data sets without labelled sub-classes (MNIST, digits) get them from a
seeded k-means (scikit-learn's ``KMeans``, ``n_init=4``, ``random_state=seed``) of one class's inputs into M
clusters (default 4), numbered by size (0 = the largest; ties by the smallest position). Forgetting one cluster is
the sub-class protocol of the unlearning literature (e.g. one CIFAR-100 class inside its CIFAR-20 super-class): the
rest of the class stays, so the model must forget a *mode* of a class while keeping the class.

**Memorisation-stratified** (:func:`memorisation_scores`). Feldman's memorisation of an example, mem(x) = P[correct
on x | x trained on] − P[correct on x | x left out] (Feldman & Zhang 2020; the score Zhao et al., NeurIPS 2024, use
to build high- and low-memorisation forget sets), needs many leave-out trainings of the network. A network fits
nearly all of its training set, so the first term is ≈ 1 and mem(x) is ≈ the chance of getting x wrong when x is
left out. The cheap proxy here, stated: **the example's loss under leave-one-out** — the squared error of a
ridge-regression classifier on the flattened inputs (one-hot targets, a bias column, ridge weight
λ = 10⁻³ · tr(XᵀX)/d) refitted without it. Leave-one-out is closed form for ridge regression (the PRESS residual,
Allen 1974): with residual e_i and leverage h_ii of the fit on all examples,

.. math:: \mathrm{mem}(x_i) \approx \frac{\lVert e_i\rVert^2}{(1 - h_{ii})^2},

every n leave-out fits at the price of one. High = an example the rest of the data does not predict (mislabelled,
ambiguous or atypical: what a network has to memorise to fit); low = a typical example. It is model-independent
(the same forget set for every model of a data set) and deterministic (the seed plays no part), ≈ 10 ms on digits
and a few seconds on MNIST, memoised per process.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import torch

#: Clusters of ``subclass:K:C`` when the spec gives no M.
DEFAULT_CLUSTERS = 4
#: The largest M of ``subclass:K:C:M``.
MAX_CLUSTERS = 20
#: The ridge weight of the memorisation proxy, relative to the mean eigenvalue tr(XᵀX)/d of the inputs' Gram matrix.
PROXY_RIDGE = 1e-3
#: Rows per chunk when the proxy computes leverages (bounds its memory on MNIST).
PROXY_CHUNK = 8192


def subclass_members(x_train: torch.Tensor, members: torch.Tensor, *, cluster: int, clusters: int,
                     seed: int) -> torch.Tensor:
    """The positions (a subset of ``members``, sorted) that fall in cluster ``cluster`` of a seeded k-means of
    ``x_train[members]`` into ``clusters`` clusters, numbered by size (0 = the largest)."""
    from sklearn.cluster import KMeans

    feats = x_train[members.to(x_train.device)].detach().cpu().reshape(members.numel(), -1).double().numpy()
    labels = KMeans(n_clusters=int(clusters), n_init=4, random_state=int(seed)).fit(feats).labels_
    order = sorted(range(int(clusters)), key=lambda c: (-int(np.sum(labels == c)),
                                                       int(np.argmax(labels == c)) if np.any(labels == c) else 0))
    chosen = order[int(cluster)]
    return torch.sort(members[torch.as_tensor(labels == chosen)]).values


def _digest(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes())
    h.update(np.ascontiguousarray(y.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


#: Memoised proxy scores by (data digest, classes); a few entries (MNIST's is 60,000 floats).
_SCORES: dict[tuple[str, int], np.ndarray] = {}
_SCORES_MAX = 4
_LOCK = threading.Lock()


def ridge_loo_scores(x: np.ndarray, y: np.ndarray, *, num_classes: int) -> np.ndarray:
    """The PRESS form of :func:`memorisation_scores` on (n, d) inputs and n labels, float64 (see the module
    docstring)."""
    n = x.shape[0]
    feats = np.concatenate([x.astype(np.float64), np.ones((n, 1))], axis=1)
    gram = feats.T @ feats
    lam = PROXY_RIDGE * np.trace(gram[:-1, :-1]) / max(1, feats.shape[1] - 1)
    gram[np.diag_indices_from(gram)] += lam
    chol = np.linalg.cholesky(gram)
    targets = np.zeros((n, num_classes))
    targets[np.arange(n), y] = 1.0
    from scipy.linalg import cho_solve, solve_triangular

    weights = cho_solve((chol, True), feats.T @ targets)
    err = ((targets - feats @ weights) ** 2).sum(axis=1)
    leverage = np.empty(n)
    for start in range(0, n, PROXY_CHUNK):
        z = solve_triangular(chol, feats[start:start + PROXY_CHUNK].T, lower=True)
        leverage[start:start + PROXY_CHUNK] = (z ** 2).sum(axis=0)
    leverage = np.clip(leverage, 0.0, 1.0 - 1e-12)
    return err / (1.0 - leverage) ** 2


def memorisation_scores(x_train: torch.Tensor, y_train: torch.Tensor, *, num_classes: int) -> np.ndarray:
    """The memorisation proxy of every training example (see the module docstring): its exact leave-one-out squared
    error under ridge regression on one-hot labels. Deterministic; memoised per process."""
    x = x_train.detach().cpu().reshape(y_train.numel(), -1).float().contiguous()
    y = y_train.detach().cpu().long().contiguous()
    key = (_digest(x, y), int(num_classes))
    with _LOCK:
        if key in _SCORES:
            return _SCORES[key].copy()
    scores = ridge_loo_scores(x.numpy(), y.numpy(), num_classes=num_classes)
    with _LOCK:
        _SCORES[key] = scores
        while len(_SCORES) > _SCORES_MAX:
            _SCORES.pop(next(iter(_SCORES)))
    return scores.copy()


def memorised_members(x_train: torch.Tensor, y_train: torch.Tensor, *, level: str, count: int,
                      num_classes: int) -> torch.Tensor:
    """The ``count`` training positions with the highest (``level="high"``) or lowest (``"low"``) memorisation
    proxy, sorted; ties broken by position (a stable sort)."""
    scores = memorisation_scores(x_train, y_train, num_classes=num_classes)
    order = np.argsort(-scores if level == "high" else scores, kind="stable")
    return torch.sort(torch.as_tensor(order[: int(count)], dtype=torch.int64)).values
