"""Datasets load with the right shapes, classes and splits; missing data fails with one clear line."""

from __future__ import annotations

import pytest
import torch

from unlearn_core.data import DATASETS, load_dataset
from unlearn_core.errors import ConfigError, DataUnavailableError


def test_digits_shapes_and_stratified_split() -> None:
    data = load_dataset("digits")
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.num_classes == 10 and sorted(data.y_train.unique().tolist()) == list(range(10))
    # Stratified: every class has the same share (±1 example) in train and test.
    train_share = torch.bincount(data.y_train, minlength=10).float() / len(data.y_train)
    test_share = torch.bincount(data.y_test, minlength=10).float() / len(data.y_test)
    assert torch.allclose(train_share, test_share, atol=3 / 360)
    # Standardised with train statistics.
    assert abs(float(data.x_train.mean())) < 1e-4 and abs(float(data.x_train.std()) - 1) < 1e-3


def test_digits_split_is_seeded() -> None:
    a, b, c = load_dataset("digits", split_seed=1), load_dataset("digits", split_seed=1), load_dataset("digits")
    assert torch.equal(a.y_train, b.y_train) and torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_synthetic_is_seeded_and_balanced() -> None:
    a, b = load_dataset("synthetic"), load_dataset("synthetic")
    assert torch.equal(a.x_train, b.x_train)
    assert a.x_train.shape == (800, 1, 4, 4) and torch.bincount(a.y_train).tolist() == [200] * 4


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_like_from_shared_data(name: str) -> None:
    data = load_dataset(name)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert sorted(data.y_train.unique().tolist()) == list(range(10)) and len(data.class_names) == 10
    # Normalised with the dataset's constants: roughly zero mean, unit spread.
    assert abs(float(data.x_train.mean())) < 0.05 and 0.9 < float(data.x_train.std()) < 1.1


def test_missing_files_name_dataset_directory_and_files(tmp_path) -> None:
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "'mnist'" in message and str(tmp_path) in message and "train-images-idx3-ubyte" in message
    assert "\n" not in message


def test_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'nope': choose one of digits"):
        load_dataset("nope")


def test_registry_lists_the_issue_datasets() -> None:
    assert set(DATASETS) == {"digits", "mnist", "fashion_mnist", "cifar10", "svhn", "synthetic"}
