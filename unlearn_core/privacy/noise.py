r"""Where a release's Gaussian noise comes from: :class:`NoiseSource`, the one way every certified method draws it.

A certificate says that the released weights :math:`\tilde w + \xi`, :math:`\xi \sim N(0, \sigma^2 I)`, hide the
forgotten data — but only from someone who does not know ξ. If ξ can be regenerated (from a seed written in the
run card, say), the noise-free weights are one subtraction away and the guarantee is ε = ∞. So:

* **secure** (the default of every run): ξ is drawn from the operating system's cryptographically secure
  generator (``os.urandom``: the kernel's CSPRNG) and nothing that could regenerate it is kept or recorded —
  Opacus's ``secure_mode`` for the same reason. Two runs of the same configuration release different models.
  Why not a ``torch.Generator`` seeded from ``secrets``: torch's CPU generator (MT19937) uses only the low 32 bits
  of its seed, so its whole noise vector is one of 2³² — a search an attacker can run.
* **reproducible** (``RunConfig.reproducible``, ``--reproducible``): ξ comes from a ``torch.Generator`` seeded from
  the run's seed, so the run can be repeated exactly — and anyone with the run card can subtract the noise. Such
  a run is a **simulation, not a release**, and every surface that shows it says so
  (:data:`SIMULATION_LABEL`). The experiments (compare, audit, frontier, sensitivity over seeds, …) need many
  seeded runs and are simulations by nature: they run in this mode.

The secure Gaussian is Box–Muller on 53-bit uniforms from ``os.urandom``, computed in float64: the tails are cut at
:math:`\sqrt{106\ln 2}\approx 8.6\sigma` (a probability of 2⁻⁵³ per pair) — the same kind of floating-point caveat as
every floating-point Gaussian mechanism, ``torch.randn`` included (Mironov, CCS 2012).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import torch

#: The label of a run whose release noise can be regenerated (every surface that shows such a run shows it).
SIMULATION_LABEL = "simulation — not a release"
#: Why, in one sentence (the run card's ``release.why``, the certificate's note).
SIMULATION_WHY = ("reproducible mode: the release noise was drawn from a generator seeded from the run's seed, so "
                  "anyone with the run card can regenerate it and subtract it — the guarantee holds only against "
                  "someone who does not know the seed")
SECURE_WHY = ("secure mode: the release noise was drawn from the operating system's cryptographically secure "
              "generator (os.urandom) and nothing that could regenerate it was recorded")

#: Uniforms drawn per ``os.urandom`` call (8 bytes each): bounds the temporary memory of a large draw.
_CHUNK = 1 << 20
_TWO_PI = 2.0 * math.pi


def _secure_standard_normal(count: int) -> torch.Tensor:
    """``count`` independent N(0, 1) draws in float64 from ``os.urandom``: Box–Muller on 53-bit uniforms."""
    pairs = (count + 1) // 2
    out = torch.empty(2 * pairs, dtype=torch.float64)
    done = 0
    while done < pairs:
        m = min(_CHUNK, pairs - done)
        raw = torch.frombuffer(bytearray(os.urandom(16 * m)), dtype=torch.int64).view(m, 2)
        # The top 53 bits of each 64-bit word, as an integer k in [0, 2⁵³); u1 = (k + 1)/2⁵³ ∈ (0, 1] (log-safe),
        # u2 = k/2⁵³ ∈ [0, 1). The shift is arithmetic on int64, so the sign bit is masked off after it.
        k = (raw >> 11) & ((1 << 53) - 1)
        u1 = (k[:, 0].to(torch.float64) + 1.0) * 2.0**-53
        u2 = k[:, 1].to(torch.float64) * 2.0**-53
        radius = torch.sqrt(-2.0 * torch.log(u1))
        angle = _TWO_PI * u2
        out[2 * done : 2 * (done + m)] = torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)),
                                                     dim=1).reshape(-1)
        done += m
    return out[:count]


class NoiseSource:
    """The source of one run's release noise: :meth:`secure` (the default) or :meth:`reproducible` (a simulation).

    Use :meth:`gaussian` for a noise tensor and :meth:`add_gaussian_` to noise tensors in place; :attr:`simulation`
    says whether the noise can be regenerated from something the run records. Build it with
    :meth:`unlearn_core.unlearners.base.UnlearnContext.release_noise`, which picks the mode from the run's
    configuration. Nothing about a secure source (no key, no state) is ever exposed: :meth:`describe` gives the mode
    only.
    """

    __slots__ = ("_generator",)

    def __init__(self, generator: torch.Generator | None) -> None:
        self._generator = generator

    @classmethod
    def secure(cls) -> NoiseSource:
        """Noise from ``os.urandom``: unpredictable, never recorded, different on every run."""
        return cls(None)

    @classmethod
    def reproducible(cls, generator: torch.Generator) -> NoiseSource:
        """Noise from a seeded ``torch.Generator``: repeatable, so the run is a simulation, not a release."""
        return cls(generator)

    @property
    def simulation(self) -> bool:
        """True when the noise can be regenerated (reproducible mode): the run is not a private release."""
        return self._generator is not None

    @property
    def mode(self) -> str:
        return "reproducible" if self.simulation else "secure"

    def gaussian(self, shape: int | tuple[int, ...] | torch.Size, *, sigma: float,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        """A tensor of i.i.d. N(0, σ²) draws of ``shape`` (drawn on the CPU, then moved to ``device``)."""
        size = torch.Size((shape,) if isinstance(shape, int) else tuple(shape))
        if self._generator is not None:
            noise = torch.randn(size, generator=self._generator, dtype=dtype)
            return (noise * sigma).to(device)
        count = math.prod(size)
        return (_secure_standard_normal(count) * float(sigma)).to(dtype).reshape(size).to(device)

    @torch.no_grad()
    def add_gaussian_(self, tensors: Iterable[torch.Tensor], sigma: float) -> None:
        """w ← w + N(0, σ²I) on every tensor (nothing when σ ≤ 0)."""
        if sigma <= 0:
            return
        for t in tensors:
            if self._generator is not None:
                # Exactly the draws of the earlier seeded releases: a reproducible run repeats them bit for bit.
                t.add_(torch.randn(t.shape, generator=self._generator, dtype=t.dtype).to(t.device), alpha=sigma)
            else:
                t.add_(self.gaussian(t.shape, sigma=1.0, dtype=t.dtype, device=t.device), alpha=sigma)

    def describe(self) -> dict[str, Any]:
        """What the run card records about the noise: the mode and what it means — never a seed or a state."""
        return release_record(reproducible=self.simulation)

    def __repr__(self) -> str:  # never shows a generator's state
        return f"NoiseSource({self.mode})"


def release_record(*, reproducible: bool) -> dict[str, Any]:
    """The run card's ``release`` section for a run in ``reproducible`` mode or not (:meth:`NoiseSource.describe`)."""
    return {"noise": "reproducible" if reproducible else "secure", "simulation": bool(reproducible),
            "label": SIMULATION_LABEL if reproducible else "release",
            "why": SIMULATION_WHY if reproducible else SECURE_WHY}
