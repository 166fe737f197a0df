r"""The Gaussian mechanism: σ from (ε, δ, Δ) and back, classical and analytic.

* Classical (Dwork & Roth 2014, Thm. A.1): :math:`\sigma = \Delta\sqrt{2\ln(1.25/\delta)}/\varepsilon`, proved
  for ε < 1 only.
* Analytic (Balle & Wang 2018, Thm. 8): the exact δ(ε) of the mechanism at noise σ and sensitivity Δ, and the
  smallest σ that meets δ — by ``dp_accounting`` (the default) and by our own root-finding (an independent check).

Every certificate calibrates its noise here: certified Newton at Zhang et al.'s sensitivity Δ, output
perturbation at 2C₀ (Koloskova et al. 2025), the model-clipping accountant's θ_ε(r). ``dp_accounting`` and
``scipy.stats`` are imported on first use (CLI and dashboard start-up time).
"""

from __future__ import annotations

import math

from unlearn_core.errors import ConfigError
from unlearn_core.privacy.rootfind import boundary

MECHANISMS = ("analytic", "classical")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """ConfigError unless ``value`` is a finite number > 0 (≥ 0 with ``allow_zero``), named ``name``."""
    ok = value >= 0 if allow_zero else value > 0
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
        raise ConfigError(f"{name}={value!r} is not valid: expected a finite number {'>=' if allow_zero else '>'} 0")



def _check_budget(epsilon: float, delta: float) -> None:
    check_positive("epsilon", epsilon)
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ConfigError(f"delta={delta!r} is not valid: expected a number in (0, 1)")


def sigma_classical(*, epsilon: float, delta: float, sensitivity: float) -> float:
    r"""Classical Gaussian mechanism: :math:`\sigma = \Delta\sqrt{2\ln(1.25/\delta)}/\varepsilon`.

    Dwork & Roth (2014), Thm A.1 — proved only for ε < 1 (the value is still returned for larger ε; the
    certificate records the validity). ``inf`` sensitivity gives ``inf``.
    """
    _check_budget(epsilon, delta)
    if math.isinf(sensitivity):
        return math.inf
    check_positive("sensitivity", sensitivity, allow_zero=True)
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def analytic_gaussian_delta(*, epsilon: float, sigma: float, sensitivity: float) -> float:
    r"""The exact δ(ε) of the Gaussian mechanism (Balle & Wang 2018, Thm 8):

    .. math:: \Phi\Big(\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\Big)
              - e^{\varepsilon}\,\Phi\Big(-\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\Big).

    Decreasing in σ, so the smallest σ with δ(ε) ≤ δ is a root-finding problem (:func:`sigma_analytic_bisection`).
    """
    from scipy.stats import norm  # imported on first use: scipy.stats costs ≈ 0.5 s, the dashboard's page needs none

    if sensitivity == 0:
        return 0.0
    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    # log-space for the second term: e^ε Φ(−a−b) underflows/overflows separately for large ε.
    second = math.exp(epsilon + norm.logcdf(-a - b)) if math.isfinite(norm.logcdf(-a - b)) else 0.0
    return max(0.0, float(norm.cdf(a - b)) - second)


def sigma_analytic(*, epsilon: float, delta: float, sensitivity: float) -> float:
    """Analytic Gaussian mechanism σ (Balle & Wang 2018): Δ · ``dp_accounting.get_sigma_gaussian(ε, δ)``.

    ``get_sigma_gaussian`` returns the exact σ at sensitivity 1 (σ scales linearly with Δ). Valid for all ε > 0.
    """
    _check_budget(epsilon, delta)
    if math.isinf(sensitivity):
        return math.inf
    check_positive("sensitivity", sensitivity, allow_zero=True)
    if sensitivity == 0:
        return 0.0
    import dp_accounting  # lazily: with scipy.signal it is ≈ 1.3 s of every CLI start-up otherwise (issue 15)

    return sensitivity * float(dp_accounting.get_sigma_gaussian(epsilon, delta))


def sigma_analytic_bisection(
    *, epsilon: float, delta: float, sensitivity: float, rel_tol: float = 1e-12, max_iter: int = 400
) -> float:
    """The analytic-Gaussian σ by our own root-finding on :func:`analytic_gaussian_delta` (an independent check of
    ``dp_accounting``; Balle & Wang 2018, Thm. 8, whose δ(σ) is decreasing in σ).

    Bracket: from [Δ·1e-6, Δ] the upper end doubles until δ(σ) ≤ δ; then Brent's method in log σ
    (:func:`unlearn_core.privacy.rootfind.boundary`) to ``rel_tol``, returning a σ whose δ(σ) ≤ δ.
    """
    _check_budget(epsilon, delta)
    check_positive("sensitivity", sensitivity)

    def excess(sigma: float) -> float:
        return analytic_gaussian_delta(epsilon=epsilon, sigma=sigma, sensitivity=sensitivity) - delta

    lo, hi = sensitivity * 1e-6, sensitivity
    while excess(hi) > 0:
        lo, hi = hi, hi * 2.0
    if excess(lo) <= 0:
        return lo
    return boundary(excess, lo, hi, rtol=rel_tol, max_iter=max_iter)


def sigma_for(*, epsilon: float, delta: float, sensitivity: float, mechanism: str = "analytic") -> float:
    """σ required by ``mechanism`` = ``"analytic"`` (default) or ``"classical"``."""
    if mechanism == "analytic":
        return sigma_analytic(epsilon=epsilon, delta=delta, sensitivity=sensitivity)
    if mechanism == "classical":
        return sigma_classical(epsilon=epsilon, delta=delta, sensitivity=sensitivity)
    raise ConfigError(f"mechanism={mechanism!r} is not valid: expected one of {', '.join(MECHANISMS)}")


def epsilon_for_sigma(*, sigma: float, delta: float, sensitivity: float, mechanism: str = "analytic") -> float:
    """The ε that noise σ certifies at δ for sensitivity Δ (the inverse of :func:`sigma_for`).

    Analytic: ``dp_accounting.get_epsilon_gaussian(σ/Δ, δ)``; classical: Δ√(2 ln(1.25/δ))/σ (its theorem
    needs the result < 1). ``inf`` when σ = 0 or Δ = ∞; 0 when Δ = 0.
    """
    if not 0 < delta < 1:
        raise ConfigError(f"delta={delta!r} is not valid: expected a number in (0, 1)")
    if sigma < 0:
        raise ConfigError(f"sigma={sigma!r} is not valid: expected a number >= 0")
    if sensitivity == 0:
        return 0.0
    if sigma == 0 or math.isinf(sensitivity):
        return math.inf
    if mechanism == "classical":
        return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / sigma
    if mechanism != "analytic":
        raise ConfigError(f"mechanism={mechanism!r} is not valid: expected one of {', '.join(MECHANISMS)}")
    import dp_accounting  # lazily (see sigma_analytic)

    return float(dp_accounting.get_epsilon_gaussian(sigma / sensitivity, delta))
