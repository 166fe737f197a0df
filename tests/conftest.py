"""Shared test setup: offline data from ../shared/data, a throw-away model cache, no downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("UNLEARN_DATA_DIR", str(SHARED_DATA))
os.environ["UNLEARN_DOWNLOAD"] = "0"


@pytest.fixture(autouse=True, scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test session gets its own model cache, so no test depends on (or pollutes) the user's cache."""
    os.environ["UNLEARN_CACHE_DIR"] = str(tmp_path_factory.mktemp("unlearn-cache"))


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny-model tests on one intra-op thread, then restore (``pytestmark`` opts in).

    Why: on a small, shared CPU (2 cores, other processes busy) torch's spinning intra-op threads made these
    tiny-model tests ~8× slower end to end (201 s vs 25 s measured); one thread is also the fastest setting for
    models this small when the machine is idle.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def mnist_available() -> bool:
    return (Path(os.environ["UNLEARN_DATA_DIR"]) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
