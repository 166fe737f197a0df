"""Forget/retain partitions: disjoint, covering, reproducible, and exactly what the spec says."""

from __future__ import annotations

import pytest
import torch

from unlearn_core.errors import ConfigError
from unlearn_core.forget import parse_forget_spec, select_forget, split_requests

LABELS = torch.arange(1000) % 10  # 100 examples of each class


def _check_partition(forget: torch.Tensor, retain: torch.Tensor, n: int) -> None:
    assert forget.dtype == retain.dtype == torch.int64
    assert torch.equal(torch.sort(torch.cat([forget, retain])).values, torch.arange(n))
    assert len(set(forget.tolist()) & set(retain.tolist())) == 0
    assert torch.equal(forget, torch.sort(forget).values)


@pytest.mark.parametrize(
    ("spec", "size"),
    [("random:0.1", 100), ("random:250", 250), ("class:3", 100), ("class:3,5", 200),
     ("class-fraction:3:0.5", 50), ("indices:1,5,9", 3)],
)
def test_partition_sizes(spec: str, size: int) -> None:
    forget, retain = select_forget(spec, LABELS, seed=0, num_classes=10)
    _check_partition(forget, retain, 1000)
    assert forget.numel() == size


def test_class_specs_select_the_classes() -> None:
    forget, _ = select_forget("class:3,5", LABELS, seed=0, num_classes=10)
    assert set(LABELS[forget].tolist()) == {3, 5}
    forget, _ = select_forget("class-fraction:7:0.3", LABELS, seed=0, num_classes=10)
    assert set(LABELS[forget].tolist()) == {7}
    forget, _ = select_forget("indices:9,1,5,5", LABELS, seed=0)
    assert forget.tolist() == [1, 5, 9]


def test_reproducible_for_a_seed_and_different_across_seeds() -> None:
    a, _ = select_forget("random:0.1", LABELS, seed=3)
    b, _ = select_forget("random:0.1", LABELS, seed=3)
    c, _ = select_forget("random:0.1", LABELS, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("random:0", "at least 1"), ("random:0.0", "strictly between 0 and 1"), ("random:1.5", "strictly between"),
     ("random:1000", "below the training-set size"), ("class:10", "class 10 is not in this dataset"),
     ("class:-1", "class -1 is not in this dataset"), ("indices:", "empty"), ("indices:1000", "out of range"),
     ("indices:a", "integers"), ("bogus:1", "unknown kind"), ("random", "missing 'kind:'"),
     ("class-fraction:3", "expected class-fraction"), ("class:0,1,2,3,4,5,6,7,8,9", "nothing would be retained")],
)
def test_bad_specs(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        select_forget(spec, LABELS, seed=0, num_classes=10)


def test_spec_round_trips_through_str() -> None:
    for text in ("random:0.1", "random:1000", "class:3,5", "class-fraction:3:0.5", "indices:1,5,9"):
        assert str(parse_forget_spec(text)) == text


def test_split_requests() -> None:
    forget = torch.arange(100)
    chunks = split_requests(forget, 10)
    assert len(chunks) == 10 and all(c.numel() == 10 for c in chunks)
    assert torch.equal(torch.cat(chunks), forget)
    with pytest.raises(ConfigError):
        split_requests(forget, 0)
