"""Datasets as in-memory tensors.

All supported datasets are small enough to hold as tensors on the target device (digits, MNIST,
Fashion-MNIST, CIFAR-10 and SVHN all fit), so training batches are index slices rather than a DataLoader per
step — on a GPU that removes the per-step host→device copy, on a CPU the collate overhead.

Every dataset is returned as a :class:`DataBundle`: float32 images N×C×H×W, normalised with the usual
per-dataset constants, int64 labels, and the standard train/test split (digits, which has none, gets a seeded
stratified 80/20 split).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from unlearn_core.errors import ConfigError, DataUnavailableError, abbreviate
from unlearn_core.paths import data_dir as default_data_dir

if TYPE_CHECKING:  # torch and numpy are imported where data is loaded: listing datasets needs neither
    import numpy as np
    import torch


@dataclass(frozen=True)
class DataBundle:
    """A dataset held as tensors: the train split (the pool the forget set is drawn from) and the test split."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]

    def to(self, device: torch.device | str) -> DataBundle:
        """The same bundle with every tensor on ``device``."""
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what a dataset is and which files it needs."""

    name: str
    description: str
    num_classes: int
    input_shape: tuple[int, int, int]
    files: tuple[str, ...]  # relative to the data directory; empty for embedded datasets
    downloadable: bool
    #: Examples in the train / test split (known without loading: forget specs and the memory estimate of
    #: :mod:`unlearn_core.limits` are checked against them before any work; tested against the loaded data).
    n_train: int = 0
    n_test: int = 0


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits", "scikit-learn's bundled 8×8 handwritten digits (1,797 images; embedded, no download)",
        10, (1, 8, 8), (), False, n_train=1437, n_test=360,
    ),
    "synthetic": DatasetInfo(
        "synthetic", "seeded Gaussian blobs, 4 classes in 16 dimensions (for tests and teaching)",
        4, (1, 4, 4), (), False, n_train=800, n_test=400,
    ),
    "mnist": DatasetInfo(
        "mnist", "MNIST handwritten digits, 60,000 train / 10,000 test, 28×28 grey",
        10, (1, 28, 28),
        tuple(f"MNIST/raw/{f}" for f in (
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
        )),
        True, n_train=60_000, n_test=10_000,
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", "Fashion-MNIST clothing images, 60,000 train / 10,000 test, 28×28 grey",
        10, (1, 28, 28),
        tuple(f"FashionMNIST/raw/{f}" for f in (
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
        )),
        True, n_train=60_000, n_test=10_000,
    ),
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10 natural images, 50,000 train / 10,000 test, 32×32 colour",
        10, (3, 32, 32),
        tuple(f"cifar-10-batches-py/{f}" for f in (
            "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
        )),
        True, n_train=50_000, n_test=10_000,
    ),
    "svhn": DatasetInfo(
        "svhn", "SVHN street-view house numbers, 73,257 train / 26,032 test, 32×32 colour",
        10, (3, 32, 32), ("train_32x32.mat", "test_32x32.mat"), True, n_train=73_257, n_test=26_032,
    ),
}

# Normalisation constants (as in Zhang et al. 2024's released code: MNIST (0.1307, 0.3081), others 0.5/0.5).
_NORMALISATION = {
    "mnist": (0.1307, 0.3081),
    "fashion_mnist": (0.2860, 0.3530),
    "cifar10": (0.5, 0.5),
    "svhn": (0.5, 0.5),
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {abbreviate(name)}: choose one of {', '.join(DATASETS)}") from None


def missing_files(name: str, *, data_dir: str | Path | None = None) -> list[str]:
    """The files ``name`` needs that are not in the data directory (empty for embedded datasets)."""
    info = get_dataset_info(name)
    root = default_data_dir(data_dir)
    return [f for f in info.files if not (root / f).is_file()]


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    device: torch.device | str = "cpu",
    split_seed: int = 0,
) -> DataBundle:
    """Load ``name`` as tensors on ``device``.

    Args:
        name: a key of :data:`DATASETS`.
        data_dir: dataset root; defaults to ``$UNLEARN_DATA_DIR`` or the per-user cache.
        download: fetch missing files (torchvision datasets only). When false and files are missing, raise a
            :class:`DataUnavailableError` naming the dataset, the directory and the files expected.
        device: where the tensors live.
        split_seed: seed of the stratified split for digits and of the blobs for synthetic.
    """
    get_dataset_info(name)  # validates the name first
    root = default_data_dir(data_dir)
    missing = missing_files(name, data_dir=root)
    if missing and not download:
        raise DataUnavailableError(
            f"dataset {name!r} is not in {root}: expected {', '.join(missing)} "
            f"(set UNLEARN_DATA_DIR or --data-dir, or allow downloading with --download)"
        )
    return _load_cpu(name, str(root), bool(missing), int(split_seed)).to(device)


@functools.lru_cache(maxsize=8)
def _load_cpu(name: str, root: str, download: bool, split_seed: int) -> DataBundle:
    """CPU tensors, memoised per process: the dashboard and the experiments reload datasets often.

    A failed download removes what it created (empty ``MNIST/raw`` folders, partial archives), so that a retry
    or ``datasets`` does not mistake them for data. What is loaded is checked (:func:`check_bundle`) before anyone
    trains on it.
    """
    loader = _LOADERS[name]
    if not download:
        return check_bundle(loader(Path(root), download, split_seed), root=root)
    before = _tree(Path(root))
    try:
        bundle = loader(Path(root), download, split_seed)
    except BaseException:
        _remove_created(Path(root), before)
        raise
    return check_bundle(bundle, root=root)


def check_bundle(bundle: DataBundle, *, root: str | Path = "") -> DataBundle:
    """Refuse data that would fail (or silently mislead) only later, inside training: labels outside
    ``0..num_classes-1`` (cross-entropy's "Target 12 is out of bounds" traceback, with the model cache's lock taken),
    images and labels of different lengths, a split whose size is not the registry's (every forget spec was
    checked against that size before loading), or images with NaN or ±∞.

    Raises:
        DataUnavailableError: one line naming the dataset, the directory, the first bad value and what to do.
    """
    import torch

    info = DATASETS.get(bundle.name)
    where = f"dataset {bundle.name!r}" + (f" in {root}" if root and info is not None and info.files else "")
    fix = ("the files are corrupt or are not this dataset's: delete them and download again" if info is not None
           and info.downloadable else "this is a bug in its loader")
    k = bundle.num_classes
    for split, x, y, expected in (("train", bundle.x_train, bundle.y_train, info.n_train if info else None),
                                  ("test", bundle.x_test, bundle.y_test, info.n_test if info else None)):
        if x.shape[0] != y.shape[0]:
            raise DataUnavailableError(f"{where} is not valid: its {split} split has {x.shape[0]:,} images but "
                                       f"{y.shape[0]:,} labels ({fix})")
        if expected and y.shape[0] != expected:
            raise DataUnavailableError(f"{where} is not valid: its {split} split has {y.shape[0]:,} examples, not "
                                       f"{expected:,} ({fix})")
        bad = torch.nonzero((y < 0) | (y >= k), as_tuple=False).flatten()
        if bad.numel():
            i = int(bad[0])
            raise DataUnavailableError(f"{where} is not valid: {split} label {int(y[i])} at position {i:,} is outside "
                                       f"0..{k - 1} ({bad.numel():,} such label{'s' if bad.numel() > 1 else ''}; "
                                       f"{fix})")
        if not bool(torch.isfinite(x).all()):
            raise DataUnavailableError(f"{where} is not valid: its {split} images hold NaN or infinite values ({fix})")
    return bundle


def _tree(root: Path) -> set[Path]:
    """Every path under ``root`` (and ``root`` and its ancestors, when they exist)."""
    paths = {p for p in (root, *root.parents) if p.exists()}
    if root.is_dir():
        for folder, dirs, files in os.walk(root):
            paths.update(Path(folder) / n for n in (*dirs, *files))
    return paths


def _remove_created(root: Path, before: set[Path]) -> None:
    """Delete what appeared under ``root`` (and ``root``'s missing ancestors) since ``before``; deepest first."""
    created = _tree(root) - before
    for path in sorted(created, key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()  # only empty ones: anything left inside was not ours
            else:
                path.unlink()
        except OSError:
            pass


def _load_digits(root: Path, download: bool, split_seed: int) -> DataBundle:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=split_seed)
    mean, std = float(x_tr.mean()), float(x_tr.std())
    return DataBundle(
        name="digits",
        x_train=torch.from_numpy((x_tr - mean) / std).unsqueeze(1),
        y_train=torch.from_numpy(y_tr),
        x_test=torch.from_numpy((x_te - mean) / std).unsqueeze(1),
        y_test=torch.from_numpy(y_te),
        num_classes=10,
        input_shape=(1, 8, 8),
        class_names=tuple(str(i) for i in range(10)),
    )


def _load_synthetic(root: Path, download: bool, split_seed: int) -> DataBundle:
    """Four Gaussian blobs in 16 dimensions with unit variance and centres 3 apart: separable but not trivially."""
    import torch

    gen = torch.Generator().manual_seed(split_seed)
    k, d, n_train, n_test = 4, 16, 800, 400
    centres = 1.5 * torch.randn(k, d, generator=gen)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % k
        y = y[torch.randperm(n, generator=gen)]
        x = centres[y] + torch.randn(n, d, generator=gen)
        return x.reshape(n, 1, 4, 4).float(), y.long()

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return DataBundle("synthetic", x_tr, y_tr, x_te, y_te, k, (1, 4, 4), tuple(f"blob {i}" for i in range(k)))


#: Longest cause quoted from torchvision's error (the message stays one readable line).
MAX_CAUSE_CHARS = 400


def _torchvision_error(name: str, root: Path, exc: Exception) -> DataUnavailableError:
    """One line with the cause: torchvision's download error puts the reasons on the lines after
    "Error downloading train-images-idx3-ubyte.gz:", so the first line alone named no cause."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.replace(": Tried ", ": tried ").replace(" Tried ", "; tried ").replace(", got: ", ", got ")
    if len(text) > MAX_CAUSE_CHARS:
        text = text[: MAX_CAUSE_CHARS - 1] + "…"
    return DataUnavailableError(f"dataset {name!r} could not be loaded or downloaded into {root}: {text}")


def _to_bundle(
    name: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, classes: list[str]
) -> DataBundle:
    """uint8 N×C×H×W arrays → normalised float tensors."""
    import numpy as np
    import torch

    mean, std = _NORMALISATION[name]

    def norm(a: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(np.ascontiguousarray(a)).float().div_(255.0) - mean) / std

    info = DATASETS[name]
    return DataBundle(
        name=name,
        x_train=norm(x_tr),
        y_train=torch.as_tensor(np.asarray(y_tr), dtype=torch.int64),
        x_test=norm(x_te),
        y_test=torch.as_tensor(np.asarray(y_te), dtype=torch.int64),
        num_classes=info.num_classes,
        input_shape=info.input_shape,
        class_names=tuple(classes),
    )


def _load_mnist_like(name: str) -> Callable[[Path, bool, int], DataBundle]:
    def load(root: Path, download: bool, split_seed: int) -> DataBundle:
        from torchvision import datasets

        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        try:
            train = cls(root=str(root), train=True, download=download)
            test = cls(root=str(root), train=False, download=download)
        except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError for missing or corrupt files
            raise _torchvision_error(name, root, exc) from exc
        return _to_bundle(
            name, train.data.numpy()[:, None], train.targets.numpy(), test.data.numpy()[:, None],
            test.targets.numpy(), list(train.classes),
        )

    return load


def _load_cifar10(root: Path, download: bool, split_seed: int) -> DataBundle:
    import numpy as np
    from torchvision import datasets

    try:
        train = datasets.CIFAR10(root=str(root), train=True, download=download)
        test = datasets.CIFAR10(root=str(root), train=False, download=download)
    except Exception as exc:
        raise _torchvision_error("cifar10", root, exc) from exc
    return _to_bundle(
        "cifar10", train.data.transpose(0, 3, 1, 2), np.array(train.targets), test.data.transpose(0, 3, 1, 2),
        np.array(test.targets), list(train.classes),
    )


def _load_svhn(root: Path, download: bool, split_seed: int) -> DataBundle:
    from torchvision import datasets

    try:
        train = datasets.SVHN(root=str(root), split="train", download=download)
        test = datasets.SVHN(root=str(root), split="test", download=download)
    except Exception as exc:
        raise _torchvision_error("svhn", root, exc) from exc
    return _to_bundle("svhn", train.data, train.labels, test.data, test.labels, [str(i) for i in range(10)])


_LOADERS: dict[str, Callable[[Path, bool, int], DataBundle]] = {
    "digits": _load_digits,
    "synthetic": _load_synthetic,
    "mnist": _load_mnist_like("mnist"),
    "fashion_mnist": _load_mnist_like("fashion_mnist"),
    "cifar10": _load_cifar10,
    "svhn": _load_svhn,
}
