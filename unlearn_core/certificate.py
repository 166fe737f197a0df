r"""Certificates: the one typed record every certified method returns, and Zhang et al.'s bounds and σ.

**The record.** :class:`Certificate` is the same shape for certified Newton (Zhang, Dong, Wang & Li, ICML 2024),
noisy fine-tuning and output perturbation (Koloskova et al., ICML 2025): the (ε, δ) asked for and the δ actually
guaranteed, σ required by each accountant and σ used, the ε σ_used certifies, the sensitivity Δ where there is one,
the theorem's hypotheses as :class:`Condition` s checked on the run, the constants the bound uses as
:class:`Constant` s tagged ``bound`` / ``estimate`` / ``assumption``, and notes. Its status — ``certified``,
``certified under assumptions`` or ``not certified`` — is computed by one function, :func:`certificate_status`,
from the conditions and the tags; the CLI, the run card, every dashboard page and the HTML report render that
record and nothing else decides the word "certified".

**Zhang et al.'s bounds.** Certified Newton unlearning releases :math:`w^- = \tilde w + \xi`,
:math:`\xi \sim N(0, \sigma^2 I_p)`. If the estimate :math:`\tilde w` is within Δ of the retrained model
:math:`\tilde w^*` (in ℓ2), the Gaussian mechanism with sensitivity Δ makes :math:`w^-` (ε, δ)-indistinguishable
from :math:`\tilde w^* + \xi`. Δ is built from constants (C, M, λ_min, G, ...) and σ is the noise that Δ requires
at (ε, δ), by the analytic (Balle & Wang 2018) or the classical Gaussian mechanism
(:mod:`unlearn_core.privacy.gaussian`, re-exported here). The derivations are in ``docs/certified_newton.md``.

Everything here is a pure, keyword-only function of numbers, so the dashboard's calculators call the same code
the unlearners use. Each formula lives in one function whose docstring cites where it comes from.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from unlearn_core.errors import ConfigError
from unlearn_core.jsonio import to_jsonable

# The Gaussian mechanism's σ calibration lives in unlearn_core.privacy.gaussian; its names are re-exported here
# because the dashboard's calculators and older callers reach them as ``certificate.sigma_analytic`` etc.
from unlearn_core.privacy.gaussian import (
    analytic_gaussian_delta,
    epsilon_for_sigma,
    sigma_analytic,
    sigma_analytic_bisection,
    sigma_classical,
    sigma_for,
)
from unlearn_core.privacy.gaussian import check_positive as _check_positive
from unlearn_core.privacy.noise import SIMULATION_LABEL

LISSA_FORMS = ("agarwal", "r2d")
#: The solve-error terms certified Newton offers: the LiSSA lemma (two transcriptions) or the residual bound.
SOLVE_BOUNDS = (*LISSA_FORMS, "a_posteriori")

__all__ = [
    "ASSUMPTION",
    "BOUND",
    "CERTIFIED",
    "ESTIMATE",
    "NOT_CERTIFIED",
    "STATUSES",
    "UNDER_ASSUMPTIONS",
    "Certificate",
    "Condition",
    "Constant",
    "LissaTerm",
    "analytic_gaussian_delta",
    "batchnorm_condition",
    "certificate_from_card",
    "certificate_status",
    "compare_text",
    "delta_a_posteriori",
    "delta_condition",
    "delta_exact",
    "delta_lissa",
    "delta_nonconvergence",
    "delta_strong_convexity",
    "epsilon_for_sigma",
    "gradient_bound",
    "lissa_depth_required",
    "newton_delta",
    "noise_condition",
    "sigma_analytic",
    "sigma_analytic_bisection",
    "sigma_classical",
    "sigma_for",
]


# ----------------------------------------------------------------------------------------------------------------
# Δ: bounds on ‖w̃ − w̃*‖
# ----------------------------------------------------------------------------------------------------------------


def _curvature_floor(*, lam: float, lambda_min: float) -> float:
    """λ + λ_min, which every bound divides by; ≤ 0 means the bound does not apply (returned as is)."""
    return float(lam) + float(lambda_min)


def delta_exact(*, C: float, M: float, lam: float, lambda_min: float) -> float:
    r"""Δ of the exact Newton step: :math:`2C(MC + \lambda)/(\lambda + \lambda_{\min})`.

    Zhang et al. 2024, the exact-step bound; derived in docs/certified_newton.md.

    From :math:`\tilde w - \tilde w^* = (H+\lambda I)^{-1}[\lambda(w^*-\tilde w^*) + r]` with
    :math:`\lVert r\rVert \le \frac M2\lVert\tilde w^* - w^*\rVert^2` and :math:`\lVert w^*-\tilde w^*\rVert \le 2C`.
    Returns ``inf`` when λ + λ_min ≤ 0 (the bound does not apply).
    """
    return delta_nonconvergence(C=C, M=M, lam=lam, lambda_min=lambda_min, G=0.0)


def delta_nonconvergence(*, C: float, M: float, lam: float, lambda_min: float, G: float) -> float:
    r"""Δ when the retrained model is not a stationary point: :math:`(2C(MC+\lambda) + G)/(\lambda+\lambda_{\min})`.

    Zhang et al. 2024's bound without convergence (derived: see docs/certified_newton.md#the-certificate): G bounds
    :math:`\lVert\nabla L(\tilde w^*, D_r)\rVert`; with G = 0 this is
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
    r"""A bound on :math:`\lVert\nabla L(w^*, D_r)\rVert`: :math:`2CL + G` (derived: see
    docs/certified_newton.md#the-certificate).

    The gradient is L-Lipschitz, :math:`\lVert w^* - \tilde w^*\rVert \le 2C` and
    :math:`\lVert\nabla L(\tilde w^*, D_r)\rVert \le G`.
    """
    return 2.0 * C * L + G


def delta_lissa(
    *,
    C: float,
    L: float,
    G: float,
    zeta_min: float,
    num_params: int,
    rho: float,
    num_samples: int,
    scale: float,
    form: str = "agarwal",
) -> float:
    r"""The LiSSA term added to Δ (holds with probability ≥ 1 − ρ) — Zhang et al. 2024's stochastic-solver bound.

    * ``"agarwal"`` (preferred; the structure of Agarwal, Bullins & Hazan 2017, Lemma 3.6):
      :math:`\big(16\,(B/\zeta_{\min})\sqrt{\ln(d/\rho)/S_1} + 1/16\big)(2CL + G)` with B = ``scale`` (H, the bound
      on the sampled regularised Hessians' norms), :math:`\zeta_{\min}` a lower bound on the smallest eigenvalue of
      the *sampled* regularised Hessians (:func:`unlearn_core.curvature.sampled_lambda_min`), d = ``num_params`` and
      :math:`S_1` = ``num_samples``, the number of independent LiSSA estimates averaged (the repetitions); the
      depth condition is :func:`lissa_depth_required`.
    * ``"r2d"``: :math:`\big(16\sqrt{p/\rho}/\zeta_{\min} + 1/16\big)(2LC + G)` — a third-party transcription
      whose missing logarithm is probably an error.

    Caveat (derived, unverified against the paper): the lemma is stated for Hessians pre-scaled to norm ≤ 1;
    unscaled, the error gains a factor 1/H that neither form shows on the 1/16 term. Kept in this one function so
    that it can be fixed in one place. Returns ``inf`` when ζ_min ≤ 0 (the lemma does not apply).
    """
    if form not in LISSA_FORMS:
        raise ConfigError(f"lissa_bound={form!r} is not valid: expected one of {', '.join(LISSA_FORMS)}")
    _check_positive("rho", rho)
    if rho >= 1:
        raise ConfigError(f"rho={rho!r} is not valid: expected a number in (0, 1)")
    _check_positive("L", L, allow_zero=True)
    if zeta_min <= 0:
        return math.inf
    grad = gradient_bound(C=C, L=L, G=G)
    if form == "agarwal":
        _check_positive("scale", scale)
        if num_samples < 1:
            raise ConfigError(f"num_samples={num_samples!r} is not valid: expected an integer >= 1")
        kappa = scale / zeta_min
        return (16.0 * kappa * math.sqrt(math.log(num_params / rho) / num_samples) + 1.0 / 16.0) * grad
    return (16.0 * math.sqrt(num_params / rho) / zeta_min + 1.0 / 16.0) * grad


def lissa_depth_required(*, scale: float, lam: float, lambda_min: float, num_samples: int) -> float:
    r"""The depth Agarwal et al.'s lemma needs: :math:`s \ge 2\kappa\ln(\kappa S_1)`, κ = H/(λ+λ_min).

    Agarwal, Bullins & Hazan 2017, Lemma 3.6's depth condition s ≥ 2(B/(λ+λ_min))·ln((B/(λ+λ_min))·S₁), with
    B = H (see docs/certified_newton.md#the-certificate). ``inf`` if λ + λ_min ≤ 0.
    """
    floor = _curvature_floor(lam=lam, lambda_min=lambda_min)
    if floor <= 0:
        return math.inf
    kappa = scale / floor
    return 2.0 * kappa * math.log(max(kappa * num_samples, 1.0))


def delta_a_posteriori(*, residual_norm: float, lam: float, lambda_min: float) -> float:
    r"""A deterministic bound on the inverse-HVP error from its residual (derived; no probability, no depth).

    For :math:`A = H + \lambda I \succ 0` and any estimate :math:`\hat v` of :math:`v^* = A^{-1}g`, the residual
    :math:`r = A\hat v - g` gives :math:`\hat v - v^* = A^{-1}r`, so

    .. math:: \lVert\hat v - v^*\rVert \le \lVert r\rVert / \lambda_{\min}(A)
              = \lVert r\rVert/(\lambda + \lambda_{\min}).

    One full-data HVP computes r. The bound is only as good as the lower bound on λ + λ_min it divides by (an
    analytic bound for convex models, a Lanczos estimate otherwise). ``inf`` when λ + λ_min ≤ 0.
    """
    _check_positive("residual_norm", residual_norm, allow_zero=True)
    floor = _curvature_floor(lam=lam, lambda_min=lambda_min)
    if floor <= 0:
        return math.inf
    return float(residual_norm) / floor


@dataclass(frozen=True)
class LissaTerm:
    """The constants of the LiSSA lemma's term (:func:`delta_lissa`): L, ζ_min, p, ρ, S₁, H and the form."""

    L: float
    zeta_min: float
    num_params: int
    rho: float
    num_samples: int
    scale: float
    form: str = "agarwal"


def newton_delta(
    *,
    C: float,
    M: float,
    lam: float,
    lambda_min: float,
    G: float,
    lissa: LissaTerm | None = None,
    residual_norm: float | None = None,
    minimiser_gap: float | None = None,
) -> tuple[dict[str, float], float]:
    r"""Certified Newton's Δ by term, and the total — the sum Zhang et al. 2024 bound ‖w̃ − w̃*‖ by.

    Δ = Δ_nc (:func:`delta_nonconvergence`: the exact step's error with the gradient bound G) + the solve's error
    — the LiSSA lemma's term (:func:`delta_lissa`, given ``lissa``) or the a-posteriori residual bound
    (:func:`delta_a_posteriori`, given ``residual_norm``; an infinite residual gives ∞) — + the forget-set
    shortcut's measured gradient gap over λ + λ_min (``minimiser_gap``, when the step used it). The exact term
    (:func:`delta_exact`, G = 0) is returned for display: it is inside Δ_nc, not added to it.

    Returns ``(terms, total)``: ``terms`` holds ``exact``, ``nonconvergence``, ``minimiser_gap`` (if given), then
    ``lissa`` or ``solve``, in that order (the run card's ``sensitivity_terms``).

    Raises:
        ConfigError: neither or both of ``lissa`` and ``residual_norm``, or a constant out of its range.
    """
    if (lissa is None) == (residual_norm is None):
        raise ConfigError("newton_delta needs exactly one solve-error term: lissa (the LiSSA lemma) or "
                          "residual_norm (the a-posteriori bound)")
    terms: dict[str, float] = {
        "exact": delta_exact(C=C, M=M, lam=lam, lambda_min=lambda_min),
        "nonconvergence": delta_nonconvergence(C=C, M=M, lam=lam, lambda_min=lambda_min, G=G),
    }
    if minimiser_gap is not None:
        terms["minimiser_gap"] = delta_a_posteriori(residual_norm=minimiser_gap, lam=lam, lambda_min=lambda_min)
    if lissa is not None:
        solve = terms["lissa"] = delta_lissa(C=C, L=lissa.L, G=G, zeta_min=lissa.zeta_min,
                                             num_params=lissa.num_params, rho=lissa.rho,
                                             num_samples=lissa.num_samples, scale=lissa.scale, form=lissa.form)
    else:
        assert residual_norm is not None
        solve = terms["solve"] = (delta_a_posteriori(residual_norm=residual_norm, lam=lam, lambda_min=lambda_min)
                                  if math.isfinite(residual_norm) else math.inf)
    return terms, terms["nonconvergence"] + solve + terms.get("minimiser_gap", 0.0)


def delta_strong_convexity(*, grad_norm: float, mu: float) -> float:
    r"""‖w̃ − w*_r‖ ≤ ‖∇F_r(w̃)‖/μ for a μ-strongly convex F_r and any w̃ (w*_r = argmin F_r).

    Strong convexity gives :math:`\langle\nabla F(w) - \nabla F(w^*), w - w^*\rangle \ge \mu\lVert w-w^*\rVert^2`
    (Nesterov 2004, Thm. 2.1.10); with :math:`\nabla F(w^*) = 0` and Cauchy–Schwarz,
    :math:`\mu\lVert w - w^*\rVert \le \lVert\nabla F(w)\rVert`. Deterministic and data-dependent (Guo,
    Goldstein, Hannun & van der Maaten, ICML 2020, use the same idea). ``inf`` when μ ≤ 0.
    """
    _check_positive("grad_norm", grad_norm, allow_zero=True)
    if not mu > 0:
        return math.inf
    return float(grad_norm) / float(mu)


# ----------------------------------------------------------------------------------------------------------------
# The certificate record: one typed shape for every certified method
# ----------------------------------------------------------------------------------------------------------------

#: The three statuses. Nothing outside :func:`certificate_status` decides which one a run gets.
CERTIFIED = "certified"
UNDER_ASSUMPTIONS = "certified under assumptions"
NOT_CERTIFIED = "not certified"
STATUSES = (CERTIFIED, UNDER_ASSUMPTIONS, NOT_CERTIFIED)

#: How a constant of a bound is known. ``bound``: a proven upper/lower bound or an exact value (a projection the
#: algorithm enforces, an analytic eigenvalue bound, a stopping rule of the training recipe); ``estimate``:
#: measured and possibly optimistic (a Lanczos Ritz value, a gradient norm at a proxy model); ``assumption``: set by
#: the user or a default and taken on trust (a Lipschitz constant).
BOUND, ESTIMATE, ASSUMPTION = "bound", "estimate", "assumption"
TAGS = (BOUND, ESTIMATE, ASSUMPTION)


@dataclass
class Condition:
    """One hypothesis of a theorem, checked on this run.

    ``statement`` is the hypothesis in words and symbols ("λ + λ_min > 0"), ``value`` what this run has, and
    ``requirement`` what the theorem needs; ``fix`` says what would make a failing condition hold, and ``source``
    where the hypothesis comes from (the theorem or the derivation).
    """

    name: str
    statement: str
    value: str
    requirement: str
    holds: bool
    fix: str = ""
    source: str = ""
    #: What the check rests on when it is not a proof ("an estimate of λ_min (Lanczos, 40 steps)"): a condition that
    #: holds given an estimate or an assumption can make a run at best "certified under assumptions".
    given: str = ""

    def describe(self) -> str:
        """One line: the statement, what was found, what is needed, (when it fails) the fix, and (when it holds
        only given an estimate or assumption) what it rests on."""
        text = f"{self.statement}: {self.value} (needs {self.requirement})"
        if not self.holds and self.fix:
            text += f"; {self.fix}"
        if self.holds and self.given:
            text += f" — holds given {self.given}"
        return text


@dataclass
class Constant:
    """One constant a bound uses, with its value and how it is known (``tag`` in :data:`TAGS`)."""

    name: str
    value: float | None
    tag: str
    how: str

    def __post_init__(self) -> None:
        if self.tag not in TAGS:
            raise ValueError(f"constant {self.name!r}: tag {self.tag!r} is not one of {', '.join(TAGS)}")


def certificate_status(conditions: list[Condition], constants: list[Constant]) -> tuple[str, str]:
    """The status of a certificate and the one-line reason for it — the only place that decides "certified".

    * ``not certified`` — some condition fails; the reason names the first failing one and its fix;
    * ``certified under assumptions`` — every condition holds, and the guarantee rests on constants that are
      estimates or assumptions, or on conditions that hold only given one (``Condition.given``; named in the
      reason);
    * ``certified`` — every condition holds and every constant is a proven bound.

    A certificate with no conditions at all is not a certificate: it is ``not certified``.
    """
    if not conditions:
        return NOT_CERTIFIED, "no condition of the theorem was checked"
    failing = [c for c in conditions if not c.holds]
    if failing:
        more = f" (and {len(failing) - 1} more condition(s))" if len(failing) > 1 else ""
        return NOT_CERTIFIED, failing[0].describe() + more
    soft = [f"{c.name} ({c.tag})" for c in constants if c.tag != BOUND]
    soft += [f"{c.name}: {c.given}" for c in conditions if c.given]
    if soft:
        return UNDER_ASSUMPTIONS, f"every condition holds, given {', '.join(soft)}"
    return CERTIFIED, "every condition holds and every constant is a proven bound"


#: The conditions whose failure leaves the release certified at a larger ε (too little noise), not uncertified.
_NOISE_CONDITIONS = ("noise", "every_request")


@dataclass
class Certificate:
    """The (ε, δ) certificate of one release — the same shape for every certified method.

    ``epsilon``/``delta`` are what the user asked for; ``delta_guaranteed`` is the δ actually guaranteed (δ + ρ
    where a lemma holds only with probability 1 − ρ). ``sigma_required`` is the noise the chosen ``accountant``
    needs for (ε, δ) (``sigma_required_by``: every accountant or mechanism, ``inf`` where it is invalid or its
    bound does not apply), ``sigma_used`` the noise added, and ``epsilon_certified`` the ε that ``sigma_used``
    certifies at δ by the tightest valid accountant (``epsilon_by``: each one). ``sensitivity`` is the bound Δ on
    the distance the noise must hide (Zhang et al.'s ‖w̃ − w̃*‖, output perturbation's 2C₀) with its terms, or
    ``None`` where the guarantee has no single sensitivity (noisy fine-tuning). ``conditions`` are the theorem's
    hypotheses as checked on this run, ``constants`` the numbers it uses with their tags; ``status`` and
    ``reason`` follow from both by :func:`certificate_status` and are never stored separately.
    """

    method: str
    theorem: str
    epsilon: float
    delta: float
    delta_guaranteed: float
    accountant: str
    sigma_required: float
    sigma_used: float
    epsilon_certified: float
    sigma_required_by: dict[str, float] = field(default_factory=dict)
    epsilon_by: dict[str, float] = field(default_factory=dict)
    sensitivity: float | None = None
    sensitivity_terms: dict[str, float] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: The release noise can be regenerated (``RunConfig.reproducible``): the run is a simulation of a release, not a
    #: release — the status says what the mechanism would guarantee with secret noise.
    simulation: bool = False

    @property
    def status(self) -> str:
        return certificate_status(self.conditions, self.constants)[0]

    @property
    def reason(self) -> str:
        return certificate_status(self.conditions, self.constants)[1]

    @property
    def certified(self) -> bool:
        """True for ``certified`` and ``certified under assumptions``."""
        return self.status != NOT_CERTIFIED

    def failing(self) -> list[Condition]:
        return [c for c in self.conditions if not c.holds]

    def epsilon_guarantee(self) -> float:
        """The ε this release is certified at — ``epsilon_certified`` when every hypothesis other than the noise
        holds, else ∞ (nothing is certified at any ε).

        With too little noise the release is still certified, at the larger ε its σ buys (status "not certified"
        for the ε asked, and ε certified above it); with a failing hypothesis of the bound (a curvature floor, a
        gradient bound, a δ ≥ 1/n) no ε is certified, and the card says so rather than showing an ε next to
        "not certified". The run card's ``epsilon_certified`` is this value.
        """
        if any(not c.holds and c.name not in _NOISE_CONDITIONS for c in self.conditions):
            return math.inf
        return self.epsilon_certified

    def soft_constants(self) -> list[Constant]:
        """The estimates and assumptions the guarantee rests on."""
        return [c for c in self.constants if c.tag != BOUND]

    def headline(self) -> str:
        """One line for the CLI, tables and reports: status, the guarantee and the reason."""
        guarantee = f"(ε, δ) = ({self.epsilon:g}, {self.delta_guaranteed:.3g})"
        prefix = f"{SIMULATION_LABEL} — " if self.simulation else ""
        if self.status == NOT_CERTIFIED:
            return f"{prefix}{NOT_CERTIFIED}: {self.reason}"
        return f"{prefix}{self.status} at {guarantee}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become ``None``); ``status``, ``reason``, ``certified`` included."""
        data = asdict(self)
        data.update(status=self.status, reason=self.reason, certified=self.certified, headline=self.headline(),
                    epsilon_certified=self.epsilon_guarantee(),
                    sensitivity_infinite=self.sensitivity is not None and math.isinf(self.sensitivity))
        return to_jsonable(data)

    def to_json(self, **kwargs: Any) -> str:
        """The certificate as a JSON string (strict JSON: no NaN/Infinity)."""
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Certificate:
        """Rebuild a certificate from its JSON form (``None`` numbers become ``inf``: they were non-finite).

        A card written before this record existed has no ``conditions``: it comes back ``not certified`` with a
        condition that says so, rather than trusting a label nothing re-checks.
        """

        def num(value: Any) -> float:
            return math.inf if value is None else float(value)

        conditions = [Condition(**c) for c in data.get("conditions") or []]
        if "conditions" not in data:
            conditions = [Condition(
                name="record", statement="certificate record of this version", value="an older run card",
                requirement="a card written by this version", holds=False,
                fix="run it again to recompute the certificate",
            )]
        return cls(
            method=str(data.get("method", "?")),
            theorem=str(data.get("theorem", "")),
            epsilon=num(data.get("epsilon")),
            delta=num(data.get("delta")),
            delta_guaranteed=num(data.get("delta_guaranteed", data.get("delta"))),
            accountant=str(data.get("accountant", "")),
            sigma_required=num(data.get("sigma_required")),
            sigma_used=num(data.get("sigma_used")) if data.get("sigma_used") is not None else 0.0,
            epsilon_certified=num(data.get("epsilon_certified")),
            sigma_required_by={k: num(v) for k, v in (data.get("sigma_required_by") or {}).items()},
            epsilon_by={k: num(v) for k, v in (data.get("epsilon_by") or {}).items()},
            sensitivity=math.inf if data.get("sensitivity_infinite") else (
                None if data.get("sensitivity") is None else float(data["sensitivity"])),
            sensitivity_terms={k: num(v) for k, v in (data.get("sensitivity_terms") or {}).items()},
            conditions=conditions,
            constants=[Constant(**c) for c in data.get("constants") or []],
            notes=list(data.get("notes") or []),
            details=dict(data.get("details") or {}),
            simulation=bool(data.get("simulation", False)),
        )


def certificate_from_card(card: dict[str, Any]) -> Certificate | None:
    """The typed certificate of a run card (``None`` for methods that carry none)."""
    data = card.get("certificate")
    return Certificate.from_dict(data) if isinstance(data, dict) else None


# ----------------------------------------------------------------------------------------------------------------
# Shared conditions
# ----------------------------------------------------------------------------------------------------------------


#: Relative tolerance of σ_used ≥ σ_required: every σ_required is a root-find answer on the safe side to ~1e-10, and
#: σ_used is either that same number or the user's; this only absorbs the last bits of recomputing it. Nothing
#: larger is ever waved through (sequential requests have their own, stated margin: certified_newton).
NOISE_RTOL = 1e-9


def compare_text(name_a: str, a: float, name_b: str, b: float) -> str:
    """``"σ_used = 2.844e+05, σ_required = 2.844e+05"`` with enough digits to see the difference: when the two agree
    to 4 digits their ratio is written out (``σ_used/σ_required = 1 − 6.6e-07``)."""
    text = f"{name_a} = {a:.4g}, {name_b} = {b:.4g}"
    if math.isfinite(a) and math.isfinite(b) and b > 0 and a != b and abs(a / b - 1.0) < 5e-4:
        gap = a / b - 1.0
        text += f" ({name_a}/{name_b} = 1 {'+' if gap > 0 else '−'} {abs(gap):.2g})"
    return text


def noise_condition(*, sigma_used: float, sigma_required: float, accountant: str) -> Condition:
    """σ_used ≥ σ_required: the noise added is at least what the accountant needs for (ε, δ).

    Below it the release is "not certified by the bound" (the guide's words), whatever else holds. The comparison
    is relative (:data:`NOISE_RTOL`) and the text shows the ratio when the two agree to 4 digits.
    """
    finite = math.isfinite(sigma_required)
    return Condition(
        name="noise",
        statement="noise σ_used ≥ σ_required",
        value=compare_text("σ_used", sigma_used, "σ_required", sigma_required) if finite
        else f"σ_used = {sigma_used:.4g}, σ_required = ∞ (no finite noise certifies)",
        requirement=f"σ_used ≥ σ_required ({accountant})",
        holds=bool(finite and sigma_used >= sigma_required * (1 - NOISE_RTOL)),
        fix="not certified by the bound: leave sigma unset (none) to add the required noise" if finite
        else "not certified by the bound: make the bound finite first",
        source="Gaussian mechanism: the noise must cover the sensitivity at (ε, δ)",
    )


def delta_condition(*, delta_guaranteed: float, n: int) -> Condition:
    """δ_guaranteed < 1/n, with n the training set's size: δ is a hypothesis too.

    A mechanism that publishes one training point, chosen at random, in the clear is (0, 1/n)-differentially
    private; a "guarantee" with δ ≥ 1/n therefore allows exactly that, and says nothing about any one person
    (Dwork & Roth 2014, §2.3: δ must be well below 1/n). n is the size of the whole training set D — the stricter
    of the natural choices (it is ≥ the forget set's size). So the run is *not certified* rather than certified
    with a vacuous δ (docs/certified_newton.md#the-label).
    """
    bound = 1.0 / max(int(n), 1)
    return Condition(
        name="delta_meaningful", statement="δ guaranteed < 1/n (n = training points)",
        value=f"δ = {delta_guaranteed:.3g}", requirement=f"< 1/n = 1/{int(n):,} = {bound:.3g}",
        holds=bool(delta_guaranteed < bound),
        fix=f"lower delta (and rho, where the LiSSA lemma adds it) below {bound:.2g}",
        source="Dwork & Roth (2014), §2.3: releasing a random record in the clear is (0, 1/n)-DP",
    )


def batchnorm_condition(*, has_batchnorm: bool, recomputed_on_retain: bool) -> Condition:
    """The output is a function of the parameters alone (no BatchNorm buffers that still carry D_u)."""
    ok = (not has_batchnorm) or recomputed_on_retain
    value = ("no BatchNorm buffers" if not has_batchnorm else
             "BatchNorm statistics recomputed from D_r" if recomputed_on_retain else
             "BatchNorm running statistics left as trained on D (they carry D_u)")
    return Condition(
        name="batchnorm", statement="the released model's buffers depend on D_r only", value=value,
        requirement="no BatchNorm buffers, or buffers recomputed from D_r", holds=ok,
        fix="use a model with norm=none or norm=group",
        source="the certificates treat the network as a function of its parameters",
    )
