"""The playground's noise: every Gaussian draw its clouds and its guessing game show comes from here.

The clouds are a **simulation** of what a release could look like: they are drawn from explicitly seeded
generators (the same picture for the same link), never from the source a real release uses. Keeping every draw in
this one module is what lets the engine follow a change of the package's release-noise API in one place. (A
method whose noise is inside it — noisy fine-tuning — draws its own, from the seed the engine gives its context:
``engine._unlearn_model``.)
"""

from __future__ import annotations

import torch

from unlearn_core.privacy.noise import NoiseSource

#: Streams of the simulation: the clouds of the page and the rounds of the game never share draws.
CLOUD_STREAM = 1
GAME_STREAM = 2


def simulation_generator(seed: int, *stream: int) -> torch.Generator:
    """A CPU generator for one simulated draw, seeded by ``seed`` and the stream numbers (e.g. cloud, side, draw).

    The mixing is an explicit polynomial hash, so that (seed, stream) pairs map to distinct, reproducible seeds on
    every platform (``hash()`` of a tuple is salted per process for strings and is not used).
    """
    value = int(seed) % (2**61 - 1)
    for part in stream:
        value = (value * 1_000_003 + int(part) + 7919) % (2**61 - 1)
    return torch.Generator().manual_seed(value)


def draw_release_noise(num_params: int, sigma: float, *, generator: torch.Generator,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """ξ ~ N(0, σ² I_p), a simulated draw of the Gaussian mechanism's release noise (the playground's only draw).

    Args:
        num_params: p, the dimension of the released parameter vector.
        sigma: the standard deviation per coordinate (the certificate's σ used); 0 gives zeros.
        generator: from :func:`simulation_generator` — a seeded simulation, not a private release.
    """
    if sigma < 0:
        raise ValueError(f"sigma={sigma!r} must be ≥ 0")
    # The package's one noise API, in its reproducible (simulation) mode: never the secure source of a release.
    noise = NoiseSource.reproducible(generator).gaussian(int(num_params), sigma=1.0, dtype=torch.float64)
    return (noise * float(sigma)).to(dtype)
