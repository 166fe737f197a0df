r"""Executors: where an experiment's independent cells run — in this process, in local worker processes, or on Ray.

An experiment (:mod:`unlearn_core.experiments`) is a list of independent **cells** (seed × setting × method),
each a plain function call whose arguments and result are plain, picklable data. An :class:`Executor` maps the
cells and returns their results *in cell order*, so the experiment gathers exactly the rows, in exactly the order,
that a serial loop would give (tested: same rows, same order, same values for the same seeds).

* ``serial`` (default) — one cell after another in this process; what tests and a laptop without extras use.
* ``processes`` — this process plus local worker processes (joblib's loky, no new dependency): ``workers`` cells at
  a time, each with ``threads_per_cell`` torch threads (default 1).
* ``ray`` — Ray core tasks (the optional ``[cluster]`` extra, ``requirements-cluster.txt``). Without an address
  it starts a local Ray on this machine; with ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``, or ``RAY_ADDRESS``)
  it joins an existing cluster (:mod:`unlearn_core.ray_cluster`: the address checked, token authentication
  detected, a deadline) and ships this package with the job (``runtime_env.py_modules``). ``gpus_per_cell`` may be
  fractional (0.25 = four cells share one GPU).

**Workers that keep what they loaded.** A worker's fixed cost — importing torch and the engine, loading the data
set and the cached models — is paid once per worker process, not once per cell: the loky pool is reused between
maps (and its idle workers exit after 10 minutes), Ray reuses its worker processes, and every worker memoises the
prepared configurations it has loaded (:func:`unlearn_core.experiments.prepare_seed`). A fresh worker first runs
the map's *warm-up* (the experiment's configurations, loaded into the memo) and only then takes cells; the cells
that go to a worker process travel in *batches* of cells that share a configuration.

**Parallel only when it pays** (``adaptive``, the default of ``processes`` and of a local Ray). On a small machine
starting workers costs seconds (``start_cost_s``, measured on this machine — see :class:`Calibration`) while many
experiments are only seconds of work. So this process always runs cells itself, one at a time, exactly as
``serial`` would; it starts the other workers only when the work still to do — estimated from the cells it has
timed so far — exceeds the measured start-up cost (by :data:`START_MARGIN`), and they join as soon as each is warm.
A command line starts them sooner (:meth:`ProcessExecutor.prestart`, when a core is idle): the workers import
beside the command's own start-up, so its maps count only loading their configurations as the start-up cost.
When the work is below that cost the whole map runs in this process and the executor says so: each map's
:class:`Plan` (where the cells ran and why) goes to the progress callback as a ``{"stage": "plan", "message": ...}``
record (what the CLI prints) and into ``executor.plans`` (what the CLI's JSON and the dashboard record).
``adaptive=False`` sends every cell to ``workers`` worker processes at once, started immediately (what the
executors' identity tests use).

**Lost workers.** Cells are seeded and idempotent, so a cell whose worker process died (killed, out of memory, a
lost node: loky's ``TerminatedWorkerError``, Ray's ``WorkerCrashedError``/``NodeDiedError``/``ObjectLostError``) is
queued again, up to ``max_retries`` times per cell, while the cells that finished are kept; each retry is reported
as a plan record. A cell's own error (a bad value, a divergence) is never retried: it stops the map.

**What workers share.** Nothing but the model cache directory: a worker trains (or loads) the original and
retrained models through :class:`~unlearn_core.cache.ModelCache`, whose per-key file lock makes two workers that
need the same model train it once. Workers return plain results; only the driver writes files and the run store
(SQLite is not safe across machines or on network file systems). Local workers receive the driver's
``UNLEARN_*`` environment (cache and data directories) with every batch, so a reused worker never reads a stale one.

**Threads.** Every cell sets ``torch.set_num_threads(threads_per_cell)`` (Ray also sets ``OMP_NUM_THREADS=1`` in
its tasks); the driver's own setting is restored after the map: two processes with two threads each on two cores
only preempt each other.

**Cancellation reaches running cells.** Cells in this process see the caller's ``threading.Event``, which the
engine checks every step. Worker processes cannot see an event, so local workers get a :class:`FileFlag` (a file
the driver creates on cancel; checking it is one ``stat``); a running cell then raises
:class:`~unlearn_core.progress.Cancelled` at its next step. Ray tasks are also cancelled with ``ray.cancel``
(a ``KeyboardInterrupt`` in the running task), which is what reaches cells on other machines. A cell that does not
stop within ``grace_s`` seconds has its worker processes killed.

**Progress.** After every finished cell the executor reports ``{"stage": "cells", "phase", "step": done, "steps":
total, "cells_per_s", "eta_s"}`` — what the CLI prints and the dashboard's progress bar shows — with ``"cell"``, the
label of the cell that runs now (in this process) or has just finished (in a worker), so that a page can say which
method and setting it is at.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import os
import shutil
import statistics
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
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
#: Whether the CLI pre-starts the ``processes`` executor's workers: 1, 0 or auto (:func:`prestart_from_env`).
ENV_PRESTART = "UNLEARN_PRESTART"

#: How long a cancelled or failed map waits for running cells to stop cooperatively before killing workers.
GRACE_S = 15.0
#: How many times a cell whose worker was lost is queued again before the map fails.
MAX_RETRIES = 3
#: Workers start when the estimated remaining work exceeds their measured start-up cost by this factor.
START_MARGIN = 1.25
#: Start-up cost assumed before one was measured on this machine (seconds: import torch and the engine, load the
#: data and the models, in a fresh process; Ray adds its own start).
DEFAULT_START_S = {"processes": 8.0, "ray": 15.0}
#: Start-up cost of workers that are already warm (a reused pool): loading a new configuration into the memo.
WARM_START_S = 0.5
#: At most this many cells per batch sent to a worker process.
MAX_BATCH = 8
#: How often (seconds) the scheduler polls a backend that cannot call back when a cell is done (Ray).
POLL_S = 0.05
#: How long the scheduler sleeps between looks when it is woken by every finished cell (this process's and loky's):
#: it still looks this often for the start decision and for cancel. Why not ``POLL_S``: every wake-up takes the GIL
#: from the cell running in this process (up to the 5-ms switch interval), which cost a one-cell experiment 5–8 %.
WAKE_S = 0.5

# ----------------------------------------------------------------------------------------------------------------
# Cells, flags, what a worker runs
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One independent unit of an experiment: ``fn(**kwargs, cancel=token)``.

    ``fn`` must be a module-level function (workers import it by name) and ``kwargs`` plain, picklable data
    (configurations, numbers, strings); its result must be plain data too (rows, numpy arrays). ``group`` names
    what the cell loads (e.g. a configuration and seed): cells of one group travel to a worker together.
    """

    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    group: str = ""


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


class _AnyFlag:
    """Set when any of its flags is (the caller's cancel event, or the map's own stop)."""

    def __init__(self, *flags: Any) -> None:
        self.flags = [f for f in flags if f is not None]

    def is_set(self) -> bool:
        return any(f.is_set() for f in self.flags)


def _apply_env(env: Mapping[str, str] | None, threads: int | None) -> None:
    if env is not None:
        for key in [k for k in os.environ if k.startswith("UNLEARN_") and k not in env]:
            del os.environ[key]
        os.environ.update(env)
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))


def run_cell(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    cancel: Any = None,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Run one cell in the current process (a worker or the driver): environment, threads, cancellation first."""
    _apply_env(env, threads)
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled before the cell started")
    return fn(**dict(kwargs), cancel=cancel)


def run_batch(
    calls: Sequence[tuple[Callable[..., Any], Mapping[str, Any]]],
    cancel: Any = None,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Any]:
    """Run several cells one after another in a worker; their results in order (the first error stops it)."""
    _apply_env(env, threads)
    return [run_cell(fn, kwargs, cancel) for fn, kwargs in calls]


def warm_worker(
    fn: Callable[..., Any] | None,
    kwargs: Mapping[str, Any] | None,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A fresh worker's first task: import torch and the engine, run the map's warm-up (load its configurations
    into the worker's memo); how long it took and in which process."""
    tic = time.perf_counter()
    _apply_env(env, threads)
    import torch  # noqa: F401 - the import is the point

    if fn is not None:
        fn(**dict(kwargs or {}))
    return {"pid": os.getpid(), "s": time.perf_counter() - tic}


def import_engine() -> None:
    """What a pre-started worker runs first (:meth:`ProcessExecutor.prestart`): the imports every cell needs —
    about 4 s of a fresh process's start-up on a 2-core machine.

    torch and the engine's experiments, then one tiny instance of what torch imports only on first use: an
    optimiser's step (``torch._dynamo``, ≈ 1.2 s) and a forward on the ``meta`` device (the decompositions and
    sympy, which the work estimates of large models use: :func:`unlearn_core.models.model_shape`). Done by running
    them rather than by naming torch's private modules, so that it follows torch's versions."""
    import importlib

    import torch

    importlib.import_module("unlearn_core.experiments")
    layer = torch.nn.Linear(2, 1)
    layer(torch.zeros(1, 2)).sum().backward()
    torch.optim.SGD(layer.parameters(), lr=0.1).step()
    with torch.device("meta"), torch.no_grad():
        torch.nn.Linear(2, 1)(torch.empty(1, 2))


def idle_core() -> bool:
    """Whether this machine has a core to spare: the 1-minute load average below the core count less one.

    Why the load average: a pre-started worker imports on a core the command does not use; on a machine whose
    cores are all busy it would only take time from the command itself."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # not available on this platform: assume the machine is ours
        return cores > 1
    return cores > 1 and load < cores - 1 + 0.5


#: ``UNLEARN_PRESTART``'s values: pre-start always, never, or when :func:`idle_core`.
PRESTART_CHOICES = ("1", "0", "auto")


def prestart_from_env() -> str:
    """``UNLEARN_PRESTART`` checked (one of :data:`PRESTART_CHOICES`, default ``auto``): read once, by
    :func:`get_executor`, which hands it to :class:`ProcessExecutor`."""
    setting = os.environ.get(ENV_PRESTART, "auto").strip().lower()
    if setting not in PRESTART_CHOICES:
        raise ConfigError(f"{ENV_PRESTART}={setting!r} is not valid: choose 1 (always), 0 (never) or auto")
    return setting


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


# ----------------------------------------------------------------------------------------------------------------
# The measured start-up cost of workers
# ----------------------------------------------------------------------------------------------------------------


class Calibration:
    """The measured start-up cost of a fresh worker on this machine, per executor kind (``processes``, ``ray``).

    Measured every time workers start cold (from the start to the first finished warm-up: a new process imports
    torch and the engine and loads the experiment's data and models), kept in memory and in
    ``<cache>/executor-calibration.json`` (the median of the last :attr:`KEEP` values), so the next command on this
    machine decides with a measured value; :data:`DEFAULT_START_S` until then.
    """

    FILE = "executor-calibration.json"
    KEEP = 5

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, list[float]] | None = None

    def _path(self) -> Path:
        from unlearn_core.paths import cache_dir

        return cache_dir() / self.FILE

    def _load(self) -> dict[str, list[float]]:
        if self._values is None:
            try:
                raw = json.loads(self._path().read_text())
                self._values = {str(k): [float(x) for x in v if math.isfinite(float(x)) and x > 0][-self.KEEP:]
                                for k, v in raw.items() if isinstance(v, list)}
            except (OSError, ValueError, TypeError, AttributeError):
                self._values = {}
        return self._values

    def start_cost(self, kind: str) -> tuple[float, bool]:
        """(seconds, measured?) for ``kind``."""
        with self._lock:
            values = self._load().get(kind)
        if values:
            return float(statistics.median(values)), True
        return DEFAULT_START_S.get(kind, 10.0), False

    def record(self, kind: str, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            return
        with self._lock:
            values = self._load().setdefault(kind, [])
            values.append(float(seconds))
            del values[:-self.KEEP]
            snapshot = json.dumps(self._values, indent=1)
        path = self._path()
        with contextlib.suppress(OSError):  # a read-only cache costs the memory of the measurement, nothing else
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                handle.write(snapshot)
            os.replace(tmp, path)


#: The process-wide calibration every executor reads and updates.
CALIBRATION = Calibration()


# ----------------------------------------------------------------------------------------------------------------
# Plans: where the cells of one map ran, and why
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Where the cells of one map ran and why — the log line and the result metadata of "parallel only when it
    pays"."""

    phase: str
    cells: int
    lanes: int
    adaptive: bool
    start_cost_s: float
    start_cost_measured: bool
    in_driver: int = 0
    in_workers: int = 0
    started_at_s: float | None = None
    estimate_s: float | None = None
    warm_s: float | None = None
    retries: int = 0
    prestarted: bool = False
    wall_s: float = 0.0
    reason: str = ""

    def message(self) -> str:
        cost = f"{self.start_cost_s:.1f} s {'measured on this machine' if self.start_cost_measured else 'assumed'}"
        if self.lanes == 1:
            return f"{self.phase}: {self.cells} cell{'s' * (self.cells != 1)} ran in this process (one worker)"
        if not self.in_workers and self.adaptive and self.prestarted:
            return (f"{self.phase}: {self.cells} cell{'s' * (self.cells != 1)} ran in this process — nothing was left "
                    "to share with the workers pre-started with the command (they loaded its configurations)")
        if not self.in_workers and self.adaptive:
            why = (f"estimated {self.estimate_s:.1f} s of work" if self.estimate_s is not None else "the work")
            return (f"{self.phase}: {self.cells} cell{'s' * (self.cells != 1)} ran serially in this process — "
                    f"{why} is below the workers' start-up ({cost}), so no worker was started")
        where = f"{self.in_driver} in this process, {self.in_workers} in worker processes"
        text = f"{self.phase}: {self.cells} cells — {where}"
        if self.adaptive and self.prestarted:
            text += (" (workers pre-started with the command, their imports overlapping this process's own start-up; "
                     f"cells sent to them after {self.started_at_s or 0:.1f} s)")
        elif self.adaptive and self.started_at_s is not None:
            text += (f" (started after {self.started_at_s:.1f} s: estimated {self.estimate_s or 0:.1f} s of work left "
                     f"against a start-up of {cost})")
        if self.retries:
            text += f"; {self.retries} cell{'s' * (self.retries != 1)} retried after a lost worker"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items()}, "message": self.message()}


class _LostWorker(Exception):
    """A batch whose worker process died; its cells are queued again (up to ``max_retries`` each)."""


# ----------------------------------------------------------------------------------------------------------------
# Backends: a pool of worker lanes (loky processes, Ray tasks)
# ----------------------------------------------------------------------------------------------------------------


class _Backend(ABC):
    """Worker lanes for the scheduler: started (maybe slowly), given warm-ups and batches, polled, stopped."""

    kind: str
    lanes: int
    batch_limit: int = MAX_BATCH
    restarts_on_loss: bool = False  # a lost worker breaks the whole pool (loky), not just its task (Ray)

    def restart(self) -> None:  # noqa: B027 - only a pool that breaks as a whole restarts
        """Replace a pool broken by a lost worker."""

    def prestarted(self) -> bool:
        """Whether these workers were started ahead of the map (:meth:`ProcessExecutor.prestart`)."""
        return False

    def notify(self, handle: Any, callback: Callable[[], None]) -> bool:
        """Call ``callback`` once ``handle`` is done, if this backend can (the scheduler then sleeps until something
        happens); False where it cannot (the scheduler polls it every :data:`POLL_S`)."""
        return False

    def abandon(self, handles: list[Any]) -> None:  # noqa: B027 - see the subclasses
        """Warm-ups still running when a map ends: remember when they finish (the next map's workers are warm)."""

    @abstractmethod
    def start(self) -> None:
        """Start the workers (blocking; the scheduler calls it in a helper thread)."""

    @abstractmethod
    def is_warm(self) -> bool:
        """Whether the workers have already run a warm-up (a reused pool)."""

    @abstractmethod
    def submit_warmup(self, warmup: Cell | None, threads: int | None, env: dict | None) -> Any: ...

    @abstractmethod
    def submit(self, calls: list[tuple[Callable[..., Any], Mapping[str, Any]]], cancel: Any, threads: int | None,
               env: dict | None) -> Any: ...

    @abstractmethod
    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """The handles among ``handles`` that are done (waiting up to ``timeout``)."""

    @abstractmethod
    def result(self, handle: Any) -> Any:
        """The handle's value; :class:`_LostWorker` when its worker died, the cell's own error otherwise."""

    @abstractmethod
    def stop(self, handles: list[Any], grace_s: float) -> None:
        """Cancel what is queued, wait ``grace_s`` for running cells to see the flag, then kill their workers."""

    def mark_warm(self) -> None:  # noqa: B027 - only pools that stay up between maps remember it
        """Remember that these workers are warm (for the next map's estimate)."""


class _LokyBackend(_Backend):
    kind = "processes"
    restarts_on_loss = True
    _warm_pool: ClassVar[int | None] = None  # id() of the reusable pool whose workers have run a warm-up
    _prestarted_pool: ClassVar[int | None] = None  # id() of the pool :meth:`prestart` started

    def __init__(self, lanes: int) -> None:
        self.lanes = int(lanes)
        self.pool: Any = None

    @classmethod
    def prestart(cls, lanes: int, threads: int | None, env: dict[str, str] | None) -> bool:
        """Start ``lanes`` workers now, each importing the engine (:func:`import_engine`); the pool counts as warm
        once one has. False when the pool is already warm or started."""
        backend = cls(lanes)
        backend.start()
        pool = id(backend.pool)
        if pool in (cls._warm_pool, cls._prestarted_pool):
            return False
        cls._prestarted_pool = pool
        backend.abandon([backend.pool.submit(warm_worker, import_engine, {}, threads, env) for _ in range(lanes)])
        return True

    def prestarted(self) -> bool:
        return self.pool is not None and id(self.pool) == _LokyBackend._prestarted_pool

    def notify(self, handle, callback):
        handle.add_done_callback(lambda _future: callback())
        return True

    def start(self) -> None:
        from joblib.externals.loky import get_reusable_executor

        # timeout: idle workers exit after 10 minutes, so a dashboard does not hold memory forever.
        self.pool = get_reusable_executor(max_workers=self.lanes, timeout=600)

    def is_warm(self) -> bool:
        if self.pool is None:
            from joblib.externals.loky import get_reusable_executor

            self.pool = get_reusable_executor(max_workers=self.lanes, timeout=600)
        return id(self.pool) == _LokyBackend._warm_pool

    def mark_warm(self) -> None:
        _LokyBackend._warm_pool = id(self.pool)

    def submit_warmup(self, warmup, threads, env):
        return self.pool.submit(warm_worker, warmup.fn if warmup else None, dict(warmup.kwargs) if warmup else None,
                                threads, env)

    def abandon(self, handles):
        pool = id(self.pool)

        def warmed(future: Any) -> None:
            if not future.cancelled() and future.exception() is None:
                _LokyBackend._warm_pool = pool

        for future in handles:
            future.add_done_callback(warmed)

    def submit(self, calls, cancel, threads, env):
        return self.pool.submit(run_batch, calls, cancel, threads, env)

    def wait(self, handles, timeout):
        done, _ = concurrent.futures.wait(handles, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    def result(self, handle):
        from joblib.externals.loky.process_executor import BrokenProcessPool

        try:
            return handle.result()
        except BrokenProcessPool as exc:  # TerminatedWorkerError is one: a worker died, the pool is broken
            _LokyBackend._warm_pool = None
            raise _LostWorker(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

    def restart(self) -> None:
        """A pool broken by a lost worker: a new one (``get_reusable_executor`` replaces a broken pool)."""
        _LokyBackend._warm_pool = None
        self.start()

    def stop(self, handles, grace_s):
        for f in handles:
            f.cancel()
        running = [f for f in handles if not f.done()]
        if running:
            _, still = concurrent.futures.wait(running, timeout=grace_s)
            if still and self.pool is not None:
                _LokyBackend._warm_pool = None
                self.pool.shutdown(wait=False, kill_workers=True)


#: Ray errors that mean "the worker (or its node) was lost", not "the cell failed".
_RAY_LOST = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError", "OutOfMemoryError",
             "LocalRayletDiedError", "ObjectReconstructionFailedError")


class _RayBackend(_Backend):
    kind = "ray"
    batch_limit = 1  # one task per cell: a retry after a lost worker repeats that cell only

    def __init__(self, executor: RayExecutor, lanes: int) -> None:
        self.executor = executor
        self.lanes = int(lanes)
        self.ray: Any = None
        self._remote: Any = None
        self._warm: Any = None

    def start(self) -> None:
        self.ray = self.executor._ray()
        ex = self.executor
        self._remote = self.ray.remote(run_batch).options(num_cpus=ex.cpus, num_gpus=ex.gpus, max_retries=0,
                                                          name="unlearn_cell")
        self._warm = self.ray.remote(warm_worker).options(num_cpus=ex.cpus, num_gpus=ex.gpus, max_retries=0,
                                                          name="unlearn_warmup")

    def is_warm(self) -> bool:
        ex = self.executor
        if not ex._warm and ex._warmups and self.ray is not None:
            done, _ = self.ray.wait(ex._warmups, num_returns=len(ex._warmups), timeout=0)
            ex._warm = bool(done)
        return ex._warm

    def mark_warm(self) -> None:
        self.executor._warm = True

    def submit_warmup(self, warmup, threads, env):
        return self._warm.remote(warmup.fn if warmup else None, dict(warmup.kwargs) if warmup else None, threads, env)

    def submit(self, calls, cancel, threads, env):
        return self._remote.remote(calls, cancel, threads, env)

    def wait(self, handles, timeout):
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return list(done)

    def result(self, handle):
        try:
            return self.ray.get(handle)
        except Exception as exc:
            if any(b.__name__ in _RAY_LOST for b in type(exc).__mro__):
                raise _LostWorker(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) \
                    from None
            raise _unwrap(exc) from None

    def abandon(self, handles):
        self.executor._warmups = list(handles)

    def stop(self, handles, grace_s):
        for r in handles:
            with contextlib.suppress(Exception):
                self.ray.cancel(r, force=False)
        if handles:
            _, still = self.ray.wait(handles, num_returns=len(handles), timeout=grace_s)
            for r in still:
                with contextlib.suppress(Exception):
                    self.ray.cancel(r, force=True)


# ----------------------------------------------------------------------------------------------------------------
# The scheduler: this process runs cells itself; workers join when the remaining work pays for their start-up
# ----------------------------------------------------------------------------------------------------------------


class _DriverLane:
    """One cell at a time in a helper thread of this process, with the caller's cancel and the map's stop."""

    def __init__(self, cancel: Any, threads: int | None, wake: threading.Event | None = None) -> None:
        self.cancel, self.threads, self.wake = cancel, threads, wake
        self.index: int | None = None
        self.started = 0.0
        self._box: dict[str, Any] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self.index is not None

    def run(self, index: int, cell: Cell) -> None:
        self.index, self.started = index, time.perf_counter()
        self._box, self._done = {}, threading.Event()
        box, done, cancel, threads, wake = self._box, self._done, self.cancel, self.threads, self.wake

        def work() -> None:
            try:
                box["value"] = run_cell(cell.fn, cell.kwargs, cancel, threads)
            except BaseException as exc:  # handed to the scheduler
                box["error"] = exc
            finally:
                done.set()
                if wake is not None:
                    wake.set()

        self._thread = threading.Thread(target=work, name="unlearn-cell", daemon=True)
        self._thread.start()

    def poll(self, timeout: float = 0.0) -> tuple[int, Any, float] | None:
        """(index, value, seconds) of a finished cell, else None; raises the cell's error."""
        if self.index is None or not self._done.wait(timeout):
            return None
        index, seconds = self.index, time.perf_counter() - self.started
        self.index = None
        if "error" in self._box:
            raise self._box["error"]
        return index, self._box.get("value"), seconds

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the running cell to finish (without taking its result)."""
        if self.index is not None:
            self._done.wait(timeout)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def _schedule(
    cells: Sequence[Cell],
    *,
    backend: _Backend | None,
    driver: bool,
    adaptive: bool,
    threads: int | None,
    env: dict[str, str] | None,
    flag: FileFlag | None,
    progress: ProgressFn,
    cancel: Any,
    phase: str,
    warmup: Cell | None,
    grace_s: float,
    max_retries: int,
    start_cost_s: float | None,
) -> tuple[list[Any], Plan]:
    """Run ``cells`` on this process (``driver``) and ``backend``'s workers; their results in cell order.

    With ``adaptive`` the workers start only once the remaining work, estimated from this process's timed cells,
    exceeds their start-up cost; without it they start at once (and ``driver`` is False: every cell goes to them).
    """
    n = len(cells)
    tic = time.perf_counter()
    kind = backend.kind if backend is not None else "processes"
    warm = backend is not None and backend.is_warm() if adaptive else False
    # Workers pre-started with the command (ProcessExecutor.prestart) have paid their start-up beside this
    # process's own: what is left to pay is loading this map's configurations, as for a warm pool.
    prestarted = adaptive and backend is not None and backend.prestarted()
    if start_cost_s is not None:
        cost, measured = float(start_cost_s), True
    elif warm or prestarted:
        cost, measured = WARM_START_S, True
    else:
        cost, measured = CALIBRATION.start_cost(kind)
    lanes = (1 if driver else 0) + (backend.lanes if backend is not None else 0)
    plan = Plan(phase=phase, cells=n, lanes=lanes, adaptive=adaptive, start_cost_s=cost,
                start_cost_measured=measured, prestarted=prestarted)
    meter = _Meter(n, progress, phase)
    stop = threading.Event()
    wake = threading.Event()  # set by every finished cell, warm-up and worker start: the loop sleeps on it
    polled = False  # a backend that cannot call back (Ray): the loop polls it instead
    lane = _DriverLane(_AnyFlag(cancel, stop), threads, wake) if driver else None
    pending: deque[int] = deque(range(n))
    results: list[Any] = [None] * n
    finished = 0
    tries = [0] * n
    inflight: dict[Any, list[int] | None] = {}  # handle → cell indices (None: a warm-up)
    driver_times: list[float] = []
    state = "off"  # off → starting → up
    starter: dict[str, Any] = {}
    start_clock = 0.0

    def note(message: str) -> None:
        if progress is not None:
            progress({"stage": "plan", "phase": phase, "message": message})

    def estimate() -> float:
        """Seconds of work in the cells not yet started, from the cells this process has timed (the fastest one:
        a map's first cell also pays one-time costs) or, before any finished, the running cell's elapsed time."""
        if driver_times:
            per_cell = min(driver_times)
        elif lane is not None and lane.busy:
            per_cell = time.perf_counter() - lane.started
        else:
            per_cell = 0.0
        return per_cell * len(pending)

    def begin_start() -> None:
        nonlocal state, start_clock

        def go() -> None:
            try:
                backend.start()  # type: ignore[union-attr]
            except BaseException as exc:  # handed to the scheduler
                starter["error"] = exc
            finally:
                starter["done"] = True
                wake.set()

        state, start_clock = "starting", time.perf_counter()
        threading.Thread(target=go, name="unlearn-workers-start", daemon=True).start()

    def track(handle: Any, batch: list[int] | None) -> None:
        """A submitted batch (``None``: a warm-up), watched until done."""
        nonlocal polled
        inflight[handle] = batch
        if not backend.notify(handle, wake.set):  # type: ignore[union-attr]
            polled = True

    def take_batch() -> list[int]:
        limit = backend.batch_limit if backend is not None else 1
        size = max(1, min(limit, math.ceil(len(pending) / max(1, 2 * lanes))))
        first = pending.popleft()
        batch = [first]
        while pending and len(batch) < size and cells[pending[0]].group == cells[first].group:
            batch.append(pending.popleft())
        return batch

    def lost(batch: list[int] | None, exc: _LostWorker) -> None:
        """A worker died: its cells are queued again (the finished ones are kept); too many losses fail the map."""
        if batch is not None:
            for i in batch:
                tries[i] += 1
                if tries[i] > max_retries:
                    raise RuntimeError(f"cell {cells[i].label or i!r} lost its worker {tries[i]} times "
                                       f"(max_retries={max_retries}): {exc}") from None
            plan.retries += len(batch)
            pending.extendleft(reversed(batch))
            note(f"{phase}: a worker was lost ({exc}); {len(batch)} cell{'s' * (len(batch) != 1)} queued again, "
                 f"the {finished} finished kept (retry {max(tries[i] for i in batch)} of {max_retries})")
        if backend is not None and backend.restarts_on_loss:
            for other, other_batch in list(inflight.items()):  # a broken loky pool fails every future it holds
                inflight.pop(other)
                if other_batch is not None:
                    pending.extendleft(reversed(other_batch))
            backend.restart()
            for _ in range(backend.lanes):
                track(backend.submit_warmup(warmup, threads, env), None)

    previous_threads = None
    if driver and threads is not None:
        import torch

        previous_threads = torch.get_num_threads()
    try:
        if backend is not None and (not adaptive or warm or prestarted):
            plan.started_at_s, plan.estimate_s = 0.0, None
            begin_start()
        while finished < n:
            wake.clear()  # anything that finishes from here on wakes the wait at the bottom
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            # This process: the next cell, from the end of the queue (workers take from the front: each side keeps
            # running cells of the same configuration).
            if lane is not None:
                out = lane.poll()
                if out is not None:
                    index, value, seconds = out
                    results[index] = value
                    finished += 1
                    plan.in_driver += 1
                    driver_times.append(seconds)
                    meter.tick()
                if not lane.busy and pending:
                    index = pending.pop()
                    if cells[index].label:
                        meter.report(cells[index].label)
                    lane.run(index, cells[index])
            if finished >= n:  # the last cell was this process's: no worker handle to wait for
                break
            # Start the workers once the work left pays for it.
            if backend is not None and state == "off" and pending:
                left = estimate()
                if left > START_MARGIN * cost:
                    plan.started_at_s, plan.estimate_s = time.perf_counter() - tic, left
                    begin_start()
            if state == "starting" and starter.get("done"):
                if "error" in starter:
                    raise starter["error"]
                state = "up"
                if not prestarted and (warmup is None or (adaptive and warm)):
                    backend.mark_warm()  # type: ignore[union-attr]
                else:  # pre-started workers: cells wait until each has imported and loaded the map's configurations
                    for _ in range(backend.lanes):  # type: ignore[union-attr]
                        track(backend.submit_warmup(warmup, threads, env), None)  # type: ignore[union-attr]
            # Feed the workers' free lanes.
            if state == "up":
                while pending and len(inflight) < backend.lanes:  # type: ignore[union-attr]
                    batch = take_batch()
                    calls = [(cells[i].fn, dict(cells[i].kwargs)) for i in batch]
                    track(backend.submit(calls, flag, threads, env), batch)  # type: ignore[union-attr]
            handles = list(inflight) if state == "up" else []
            if handles and polled:
                done = backend.wait(handles, POLL_S if lane is not None and lane.busy else 0.2)  # type: ignore
            else:  # woken by this process's cell, a worker's batch or warm-up, the workers' start; else WAKE_S
                wake.wait(WAKE_S)
                done = backend.wait(handles, 0) if handles else []  # type: ignore[union-attr]
            for handle in done:
                if handle not in inflight:  # dropped with a broken pool below
                    continue
                batch = inflight.pop(handle)
                try:
                    value = backend.result(handle)  # type: ignore[union-attr]
                except _LostWorker as exc:
                    lost(batch, exc)
                    continue
                if batch is None:  # a warm-up: this worker is ready
                    if plan.warm_s is None:
                        plan.warm_s = time.perf_counter() - start_clock
                        if adaptive and not warm and not prestarted:  # a cold start only
                            CALIBRATION.record(kind, plan.warm_s)
                    backend.mark_warm()  # type: ignore[union-attr]
                    continue
                for i, v in zip(batch, value, strict=True):
                    results[i] = v
                    finished += 1
                    plan.in_workers += 1
                    meter.tick(cells[i].label)
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        return results, plan
    except BaseException:
        # A cell failed, the caller cancelled, or the progress callback raised: stop every other cell.
        stop.set()
        if flag is not None:
            flag.set()
        handles = [h for h in inflight]
        if backend is not None and handles:
            backend.stop(handles, grace_s)
        if lane is not None:
            lane.join(grace_s)
        raise
    finally:
        plan.wall_s = time.perf_counter() - tic
        warming = [h for h, b in inflight.items() if b is None]
        if backend is not None and warming:
            backend.abandon(warming)
        if previous_threads is not None:
            import torch

            torch.set_num_threads(previous_threads)


# ----------------------------------------------------------------------------------------------------------------
# Executors
# ----------------------------------------------------------------------------------------------------------------


class Executor(ABC):
    """Maps cells to results, in cell order. Subclasses: :class:`SerialExecutor`, :class:`ProcessExecutor`,
    :class:`RayExecutor`."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self.plans: list[Plan] = []

    @abstractmethod
    def map(
        self,
        cells: Sequence[Cell],
        *,
        progress: ProgressFn = None,
        cancel: threading.Event | None = None,
        phase: str = "cells",
        warmup: Cell | None = None,
    ) -> list[Any]:
        """Run every cell; return their results in the order of ``cells``.

        ``warmup``: what a fresh worker runs before its first cell (the experiment's configurations, loaded into
        the worker's memo). Raises the first cell error (after stopping the other cells), or :class:`Cancelled`
        when ``cancel`` is set.
        """

    def prestart(self) -> bool:
        """Start workers ahead of the first map, where that pays (only :class:`ProcessExecutor` does); True if it
        started any."""
        return False

    def describe(self) -> str:
        """One line for the CLI and the dashboard, e.g. ``processes (2 workers, 1 torch thread each)``."""
        return self.name

    def report(self) -> list[dict[str, Any]]:
        """Where the cells of every map ran and why (the result metadata: JSON-ready)."""
        return [p.to_dict() for p in self.plans]

    def close(self) -> None:  # noqa: B027 - a no-op unless the executor started something
        """Release what this executor started (a local Ray); reusable worker pools stay warm."""


class SerialExecutor(Executor):
    """Cells one after another in this process (the default). ``threads_per_cell`` None leaves torch alone."""

    name = "serial"

    def __init__(self, *, threads_per_cell: int | None = None) -> None:
        super().__init__()
        self.threads = threads_per_cell

    def map(self, cells, *, progress=None, cancel=None, phase="cells", warmup=None):
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
    """This process and local worker processes (joblib's loky, reused between maps).

    ``workers`` (default: the CPU count) cells run at once: with ``adaptive`` (default) one of them is this
    process and ``workers − 1`` are worker processes started only when the work pays for it; without it,
    ``workers`` worker processes take every cell. ``start_cost_s`` overrides the measured start-up cost.
    """

    name = "processes"

    def __init__(self, *, workers: int | None = None, threads_per_cell: int = 1, grace_s: float = GRACE_S,
                 adaptive: bool = True, max_retries: int = MAX_RETRIES, start_cost_s: float | None = None,
                 prestart: str = "auto") -> None:
        super().__init__()
        self.workers = int(workers or os.cpu_count() or 1)
        self.threads = int(threads_per_cell)
        self.grace_s = float(grace_s)
        self.adaptive = bool(adaptive)
        self.max_retries = int(max_retries)
        self.start_cost_s = start_cost_s
        if prestart not in PRESTART_CHOICES:
            raise ConfigError(f"prestart={prestart!r} is not valid: choose one of {', '.join(PRESTART_CHOICES)}")
        self.prestart_mode = prestart

    def map(self, cells, *, progress=None, cancel=None, phase="cells", warmup=None):
        if not cells:
            return []
        extra = self.workers - 1 if self.adaptive else self.workers
        backend = _LokyBackend(extra) if extra >= 1 else None
        flag_dir = tempfile.mkdtemp(prefix="unlearn-cancel-")
        try:
            results, plan = _schedule(
                cells, backend=backend, driver=self.adaptive, adaptive=self.adaptive, threads=self.threads,
                env=driver_env(), flag=FileFlag(Path(flag_dir) / "cancel"), progress=progress, cancel=cancel,
                phase=phase, warmup=warmup, grace_s=self.grace_s, max_retries=self.max_retries,
                start_cost_s=self.start_cost_s)
        finally:
            shutil.rmtree(flag_dir, ignore_errors=True)
        self.plans.append(plan)
        if progress is not None:
            progress({"stage": "plan", "phase": phase, "message": plan.message(), "plan": plan.to_dict()})
        return results

    def prestart(self) -> bool:
        """Start the worker processes now, in the background, each importing the engine; True if it did.

        Why: a fresh worker's start-up (≈ 3–6 s on a 2-core machine: torch, the engine, then the data and models)
        was paid after this process's own (parsing, validation, the pre-flight estimate: ≈ 6 s), so on a
        30-s experiment the second core idled for a third of the run. Started with the command, the workers import
        beside it, and the maps then count only the loading of their configurations (:data:`WARM_START_S`) as the
        start-up cost. Only when it can pay: ``adaptive`` with at least one worker process, and a core to spare
        (:func:`idle_core`; ``prestart`` — ``UNLEARN_PRESTART`` through :func:`get_executor` — ``"1"`` or ``"0"``
        decides instead); a map still sends them cells only when its work exceeds that cost. The CLI's
        ``experiment`` commands call it; the dashboard keeps its pool warm between runs instead.
        """
        wanted = self.prestart_mode == "1" or (self.prestart_mode == "auto" and idle_core())
        if not self.adaptive or self.workers < 2 or not wanted:
            return False
        return _LokyBackend.prestart(self.workers - 1, self.threads, driver_env())

    def describe(self) -> str:
        threads = f"{self.threads} torch thread{'s' if self.threads > 1 else ''} each"
        if not self.adaptive:
            return f"processes ({self.workers} workers, {threads})"
        return (f"processes ({self.workers} workers: this process and up to {self.workers - 1} worker "
                f"process{'es' * (self.workers != 2)} started when the work pays for it, {threads})")


class RayExecutor(Executor):
    """Ray core tasks: a local Ray started on demand, or an existing cluster at ``address``.

    Args:
        address: ``HOST:PORT`` (the GCS address ``ray start --head`` prints), ``ray://HOST:PORT`` (Ray Client) or
            ``auto``; ``None`` uses ``RAY_ADDRESS`` when set, else starts a local Ray with ``num_cpus`` CPUs.
            Checked at once (:func:`unlearn_core.ray_cluster.parse_address`); joined within ``connect_timeout_s``.
        gpus_per_cell: GPUs reserved per cell, fractional allowed (0.25 → four cells per GPU).
        cpus_per_cell: CPUs reserved per cell (Ray's scheduling unit).
        threads_per_cell: torch threads inside each cell (default: ``cpus_per_cell``).
        num_cpus: CPUs of a local Ray (default: all); ignored for a cluster.
        adaptive: a local Ray without GPUs runs cells in this process and starts Ray only when the work pays
            for it (as :class:`ProcessExecutor`); a cluster always gets every cell.
        max_retries: times a cell whose worker was lost is queued again.
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
        adaptive: bool = True,
        max_retries: int = MAX_RETRIES,
        connect_timeout_s: float | None = None,
        start_cost_s: float | None = None,
    ) -> None:
        from unlearn_core import ray_cluster

        super().__init__()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.parsed = ray_cluster.parse_address(self.address) if self.address else None
        self.connect_timeout_s = (ray_cluster.timeout_from_env() if connect_timeout_s is None
                                  else ray_cluster.check_timeout(connect_timeout_s))
        self.gpus = float(gpus_per_cell)
        self.cpus = float(cpus_per_cell)
        self.threads = int(threads_per_cell if threads_per_cell is not None else max(1, math.floor(self.cpus)))
        self.num_cpus = num_cpus
        self.grace_s = float(grace_s)
        self.adaptive = bool(adaptive) and self.address is None and self.gpus == 0
        self.max_retries = int(max_retries)
        self.start_cost_s = start_cost_s
        self._started = False
        self._warm = False
        self._warmups: list[Any] = []
        self.start_s: float | None = None

    @property
    def local(self) -> bool:
        return self.address is None

    def _lanes(self) -> int:
        total = int(self.num_cpus or os.cpu_count() or 1)
        return max(1, total - 1) if self.adaptive else total

    @staticmethod
    def _require() -> None:
        """The one-line error for a missing extra, before any work (without importing Ray, which takes seconds)."""
        import importlib.util
        import sys

        if "ray" in sys.modules:
            present = sys.modules["ray"] is not None
        else:
            present = importlib.util.find_spec("ray") is not None
        if not present:
            raise ConfigError("executor 'ray' needs the optional cluster extra: pip install -r "
                              "requirements-cluster.txt (or pip install '.[cluster]')")

    def _ray(self) -> Any:
        self._require()
        import ray

        if not ray.is_initialized():
            tic = time.perf_counter()
            if self.local:
                # Local workers run this checkout's code and see the driver's cache and data directories.
                root = str(Path(__file__).resolve().parents[1])
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
                # address="local": always a new local instance, never a cluster some earlier `ray start` left
                # behind in /tmp/ray (ray.init's default would try to join it).
                ray.init(address="local", num_cpus=self._lanes(), include_dashboard=False,
                         log_to_driver=False, configure_logging=False,
                         runtime_env={"env_vars": {**driver_env(), "PYTHONPATH": path}})
            else:
                # A cluster gets this package shipped with the job; its nodes need torch & co. installed and
                # their own UNLEARN_CACHE_DIR / UNLEARN_DATA_DIR (paths on this machine mean nothing there).
                import unlearn_core
                from unlearn_core import ray_cluster

                ray_cluster.connect(self.parsed, timeout_s=self.connect_timeout_s, init_kwargs={
                    "runtime_env": {"py_modules": [str(Path(unlearn_core.__file__).parent)]},
                    "log_to_driver": False})
            self._started = True
            self.start_s = time.perf_counter() - tic
        return ray

    def map(self, cells, *, progress=None, cancel=None, phase="cells", warmup=None):
        if not cells:
            return []
        self._require()
        if not self.adaptive:
            self._ray()  # a cluster (or a forced local Ray): join it before anything else, in the caller's thread
        backend = _RayBackend(self, self._lanes())
        # On one machine the file flag lets a cell stop cooperatively; ray.cancel is what reaches other machines.
        flag_dir = tempfile.mkdtemp(prefix="unlearn-cancel-") if self.local else None
        try:
            results, plan = _schedule(
                cells, backend=backend, driver=self.adaptive, adaptive=self.adaptive, threads=self.threads,
                env=driver_env() if self.local else None,
                flag=FileFlag(Path(flag_dir) / "cancel") if flag_dir else None, progress=progress, cancel=cancel,
                phase=phase, warmup=warmup if self.local else None, grace_s=self.grace_s,
                max_retries=self.max_retries, start_cost_s=self.start_cost_s)
        finally:
            if flag_dir:
                shutil.rmtree(flag_dir, ignore_errors=True)
        self.plans.append(plan)
        if progress is not None:
            progress({"stage": "plan", "phase": phase, "message": plan.message(), "plan": plan.to_dict()})
        return results

    def describe(self) -> str:
        where = f"cluster {self.address}" if not self.local else "local Ray"
        gpus = f", {self.gpus:g} GPU per cell" if self.gpus else ""
        when = ", started when the work pays for it" if self.adaptive else ""
        return f"ray ({where}, {self.cpus:g} CPU per cell{gpus}{when})"

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
            self._warm = False


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
    adaptive: bool = True,
    max_retries: int = MAX_RETRIES,
    connect_timeout_s: float | None = None,
) -> Executor:
    """The executor called ``name`` with its options, validated (one-line :class:`ConfigError` otherwise).

    ``address``, ``gpus_per_cell`` and ``connect_timeout_s`` belong to ``ray``; ``workers`` to ``processes`` (and
    a local Ray's CPUs), at most the machine's cores (more only preempt each other).
    """
    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r} is not valid: choose one of {', '.join(EXECUTORS)}")
    cores = os.cpu_count() or 1
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or not
                                1 <= workers <= max(cores, 1)):
        if name == "ray" and address and isinstance(workers, int) and workers >= 1:
            pass  # a cluster's size is the cluster's: --workers only sizes a local Ray
        else:
            raise ConfigError(f"workers={workers!r} is not valid: expected an integer in [1, {cores}] (the cores of "
                              "this machine)")
    if threads_per_cell is not None and (not isinstance(threads_per_cell, int) or threads_per_cell < 1):
        raise ConfigError(f"threads_per_cell={threads_per_cell!r} is not valid: expected an integer ≥ 1")
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or not 0 <= max_retries <= 100:
        raise ConfigError(f"max_retries={max_retries!r} is not valid: expected an integer in [0, 100]")
    gpus = float(gpus_per_cell or 0.0)
    if not (math.isfinite(gpus) and 0.0 <= gpus <= 64):
        raise ConfigError(f"gpus_per_cell={gpus_per_cell!r} is not valid: expected a number in [0, 64], e.g. 0.25")
    if name != "ray" and gpus:
        raise ConfigError(f"gpus_per_cell={gpus:g} needs executor 'ray' (got {name!r})")
    if name != "ray" and address:
        raise ConfigError(f"address={address!r} needs executor 'ray' (got {name!r})")
    if name != "ray" and connect_timeout_s is not None:
        raise ConfigError(f"connect_timeout_s={connect_timeout_s!r} needs executor 'ray' (got {name!r})")
    if name == "serial":
        return SerialExecutor(threads_per_cell=threads_per_cell)
    if name == "processes":
        return ProcessExecutor(workers=workers, threads_per_cell=threads_per_cell or 1, adaptive=adaptive,
                               max_retries=max_retries, prestart=prestart_from_env())
    return RayExecutor(address=address, gpus_per_cell=gpus, threads_per_cell=threads_per_cell, num_cpus=workers,
                       adaptive=adaptive, max_retries=max_retries, connect_timeout_s=connect_timeout_s)


def executor_from_env(environ: Mapping[str, str] | None = None) -> Executor | None:
    """The executor an operator configured for the dashboard, or ``None`` (serial) when none is.

    ``UNLEARN_EXECUTOR`` = serial | processes | ray; ``UNLEARN_WORKERS`` (processes; a local Ray's CPUs);
    ``UNLEARN_RAY_ADDRESS`` (or Ray's own ``RAY_ADDRESS``), ``UNLEARN_GPUS_PER_CELL`` and ``UNLEARN_RAY_TIMEOUT``
    (ray).
    """
    from unlearn_core import ray_cluster

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
    timeout = ray_cluster.timeout_from_env(dict(env)) if name == "ray" else None
    return get_executor(name, workers=workers, address=env.get(ENV_ADDRESS) or None, gpus_per_cell=gpus,
                        connect_timeout_s=timeout)


def resolve(executor: Executor | str | None) -> Executor:
    """``None`` → serial; a name → :func:`get_executor` with defaults; an executor → itself."""
    if executor is None:
        return SerialExecutor()
    if isinstance(executor, str):
        return get_executor(executor)
    return executor
