r"""The guessing game: "which of these two clouds came from the model that never saw the deleted points?"

Each round shows two clouds of ``draws`` simulated releases: one from the unlearned model, one from the model that
never saw the points (the retrained one), in random order. The student guesses which is which. The certificate is
a promise about exactly this game — an (ε, δ) bound on how well *any* test can tell the two distributions apart —
so a running score over many rounds is the empirical audit (the Audit page) in miniature.

Three reference numbers frame the student's score:

* **chance**, 50 %;
* **the ideal guesser** (:func:`ideal_guess`), who knows both noise-free models :math:`c_u` (unlearned) and
  :math:`c_r` (retrained) and picks the assignment with the smaller total squared distance,
  :math:`\lVert\bar a - c_r\rVert^2 + \lVert\bar b - c_u\rVert^2` against the swap (:math:`\bar a`, :math:`\bar b`:
  the mean parameters of each cloud). For isotropic Gaussian releases of equal σ this is the likelihood-ratio test
  of the two orders, the most accurate test there is (Neyman & Pearson 1933): its accuracy is
  :func:`gaussian_ideal_accuracy`, :math:`\Phi\big(\sqrt m\,D/(\sqrt2\,\sigma)\big)` with
  :math:`D = \lVert c_u - c_r\rVert`. No student looking at boundaries (a function of the parameters) can beat it;
* **the certificate's promise**: for the Gaussian mechanism at sensitivity Δ the same formula with D = Δ
  (:func:`gaussian_certified_cap`: the best accuracy whatever the step, as long as ‖w̃ − w̃*‖ ≤ Δ), and for any
  (ε, δ) guarantee :math:`(e^\varepsilon + \delta)/(1 + e^\varepsilon)` for one release against the retrained one
  (:func:`single_release_cap`; Kairouz, Oh & Viswanath 2015: TPR ≤ e^ε·FPR + δ and the same with the roles
  swapped).

At small ε, σ is large, both numbers sit near 50 % and no one can beat chance; at large ε, σ shrinks and a step that
does not land on the retrained model (D > 0) becomes visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from unlearn_core.playground import noise
from unlearn_core.playground.engine import GAUSSIAN, Release

SIDES = ("A", "B")


@dataclass(frozen=True)
class Round:
    """One round: the clouds shown as A and B (flat parameter vectors), and which one never saw the points."""

    number: int
    draws: int
    never_saw: str
    a: list[torch.Tensor]
    b: list[torch.Tensor]

    def cloud(self, side: str) -> list[torch.Tensor]:
        return self.a if side == "A" else self.b


def _round_stream(seed: int) -> int:
    """The simulation stream of the game played with ``seed`` (never the clouds' stream)."""
    return noise.GAME_STREAM + 16 * int(seed)


def new_round(release: Release, *, number: int, draws: int, seed: int = 0) -> Round:
    """Round ``number`` of the game played with ``seed``: a fair coin decides whether A or B is the retrained cloud;
    each cloud has ``draws`` fresh simulated releases (never the ones the page's clouds show)."""
    if draws < 1:
        raise ValueError(f"draws={draws!r} must be ≥ 1")
    stream = _round_stream(seed)
    coin = int(torch.randint(2, (1,), generator=noise.simulation_generator(number, stream, 99)))
    seeds = [int(number) * 100 + k for k in range(int(draws))]
    unlearned = release.draw("unlearned", seeds, stream=stream)
    retrained = release.draw("retrained", seeds, stream=stream)
    if coin == 0:
        return Round(number=number, draws=draws, never_saw="A", a=retrained, b=unlearned)
    return Round(number=number, draws=draws, never_saw="B", a=unlearned, b=retrained)


def _mean(vectors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([v.double() for v in vectors]).mean(dim=0)


def ideal_guess(game_round: Round, release: Release) -> str | None:
    """The ideal guesser's answer ("A" or "B"): the order of the two clouds closer to the two noise-free models (the
    module docstring); ``None`` when a noise-free model is unknown (then it has nothing to compare with)."""
    c_u, c_r = release.centre.get("unlearned"), release.centre.get("retrained")
    if c_u is None or c_r is None:
        return None
    a, b = _mean(game_round.a), _mean(game_round.b)
    c_u, c_r = c_u.double(), c_r.double()
    a_never = float(((a - c_r) ** 2).sum() + ((b - c_u) ** 2).sum())
    b_never = float(((a - c_u) ** 2).sum() + ((b - c_r) ** 2).sum())
    return "A" if a_never <= b_never else "B"


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def gaussian_accuracy(*, distance: float, sigma: float, draws: int) -> float:
    r"""Accuracy of the likelihood-ratio test of the two orders for clouds of ``draws`` releases
    :math:`N(c, \sigma^2 I)` around centres ``distance`` apart: :math:`\Phi(\sqrt m\,D/(\sqrt2\,\sigma))`.

    Derivation: the cloud means are :math:`N(c, \sigma^2 I/m)`; their difference projected on the unit vector
    from :math:`c_u` to :math:`c_r` is :math:`N(\pm D, 2\sigma^2/m)`, and the test answers by its sign.
    """
    if distance < 0 or sigma < 0 or draws < 1:
        raise ValueError("distance and sigma must be ≥ 0 and draws ≥ 1")
    if sigma == 0:
        return 1.0 if distance > 0 else 0.5
    if math.isinf(distance):
        return 1.0
    return _phi(math.sqrt(draws) * distance / (math.sqrt(2.0) * sigma))


def gaussian_ideal_accuracy(release: Release, *, draws: int) -> float | None:
    """The ideal guesser's accuracy for a Gaussian release (:func:`gaussian_accuracy` with D = ‖c_u − c_r‖), or
    ``None`` for a release whose noise is inside the method (no closed form: :func:`simulate_ideal_guesser`)."""
    if release.kind != GAUSSIAN:
        return None
    c_u, c_r = release.centre["unlearned"], release.centre["retrained"]
    assert c_u is not None and c_r is not None
    distance = float(torch.linalg.vector_norm(c_u.double() - c_r.double()))
    return gaussian_accuracy(distance=distance, sigma=release.sigma, draws=draws)


def gaussian_certified_cap(*, sensitivity: float | None, sigma: float, draws: int) -> float | None:
    """The best accuracy the Gaussian mechanism's guarantee allows at sensitivity Δ: :func:`gaussian_accuracy` with
    D = Δ (``None`` when there is no finite Δ)."""
    if sensitivity is None or not math.isfinite(sensitivity):
        return None
    return gaussian_accuracy(distance=float(sensitivity), sigma=float(sigma), draws=draws)


def single_release_cap(*, epsilon: float, delta: float) -> float:
    r"""The best accuracy at telling one (ε, δ)-indistinguishable release from the other, equal priors:
    :math:`(e^\varepsilon + \delta)/(1 + e^\varepsilon)`, capped at 1.

    Kairouz, Oh & Viswanath (2015): every test has TPR ≤ e^ε·FPR + δ and TNR ≤ e^ε·(1 − TPR) + δ; the accuracy
    (TPR + TNR)/2 is largest where both bind.
    """
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError("epsilon must be ≥ 0 and delta in [0, 1]")
    if epsilon > 700:  # e^ε overflows; the cap is 1 long before
        return 1.0
    e = math.exp(epsilon)
    return min(1.0, (e + delta) / (1.0 + e))


def simulate_ideal_guesser(release: Release, *, rounds: int, draws: int, seed: int = 0) -> tuple[int, int]:
    """(wins, rounds) of :func:`ideal_guess` over ``rounds`` simulated rounds (parameters only, no boundaries)."""
    wins = 0
    for number in range(int(rounds)):
        game_round = new_round(release, number=number, draws=draws, seed=seed)
        wins += int(ideal_guess(game_round, release) == game_round.never_saw)
    return wins, int(rounds)
