r"""The certificate of Zhang et al. (ICML 2024): error bounds Δ, noise calibration σ, and the release record.

Certified Newton unlearning releases :math:`w^- = \tilde w + \xi`, :math:`\xi \sim N(0, \sigma^2 I_p)`. If the
estimate :math:`\tilde w` is within Δ of the retrained model :math:`\tilde w^*` (in ℓ2), the Gaussian mechanism
with sensitivity Δ makes :math:`w^-` (ε, δ)-indistinguishable from :math:`\tilde w^* + \xi`. So the certificate
is (1) a bound Δ built from constants that are either *measured* or *assumed* (methods.md §2.4), and (2) the σ
that Δ requires at (ε, δ), by the classical or the analytic Gaussian mechanism.

Everything here is a pure, keyword-only function of numbers, so the dashboard's calculators can call the same
code the unlearner uses. Each formula lives in one function whose docstring cites where it comes from.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy.stats import norm

from unlearn_core.errors import ConfigError
from unlearn_core.jsonio import to_jsonable

CERTIFIED = "certified"
NOT_CERTIFIED = "not certified by the bound"
MECHANISMS = ("analytic", "classical")
LISSA_FORMS = ("agarwal", "r2d")

__all__ = [
    "CERTIFIED",
    "NOT_CERTIFIED",
    "Assumption",
    "Certificate",
    "analytic_gaussian_delta",
    "build_certificate",
    "delta_exact",
    "delta_lissa",
    "delta_nonconvergence",
    "epsilon_for_sigma",
    "gradient_bound",
    "lissa_depth_required",
    "sigma_analytic",
    "sigma_analytic_bisection",
    "sigma_classical",
    "sigma_for",
]


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
        raise ConfigError(f"{name}={value!r} is not valid: expected a finite number {'>=' if allow_zero else '>'} 0")


# ----------------------------------------------------------------------------------------------------------------
# Δ: bounds on ‖w̃ − w̃*‖
# ----------------------------------------------------------------------------------------------------------------


def _curvature_floor(*, lam: float, lambda_min: float) -> float:
    """λ + λ_min, which every bound divides by; ≤ 0 means the bound does not apply (returned as is)."""
    return float(lam) + float(lambda_min)


def delta_exact(*, C: float, M: float, lam: float, lambda_min: float) -> float:
    r"""Δ of the exact Newton step: :math:`2C(MC + \lambda)/(\lambda + \lambda_{\min})` (methods.md §2.4 (a)).

    From :math:`\tilde w - \tilde w^* = (H+\lambda I)^{-1}[\lambda(w^*-\tilde w^*) + r]` with
    :math:`\lVert r\rVert \le \frac M2\lVert\tilde w^* - w^*\rVert^2` and :math:`\lVert w^*-\tilde w^*\rVert \le 2C`.
    Returns ``inf`` when λ + λ_min ≤ 0 (the bound does not apply).
    """
    return delta_nonconvergence(C=C, M=M, lam=lam, lambda_min=lambda_min, G=0.0)


def delta_nonconvergence(*, C: float, M: float, lam: float, lambda_min: float, G: float) -> float:
    r"""Δ when the retrained model is not a stationary point: :math:`(2C(MC+\lambda) + G)/(\lambda+\lambda_{\min})`.

    methods.md §2.4 (b): G bounds :math:`\lVert\nabla L(\tilde w^*, D_r)\rVert`; with G = 0 this is
    :func:`delta_exact`. Returns ``inf`` when λ + λ_min ≤ 0.
    """
    _check_positive("C", C, allow_zero=True)
    _check_positive("M", M, allow_zero=True)
    _check_positive("lam", lam, allow_zero=True)
    _check_positive("G", G, allow_zero=True)
    floor = _curvature_floor(lam=lam, lambda_min=lambda_min)
    if floor <= 0:
        return math.inf
    return (2.0 * C * (M * C + lam) + G) / floor


def gradient_bound(*, C: float, L: float, G: float) -> float:
    r"""A bound on :math:`\lVert\nabla L(w^*, D_r)\rVert`: :math:`2CL + G` (methods.md §2.4 (c), derived).

    The gradient is L-Lipschitz, :math:`\lVert w^* - \tilde w^*\rVert \le 2C` and
    :math:`\lVert\nabla L(\tilde w^*, D_r)\rVert \le G`.
    """
    return 2.0 * C * L + G


def delta_lissa(
    *,
    C: float,
    L: float,
    G: float,
    lam: float,
    lambda_min: float,
    num_params: int,
    rho: float,
    num_samples: int,
    scale: float,
    form: str = "agarwal",
) -> float:
    r"""The LiSSA term added to Δ (holds with probability ≥ 1 − ρ), methods.md §2.4 (c).

    * ``"agarwal"`` (preferred; the structure of Agarwal, Bullins & Hazan 2017, Lemma 3.6):
      :math:`\big(16\,(B/\zeta_{\min})\sqrt{\ln(d/\rho)/S_1} + 1/16\big)(2CL + G)` with B = ``scale`` (H, the bound
      on the sampled regularised Hessians' norms), :math:`\zeta_{\min}` = λ + λ_min, d = ``num_params`` and
      :math:`S_1` = ``num_samples``, the number of independent LiSSA estimates averaged (the repetitions — in
      Agarwal et al. the concentration is over the S_1 averaged estimates; the depth condition is
      :func:`lissa_depth_required`).
    * ``"r2d"``: :math:`\big(16\sqrt{p/\rho}/(\lambda+\lambda_{\min}) + 1/16\big)(2LC + G)` — a third-party
      transcription whose missing logarithm is probably an error.

    Caveat (methods.md, derived, unverified): the lemma is stated for Hessians pre-scaled to norm ≤ 1; unscaled,
    the error gains a factor 1/H that neither form shows on the 1/16 term. Kept in this one function so that it
    can be fixed in one place. Returns ``inf`` when λ + λ_min ≤ 0.
    """
    if form not in LISSA_FORMS:
        raise ConfigError(f"lissa_bound={form!r} is not valid: expected one of {', '.join(LISSA_FORMS)}")
    _check_positive("rho", rho)
    if rho >= 1:
        raise ConfigError(f"rho={rho!r} is not valid: expected a number in (0, 1)")
    _check_positive("L", L, allow_zero=True)
    floor = _curvature_floor(lam=lam, lambda_min=lambda_min)
    if floor <= 0:
        return math.inf
    grad = gradient_bound(C=C, L=L, G=G)
    if form == "agarwal":
        _check_positive("scale", scale)
        if num_samples < 1:
            raise ConfigError(f"num_samples={num_samples!r} is not valid: expected an integer >= 1")
        kappa = scale / floor
        return (16.0 * kappa * math.sqrt(math.log(num_params / rho) / num_samples) + 1.0 / 16.0) * grad
    return (16.0 * math.sqrt(num_params / rho) / floor + 1.0 / 16.0) * grad


def lissa_depth_required(*, scale: float, lam: float, lambda_min: float, num_samples: int) -> float:
    r"""The depth Agarwal et al.'s lemma needs: :math:`s \ge 2\kappa\ln(\kappa S_1)`, κ = H/(λ+λ_min).

    methods.md §2.4 (c) "Warn unless s ≥ 2(B/(λ+λ_min))·ln((B/(λ+λ_min))·b)". ``inf`` if λ + λ_min ≤ 0.
    """
    floor = _curvature_floor(lam=lam, lambda_min=lambda_min)
    if floor <= 0:
        return math.inf
    kappa = scale / floor
    return 2.0 * kappa * math.log(max(kappa * num_samples, 1.0))


# ----------------------------------------------------------------------------------------------------------------
# σ from (ε, δ, Δ) and back
# ----------------------------------------------------------------------------------------------------------------


def _check_budget(epsilon: float, delta: float) -> None:
    _check_positive("epsilon", epsilon)
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
    _check_positive("sensitivity", sensitivity, allow_zero=True)
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def analytic_gaussian_delta(*, epsilon: float, sigma: float, sensitivity: float) -> float:
    r"""The exact δ(ε) of the Gaussian mechanism (Balle & Wang 2018, Thm 8):

    .. math:: \Phi\Big(\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\Big)
              - e^{\varepsilon}\,\Phi\Big(-\frac{\Delta}{2\sigma} - \frac{\varepsilon\sigma}{\Delta}\Big).

    Decreasing in σ, so the smallest σ with δ(ε) ≤ δ is found by bisection (:func:`sigma_analytic_bisection`).
    """
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
    _check_positive("sensitivity", sensitivity, allow_zero=True)
    if sensitivity == 0:
        return 0.0
    import dp_accounting  # lazily: with scipy.signal it is ≈ 1.3 s of every CLI start-up otherwise (issue 15)

    return sensitivity * float(dp_accounting.get_sigma_gaussian(epsilon, delta))


def sigma_analytic_bisection(
    *, epsilon: float, delta: float, sensitivity: float, rel_tol: float = 1e-12, max_iter: int = 400
) -> float:
    """The analytic-Gaussian σ by our own bisection on :func:`analytic_gaussian_delta` (independent check).

    Bracket: the classical σ at ε is an upper bound whenever it is valid; we simply double from Δ until
    δ(σ) ≤ δ, then bisect in log-space to ``rel_tol``.
    """
    _check_budget(epsilon, delta)
    _check_positive("sensitivity", sensitivity)
    lo, hi = sensitivity * 1e-6, sensitivity
    while analytic_gaussian_delta(epsilon=epsilon, sigma=hi, sensitivity=sensitivity) > delta:
        lo, hi = hi, hi * 2.0
    for _ in range(max_iter):
        mid = math.sqrt(lo * hi)
        if analytic_gaussian_delta(epsilon=epsilon, sigma=mid, sensitivity=sensitivity) > delta:
            lo = mid
        else:
            hi = mid
        if hi / lo - 1.0 < rel_tol:
            break
    return hi


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


# ----------------------------------------------------------------------------------------------------------------
# The certificate record
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Assumption:
    """One constant of the bound: its value and where it came from.

    ``source`` is ``"measured"`` (``how`` says how, e.g. "Lanczos on 2048 retain points") or ``"assumed"``
    (a user-set or default value the bound takes on trust).
    """

    value: float | None
    source: str
    how: str


@dataclass
class Certificate:
    """The certificate of one release (what the run card's ``certificate`` holds).

    ``delta_bound`` is the total Δ (non-convergence term, plus the LiSSA term for the stochastic solver);
    ``sigma_required`` is the σ it needs at (ε, δ) by ``mechanism``; ``sigma_used`` the σ actually added;
    ``certified`` = σ_used ≥ σ_required (and Δ finite); ``epsilon_certified`` the ε that σ_used gives at δ for
    this Δ. Infinite values (a bound that does not apply) serialise as ``null`` with a note.
    """

    delta_bound: float
    sigma_required: float
    sigma_used: float
    certified: bool
    label: str
    epsilon: float
    delta: float
    epsilon_certified: float
    mechanism: str
    delta_terms: dict[str, float]
    sigma_required_by_mechanism: dict[str, float]
    assumptions: dict[str, Assumption]
    lissa_bound: str | None = None
    success_probability: float = 1.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become ``None``; ``notes`` explain them)."""
        return to_jsonable(asdict(self))

    def to_json(self, **kwargs: Any) -> str:
        """The certificate as a JSON string (strict JSON: no NaN/Infinity)."""
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)


def build_certificate(
    *,
    epsilon: float,
    delta: float,
    C: float,
    M: float,
    lam: float,
    lambda_min: float,
    G: float,
    mechanism: str = "analytic",
    sigma: float | None = None,
    solver: str = "lissa",
    L: float | None = None,
    rho: float | None = None,
    num_params: int | None = None,
    num_samples: int | None = None,
    scale: float | None = None,
    lissa_bound: str = "agarwal",
    depth: int | None = None,
    assumptions: dict[str, Assumption] | None = None,
    inapplicable: str | None = None,
) -> Certificate:
    """Assemble Δ, σ and the label for one release (methods.md §2.4).

    ``inapplicable`` names why the bound does not cover this step at all (e.g. the reference code's
    regulariser): Δ is then ∞ — the terms are still computed and shown for the paper's step — and no σ
    certifies the release.

    Δ = :func:`delta_nonconvergence` (+ :func:`delta_lissa` when ``solver="lissa"``, which then needs L, ρ, p,
    the number of averaged estimates and H). ``sigma=None`` uses the required σ (so the release is certified
    whenever Δ is finite); a smaller override (e.g. the reference code's 0.001) is labelled
    "not certified by the bound".
    """
    if mechanism not in MECHANISMS:
        raise ConfigError(f"mechanism={mechanism!r} is not valid: expected one of {', '.join(MECHANISMS)}")
    _check_budget(epsilon, delta)
    notes: list[str] = []
    terms: dict[str, float] = {
        "exact": delta_exact(C=C, M=M, lam=lam, lambda_min=lambda_min),
        "nonconvergence": delta_nonconvergence(C=C, M=M, lam=lam, lambda_min=lambda_min, G=G),
    }
    total = terms["nonconvergence"]
    probability = 1.0
    used_form: str | None = None
    if solver == "lissa":
        missing = [n for n, v in (("L", L), ("rho", rho), ("num_params", num_params), ("num_samples", num_samples),
                                  ("scale", scale)) if v is None]
        if missing:
            raise ConfigError(f"the LiSSA term needs {', '.join(missing)}")
        terms["lissa"] = delta_lissa(
            C=C, L=float(L), G=G, lam=lam, lambda_min=lambda_min, num_params=int(num_params), rho=float(rho),
            num_samples=int(num_samples), scale=float(scale), form=lissa_bound,
        )
        total = total + terms["lissa"]
        probability = 1.0 - float(rho)
        used_form = lissa_bound
        if depth is not None:
            need = lissa_depth_required(scale=float(scale), lam=lam, lambda_min=lambda_min,
                                        num_samples=int(num_samples))
            terms["lissa_depth_required"] = need
            if math.isfinite(need) and depth < need:
                notes.append(f"LiSSA depth {depth} is below the {need:.4g} steps Agarwal et al.'s lemma needs; "
                             "the LiSSA term assumes that depth")
        notes.append(f"the LiSSA term ({lissa_bound!r} form) holds with probability ≥ 1 − ρ = {probability:g}")
    if inapplicable:
        total = math.inf
        notes.insert(0, f"{inapplicable}: the bound does not cover this step (Δ = ∞); the Δ terms shown are the "
                        "paper's, for comparison")
    elif lam + lambda_min <= 0:
        notes.append(f"λ + λ_min = {lam + lambda_min:.4g} ≤ 0: the bound does not apply (Δ = ∞); raise lam above "
                     f"{-lambda_min:.4g} or set lambda_min as an assumption")
    by_mechanism = {m: sigma_for(epsilon=epsilon, delta=delta, sensitivity=total, mechanism=m) for m in MECHANISMS}
    if epsilon >= 1:
        notes.append("the classical Gaussian mechanism is proved only for ε < 1; its σ is shown for comparison")
    required = by_mechanism[mechanism]
    if sigma is not None and not (math.isfinite(float(sigma)) and float(sigma) >= 0):
        raise ConfigError(f"sigma={sigma!r} is not valid: expected a finite number >= 0 or none")
    if sigma is not None:
        used = float(sigma)
    elif math.isfinite(required):
        used = required
    else:
        # No finite noise certifies an infinite Δ; release the noiseless estimate and say so.
        used = 0.0
        notes.append("Δ is infinite, so no finite σ certifies the release: no noise was added")
    certified = bool(math.isfinite(total) and used >= required)
    eps_cert = epsilon_for_sigma(sigma=used, delta=delta, sensitivity=total, mechanism=mechanism)
    return Certificate(
        delta_bound=total,
        sigma_required=required,
        sigma_used=used,
        certified=certified,
        label=CERTIFIED if certified else NOT_CERTIFIED,
        epsilon=float(epsilon),
        delta=float(delta),
        epsilon_certified=eps_cert,
        mechanism=mechanism,
        delta_terms=terms,
        sigma_required_by_mechanism=by_mechanism,
        assumptions=dict(assumptions or {}),
        lissa_bound=used_form,
        success_probability=probability,
        notes=notes,
    )
