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
#: :func:`intra_op_threads`; measured by ``bench/bench_threads.py``).
PARALLEL_STEP_FLOPS = 5e8


def intra_op_threads(*, step_flops: float, cores: int | None = None) -> int:
    """torch's intra-op threads for work of ``step_flops`` per training step: 1 below :data:`PARALLEL_STEP_FLOPS`,
    else every core.

    Why: splitting a small operation over threads costs more (waking the workers, their spin-wait at the barrier)
    than it saves, and when another process holds a core, a worker that waits for it stalls every operation.
    """
    cores = cores or os.cpu_count() or 1
    if step_flops < PARALLEL_STEP_FLOPS:
        return 1
    return max(1, cores)
