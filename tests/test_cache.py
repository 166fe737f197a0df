"""The model cache: hits return identical weights, corrupt entries are recomputed, writes are atomic."""

from __future__ import annotations

import threading

import torch

from unlearn_core.cache import ModelCache, config_hash
from unlearn_core.evaluation import param_distance
from unlearn_core.models import build_model

KEY = {"dataset": "synthetic", "model": "mlp", "seed": 0}


def _trainer(calls: list[int]):
    def train_fn(model: torch.nn.Module) -> dict:
        calls.append(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        return {"time_s": 0.1}

    return train_fn


def _fresh() -> torch.nn.Module:
    return build_model("mlp", input_shape=(1, 4, 4), num_classes=4, seed=0)


def test_hit_returns_identical_weights(tmp_path) -> None:
    cache, calls = ModelCache(tmp_path), []
    first = _fresh()
    _, hit = cache.get_or_train(KEY, first, _trainer(calls))
    second = _fresh()
    meta2, hit2 = cache.get_or_train(KEY, second, _trainer(calls))
    assert (hit, hit2) == (False, True) and len(calls) == 1
    assert param_distance(first, second) == 0.0 and meta2["time_s"] == 0.1
    assert param_distance(second, _fresh()) > 0  # it really loaded the trained weights


def test_truncated_entry_is_discarded_and_recomputed(tmp_path) -> None:
    cache, calls = ModelCache(tmp_path), []
    cache.get_or_train(KEY, _fresh(), _trainer(calls))
    path = cache.path(KEY)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    model = _fresh()
    _, hit = cache.get_or_train(KEY, model, _trainer(calls))
    assert not hit and len(calls) == 2
    reference = _fresh()
    _trainer([])(reference)
    assert param_distance(model, reference) == 0.0  # recomputed, not half-loaded


def test_mismatched_entry_is_discarded(tmp_path) -> None:
    cache = ModelCache(tmp_path)
    other = build_model("logreg", input_shape=(1, 4, 4), num_classes=4)
    cache.save(KEY, other, {})
    assert cache.load(KEY, _fresh()) is None and not cache.path(KEY).exists()


def test_concurrent_requests_train_once(tmp_path) -> None:
    cache, calls = ModelCache(tmp_path), []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        cache.get_or_train(KEY, _fresh(), _trainer(calls))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert not list(cache.root.rglob("*.tmp"))


def test_key_hash_is_order_independent_and_sensitive() -> None:
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
