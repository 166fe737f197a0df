"""The one place Descent-to-Delete, Langevin unlearning and Rewind-to-Delete draw their Gaussian noise.

A release's noise must not be reproducible by whoever reads the run card: it comes from the run's
:class:`~unlearn_core.privacy.noise.NoiseSource` (``UnlearnContext.release_noise``) — the operating system's secure
generator by default, a seeded generator only in ``reproducible`` mode, where the run is labelled a simulation.
"""

from __future__ import annotations

import torch

from unlearn_core.privacy.noise import NoiseSource


def gaussian_noise(numel: int, std: float, *, source: NoiseSource, dtype: torch.dtype,
                   device: torch.device | str) -> torch.Tensor:
    """N(0, std²·I) of ``numel`` coordinates from ``source`` (drawn on the CPU, moved to ``device``)."""
    if std <= 0:
        return torch.zeros(int(numel), dtype=dtype, device=device)
    return source.gaussian(int(numel), sigma=float(std), dtype=dtype, device=device)
