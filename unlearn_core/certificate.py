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
    "analytic_gaussian_delta",
    "batchnorm_condition",
    "certificate_from_card",
    "certificate_status",
    "delta_a_posteriori",
    "delta_exact",
    "delta_lissa",
    "delta_nonconvergence",
    "epsilon_for_sigma",
    "gradient_bound",
    "lissa_depth_required",
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

    def describe(self) -> str:
        """One line: the statement, what was found, what is needed, and (when it fails) the fix."""
        text = f"{self.statement}: {self.value} (needs {self.requirement})"
        if not self.holds and self.fix:
            text += f"; {self.fix}"
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
      estimates or assumptions (named in the reason);
    * ``certified`` — every condition holds and every constant is a proven bound.

    A certificate with no conditions at all is not a certificate: it is ``not certified``.
    """
    if not conditions:
        return NOT_CERTIFIED, "no condition of the theorem was checked"
    failing = [c for c in conditions if not c.holds]
    if failing:
        more = f" (and {len(failing) - 1} more condition(s))" if len(failing) > 1 else ""
        return NOT_CERTIFIED, failing[0].describe() + more
    soft = [c for c in constants if c.tag != BOUND]
    if soft:
        names = ", ".join(f"{c.name} ({c.tag})" for c in soft)
        return UNDER_ASSUMPTIONS, f"every condition holds, given {names}"
    return CERTIFIED, "every condition holds and every constant is a proven bound"


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

    def soft_constants(self) -> list[Constant]:
        """The estimates and assumptions the guarantee rests on."""
        return [c for c in self.constants if c.tag != BOUND]

    def headline(self) -> str:
        """One line for the CLI, tables and reports: status, the guarantee and the reason."""
        guarantee = f"(ε, δ) = ({self.epsilon:g}, {self.delta_guaranteed:.3g})"
        if self.status == NOT_CERTIFIED:
            return f"{NOT_CERTIFIED}: {self.reason}"
        return f"{self.status} at {guarantee}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become ``None``); ``status``, ``reason``, ``certified`` included."""
        data = asdict(self)
        data.update(status=self.status, reason=self.reason, certified=self.certified, headline=self.headline(),
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
        )


def certificate_from_card(card: dict[str, Any]) -> Certificate | None:
    """The typed certificate of a run card (``None`` for methods that carry none)."""
    data = card.get("certificate")
    return Certificate.from_dict(data) if isinstance(data, dict) else None


# ----------------------------------------------------------------------------------------------------------------
# Shared conditions
# ----------------------------------------------------------------------------------------------------------------


def noise_condition(*, sigma_used: float, sigma_required: float, accountant: str) -> Condition:
    """σ_used ≥ σ_required: the noise added is at least what the accountant needs for (ε, δ).

    Below it the release is "not certified by the bound" (the guide's words), whatever else holds.
    """
    finite = math.isfinite(sigma_required)
    return Condition(
        name="noise",
        statement="noise σ_used ≥ σ_required",
        value=f"σ_used = {sigma_used:.4g}, σ_required = {sigma_required:.4g}" if finite
        else f"σ_used = {sigma_used:.4g}, σ_required = ∞ (no finite noise certifies)",
        requirement=f"σ_used ≥ σ_required ({accountant})",
        holds=bool(finite and sigma_used >= sigma_required * (1 - 1e-9)),
        fix="not certified by the bound: leave sigma unset (none) to add the required noise" if finite
        else "not certified by the bound: make the bound finite first",
        source="Gaussian mechanism: the noise must cover the sensitivity at (ε, δ)",
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
