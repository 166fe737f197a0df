r"""Executors: where an experiment's independent cells run — in this process, in local worker processes, or on Ray.

An experiment (:mod:`unlearn_core.experiments`) is a list of independent **cells** (seed × setting × method),
each a plain function call whose arguments and result are plain, picklable data. An :class:`Executor` maps the
cells and returns their results *in cell order*, so the experiment gathers exactly the rows, in exactly the order,
that a serial loop would give (tested: same rows, same order, same values for the same seeds).

* ``serial`` (default) — one cell after another in this process; what tests and a laptop without extras use.
* ``processes`` — local worker processes through joblib's loky (no new dependency); ``workers`` of them, each
  with ``threads_per_cell`` torch threads (default 1).
* ``ray`` — Ray core tasks (the optional ``[cluster]`` extra, ``requirements-cluster.txt``). Without an address
  it starts a local Ray on this machine; with ``address="ray://HOST:10001"`` (or ``RAY_ADDRESS``) it runs the same
  cells on an existing cluster, shipping this package with the job (``runtime_env.py_modules``). ``gpus_per_cell``
  may be fractional (0.25 = four cells share one GPU).

**What workers share.** Nothing but the model cache directory: a worker trains (or loads) the original and
retrained models through :class:`~unlearn_core.cache.ModelCache`, whose per-key file lock makes two workers that
need the same model train it once. Workers return plain results; only the driver writes files and the run store
(SQLite is not safe across machines or on network file systems). Local workers receive the driver's
``UNLEARN_*`` environment (cache and data directories) with every cell, so a reused worker never reads a stale one.

**Threads.** Each worker sets ``torch.set_num_threads(threads_per_cell)`` before a cell (Ray also sets
``OMP_NUM_THREADS=1`` in its tasks): two processes with two threads each on two cores only preempt each other.

**Cancellation reaches running cells.** The serial executor hands the caller's ``threading.Event`` to the cell,
which the engine checks every step. Worker processes cannot see an event, so local workers get a
:class:`FileFlag` (a file the driver creates on cancel; checking it is one ``stat``); a running cell then raises
:class:`~unlearn_core.progress.Cancelled` at its next step. Ray tasks are also cancelled with ``ray.cancel``
(a ``KeyboardInterrupt`` in the running task), which is what reaches cells on other machines. A cell that does not
stop within ``grace_s`` seconds has its worker processes killed.

**Progress.** After every finished cell the executor reports ``{"stage": "cells", "phase", "step": done, "steps":
total, "cells_per_s", "eta_s"}`` — what the CLI prints and the dashboard's progress bar shows — with ``"cell"``, the
label of the cell that runs now (serial) or has just finished (in parallel), so that a page can say which method
and setting it is at.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import shutil
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from unlearn_core.errors import ConfigError
from unlearn_core.progress import Cancelled

ProgressFn = Callable[[dict[str, Any]], None] | None

EXECUTORS = ("serial", "processes", "ray")

#: Environment variables that configure the dashboard's executor (there is no widget: an operator sets these).
ENV_EXECUTOR = "UNLEARN_EXECUTOR"
ENV_WORKERS = "UNLEARN_WORKERS"
ENV_ADDRESS = "UNLEARN_RAY_ADDRESS"
ENV_GPUS = "UNLEARN_GPUS_PER_CELL"

#: How long a cancelled or failed map waits for running cells to stop cooperatively before killing workers.
GRACE_S = 15.0


@dataclass(frozen=True)
class Cell:
    """One independent unit of an experiment: ``fn(**kwargs, cancel=token)``.

    ``fn`` must be a module-level function (workers import it by name) and ``kwargs`` plain, picklable data
    (configurations, numbers, strings); its result must be plain data too (rows, numpy arrays).
    """

    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


class FileFlag:
    """A cancellation flag that worker processes on the same machine can read: set = the file exists.

    It has the ``is_set()`` of a ``threading.Event``, which is all the engine's loops call, and it pickles as
    its path. Once seen set it stays set (no further ``stat``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._seen = False

    def is_set(self) -> bool:
        if not self._seen:
            self._seen = os.path.exists(self.path)
        return self._seen

    def set(self) -> None:
        Path(self.path).touch()
        self._seen = True

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self._seen = state["path"], False


def run_cell(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    cancel: Any = None,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Run one cell in the current process (a worker or the driver): environment, threads, cancellation first."""
    if env is not None:
        for key in [k for k in os.environ if k.startswith("UNLEARN_") and k not in env]:
            del os.environ[key]
        os.environ.update(env)
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled before the cell started")
    return fn(**dict(kwargs), cancel=cancel)


def driver_env() -> dict[str, str]:
    """The ``UNLEARN_*`` variables of this process (cache and data directories, download switch)."""
    return {k: v for k, v in os.environ.items() if k.startswith("UNLEARN_")}


class _Meter:
    """Cells done / total, throughput and ETA, reported after every finished cell."""

    def __init__(self, total: int, progress: ProgressFn, phase: str) -> None:
        self.total, self.progress, self.phase = total, progress, phase
        self.done = 0
        self.start = time.perf_counter()
        self.report()

    def tick(self, cell: str = "") -> None:
        self.done += 1
        self.report(cell)

    def report(self, cell: str = "") -> None:
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if self.done and elapsed > 0 else None
        eta = (self.total - self.done) / rate if rate else None
        record = {"stage": "cells", "phase": self.phase, "step": self.done, "steps": self.total,
                  "elapsed_s": elapsed, "cells_per_s": rate, "eta_s": eta}
        if cell:
            record["cell"] = cell
        self.progress(record)


class Executor(ABC):
    """Maps cells to results, in cell order. Subclasses: :class:`SerialExecutor`, :class:`ProcessExecutor`,
    :class:`RayExecutor`."""

    name: ClassVar[str]

    @abstractmethod
    def map(
        self,
        cells: Sequence[Cell],
        *,
        progress: ProgressFn = None,
        cancel: threading.Event | None = None,
        phase: str = "cells",
    ) -> list[Any]:
        """Run every cell; return their results in the order of ``cells``.

        Raises the first cell error (after stopping the other cells), or :class:`Cancelled` when ``cancel`` is set.
        """

    def describe(self) -> str:
        """One line for the CLI and the dashboard, e.g. ``processes (2 workers, 1 torch thread each)``."""
        return self.name

    def close(self) -> None:  # noqa: B027 - a no-op unless the executor started something
        """Release what this executor started (a local Ray); reusable worker pools stay warm."""


class SerialExecutor(Executor):
    """Cells one after another in this process (the default). ``threads_per_cell`` None leaves torch alone."""

    name = "serial"

    def __init__(self, *, threads_per_cell: int | None = None) -> None:
        self.threads = threads_per_cell

    def map(self, cells, *, progress=None, cancel=None, phase="cells"):
        meter = _Meter(len(cells), progress, phase)
        out = []
        previous = None
        if self.threads is not None:
            import torch

            previous = torch.get_num_threads()
        try:
            for cell in cells:
                if cell.label:
                    meter.report(cell.label)  # which cell runs now (the page names the method and setting)
                out.append(run_cell(cell.fn, cell.kwargs, cancel, self.threads))
                meter.tick()
        finally:
            if previous is not None:
                import torch

                torch.set_num_threads(previous)
        return out

    def describe(self) -> str:
        return "serial (this process)"


class ProcessExecutor(Executor):
    """Local worker processes (joblib's loky, reused between maps); ``workers`` defaults to the CPU count."""

    name = "processes"

    def __init__(self, *, workers: int | None = None, threads_per_cell: int = 1, grace_s: float = GRACE_S) -> None:
        self.workers = int(workers or os.cpu_count() or 1)
        self.threads = int(threads_per_cell)
        self.grace_s = float(grace_s)

    def _pool(self) -> Any:
        from joblib.externals.loky import get_reusable_executor

        # timeout: idle workers exit after 10 minutes, so a dashboard does not hold memory forever.
        return get_reusable_executor(max_workers=self.workers, timeout=600)

    def map(self, cells, *, progress=None, cancel=None, phase="cells"):
        if not cells:
            return []
        flag_dir = tempfile.mkdtemp(prefix="unlearn-cancel-")
        flag = FileFlag(Path(flag_dir) / "cancel")
        env = driver_env()
        pool = self._pool()
        pending: set = set()
        try:
            meter = _Meter(len(cells), progress, phase)
            futures = [pool.submit(run_cell, c.fn, dict(c.kwargs), flag, self.threads, env) for c in cells]
            index = {f: i for i, f in enumerate(futures)}
            results: list[Any] = [None] * len(cells)
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(pending, timeout=0.2,
                                                        return_when=concurrent.futures.FIRST_COMPLETED)
                for f in done:
                    results[index[f]] = f.result()  # a cell's error is raised here, in the driver
                    meter.tick(cells[index[f]].label)
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            return results
        except BaseException:
            # A cell failed, the caller cancelled, or the progress callback raised: stop every other cell.
            self._stop(pool, flag, pending)
            raise
        finally:
            shutil.rmtree(flag_dir, ignore_errors=True)

    def _stop(self, pool: Any, flag: FileFlag, pending: set) -> None:
        """Cancel queued cells, let running ones see the flag, kill the workers if they do not stop in time."""
        flag.set()
        if not pending:
            return
        for f in pending:
            f.cancel()
        running = [f for f in pending if not f.done()]
        if running:
            _, still = concurrent.futures.wait(running, timeout=self.grace_s)
            if still:
                pool.shutdown(wait=False, kill_workers=True)

    def describe(self) -> str:
        return f"processes ({self.workers} workers, {self.threads} torch thread{'s' if self.threads > 1 else ''} each)"


class RayExecutor(Executor):
    """Ray core tasks: a local Ray started on demand, or an existing cluster at ``address``.

    Args:
        address: ``ray://HOST:10001`` (Ray Client) or another address ``ray.init`` accepts; ``None`` uses
            ``RAY_ADDRESS`` when set, else starts a local Ray with ``num_cpus`` CPUs.
        gpus_per_cell: GPUs reserved per cell, fractional allowed (0.25 → four cells per GPU).
        cpus_per_cell: CPUs reserved per cell (Ray's scheduling unit).
        threads_per_cell: torch threads inside each cell (default: ``cpus_per_cell``).
        num_cpus: CPUs of a local Ray (default: all); ignored for a cluster.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        gpus_per_cell: float = 0.0,
        cpus_per_cell: float = 1.0,
        threads_per_cell: int | None = None,
        num_cpus: int | None = None,
        grace_s: float = GRACE_S,
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.gpus = float(gpus_per_cell)
        self.cpus = float(cpus_per_cell)
        self.threads = int(threads_per_cell if threads_per_cell is not None else max(1, math.floor(self.cpus)))
        self.num_cpus = num_cpus
        self.grace_s = float(grace_s)
        self._started = False
        self.start_s: float | None = None

    @property
    def local(self) -> bool:
        return self.address is None

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise ConfigError("executor 'ray' needs the optional cluster extra: pip install -r "
                              "requirements-cluster.txt (or pip install '.[cluster]')") from None
        if not ray.is_initialized():
            tic = time.perf_counter()
            if self.local:
                # Local workers run this checkout's code and see the driver's cache and data directories.
                root = str(Path(__file__).resolve().parents[1])
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
                # address="local": always a new local instance, never a cluster some earlier `ray start` left
                # behind in /tmp/ray (ray.init's default would try to join it).
                ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False, configure_logging=False,
                         runtime_env={"env_vars": {**driver_env(), "PYTHONPATH": path}})
            else:
                # A cluster gets this package shipped with the job; its nodes need torch & co. installed and
                # their own UNLEARN_CACHE_DIR / UNLEARN_DATA_DIR (paths on this machine mean nothing there).
                import unlearn_core

                ray.init(address=self.address, runtime_env={"py_modules": [str(Path(unlearn_core.__file__).parent)]})
            self._started = True
            self.start_s = time.perf_counter() - tic
        return ray

    def map(self, cells, *, progress=None, cancel=None, phase="cells"):
        if not cells:
            return []
        ray = self._ray()
        remote = ray.remote(run_cell).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
        # On one machine the file flag lets a cell stop cooperatively; ray.cancel is what reaches other machines.
        flag_dir = tempfile.mkdtemp(prefix="unlearn-cancel-") if self.local else None
        flag = FileFlag(Path(flag_dir) / "cancel") if flag_dir else None
        env = driver_env() if self.local else None
        pending: list = []
        try:
            meter = _Meter(len(cells), progress, phase)
            refs = [remote.remote(c.fn, dict(c.kwargs), flag, self.threads, env) for c in cells]
            index = {r: i for i, r in enumerate(refs)}
            results: list[Any] = [None] * len(cells)
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                for r in done:
                    try:
                        results[index[r]] = ray.get(r)
                    except Exception as exc:
                        raise _unwrap(exc) from None
                    meter.tick(cells[index[r]].label)
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            return results
        except BaseException:
            self._stop(ray, flag, pending)
            raise
        finally:
            if flag_dir:
                shutil.rmtree(flag_dir, ignore_errors=True)

    def _stop(self, ray: Any, flag: FileFlag | None, pending: list) -> None:
        if flag is not None:
            flag.set()
        for r in pending:
            with contextlib.suppress(Exception):
                ray.cancel(r, force=False)
        if pending:
            _, still = ray.wait(pending, num_returns=len(pending), timeout=self.grace_s)
            for r in still:
                with contextlib.suppress(Exception):
                    ray.cancel(r, force=True)

    def describe(self) -> str:
        where = f"cluster {self.address}" if not self.local else "local Ray"
        gpus = f", {self.gpus:g} GPU per cell" if self.gpus else ""
        return f"ray ({where}, {self.cpus:g} CPU per cell{gpus})"

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def _unwrap(exc: BaseException) -> BaseException:
    """A Ray task error → the cell's own exception (a ConfigError stays a one-line ConfigError)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    if type(exc).__name__ == "TaskCancelledError":
        return Cancelled("cancelled")
    return exc


def get_executor(
    name: str = "serial",
    *,
    workers: int | None = None,
    address: str | None = None,
    gpus_per_cell: float = 0.0,
    threads_per_cell: int | None = None,
) -> Executor:
    """The executor called ``name`` with its options, validated (one-line :class:`ConfigError` otherwise).

    ``address`` and ``gpus_per_cell`` belong to ``ray``; ``workers`` to ``processes`` (and a local Ray's CPUs).
    """
    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r} is not valid: choose one of {', '.join(EXECUTORS)}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers={workers!r} is not valid: expected an integer ≥ 1")
    if threads_per_cell is not None and (not isinstance(threads_per_cell, int) or threads_per_cell < 1):
        raise ConfigError(f"threads_per_cell={threads_per_cell!r} is not valid: expected an integer ≥ 1")
    gpus = float(gpus_per_cell or 0.0)
    if not (math.isfinite(gpus) and 0.0 <= gpus <= 64):
        raise ConfigError(f"gpus_per_cell={gpus_per_cell!r} is not valid: expected a number in [0, 64], e.g. 0.25")
    if name != "ray" and gpus:
        raise ConfigError(f"gpus_per_cell={gpus:g} needs executor 'ray' (got {name!r})")
    if name != "ray" and address:
        raise ConfigError(f"address={address!r} needs executor 'ray' (got {name!r})")
    if name == "serial":
        return SerialExecutor(threads_per_cell=threads_per_cell)
    if name == "processes":
        return ProcessExecutor(workers=workers, threads_per_cell=threads_per_cell or 1)
    return RayExecutor(address=address, gpus_per_cell=gpus, threads_per_cell=threads_per_cell, num_cpus=workers)


def executor_from_env(environ: Mapping[str, str] | None = None) -> Executor | None:
    """The executor an operator configured for the dashboard, or ``None`` (serial) when none is.

    ``UNLEARN_EXECUTOR`` = serial | processes | ray; ``UNLEARN_WORKERS`` (processes; a local Ray's CPUs);
    ``UNLEARN_RAY_ADDRESS`` (or Ray's own ``RAY_ADDRESS``) and ``UNLEARN_GPUS_PER_CELL`` (ray).
    """
    env = os.environ if environ is None else environ
    name = env.get(ENV_EXECUTOR, "").strip().lower()
    if not name:
        return None
    try:
        workers = int(env[ENV_WORKERS]) if env.get(ENV_WORKERS) else None
        gpus = float(env[ENV_GPUS]) if env.get(ENV_GPUS) else 0.0
    except ValueError:
        raise ConfigError(f"{ENV_WORKERS}={env.get(ENV_WORKERS)!r} / {ENV_GPUS}={env.get(ENV_GPUS)!r} is not "
                          "valid: expected an integer and a number") from None
    return get_executor(name, workers=workers, address=env.get(ENV_ADDRESS) or None, gpus_per_cell=gpus)


def resolve(executor: Executor | str | None) -> Executor:
    """``None`` → serial; a name → :func:`get_executor` with defaults; an executor → itself."""
    if executor is None:
        return SerialExecutor()
    if isinstance(executor, str):
        return get_executor(executor)
    return executor
