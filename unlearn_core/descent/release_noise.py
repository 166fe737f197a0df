"""The one place Descent-to-Delete, Langevin unlearning and Rewind-to-Delete draw their Gaussian noise.

A release's noise must not be reproducible by whoever reads the run card; the package is moving release noise to a
secure source with a reproducible mode. Until that lands here, the noise comes from the context's seeded generator,
through this single function, so switching all three methods is a change to this one body.
"""

from __future__ import annotations

import torch


def gaussian_noise(numel: int, std: float, *, generator: torch.Generator, dtype: torch.dtype,
                   device: torch.device | str) -> torch.Tensor:
    """N(0, std²·I) of ``numel`` coordinates, drawn on the CPU from ``generator`` and moved to ``device``."""
    if std <= 0:
        return torch.zeros(int(numel), dtype=dtype, device=device)
    return (float(std) * torch.randn(int(numel), generator=generator, dtype=dtype)).to(device)
