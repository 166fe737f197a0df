"""How long a work estimate takes on this device: its measured step overhead and arithmetic rate.

A run's work is estimated before anything runs (:mod:`unlearn_core.limits`, :func:`unlearn_core.preflight.estimate_run`)
as floating-point operations and *steps* per stage (an optimizer step, a Hessian-vector product, a solver
iteration). Its time on a device is modelled as

    seconds = flops / rate + steps × overhead

because the two regimes both occur here: a digits MLP's training step is a few thousand multiply-adds, all
overhead (Python, the optimizer, kernel launches); an MNIST CNN's is arithmetic. Both numbers are *measured* on
this device (:func:`calibrate`: a small and a larger training step, solved for the overhead and the rate) and
stored per device in the cache directory (``device-calibration.json``), so that the dashboard can show a time
beside Run before it is pressed, and the CLI before it starts. A measurement is redone after
:data:`MAX_AGE_S`, or when torch or the thread count changes.

The estimate is what the configuration asks for (L-BFGS's ``max_iter``, CG's ``max_iter``, noisy fine-tuning's
``max_noisy_steps`` are caps: the run may stop earlier), on a machine as loaded as when it was measured. During a
run the job's ETA corrects it with the stages' measured durations (:meth:`unlearn_core.service.jobs.Job.eta_s`).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from unlearn_core.limits import Estimate

#: A calibration older than this is measured again (the machine or its load may have changed).
MAX_AGE_S = 7 * 24 * 3600.0
#: The stages of one run, in order; each estimate's ``work`` is keyed by these.
STAGES = ("train", "retrain", "unlearn", "metrics")
FILE_NAME = "device-calibration.json"

_MEMO: dict[str, Calibration] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Calibration:
    """A device's measured speed: seconds per step (fixed overhead) and floating-point operations per second."""

    device: str
    threads: int
    torch: str
    step_s: float
    flops_per_s: float
    measured_at: float

    def seconds(self, flops: float, steps: float) -> float:
        return flops / self.flops_per_s + steps * self.step_s


def _key(device: Any, threads: int) -> tuple[str, str, str]:
    import torch

    from unlearn_core.device import describe_device

    dev = torch.device(device) if device is not None else torch.device("cpu")
    name = describe_device(dev)
    return f"{name}|threads={threads}|torch={torch.__version__}", name, torch.__version__


def _measure(device: Any, *, repeats: int = 3) -> tuple[float, float]:
    """``(step_s, flops_per_s)`` from two training steps (Adam, cross-entropy) of MLPs: one so small that its time is
    all overhead, one large enough that its time is mostly arithmetic. The median of ``repeats`` timings each."""
    import torch
    from torch import nn

    dev = torch.device(device) if device is not None else torch.device("cpu")

    def per_step(widths: tuple[int, ...], batch: int, steps: int) -> tuple[float, float]:
        gen = torch.Generator().manual_seed(0)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU()]
        model = nn.Sequential(*layers[:-1]).to(dev)
        x = torch.randn(batch, widths[0], generator=gen).to(dev)
        y = torch.randint(0, widths[-1], (batch,), generator=gen).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        fwd = 2.0 * sum(a * b for a, b in itertools.pairwise(widths))

        def run(n: int) -> None:
            for _ in range(n):
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        run(2)  # warm-up: allocations, the first optimizer step's lazy imports
        times = []
        for _ in range(repeats):
            tic = time.perf_counter()
            run(steps)
            times.append((time.perf_counter() - tic) / steps)
        return sorted(times)[len(times) // 2], 3.0 * fwd * batch

    t_small, f_small = per_step((64, 32, 32, 10), 64, 40)
    t_big, f_big = per_step((784, 512, 512, 10), 256, 6)
    if t_big > t_small * 1.05:
        rate = (f_big - f_small) / (t_big - t_small)
        step = max(1e-6, t_small - f_small / rate)
    else:  # noise: the larger step was not measurably slower; call it all overhead and the rate the large step's
        rate, step = f_big / t_big, max(1e-6, t_small)
    return step, rate


def _path() -> Any:
    from unlearn_core.paths import cache_dir

    return cache_dir() / FILE_NAME


def calibrate(device: Any = None, *, threads: int | None = None, refresh: bool = False,
              measure: bool = True) -> Calibration | None:
    """This device's :class:`Calibration` at ``threads`` torch threads (default: torch's current setting): from
    memory, else from the cache directory (when younger than :data:`MAX_AGE_S`), else measured (≈ 0.3–1 s, at that
    thread count) and stored. Never raises for a cache that cannot be written.

    The thread count matters more than anything on a shared CPU: on the loaded 2-core machine a small training
    step took 14–22 ms on one thread and 170–200 ms on two (spinning OpenMP threads preempting each other), so a
    run is estimated at the threads it will use (the CLI's ``threads_for``, the dashboard's jobs' setting).

    ``measure=False``: only what is known already (``None`` otherwise) — for a page, which must not spend a second
    measuring on its script thread (the dashboard's warm-up thread measures instead).
    """
    import torch

    threads = int(threads or torch.get_num_threads())
    key, name, version = _key(device, threads)
    with _LOCK:
        if not refresh and key in _MEMO:
            return _MEMO[key]
    stored: dict[str, Any] = {}
    path = _path()
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict):
            stored = {}
    except (OSError, ValueError):
        stored = {}
    entry = stored.get(key)
    found = None
    if not refresh and isinstance(entry, dict):
        try:
            found = Calibration(**entry)
        except TypeError:
            found = None
        if found is not None and (time.time() - found.measured_at > MAX_AGE_S or not (
                found.step_s > 0 and found.flops_per_s > 0 and math.isfinite(found.flops_per_s))):
            found = None
    if found is None and not measure:
        return None
    if found is None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            step, rate = _measure(device)
        finally:
            torch.set_num_threads(previous)
        found = Calibration(device=name, threads=threads, torch=version, step_s=step, flops_per_s=rate,
                            measured_at=time.time())
        try:
            from unlearn_core.jsonio import write_files_atomic

            write_files_atomic({path: json.dumps({**stored, key: asdict(found)}, indent=1)})
        except Exception:  # a read-only cache only costs a measurement per process
            pass
    with _LOCK:
        _MEMO[key] = found
    return found


def stage_seconds(estimate: Estimate, calibration: Calibration, *,
                  cached: dict[str, bool] | None = None) -> dict[str, float]:
    """Seconds per run stage of ``estimate`` on ``calibration``'s device; a stage whose model is in the cache
    (``cached["train"]``, ``cached["retrain"]``) costs nothing."""
    cached = cached or {}
    return {stage: 0.0 if cached.get(stage) else calibration.seconds(flops, steps)
            for stage, (flops, steps) in estimate.work.items()}


def format_duration(seconds: float) -> str:
    """``7.3`` → ``"7 s"``, ``200`` → ``"3 min 20 s"``, ``9000`` → ``"2.5 h"``, ``400000`` → ``"4.6 days"``."""
    if not math.isfinite(seconds):
        return "∞"
    if seconds < 1:
        return "under 1 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if minutes < 10 and rest else f"{minutes} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.2g} h" if seconds < 36000 else f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.2g} days"


def describe_estimate(seconds: dict[str, float], *, caps: bool | list[str] = False) -> str:
    """One line: the total and its largest stages, e.g. ``about 2 min 30 s on this device (train 1 min 10 s,
    retrain 1 min 5 s, unlearn 15 s)``; ``caps``: some counts are caps (say "at most")."""
    total = sum(seconds.values())
    names = {"train": "train", "retrain": "retrain", "unlearn": "unlearn", "metrics": "metrics"}
    parts = [f"{names.get(k, k)} {format_duration(v)}" for k, v in seconds.items() if v >= 1]
    lead = "at most about" if caps else "about"
    return f"{lead} {format_duration(total)} on this device" + (f" ({', '.join(parts)})" if parts else "")
