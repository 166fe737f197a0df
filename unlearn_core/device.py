"""Device selection: CUDA, then MPS, then CPU, overridable by the user."""

from __future__ import annotations

import os

import torch

from unlearn_core.errors import ConfigError, abbreviate

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for ``name``.

    ``auto`` picks CUDA when available, then Apple's MPS, then the CPU. Asking for an accelerator that is not
    present is a user error (one line), not a silent fallback: a benchmark run on the wrong device is worse
    than no run.
    """
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise ConfigError(f"device {abbreviate(name)} is not valid: choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} is not available on this machine: use 'auto' or 'cpu'")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' is not available on this machine: use 'auto' or 'cpu'")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A human label such as ``cuda (NVIDIA H100)`` or ``cpu``, shown in run cards and the UI."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


#: Floating-point operations per training step below which torch gets one intra-op thread (see
#: :func:`intra_op_threads`; ``bench/bench_threads.py`` measured the crossover between the MNIST MLP 32-32,
#: 2·10⁷ per step, where two threads were 5–23× slower, and the 256-256 one, 2·10⁸, where they were 1.4× faster on
#: a lightly loaded 2-core machine).
PARALLEL_STEP_FLOPS = 1e8


def intra_op_threads(*, step_flops: float, cores: int | None = None, load: float | None = None) -> int:
    """torch's intra-op threads for work of ``step_flops`` per training step.

    The rule: one thread below :data:`PARALLEL_STEP_FLOPS`; above it, one per core that the last minute's load
    average (``load``, default ``os.getloadavg()[0]``) leaves free, at least one.

    Why, measured side by side on a 2-core machine (``bench/bench_threads.py``): splitting a small step over
    threads costs more than it saves (a digits MLP step: 0.9–1.9 ms on one thread, 7–10 ms on two, with the
    machine otherwise lightly loaded); and when another process holds a core, every parallel region waits for
    the worker that has no core — two threads were then 4–30× slower than one for *every* model measured, from
    the digits MLP to AllCNN, while on an idle machine two threads gain at most about 1.6× for the larger ones.
    The loss is much bigger than the gain, so a busy core settles it.
    """
    cores = cores or os.cpu_count() or 1
    if step_flops < PARALLEL_STEP_FLOPS:
        return 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (OSError, AttributeError):  # not available on this platform: assume idle
            load = 0.0
    return max(1, min(cores, cores - int(load + 0.5)))
