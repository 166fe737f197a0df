r"""Privacy accounting for noisy fine-tuning and output perturbation (Koloskova et al., ICML 2025).

Every formula lives in one named function whose docstring cites where it comes from (the paper,
Koloskova, Allouah, Jha, Guerraoui & Koyejo 2025, its released code, or a derivation in docs/other_methods.md).
Three accountants turn a target (ε, δ) into the noise σ of the *gradient-clipping* variant; all are shown, because
they disagree by an order of magnitude and the user should see why, and the default takes the tightest valid one:

``tightest`` (default)
    The smallest σ among the accountants valid for this configuration (:func:`tightest_valid`).
``paper_closed_form``
    The paper's closed forms for λ = 0 and λ > 0 (:func:`sigma_grad_clip_closed_form`), valid only where their
    quoted conditions hold (:func:`closed_form_hypotheses`).
``rdp``
    The Rényi-DP curve of the clipped, contracted, noised iteration (shifted-Rényi / privacy amplification by
    iteration), :math:`\mathrm{RDP}(\alpha) = \alpha Z^2 / (2\sigma^2 S)` (:func:`grad_clip_rdp_coefficient`),
    converted to (ε, δ) with the Balle et al. (2020, Thm. 21) conversion *as implemented by Opacus*
    (:func:`rdp_to_epsilon`) — we do not write our own conversion.
``official_code``
    The σ of the authors' released code (:func:`sigma_grad_clip_official`), shown **only as a labelled
    comparison**. Pitfall K1: the code converts its Rényi parameter ε_R to (ε, δ) as if the RDP curve were the
    constant ε_R, whereas it is :math:`\alpha\,\varepsilon_R` (λ > 0) or :math:`2\alpha\,\varepsilon_R` (λ = 0).
    A correct conversion of ε_R = 1 at δ = 1e-5 gives ε ≈ 7.08 (λ > 0) and ≈ 10.7 (λ = 0), not the 1.0036 the
    code reports (:func:`official_code_conversion`), so at equal nominal ε the code's σ is 10–17× smaller than
    the closed form's.

The *model-clipping* variant has its own δ accountant (:func:`model_clip_delta_trajectory`): with ε fixed, δ_t
shrinks by the contraction coefficient of the kernel "project onto the C₂-ball, add N(0, σ²I)" at every step,
and the noisy phase ends as soon as δ_t ≤ δ.

Output perturbation is the Gaussian mechanism at sensitivity 2C₀ (:func:`sigma_output_perturbation`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from unlearn_core.certificate import Condition
from unlearn_core.errors import ConfigError
from unlearn_core.privacy import gaussian
from unlearn_core.privacy.rootfind import boundary

#: The default Rényi orders: dense near 1 (large ε), geometric up to 1e6 (tiny RDP slopes, i.e. large σ).
DEFAULT_ORDERS: np.ndarray = np.unique(np.concatenate([np.linspace(1.01, 10.0, 900), np.geomspace(10.0, 1e6, 3000)]))
#: The order grid of the official code (``linspace(1.001, 1000, 10000)``), used only by the K1 comparison.
OFFICIAL_ORDERS: np.ndarray = np.linspace(1.001, 1000.0, 10000)

#: The accountants of the gradient-clipping variant. ``tightest`` (the default) takes the smallest σ among the valid
#: ones: the closed form where its hypotheses hold, the RDP accountant everywhere. ``official_code`` never certifies.
ACCOUNTANTS = ("paper_closed_form", "rdp", "official_code")
ACCOUNTANT_CHOICES = ("tightest", *ACCOUNTANTS)


def _check_eps_delta(epsilon: float, delta: float) -> None:
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"epsilon={epsilon!r} is not valid: expected a number > 0")
    if not (0 < delta < 1):
        raise ConfigError(f"delta={delta!r} is not valid: expected a number in (0, 1)")


def _check_clip_args(*, C0: float, C1: float, gamma: float, lam: float, T: int) -> None:
    if not C0 > 0:
        raise ConfigError(f"C0={C0!r} is not valid: expected a number > 0")
    if not C1 > 0:
        raise ConfigError(f"C1={C1!r} is not valid: expected a number > 0")
    if not gamma > 0:
        raise ConfigError(f"lr={gamma!r} is not valid: expected a number > 0")
    if lam < 0:
        raise ConfigError(f"lam={lam!r} is not valid: expected a number ≥ 0")
    if gamma * lam >= 1:
        raise ConfigError(f"lr·lam={gamma * lam:g} is not valid: the contraction 1 − lr·lam needs lr·lam < 1")
    if int(T) < 1:
        raise ConfigError(f"T={T!r} is not valid: expected an integer ≥ 1")


# ---------------------------------------------------------------------------------------------------------------
# Number of noisy steps
# ---------------------------------------------------------------------------------------------------------------


def _ceil(x: float) -> int:
    """Ceiling that ignores floating-point dust (0.01/(10·1e-4) is 10.000000000000002, and must give 10)."""
    return math.ceil(round(x, 9))


def grad_clip_steps_rule(*, C0: float, C1: float, gamma: float, lam: float) -> int:
    r"""T of the official configs (Koloskova et al. 2025's released code): :math:`T = \lceil C_0/(C_1\gamma)\rceil`,
    or, when λ > 0 and
    :math:`0 < T' < T`, :math:`T' = \lceil \ln(2\lambda C_0/C_1)/(\gamma\lambda)\rceil`.

    Why: with λ = 0 the clipped drift can move the model by γC₁ per step, so T steps can carry it across the
    C₀-ball; with λ > 0 the contraction forgets the start after about ln(2λC₀/C₁)/(γλ) steps. The paper gives
    no default T; this is the code's rule.
    """
    T = max(1, _ceil(C0 / (C1 * gamma)))
    if lam > 0:
        arg = 2.0 * lam * C0 / C1
        if arg > 1.0:
            T_prime = _ceil(math.log(arg) / (gamma * lam))
            if 0 < T_prime < T:
                T = T_prime
    return T


# ---------------------------------------------------------------------------------------------------------------
# Gradient clipping: the paper's closed forms
# ---------------------------------------------------------------------------------------------------------------


def _closed_form_factor(*, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int) -> float:
    """σ·ε of the closed forms (σ is proportional to 1/ε in both)."""
    log_term = math.log(1.0 / delta)
    if lam == 0:
        return math.sqrt(9.0 * log_term * (C0 + gamma * C1 * T) ** 2 / T)
    rho = 1.0 - gamma * lam
    return math.sqrt(72.0 * gamma * lam * log_term) * (C0 * rho**T + C1 / lam)


def sigma_grad_clip_closed_form(
    *, epsilon: float, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int
) -> float:
    r"""σ of noisy clipped fine-tuning from the paper's closed forms (Koloskova et al. 2025, privacy of noisy clipped
    fine-tuning).

    * λ = 0: :math:`\sigma^2 = 9\ln(1/\delta)\,(C_0 + \gamma C_1 T)^2 / (\varepsilon^2 T)`.
    * λ > 0: :math:`\sigma^2 = 72\,\gamma\lambda\ln(1/\delta)/\varepsilon^2\,(C_0(1-\gamma\lambda)^T + C_1/\lambda)^2`
      (quoted conditions: see :func:`closed_form_hypotheses`).

    Two independent ports quote these identically; the exact theorem conditions are unverified (see
    docs/other_methods.md#noisy-fine-tuning-koloskova-et-al-2025).
    """
    _check_eps_delta(epsilon, delta)
    _check_clip_args(C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    return _closed_form_factor(delta=delta, C0=C0, C1=C1, gamma=gamma, lam=lam, T=int(T)) / epsilon


def epsilon_grad_clip_closed_form(
    *, sigma: float, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int
) -> float:
    """The ε a given σ certifies under the closed forms (they are linear in 1/ε, so this is their inverse)."""
    if not sigma > 0:
        return math.inf
    _check_clip_args(C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    return _closed_form_factor(delta=delta, C0=C0, C1=C1, gamma=gamma, lam=lam, T=int(T)) / sigma


def closed_form_hypotheses(*, epsilon: float, delta: float, gamma: float, lam: float) -> list[Condition]:
    r"""The side conditions two ports *quote* for the λ > 0 closed form (Koloskova et al. 2025; theorem text
    unverified), shown for information only: validity is decided by :func:`closed_form_validity`, which proves it.

    * :math:`\varepsilon \le 3\ln(1/\delta)`;
    * :math:`\gamma\lambda \in (1/2, 1)`, which keeps :math:`1 - (1-\gamma\lambda)^{2T} \ge 3/4`.

    The λ = 0 closed form has no quoted side condition (an empty list).
    """
    if lam == 0:
        return []
    bound = 3.0 * math.log(1.0 / delta)
    source = "Koloskova et al. 2025, the λ > 0 closed form's quoted conditions (theorem text unverified)"
    return [
        Condition("closed_form_epsilon", "closed form (quoted): ε ≤ 3 ln(1/δ)", f"ε = {epsilon:g}", f"≤ {bound:.4g}",
                  epsilon <= bound, source=source),
        Condition("closed_form_step", "closed form (quoted): lr·lam ∈ (1/2, 1)", f"lr·lam = {gamma * lam:g}",
                  "in (1/2, 1)", 0.5 < gamma * lam < 1.0, source=source),
    ]


def closed_form_rdp_slope(*, epsilon: float, delta: float, C0: float, C1: float, gamma: float, lam: float,
                          T: int) -> float:
    r"""The RDP slope c (RDP(α) = cα) of the closed form's σ: what the closed form's noise *proves*
    (derived: see docs/other_methods.md#which-accountant-is-valid-where).

    The clipped, contracted iteration's Rényi divergence is :math:`\alpha Z^2/(2\sigma^2 S)`
    (:func:`grad_clip_rdp_coefficient`). With the closed form's σ:

    * λ = 0: Z = 2(C₀ + γC₁T), S = T, so :math:`c = 2\varepsilon^2/(9\ln(1/\delta))` — a function of (ε, δ) only;
    * λ > 0: :math:`c \le \varepsilon^2(2-\gamma\lambda)/(36\ln(1/\delta)(1-(1-\gamma\lambda)^{2T}))`
      (Z ≤ 2(C₀ρ^T + C₁/λ), S = (1 − ρ^{2T})/(γλ(2 − γλ))); the exact c is returned.
    """
    sigma = sigma_grad_clip_closed_form(epsilon=epsilon, delta=delta, C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    return grad_clip_rdp_coefficient(sigma=sigma, C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)


#: Relative slack of "ε certified ≤ ε" in the validity checks: the calibrations are root-finds whose answers sit on
#: the safe side to ~1e-10; this only absorbs the last bits of re-evaluating them.
VALIDITY_RTOL = 1e-9


def closed_form_validity(
    *, epsilon: float, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int
) -> Condition:
    r"""Whether the paper's closed form is a **proven** accountant at this configuration: its σ must certify ε under
    the Rényi-DP accountant, which is valid everywhere (derived: docs/other_methods.md#which-accountant-is-valid-where).

    The closed forms are the RDP bound pushed through a (ε, δ) conversion with constants the paper fixes; we cannot
    check the paper's own side conditions (their theorem text is unverified), so the closed form counts only where
    the RDP accountant confirms it: :math:`\varepsilon_{\mathrm{RDP}}(\sigma_{\mathrm{closed}}) \le \varepsilon`.
    For λ = 0 this is :math:`\varepsilon \le` :func:`closed_form_epsilon_max` (δ) — about 6.6 at δ = 1e-5 —, for
    λ > 0 a check at the configuration (inside the quoted conditions it always holds). Outside, the closed form's σ
    is *smaller* than any valid accountant's, and ``tightest`` never takes it.
    """
    args = {"C0": C0, "C1": C1, "gamma": gamma, "lam": lam, "T": int(T)}
    sigma = sigma_grad_clip_closed_form(epsilon=epsilon, delta=delta, **args)
    eps_rdp = epsilon_grad_clip_rdp(sigma=sigma, delta=delta, **args)
    holds = eps_rdp <= epsilon * (1.0 + VALIDITY_RTOL)
    requirement = f"≤ ε = {epsilon:g}"
    if lam == 0:
        requirement += f" (at λ = 0: ε ≤ {closed_form_epsilon_max(delta=delta):.4g} for δ = {delta:g})"
    return Condition(
        "closed_form_range", "the closed form's σ is proven: the RDP accountant certifies ε for it",
        f"RDP ε of the closed form's σ = {eps_rdp:.6g}", requirement, holds,
        fix="use accountant=tightest or rdp (valid everywhere)",
        source="derived: the closed form is the RDP bound under a fixed conversion (docs/other_methods.md)",
    )


def closed_form_epsilon_max(*, delta: float) -> float:
    r"""The largest ε at which the λ = 0 closed form is proven at δ: the root of
    :math:`\varepsilon_{\mathrm{RDP}}(c = 2\varepsilon^2/(9\ln(1/\delta)), \delta) = \varepsilon`.

    Below it the RDP conversion of the closed form's slope is at most ε (the closed form is valid, and conservative);
    above it, larger than ε (the closed form claims more than it proves). Brent's method on ε.
    """
    if not 0 < delta < 1:
        raise ConfigError(f"delta={delta!r} is not valid: expected a number in (0, 1)")
    log_term = math.log(1.0 / delta)

    def excess(eps: float) -> float:  # > 0 where the closed form over-claims
        return epsilon_linear_rdp(c=2.0 * eps * eps / (9.0 * log_term), delta=delta) - eps

    lo, hi = 0.01, 1.0  # at ε = 0.01 the closed form holds for every δ of the schema (the order grid resolves it)
    while excess(hi) <= 0:
        hi *= 2.0
    return boundary(excess, lo, hi, rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# Gradient clipping: the Rényi-DP accountant
# ---------------------------------------------------------------------------------------------------------------


def grad_clip_rdp_sensitivity(*, C0: float, C1: float, gamma: float, lam: float, T: int) -> tuple[float, float]:
    r"""(Z, S) of the shifted-Rényi bound (Feldman et al. 2018's privacy amplification by iteration as
    Koloskova et al. 2025's code applies it; derived: see docs/other_methods.md#noisy-fine-tuning-koloskova-et-al-2025).

    With :math:`\rho = 1-\gamma\lambda`: :math:`Z = 2C_0\rho^T + 2\gamma C_1\sum_{k<T}\rho^k` (which equals
    :math:`2C_0\rho^T + (2C_1/\lambda)(1-\rho^T)` for λ > 0 and :math:`2(C_0+\gamma C_1 T)` for λ = 0) is the
    largest distance the two coupled runs (on D and on D_r) can drift apart, and
    :math:`S = \sum_{k<T}\rho^{2k}` is how much of the injected noise survives the contractions.
    """
    _check_clip_args(C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    T = int(T)
    rho = 1.0 - gamma * lam
    k = np.arange(T, dtype=np.float64)
    geometric = float(np.sum(rho**k))
    Z = 2.0 * C0 * rho**T + 2.0 * gamma * C1 * geometric
    S = float(np.sum(rho ** (2 * k)))
    return Z, S


def grad_clip_rdp_coefficient(*, sigma: float, C0: float, C1: float, gamma: float, lam: float, T: int) -> float:
    r"""c in :math:`\mathrm{RDP}(\alpha) = c\,\alpha = \alpha Z^2/(2\sigma^2 S)` (Rényi divergence of
    Gaussians, Mironov 2017, Prop. 7).

    The Rényi divergence of order α between two Gaussians with equal covariance σ²S and means Z apart is
    :math:`\alpha Z^2/(2\sigma^2 S)`; the bound is linear in α, which is what the official conversion forgets (K1).
    """
    Z, S = grad_clip_rdp_sensitivity(C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    return Z * Z / (2.0 * sigma * sigma * S)


def rdp_to_epsilon(*, orders: np.ndarray, rdp: np.ndarray, delta: float) -> tuple[float, float, bool]:
    r"""(ε, the optimal order α, whether α sits at the edge of the grid) — Opacus's RDP → (ε, δ) conversion.

    ``opacus.accountants.analysis.rdp.get_privacy_spent`` implements Balle et al. 2020, Thm. 21:
    :math:`\varepsilon = \min_\alpha[\mathrm{RDP}(\alpha) + \ln(1-1/\alpha) - (\ln\delta + \ln\alpha)/(\alpha-1)]`.
    Its warning about an optimum at the edge of the grid is captured and returned as a flag instead.
    """
    from opacus.accountants.analysis.rdp import get_privacy_spent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eps, alpha = get_privacy_spent(orders=np.asarray(orders, dtype=np.float64), rdp=np.asarray(rdp), delta=delta)
    at_edge = bool(np.isfinite(alpha) and (alpha <= orders[0] or alpha >= orders[-1]))
    return float(eps), float(alpha), at_edge


def epsilon_linear_rdp(*, c: float, delta: float, orders: np.ndarray = DEFAULT_ORDERS) -> float:
    """ε of the RDP curve α ↦ c·α at δ (Opacus conversion on ``orders``)."""
    return rdp_to_epsilon(orders=orders, rdp=c * np.asarray(orders), delta=delta)[0]


def epsilon_grad_clip_rdp(
    *, sigma: float, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int
) -> float:
    """The ε a given σ certifies under the RDP accountant (correct conversion)."""
    if not sigma > 0:
        return math.inf
    c = grad_clip_rdp_coefficient(sigma=sigma, C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    return epsilon_linear_rdp(c=c, delta=delta)


def _slope_for_epsilon(*, epsilon: float, delta: float, orders: np.ndarray = DEFAULT_ORDERS) -> float:
    """The largest slope c with ε(α ↦ cα) ≤ ε (ε is continuous and increasing in c): Brent's method in log c."""
    lo, hi = 1e-12, 1.0
    while epsilon_linear_rdp(c=hi, delta=delta, orders=orders) < epsilon:
        hi *= 4.0
        if hi > 1e12:
            raise ConfigError(f"epsilon={epsilon!r} is too large for the RDP accountant")
    return boundary(lambda c: epsilon_linear_rdp(c=c, delta=delta, orders=orders) - epsilon, lo, hi, rtol=1e-10)


def sigma_grad_clip_rdp(
    *, epsilon: float, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int
) -> float:
    r"""The smallest σ whose RDP curve converts (Opacus) to at most ε at δ: :math:`\sigma = Z/\sqrt{2 S c^*}`."""
    _check_eps_delta(epsilon, delta)
    Z, S = grad_clip_rdp_sensitivity(C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    c = _slope_for_epsilon(epsilon=epsilon, delta=delta)
    # c is on the safe side of the root; recomputing c from σ must not land a rounding error above it.
    return Z / math.sqrt(2.0 * S * c) * (1.0 + 1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Gradient clipping: the official code (labelled comparison only, pitfall K1)
# ---------------------------------------------------------------------------------------------------------------


def sigma_grad_clip_official(*, epsilon_r: float, C0: float, C1: float, gamma: float, lam: float, T: int) -> float:
    r"""σ as the official code computes it from its Rényi parameter ε_R (comparison only; see
    docs/other_methods.md, K1).

    With ρ = 1 − γλ and diam = 2C₀:

    * λ > 0: :math:`\sigma^2 = \gamma\lambda(2-\gamma\lambda)(\mathrm{diam}\,\rho^T + (2C_1/\lambda)(1-\rho^T))^2
      / (2\varepsilon_R(1-\rho^{2T}))` — i.e. exactly RDP(α) = α·ε_R;
    * λ = 0: :math:`\sigma^2 = (\mathrm{diam} + 2C_1\gamma T)^2/(4\varepsilon_R T)` — i.e. RDP(α) = 2α·ε_R: the 4
      should be a 2 for this branch to be the λ → 0 limit of the other.
    """
    _check_clip_args(C0=C0, C1=C1, gamma=gamma, lam=lam, T=T)
    if not epsilon_r > 0:
        raise ConfigError(f"epsilon_r={epsilon_r!r} is not valid: expected a number > 0")
    diam = 2.0 * C0
    if lam == 0:
        return math.sqrt((diam + 2.0 * C1 * gamma * T) ** 2 / (4.0 * epsilon_r * T))
    rho = 1.0 - gamma * lam
    num = gamma * lam * (2.0 - gamma * lam) * (diam * rho**T + (2.0 * C1 / lam) * (1.0 - rho**T)) ** 2
    return math.sqrt(num / (2.0 * epsilon_r * (1.0 - rho ** (2 * T))))


def official_epsilon_r(*, sigma: float, C0: float, C1: float, gamma: float, lam: float, T: int) -> float:
    """The ε_R the official formula assigns to σ (the inverse of :func:`sigma_grad_clip_official`)."""
    return sigma_grad_clip_official(epsilon_r=1.0, C0=C0, C1=C1, gamma=gamma, lam=lam, T=T) ** 2 / sigma**2


def official_code_conversion(*, epsilon_r: float, delta: float, orders: np.ndarray = OFFICIAL_ORDERS) -> float:
    r"""The official code's RDP → DP conversion (pitfall K1 — **wrong**, shown only as a comparison).

    It applies the Balle et al. conversion to the *constant* curve RDP(α) = ε_R, whereas the bound is linear in
    α. On its grid α ∈ linspace(1.001, 1000, 10000), ε_R = 1 at δ = 1e-5 gives 1.0036.
    """
    return rdp_to_epsilon(orders=orders, rdp=np.full_like(np.asarray(orders), float(epsilon_r)), delta=delta)[0]


def official_epsilon_r_for(*, epsilon: float, delta: float, orders: np.ndarray = OFFICIAL_ORDERS) -> float:
    """The ε_R whose official (K1) conversion reports ``epsilon`` (the conversion is ε_R plus a constant)."""
    shift = official_code_conversion(epsilon_r=0.0, delta=delta, orders=orders)
    value = epsilon - shift
    if value <= 0:
        raise ConfigError(f"epsilon={epsilon!r} is not valid for the official-code accountant: expected > {shift:.4g}")
    return value


def k1_correct_epsilon(*, epsilon_r: float, delta: float, lam: float) -> float:
    """What the official code's ε_R really certifies: RDP(α) = c·α with c = ε_R (λ > 0) or 2ε_R (λ = 0) (K1)."""
    c = epsilon_r if lam > 0 else 2.0 * epsilon_r
    return epsilon_linear_rdp(c=c, delta=delta)


def grad_clip_accounting(
    *, epsilon: float, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int
) -> dict[str, Any]:
    """σ required for (ε, δ) by each accountant, which of them are valid here, and the official code's ε_R.

    Valid: the RDP accountant always; the closed form where it is proven (:func:`closed_form_validity`: its σ
    certifies ε under the RDP accountant — so a valid closed form is never below the RDP σ); the official code's σ
    never (pitfall K1 — it is a comparison). ``closed_form_hypotheses`` are the quoted side conditions, for
    information.
    """
    args = {"C0": C0, "C1": C1, "gamma": gamma, "lam": lam, "T": int(T)}
    try:
        eps_r: float | None = official_epsilon_r_for(epsilon=epsilon, delta=delta)
    except ConfigError:  # a target below the official conversion's constant offset has no official σ
        eps_r = None
    hypotheses = closed_form_hypotheses(epsilon=epsilon, delta=delta, gamma=gamma, lam=lam)
    validity = closed_form_validity(epsilon=epsilon, delta=delta, **args)
    return {
        "sigma": {
            "paper_closed_form": sigma_grad_clip_closed_form(epsilon=epsilon, delta=delta, **args),
            "rdp": sigma_grad_clip_rdp(epsilon=epsilon, delta=delta, **args),
            "official_code": math.inf if eps_r is None else sigma_grad_clip_official(epsilon_r=eps_r, **args),
        },
        "valid": {"paper_closed_form": validity.holds, "rdp": True, "official_code": False},
        "closed_form_validity": validity,
        "closed_form_hypotheses": hypotheses,
        "official_epsilon_r": eps_r,
    }


def tightest_valid(values: dict[str, float], valid: dict[str, bool]) -> tuple[str, float]:
    """The valid accountant with the smallest value (σ required, or ε certified) and that value.

    Every accountant marked valid is proven at this configuration, so the smallest of them is a correct answer;
    the RDP accountant is always among them (valid for every γλ < 1, ε > 0, δ ∈ (0, 1))."""
    candidates = {name: value for name, value in values.items() if valid.get(name)}
    name = min(candidates, key=lambda n: candidates[n])
    return name, candidates[name]


def grad_clip_epsilons(
    *, sigma: float, delta: float, C0: float, C1: float, gamma: float, lam: float, T: int
) -> dict[str, float]:
    """The ε that σ gives under each accountant (the official one as the code would *report* it, K1), unchecked:
    :func:`grad_clip_epsilon_validity` says which of them are proven for this σ."""
    args = {"C0": C0, "C1": C1, "gamma": gamma, "lam": lam, "T": int(T)}
    if not sigma > 0:
        return {"paper_closed_form": math.inf, "rdp": math.inf, "official_code": math.inf}
    eps_r = official_epsilon_r(sigma=sigma, **args)
    return {
        "paper_closed_form": epsilon_grad_clip_closed_form(sigma=sigma, delta=delta, **args),
        "rdp": epsilon_grad_clip_rdp(sigma=sigma, delta=delta, **args),
        "official_code": official_code_conversion(epsilon_r=eps_r, delta=delta),
    }


def grad_clip_epsilon_validity(epsilons: dict[str, float]) -> dict[str, bool]:
    """Which of :func:`grad_clip_epsilons`' values are proven for the σ they were computed from.

    The RDP ε always. The closed form's ε only where it is at least the RDP ε: its claim at σ is
    :math:`\varepsilon_{\\mathrm{cf}}`, and the closed form is proven at that ε exactly when the RDP accountant
    certifies :math:`\varepsilon_{\\mathrm{cf}}` for σ (the check of :func:`closed_form_validity`, read for a given σ).
    The official code's never (K1). So the best valid ε of a σ is always the RDP one.
    """
    rdp = epsilons["rdp"]
    return {"paper_closed_form": epsilons["paper_closed_form"] >= rdp * (1.0 - VALIDITY_RTOL), "rdp": True,
            "official_code": False}


# ---------------------------------------------------------------------------------------------------------------
# Output perturbation
# ---------------------------------------------------------------------------------------------------------------


def sigma_output_perturbation(*, epsilon: float, delta: float, C0: float) -> float:
    r"""σ of output perturbation (Koloskova et al. 2025): :math:`\sigma^2 = 8\ln(1.25/\delta)\,C_0^2/\varepsilon^2`.

    The classical Gaussian mechanism (Dwork & Roth, Thm. A.1) at sensitivity 2C₀
    (:func:`unlearn_core.privacy.gaussian.sigma_classical`): both A(D) and A(D_r) lie in the C₀-ball after the
    projection, so they are at most 2C₀ apart. The theorem is stated for ε < 1; the certificate therefore also
    reports the exact analytic-Gaussian ε of the σ used (:func:`epsilon_output_perturbation`).
    """
    _check_eps_delta(epsilon, delta)
    if not C0 > 0:
        raise ConfigError(f"C0={C0!r} is not valid: expected a number > 0")
    return gaussian.sigma_classical(epsilon=float(epsilon), delta=float(delta), sensitivity=2.0 * float(C0))


def sigma_output_perturbation_analytic(*, epsilon: float, delta: float, C0: float) -> float:
    """The smallest σ of the analytic Gaussian mechanism (Balle & Wang 2018) at sensitivity 2C₀.

    :func:`unlearn_core.privacy.gaussian.sigma_analytic` (``dp_accounting``).
    """
    _check_eps_delta(epsilon, delta)
    return gaussian.sigma_analytic(epsilon=float(epsilon), delta=float(delta), sensitivity=2.0 * float(C0))


def epsilon_output_perturbation(*, sigma: float, delta: float, C0: float) -> float:
    """The exact (analytic-Gaussian) ε that noise σ gives at sensitivity 2C₀ and δ; ``inf`` when σ ≤ 0.

    :func:`unlearn_core.privacy.gaussian.epsilon_for_sigma` with the analytic mechanism.
    """
    if not sigma > 0:
        return math.inf
    return gaussian.epsilon_for_sigma(sigma=sigma, delta=delta, sensitivity=2.0 * C0, mechanism="analytic")


# ---------------------------------------------------------------------------------------------------------------
# Model clipping: the δ accountant
# ---------------------------------------------------------------------------------------------------------------


def gaussian_delta_theta(*, epsilon: float, r: float) -> float:
    r""":math:`\theta_\varepsilon(r) = Q(\varepsilon/r - r/2) - e^\varepsilon Q(\varepsilon/r + r/2)`.

    The tight δ(ε) of the Gaussian mechanism whose sensitivity-to-noise ratio is r (Balle & Wang 2018, Thm. 8),
    i.e. :func:`unlearn_core.privacy.gaussian.analytic_gaussian_delta` at σ = 1 and sensitivity r; 0 when r ≤ 0.
    """
    if r <= 0:
        return 0.0
    return gaussian.analytic_gaussian_delta(epsilon=epsilon, sigma=1.0, sensitivity=r)


def model_clip_ratio(*, C2: float, sigma: float) -> float:
    """r of one model-clipping step (project onto the C₂-ball, then add noise): 2C₂/σ."""
    return 2.0 * C2 / sigma


def _shifted_epsilon(*, epsilon: float, delta: float) -> float:
    """ε̃ = ln(1 + (e^ε − 1)/δ), in log space (e^ε overflows for ε ≳ 700)."""
    if delta <= 0:
        return math.inf
    log_expm1 = epsilon + math.log(-math.expm1(-epsilon))
    return float(np.logaddexp(log_expm1 - math.log(delta), 0.0))


def model_clip_delta_trajectory(
    *,
    epsilon: float,
    delta_target: float,
    C0: float,
    C2: float,
    sigma: float,
    sigma0: float = 0.0,
    max_steps: int = 100_000,
    steps: int | None = None,
) -> list[float]:
    r"""δ_0, δ_1, … of the model-clipping accountant (Koloskova et al. 2025, from the official code's contraction).

    δ_0 = θ_ε(2C₀/σ₀) when σ₀ > 0, else 1; each step :math:`\tilde\varepsilon = \ln(1 + (e^\varepsilon-1)/\delta_t)`
    and :math:`\delta_{t+1} = \delta_t\,\theta_{\tilde\varepsilon}(r)` with r from :func:`model_clip_ratio`. ε is
    fixed throughout. Runs until δ_t ≤ ``delta_target`` (or for exactly ``steps`` steps when given, or until
    ``max_steps``). The paper's theorem for this accountant is unverified.
    """
    _check_eps_delta(epsilon, delta_target)
    if not (C2 > 0 and sigma > 0):
        raise ConfigError(f"C2={C2!r} and sigma={sigma!r} are not valid: expected numbers > 0")
    r = model_clip_ratio(C2=C2, sigma=sigma)
    delta_t = gaussian_delta_theta(epsilon=epsilon, r=2.0 * C0 / sigma0) if sigma0 > 0 else 1.0
    trajectory = [delta_t]
    limit = max_steps if steps is None else int(steps)
    while len(trajectory) - 1 < limit:
        if steps is None and delta_t <= delta_target:
            break
        eps_tilde = _shifted_epsilon(epsilon=epsilon, delta=delta_t)
        delta_t = delta_t * gaussian_delta_theta(epsilon=eps_tilde, r=r) if math.isfinite(eps_tilde) else 0.0
        trajectory.append(delta_t)
        if delta_t == 0.0 and steps is None:
            break
    return trajectory


def model_clip_steps(
    *, epsilon: float, delta: float, C0: float, C2: float, sigma: float, sigma0: float = 0.0, max_steps: int = 100_000
) -> int | None:
    """The number of noisy steps until δ_t ≤ δ, or ``None`` when ``max_steps`` do not suffice."""
    traj = model_clip_delta_trajectory(
        epsilon=epsilon, delta_target=delta, C0=C0, C2=C2, sigma=sigma, sigma0=sigma0, max_steps=max_steps
    )
    return len(traj) - 1 if traj[-1] <= delta else None


def _delta_after(*, epsilon: float, sigma: float, delta: float, T: int, C0: float, C2: float, sigma0: float) -> float:
    """δ_T of :func:`model_clip_delta_trajectory` after exactly ``T`` steps."""
    return model_clip_delta_trajectory(
        epsilon=epsilon, delta_target=delta, C0=C0, C2=C2, sigma=sigma, sigma0=sigma0, steps=T
    )[-1]


def model_clip_sigma_required(
    *, epsilon: float, delta: float, T: int, C0: float, C2: float, sigma0: float = 0.0
) -> float:
    """The smallest σ for which ``T`` noisy steps bring δ_T ≤ δ (δ_T decreases with σ): Brent's method in log σ."""
    def excess(sigma: float) -> float:
        return _delta_after(epsilon=epsilon, sigma=sigma, delta=delta, T=T, C0=C0, C2=C2, sigma0=sigma0) - delta

    if T < 1 and sigma0 <= 0:
        return math.inf
    lo, hi = C2 * 1e-3, C2
    while excess(hi) > 0:
        hi *= 2.0
        if hi > C2 * 1e9:
            return math.inf
    while excess(lo) <= 0:
        lo /= 2.0
        if lo < C2 * 1e-12:
            return lo
    return boundary(excess, lo, hi, rtol=1e-9)


def model_clip_epsilon(
    *, sigma: float, delta: float, T: int, C0: float, C2: float, sigma0: float = 0.0, eps_hi: float = 100.0
) -> float:
    """The smallest ε for which T steps at σ bring δ_T ≤ δ (δ_T decreases with ε): Brent's method on (0, eps_hi]."""
    def excess(eps: float) -> float:
        return _delta_after(epsilon=eps, sigma=sigma, delta=delta, T=T, C0=C0, C2=C2, sigma0=sigma0) - delta

    if excess(eps_hi) > 0:
        return math.inf
    lo = 1e-15  # the old bisection's floor: below it ε is reported as this (0 itself is not a valid ε)
    if excess(lo) <= 0:
        return lo
    return boundary(excess, lo, eps_hi, rtol=1e-6, log_space=False)
