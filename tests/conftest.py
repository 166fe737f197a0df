"""Shared test setup: offline data from ../shared/data, a throw-away model cache, no downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from skips import skip_or_fail

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


@pytest.fixture
def shared_data() -> None:
    """Skip a test that reads MNIST / Fashion-MNIST when their files are missing — except under ``CI=true``.

    The files cannot be bundled, so a fresh clone without ``../shared/data`` (or ``UNLEARN_DATA_DIR``) still
    passes its test command, with the reason shown; CI has the data, so there a missing file is a failure.
    """
    from unlearn_core.data import missing_files

    missing = [f for name in ("mnist", "fashion_mnist") for f in missing_files(name)]
    if not missing:
        return
    skip_or_fail(f"MNIST/Fashion-MNIST files are missing in UNLEARN_DATA_DIR={os.environ['UNLEARN_DATA_DIR']} "
                 f"(e.g. {missing[0]}); point UNLEARN_DATA_DIR at a torchvision-layout data folder")


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave as the CLI does (``unlearn_core.cli.exit_now``): once pytest has reported and cleaned up, skip the
    interpreter's module teardown. Why: after every test of the browser shard had passed and the summary was
    printed, a C++ thread left by a library (Chromium's driver, Ray or gRPC) made the teardown abort with
    "terminate called without an active exception" — exit status 134 for a green shard. ``atexit`` handlers still
    run first; the exit status is pytest's."""
    if not _EXIT_STATUS or os.environ.get("UNLEARN_TEST_TEARDOWN") == "1":
        return
    import atexit
    import sys

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[-1])
