"""Two-dimensional data sets a student can see: two moons, Gaussian blobs, XOR and a linearly separable set.

Why our own generators (and not scikit-learn's ``make_moons``): each set is a few lines of NumPy drawn from one
seeded generator, so the points are the same on every machine and every library version, and a lecturer's link
(data set + seed + the indices of the deleted points) names exactly the same points next year.

Every set has two classes, a training split of :data:`N_TRAIN` points (the ones drawn and clicked) and a test
split of :data:`N_TEST` points from the same distribution (never drawn: the verdict's test accuracy reads it).
Coordinates are scaled to lie mostly inside :data:`WINDOW`, the square the page draws and the decision boundaries
are computed on. Points are returned as a :class:`~unlearn_core.data.DataBundle` (``input_shape`` 1×1×2), the
same shape every model and unlearner of the package takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from unlearn_core.data import DataBundle
from unlearn_core.errors import ConfigError, abbreviate

#: Points drawn (and clickable) per data set, and the hidden test points per data set.
N_TRAIN = 200
N_TEST = 400
#: The square [-3, 3]² every data set is drawn in (axis limits of the plot and the boundary grid).
WINDOW = (-3.0, 3.0)
#: The class names, in label order.
CLASS_NAMES = ("blue", "orange")


@dataclass(frozen=True)
class Dataset2D:
    """A registry entry: the name used in the URL and the engine, a description, and the generator."""

    name: str
    title: str
    description: str
    #: Whether a linear classifier can separate the classes (logistic regression can fit it).
    linear: bool
    #: ``draw(rng, n, layout)``: n points from ``rng``; ``layout`` (the same generator state for the training and
    #: the test split) draws what the two splits share, e.g. the separating line.
    draw: Callable[[np.random.Generator, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _moons(rng: np.random.Generator, n: int, layout: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (the classic "two moons"), Gaussian noise of std 0.15 before scaling."""
    n0 = n // 2
    n1 = n - n0
    t0 = rng.uniform(0.0, math.pi, n0)
    t1 = rng.uniform(0.0, math.pi, n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0.0, 0.15, (n, 2))
    x = (x - np.array([0.5, 0.25])) * np.array([1.6, 2.2])
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    return x, y


def _blobs(rng: np.random.Generator, n: int, layout: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two round Gaussian blobs (std 0.75) whose centres are 2.3 apart: separable by a line, with some overlap."""
    y = np.arange(n) % 2
    centres = np.array([[-0.9, -0.7], [0.9, 0.7]])
    x = centres[y] + rng.normal(0.0, 0.75, (n, 2))
    return x, y.astype(np.float64)


def _xor(rng: np.random.Generator, n: int, layout: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four clusters on the diagonals, labelled by the XOR of the coordinates' signs: no line separates them."""
    quadrant = np.arange(n) % 4
    signs = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=np.float64)
    x = 1.3 * signs[quadrant] + rng.normal(0.0, 0.5, (n, 2))
    y = (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.float64)
    return x, y


def _linear(rng: np.random.Generator, n: int, layout: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points on either side of a seeded line (the same line for both splits), those within 0.25 of it
    removed: linearly separable."""
    angle = layout.uniform(0.0, math.pi)
    normal = np.array([math.cos(angle), math.sin(angle)])
    offset = layout.uniform(-0.4, 0.4)
    kept: list[np.ndarray] = []
    count = 0
    while count < n:
        candidates = rng.uniform(-2.4, 2.4, (2 * n, 2))
        margin = candidates @ normal - offset
        good = candidates[np.abs(margin) > 0.25]
        kept.append(good)
        count += len(good)
    x = np.concatenate(kept)[:n]
    y = (x @ normal - offset > 0).astype(np.float64)
    return x, y


DATASETS_2D: dict[str, Dataset2D] = {
    "moons": Dataset2D("moons", "Two moons", "two interleaving half circles: a curved boundary", False, _moons),
    "blobs": Dataset2D("blobs", "Gaussian blobs", "two overlapping round clouds: a straight boundary does well",
                       True, _blobs),
    "xor": Dataset2D("xor", "XOR", "four clusters, opposite corners share a class: no straight line works",
                     False, _xor),
    "linear": Dataset2D("linear", "Linearly separable", "two classes on either side of a line, with a margin",
                        True, _linear),
}


def dataset_names() -> list[str]:
    return list(DATASETS_2D)


def get_dataset_2d(name: str) -> Dataset2D:
    """The registry entry of ``name``.

    Raises:
        ConfigError: naming the value and the data sets allowed.
    """
    try:
        return DATASETS_2D[name]
    except (KeyError, TypeError):
        raise ConfigError(f"data set {abbreviate(name)} is not valid: choose one of {', '.join(DATASETS_2D)}") from None


def make_dataset(name: str, *, seed: int, n_train: int = N_TRAIN, n_test: int = N_TEST) -> DataBundle:
    """The data set ``name`` drawn with ``seed``: ``n_train`` training points (shuffled) and ``n_test`` test points.

    The training and the test points come from two generators derived from ``seed`` (so the training points do not
    depend on ``n_test``). ``x_*`` are float32 tensors of shape N×1×1×2 (the package's N×C×H×W convention),
    ``y_*`` int64 labels in {0, 1}.
    """
    info = get_dataset_2d(name)

    def draw(stream: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([int(seed), stream])
        x, y = info.draw(rng, n, np.random.default_rng([int(seed), 2]))
        order = rng.permutation(n)
        x_t = torch.as_tensor(x[order], dtype=torch.float32).reshape(n, 1, 1, 2)
        return x_t, torch.as_tensor(y[order], dtype=torch.int64)

    x_train, y_train = draw(0, n_train)
    x_test, y_test = draw(1, n_test)
    return DataBundle(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, num_classes=2,
                      input_shape=(1, 1, 2), class_names=CLASS_NAMES)


def points(bundle: DataBundle) -> np.ndarray:
    """The training points as an N×2 array (for plotting and for finding the point a click landed on)."""
    return bundle.x_train.reshape(-1, 2).numpy().astype(np.float64)
