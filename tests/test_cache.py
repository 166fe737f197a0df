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


def test_stale_tmp_files_are_removed_on_open_and_fresh_ones_kept(tmp_path) -> None:
    """A killed writer's ``.tmp`` goes once it is a minute old; a live writer's (younger) stays."""
    import os
    import time

    cache = ModelCache(tmp_path)
    cache.save(KEY, _fresh(), {})
    folder = cache.path(KEY).parent
    stale, fresh = folder / "deadbeef1234.tmp", folder / "cafe5678.tmp"
    stale.write_bytes(b"")
    fresh.write_bytes(b"partial")
    old = time.time() - 61
    os.utime(stale, (old, old))
    reopened = ModelCache(tmp_path)
    assert reopened.removed_tmp == 1 and not stale.exists() and fresh.exists()
    assert reopened.load(KEY, _fresh()) is not None  # the entry itself is untouched


# A writer that saves entries in a loop (most of its time is inside ModelCache.save), for the kill test below. With
# a third argument "stall" its first save completes, and its second writes half the serialised bytes into the file,
# says "half" and waits to be killed: a kill that certainly lands mid-write, whatever the machine's load.
_WRITER = """
import io, sys, time, torch
from unlearn_core.cache import ModelCache
from unlearn_core.models import build_model
if sys.argv[3:] == ["stall"]:
    real_save, calls = torch.save, []
    def half_then_wait(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return real_save(obj, handle, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        handle.write(data[: len(data) // 2])
        handle.flush()
        print("half", flush=True)
        time.sleep(3600)
    torch.save = half_then_wait
cache = ModelCache(sys.argv[1])
model = build_model("mlp", input_shape=(1, 28, 28), num_classes=10, hidden=(1024, 1024))  # 1.9M params, 7.6 MB
print("ready", flush=True)
i = 0
while True:
    cache.save({"writer": int(sys.argv[2]), "i": i % 3}, model, {"i": i})
    i += 1
"""


def test_kill_during_save_never_leaves_a_corrupt_entry(tmp_path) -> None:
    """kill -9 at random moments of a save loop, then once mid-write: every ``.pt`` loads whole; the ``.tmp``
    litter goes on open. A save that wrote straight into its ``.pt`` fails on the mid-write kill (a truncated file)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from timeouts import scaled

    root = Path(__file__).resolve().parents[1]
    rng = random.Random(15)

    def kill_writer(attempt: int, *, stall: bool) -> None:
        args = [sys.executable, "-c", _WRITER, str(tmp_path), str(attempt)] + (["stall"] if stall else [])
        proc = subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            assert proc.stdout.readline().strip() == "ready"
            if stall:
                assert proc.stdout.readline().strip() == "half"  # inside torch.save, the .tmp half written
            else:
                time.sleep(rng.uniform(0.05, 0.6))  # anywhere in the loop: in or between saves
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=scaled(30))
        for entry in (tmp_path / "models").glob("*/*.pt"):
            payload = torch.load(entry, map_location="cpu", weights_only=True)  # never truncated
            assert payload["state_dict"]["1.weight"].shape == (1024, 784)

    for attempt in range(4):  # kills at random moments of the save loop
        kill_writer(attempt, stall=False)
    kill_writer(4, stall=True)  # a kill that certainly lands mid-write
    litter = list((tmp_path / "models").glob("*/*.tmp"))
    assert litter, "the mid-write kill left no temporary file: the save did not write through one"
    assert any(tmp.stat().st_size > 0 for tmp in litter)  # the half-written one
    assert list((tmp_path / "models").glob("*/*.pt"))  # the stalled writer's first save got through
    for tmp in (tmp_path / "models").glob("*/*.tmp"):
        os.utime(tmp, (time.time() - 61,) * 2)  # as if a minute had passed
    ModelCache(tmp_path)
    assert not list((tmp_path / "models").glob("*/*.tmp"))
