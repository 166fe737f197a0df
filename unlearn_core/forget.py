"""The forget-set grammar, shared by the CLI, the URL and the UI.

=============================  =============================================================
spec                           meaning
=============================  =============================================================
``random:0.1``                 a random 10 % of the training set (a fraction in (0, 1))
``random:1000``                1,000 random training examples (an integer count)
``class:3`` / ``class:3,5``    every training example of class 3 (of classes 3 and 5)
``class-fraction:3:0.5``       a random half of the training examples of class 3 (one class only)
``indices:1,5,9``              exactly these training-set positions
``subclass:3:0``               cluster 0 (the largest) of a seeded 4-means of class 3's inputs
``subclass:3:1:6``             cluster 1 of a seeded 6-means of class 3 (2 to 20 clusters)
``memorised:high:0.05``        the 5 % of training examples with the highest memorisation proxy
``memorised:low:200``          the 200 with the lowest (a count ≥ 1 or a fraction in (0, 1))
=============================  =============================================================

The protocols the literature expects: random, whole class, sub-class and memorisation-stratified. Sub-classes and
memorisation need the training inputs: :mod:`unlearn_core.forget_protocols` states how they are computed (a seeded
k-means inside the class; the exact leave-one-out loss under ridge regression).

The forget set is always drawn from the examples the model is trained on — the reference code draws it from
the full training set while training on an 80 % subset, so about a fifth of its "forgotten" points were never
learned (Zhang et al. 2024's released code). Draws are seeded with an explicit generator, so a (spec, seed) pair always
names the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.forget_protocols import DEFAULT_CLUSTERS, MAX_CLUSTERS

GRAMMAR = ("random:FRACTION|random:COUNT|class:K[,K...]|class-fraction:K:FRACTION|indices:I[,I...]|"
           "subclass:K:CLUSTER[:CLUSTERS]|memorised:high|low:FRACTION|COUNT")

#: Kinds whose selection needs the training inputs (``select_forget(..., x_train=...)``).
NEEDS_INPUTS = ("subclass", "memorised")
#: The two strata of ``memorised:LEVEL:AMOUNT``.
MEMORISATION_LEVELS = ("high", "low")


@dataclass(frozen=True)
class ForgetSpec:
    """A parsed forget-set description (see the module docstring)."""

    kind: str  # "random" | "class" | "class-fraction" | "indices" | "subclass" | "memorised"
    fraction: float | None = None
    count: int | None = None
    classes: tuple[int, ...] = ()
    indices: tuple[int, ...] = ()
    cluster: int | None = None  # subclass: which cluster (0 = the largest)
    clusters: int | None = None  # subclass: how many clusters
    level: str | None = None  # memorised: "high" | "low"

    def __str__(self) -> str:
        if self.kind == "random":
            return f"random:{self.fraction:g}" if self.fraction is not None else f"random:{self.count}"
        if self.kind == "class":
            return "class:" + ",".join(map(str, self.classes))
        if self.kind == "class-fraction":
            return f"class-fraction:{self.classes[0]}:{self.fraction:g}"
        if self.kind == "subclass":
            tail = "" if self.clusters == DEFAULT_CLUSTERS else f":{self.clusters}"
            return f"subclass:{self.classes[0]}:{self.cluster}{tail}"
        if self.kind == "memorised":
            amount = f"{self.fraction:g}" if self.fraction is not None else str(self.count)
            return f"memorised:{self.level}:{amount}"
        return "indices:" + ",".join(map(str, self.indices))


def _bad(spec: str, why: str) -> ConfigError:
    # A spec can be 50,000 characters (``indices:`` with every position): quote it abbreviated.
    return ConfigError(f"forget spec {abbreviate(spec)} is not valid: {why} (grammar: {GRAMMAR})")


def _fraction(spec: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(spec, f"{abbreviate(text)} is not a number") from None
    if not 0.0 < value < 1.0:
        raise _bad(spec, f"fraction {text} must be strictly between 0 and 1")
    return value


def _int_list(spec: str, text: str, what: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise _bad(spec, f"the {what} list is empty")
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise _bad(spec, f"{what} must be integers, got {abbreviate(text)}") from None


def _amount(spec: str, text: str) -> tuple[float | None, int | None]:
    """A fraction in (0, 1) (written with '.' or an exponent) or a count ≥ 1: (fraction, count)."""
    if any(c in text for c in ".eE"):
        return _fraction(spec, text), None
    try:
        count = int(text)
    except ValueError:
        raise _bad(spec, f"{abbreviate(text)} is neither a fraction nor a count") from None
    if count < 1:
        raise _bad(spec, f"count {count} must be at least 1")
    return None, count


def _one_int(spec: str, text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise _bad(spec, f"{what} must be an integer, got {abbreviate(text)}") from None


def parse_forget_spec(spec: str) -> ForgetSpec:
    """Parse a forget spec string; syntax only (ranges that depend on the dataset are checked by selection)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise _bad(str(spec), "missing 'kind:' prefix")
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    rest = rest.strip()
    if kind == "random":
        fraction, count = _amount(spec, rest)
        return ForgetSpec("random", fraction=fraction, count=count)
    if kind == "class":
        return ForgetSpec("class", classes=tuple(sorted(set(_int_list(spec, rest, "class")))))
    if kind == "class-fraction":
        klass, sep, frac = rest.partition(":")
        if not sep:
            raise _bad(spec, "expected class-fraction:K:FRACTION")
        classes = _int_list(spec, klass, "class")
        if len(classes) != 1:
            # Taking the first class silently forgot from class 3 only for class-fraction:3,4:0.5. One class keeps
            # the fraction's meaning unambiguous (of each class? of their union?); whole classes are class:3,4.
            raise _bad(spec, f"class-fraction takes exactly one class, got {len(classes)} "
                             f"(use class-fraction:{classes[0]}:FRACTION, or class:{','.join(map(str, classes[:3]))}"
                             f"{',...' if len(classes) > 3 else ''} for whole classes)")
        (k,) = classes
        return ForgetSpec("class-fraction", fraction=_fraction(spec, frac.strip()), classes=(k,))
    if kind == "indices":
        return ForgetSpec("indices", indices=tuple(sorted(set(_int_list(spec, rest, "index")))))
    if kind == "subclass":
        parts = rest.split(":")
        if len(parts) not in (2, 3):
            raise _bad(spec, "expected subclass:K:CLUSTER or subclass:K:CLUSTER:CLUSTERS")
        klass = _one_int(spec, parts[0], "the class")
        cluster = _one_int(spec, parts[1], "the cluster")
        clusters = _one_int(spec, parts[2], "the number of clusters") if len(parts) == 3 else DEFAULT_CLUSTERS
        if not 2 <= clusters <= MAX_CLUSTERS:
            raise _bad(spec, f"the number of clusters {clusters} must be in [2, {MAX_CLUSTERS}]")
        if not 0 <= cluster < clusters:
            raise _bad(spec, f"cluster {cluster} must be in [0, {clusters - 1}] (clusters numbered by size, 0 = the "
                             "largest)")
        return ForgetSpec("subclass", classes=(klass,), cluster=cluster, clusters=clusters)
    if kind in ("memorised", "memorized"):
        level, sep, amount = rest.partition(":")
        level = level.strip().lower()
        if not sep or level not in MEMORISATION_LEVELS:
            raise _bad(spec, "expected memorised:high:AMOUNT or memorised:low:AMOUNT (a fraction or a count)")
        fraction, count = _amount(spec, amount.strip())
        return ForgetSpec("memorised", fraction=fraction, count=count, level=level)
    raise _bad(spec, f"unknown kind {kind!r}")


def check_forget_spec(spec: str | ForgetSpec, *, num_classes: int, n_train: int, dataset: str = "") -> ForgetSpec:
    """Check a spec against a dataset's class count and training-set size, without its data.

    What :func:`select_forget` would refuse after loading the data, refused before: a class the dataset lacks, an
    index out of range, a count that leaves nothing to retain. (An empty class or a forget set that covers every
    retained point still needs the labels; :func:`select_forget` checks those.)

    Raises:
        ConfigError: one line naming the spec (abbreviated), the bad value and what the dataset allows.
    """
    parsed = parse_forget_spec(spec) if isinstance(spec, str) else spec
    text = spec if isinstance(spec, str) else str(parsed)
    name = f"{dataset}: " if dataset else ""
    bad = [c for c in parsed.classes if not 0 <= c < num_classes]
    if bad:
        raise _bad(text, f"class {bad[0]} is not in this dataset ({name}classes 0..{num_classes - 1})")
    bad = [i for i in parsed.indices if not 0 <= i < n_train]
    if bad:
        raise _bad(text, f"index {bad[0]} is out of range ({name}training positions 0..{n_train - 1})")
    if parsed.kind in ("random", "memorised") and parsed.count is not None and parsed.count >= n_train:
        raise _bad(text, f"count {abbreviate(parsed.count)} must be below the training-set size ({name}{n_train})")
    if parsed.kind == "random" and parsed.fraction is not None:
        # random:1e-9 silently became one point, and random:0.99999 every point but none (or all of them).
        count = round(parsed.fraction * n_train)
        if not 1 <= count < n_train:
            raise _bad(text, f"fraction {parsed.fraction!r} of the {n_train:,} training points ({name.rstrip(': ')}) "
                             f"is {count:,} point{'s' if count != 1 else ''}: expected a fraction in "
                             f"[{0.5 / n_train:.2g}, {(n_train - 0.5) / n_train:.6g}) or a count")
    if parsed.kind == "indices" and len(parsed.indices) >= n_train:
        raise _bad(text, "the forget set covers the whole training set; nothing would be retained")
    return parsed


def select_forget(
    spec: str | ForgetSpec,
    y_train: torch.Tensor,
    *,
    seed: int,
    num_classes: int | None = None,
    x_train: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the training positions into (forget, retain) index tensors.

    Returns two sorted int64 CPU tensors, disjoint, whose union is ``range(len(y_train))``. Random draws use
    ``torch.Generator().manual_seed(seed)``, so the split is reproducible; the sub-class k-means is seeded with
    ``seed`` too. ``x_train`` (the training inputs) is needed by the
    ``subclass`` and ``memorised`` kinds only (the memorisation proxy is deterministic: it ignores the seed).

    Raises:
        ConfigError: a class the dataset lacks, an out-of-range index, a count ≥ n, a class with fewer examples
            than clusters, or a spec that would leave the forget or the retain set empty.
    """
    parsed = parse_forget_spec(spec) if isinstance(spec, str) else spec
    text = str(parsed)
    labels = y_train.detach().cpu()
    n = int(labels.numel())
    k = int(num_classes) if num_classes is not None else int(labels.max()) + 1
    gen = torch.Generator().manual_seed(int(seed))
    if parsed.kind in NEEDS_INPUTS and x_train is None:
        raise _bad(text, f"the {parsed.kind} protocol needs the training inputs (select_forget(..., x_train=...))")

    if parsed.kind == "random":
        count = round(parsed.fraction * n) if parsed.fraction is not None else int(parsed.count)
        if count >= n:
            raise _bad(text, f"count {count} must be below the training-set size {n}")
        count = max(count, 1)
        forget = torch.randperm(n, generator=gen)[:count]
    elif parsed.kind in ("class", "class-fraction"):
        bad = [c for c in parsed.classes if not 0 <= c < k]
        if bad:
            raise _bad(text, f"class {bad[0]} is not in this dataset (classes 0..{k - 1})")
        members = torch.nonzero(torch.isin(labels, torch.tensor(parsed.classes)), as_tuple=False).flatten()
        if parsed.kind == "class-fraction":
            count = max(1, round(parsed.fraction * members.numel()))
            members = members[torch.randperm(members.numel(), generator=gen)[:count]]
        forget = members
    elif parsed.kind == "subclass":
        from unlearn_core.forget_protocols import subclass_members

        (c,) = parsed.classes
        if not 0 <= c < k:
            raise _bad(text, f"class {c} is not in this dataset (classes 0..{k - 1})")
        members = torch.nonzero(labels == c, as_tuple=False).flatten()
        if members.numel() < int(parsed.clusters):
            raise _bad(text, f"class {c} has {members.numel()} training examples, fewer than the {parsed.clusters} "
                             "clusters")
        forget = subclass_members(x_train, members, cluster=int(parsed.cluster), clusters=int(parsed.clusters),
                                  seed=seed)
    elif parsed.kind == "memorised":
        from unlearn_core.forget_protocols import memorised_members

        count = round(parsed.fraction * n) if parsed.fraction is not None else int(parsed.count)
        if count >= n:
            raise _bad(text, f"count {count} must be below the training-set size {n}")
        forget = memorised_members(x_train, labels, level=str(parsed.level), count=max(count, 1), num_classes=k)
    else:
        bad = [i for i in parsed.indices if not 0 <= i < n]
        if bad:
            raise _bad(text, f"index {bad[0]} is out of range (0..{n - 1})")
        forget = torch.tensor(parsed.indices, dtype=torch.int64)

    forget = torch.sort(forget.to(torch.int64)).values
    if forget.numel() == 0:
        raise _bad(text, "the forget set is empty")
    if forget.numel() >= n:
        raise _bad(text, "the forget set covers the whole training set; nothing would be retained")
    mask = torch.ones(n, dtype=torch.bool)
    mask[forget] = False
    retain = torch.nonzero(mask, as_tuple=False).flatten()
    return forget, retain


def split_requests(forget_idx: torch.Tensor, requests: int) -> list[torch.Tensor]:
    """Split a forget set into ``requests`` near-equal consecutive chunks (sequential unlearning, Zhang §2.5)."""
    if not 1 <= requests <= forget_idx.numel():
        raise ConfigError(f"requests={requests} is not valid: expected an integer in [1, {forget_idx.numel()}]")
    return [chunk.clone() for chunk in torch.tensor_split(forget_idx, requests)]
