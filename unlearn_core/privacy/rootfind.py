"""The one root-finder of the privacy maths: where a monotone condition starts to hold, by Brent's method.

Every calibration in :mod:`unlearn_core.privacy` asks the same question — the smallest σ (or ε) whose guarantee
holds, the largest RDP slope that still converts to ε — of a continuous, monotone function, and answers it here:
``scipy.optimize.brentq`` (Brent 1973) on the sign change of ``excess``, in log space where the unknown spans
orders of magnitude, with the answer moved onto the side where the condition holds (a calibrated σ must never be
a hair too small).
"""

from __future__ import annotations

import math
from collections.abc import Callable

#: brentq's smallest allowed relative tolerance (4 × float64 machine epsilon).
_BRENT_RTOL = 4.0 * 2.220446049250313e-16


def boundary(
    excess: Callable[[float], float],
    lo: float,
    hi: float,
    *,
    rtol: float,
    log_space: bool = True,
    max_iter: int = 200,
) -> float:
    """The x in [lo, hi] where the continuous monotone ``excess`` crosses 0, returned where ``excess(x) <= 0``.

    ``excess(x) <= 0`` means "the condition holds at x" (e.g. δ(σ) − δ for a noise σ); it must hold at exactly one
    end of the bracket. The result is within ``rtol`` (relative) of the crossing — in log space (``log_space``, for
    a positive unknown spanning orders of magnitude) that is an absolute tolerance ln(1 + rtol) on ln x — and the
    condition holds there: if Brent's answer landed on the wrong side by rounding, it is moved towards the end
    where the condition holds. ``ValueError`` when the condition holds at neither or both ends.
    """
    from scipy.optimize import brentq  # lazily: scipy.optimize costs ≈ 0.7 s of a cold start

    if log_space:
        if not (lo > 0 and hi > 0):
            raise ValueError(f"a log-space bracket needs lo, hi > 0 (got {lo!r}, {hi!r})")
        a, b, xtol, rel = math.log(lo), math.log(hi), math.log1p(rtol), _BRENT_RTOL

        def g(t: float) -> float:
            return excess(math.exp(t))

        def back(t: float) -> float:
            return math.exp(t)
    else:
        a, b, xtol, rel = float(lo), float(hi), 1e-300, max(rtol, _BRENT_RTOL)
        g, back = excess, float  # type: ignore[assignment]
    ga, gb = g(a), g(b)
    if (ga <= 0) == (gb <= 0):
        raise ValueError(f"the condition must hold at exactly one end of [{lo!r}, {hi!r}]")
    holds_end = a if ga <= 0 else b
    if ga == 0 or gb == 0:
        return back(a if ga == 0 else b)
    t = float(brentq(g, a, b, xtol=xtol, rtol=rel, maxiter=max_iter))
    step = xtol + rel * abs(t)
    direction = 1.0 if holds_end > t else -1.0
    while g(t) > 0:  # at most a step or two: Brent's answer is within the tolerance of the crossing
        t += direction * step
        step *= 2.0
        if (holds_end - t) * direction <= 0:
            t = holds_end
            break
    return back(t)
