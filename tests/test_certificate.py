"""The certificate's formulas against methods.md §8's recomputed test vectors and independent checks."""

from __future__ import annotations

import json
import math

import dp_accounting
import pytest
from dp_accounting import rdp

from unlearn_core.certificate import (
    ASSUMPTION,
    BOUND,
    CERTIFIED,
    ESTIMATE,
    NOT_CERTIFIED,
    UNDER_ASSUMPTIONS,
    Certificate,
    Condition,
    Constant,
    LissaTerm,
    analytic_gaussian_delta,
    certificate_status,
    delta_a_posteriori,
    delta_exact,
    delta_lissa,
    delta_nonconvergence,
    epsilon_for_sigma,
    gradient_bound,
    lissa_depth_required,
    newton_delta,
    sigma_analytic,
    sigma_analytic_bisection,
    sigma_classical,
    sigma_for,
)
from unlearn_core.errors import ConfigError

REL = 1e-3  # methods.md §8: "rel. tol. 1e-3 unless noted" (the vectors are printed to 4-5 digits)

# ε → (classical σ, analytic σ) at Δ = 1, δ = 1e-5 (methods.md §8 table)
SIGMA_TABLE = {0.5: (9.6896, 7.0318), 1.0: (4.8448, 3.7306), 2.0: (2.4224, 1.9938), 5.0: (0.9690, 0.8919)}


@pytest.mark.parametrize(
    ("C", "M", "lam", "expected_delta", "expected_sigma"),
    [(20, 1, 200, 44.0, 213.17), (21, 1, 2000, 42.441, 205.62), (20, 1, 0.01, 80_040.0, None)],
)
def test_delta_exact_and_classical_sigma_vectors(C, M, lam, expected_delta, expected_sigma) -> None:
    delta = delta_exact(C=C, M=M, lam=lam, lambda_min=0.0)
    assert delta == pytest.approx(expected_delta, rel=REL)
    if expected_sigma is not None:
        assert sigma_classical(epsilon=1.0, delta=1e-5, sensitivity=delta) == pytest.approx(expected_sigma, rel=REL)


def test_classical_constant_and_the_reference_codes_sigma() -> None:
    unit = sigma_classical(epsilon=1.0, delta=1e-5, sensitivity=1.0)
    assert unit == pytest.approx(4.84481, rel=1e-5)  # sqrt(2 ln(1.25e5))
    assert 2 * 20 * unit == pytest.approx(193.8, rel=REL)
    # The reference code's σ = 0.001 covers only Δ ≈ 2.0641e-4 at ε = 1, δ = 1e-5.
    assert 0.001 / unit == pytest.approx(2.0641e-4, rel=REL)
    assert epsilon_for_sigma(sigma=0.001, delta=1e-5, sensitivity=2.0641e-4, mechanism="classical") == pytest.approx(
        1.0, rel=REL
    )


@pytest.mark.parametrize("epsilon", sorted(SIGMA_TABLE))
def test_sigma_table_classical_and_analytic(epsilon: float) -> None:
    classical, analytic = SIGMA_TABLE[epsilon]
    assert sigma_classical(epsilon=epsilon, delta=1e-5, sensitivity=1.0) == pytest.approx(classical, rel=REL)
    assert sigma_analytic(epsilon=epsilon, delta=1e-5, sensitivity=1.0) == pytest.approx(analytic, rel=REL)
    # Our own bisection on Balle & Wang's δ(ε) agrees with dp_accounting to far better than the table's digits.
    ours = sigma_analytic_bisection(epsilon=epsilon, delta=1e-5, sensitivity=1.0)
    assert ours == pytest.approx(dp_accounting.get_sigma_gaussian(epsilon, 1e-5), rel=1e-8)
    # At the calibrated σ the mechanism's δ(ε) is exactly the target (the defining equation).
    assert analytic_gaussian_delta(epsilon=epsilon, sigma=ours, sensitivity=1.0) == pytest.approx(1e-5, rel=1e-6)
    # σ scales linearly with Δ, and the analytic σ is never larger than the classical one.
    assert sigma_analytic(epsilon=epsilon, delta=1e-5, sensitivity=7.0) == pytest.approx(7 * analytic, rel=REL)
    assert analytic < classical


def test_rdp_calibration_is_looser_than_analytic() -> None:
    """methods.md §8: the RDP accountant's σ depends on its order grid; assert only σ_RDP > σ_analytic."""
    for epsilon in (0.5, 1.0):
        sigma_rdp = dp_accounting.calibrate_dp_mechanism(
            rdp.RdpAccountant, dp_accounting.GaussianDpEvent, epsilon, 1e-5
        )
        assert sigma_rdp > sigma_analytic(epsilon=epsilon, delta=1e-5, sensitivity=1.0)


@pytest.mark.parametrize("mechanism", ["analytic", "classical"])
def test_epsilon_for_sigma_inverts_sigma_for(mechanism: str) -> None:
    for epsilon in (0.3, 0.9, 2.5):
        sigma = sigma_for(epsilon=epsilon, delta=1e-6, sensitivity=3.0, mechanism=mechanism)
        back = epsilon_for_sigma(sigma=sigma, delta=1e-6, sensitivity=3.0, mechanism=mechanism)
        assert back == pytest.approx(epsilon, rel=1e-6)
    assert epsilon_for_sigma(sigma=0.0, delta=1e-5, sensitivity=1.0) == math.inf


def test_delta_terms() -> None:
    # (b) adds G / (λ + λ_min) to (a); a negative λ_min shrinks the denominator; λ + λ_min ≤ 0 → no bound.
    a = delta_exact(C=20, M=1, lam=200, lambda_min=0)
    assert delta_nonconvergence(C=20, M=1, lam=200, lambda_min=0, G=4.0) == pytest.approx(a + 4.0 / 200)
    assert delta_exact(C=20, M=1, lam=200, lambda_min=-100) == pytest.approx(2 * a)
    assert delta_exact(C=20, M=1, lam=0.01, lambda_min=-0.5) == math.inf
    # (c) by hand: agarwal (16 κ sqrt(ln(d/ρ)/S₁) + 1/16)(2CL + G), κ = H/ζ_min.
    kappa = 1000 / 2.0
    hand = (16 * kappa * math.sqrt(math.log(26506 / 0.05) / 10) + 1 / 16) * (2 * 20 * 1.5 + 0.1)
    got = delta_lissa(C=20, L=1.5, G=0.1, zeta_min=2.0, num_params=26506, rho=0.05, num_samples=10,
                      scale=1000)
    assert got == pytest.approx(hand, rel=1e-12)
    assert gradient_bound(C=20, L=1.5, G=0.1) == pytest.approx(60.1)
    r2d = delta_lissa(C=20, L=1.5, G=0.1, zeta_min=2.0, num_params=26506, rho=0.05, num_samples=10,
                      scale=1000, form="r2d")
    assert r2d == pytest.approx((16 * math.sqrt(26506 / 0.05) / 2.0 + 1 / 16) * 60.1, rel=1e-12)
    assert lissa_depth_required(scale=1000, lam=1.0, lambda_min=1.0, num_samples=10) == pytest.approx(
        2 * 500 * math.log(5000)
    )


def test_newton_delta_sums_the_terms_by_hand() -> None:
    """Certified Newton's Δ (and Learn's calculator): Δ_nc + the solve's term + the shortcut's gap, by hand."""
    C, M, lam, lmin, G = 20.0, 1.0, 1.0, -0.0792, 1.0
    floor = lam + lmin
    nc = (2 * C * (M * C + lam) + G) / floor
    lissa_hand = (16 * (36.41 / 0.3352) * math.sqrt(math.log(3466 / 0.05) / 4) + 1 / 16) * (2 * C * 15.63 + G)
    terms, total = newton_delta(C=C, M=M, lam=lam, lambda_min=lmin, G=G, lissa=LissaTerm(
        L=15.63, zeta_min=0.3352, num_params=3466, rho=0.05, num_samples=4, scale=36.41))
    assert list(terms) == ["exact", "nonconvergence", "lissa"]
    assert terms["exact"] == pytest.approx(2 * C * (M * C + lam) / floor, rel=1e-12)
    assert terms["nonconvergence"] == pytest.approx(nc, rel=1e-12)
    assert terms["lissa"] == pytest.approx(lissa_hand, rel=1e-12)
    assert total == pytest.approx(nc + lissa_hand, rel=1e-12)  # the exact term is inside Δ_nc, not added
    terms, total = newton_delta(C=C, M=M, lam=lam, lambda_min=lmin, G=G, residual_norm=0.5, minimiser_gap=0.2)
    assert list(terms) == ["exact", "nonconvergence", "minimiser_gap", "solve"]
    assert total == pytest.approx(nc + 0.5 / floor + 0.2 / floor, rel=1e-12)
    assert newton_delta(C=C, M=M, lam=lam, lambda_min=lmin, G=G, residual_norm=math.inf)[1] == math.inf
    assert newton_delta(C=C, M=M, lam=0.01, lambda_min=-0.5, G=G, residual_norm=0.5)[1] == math.inf
    with pytest.raises(ConfigError, match="exactly one solve-error term"):
        newton_delta(C=C, M=M, lam=lam, lambda_min=lmin, G=G)


def test_lissa_term_does_not_apply_without_a_positive_sampled_floor() -> None:
    """ζ_min bounds the sampled regularised Hessians; at ζ_min ≤ 0 the lemma says nothing (Δ = ∞)."""
    assert delta_lissa(C=20, L=1.5, G=0.1, zeta_min=-0.3, num_params=100, rho=0.05, num_samples=10,
                       scale=10) == math.inf


def test_a_posteriori_bound_is_the_residual_over_the_floor() -> None:
    assert delta_a_posteriori(residual_norm=0.3, lam=0.1, lambda_min=0.5) == pytest.approx(0.5)
    assert delta_a_posteriori(residual_norm=0.3, lam=0.1, lambda_min=-0.2) == math.inf
    with pytest.raises(ConfigError):
        delta_a_posteriori(residual_norm=-1.0, lam=1.0, lambda_min=0.0)


def _condition(holds: bool, name: str = "c") -> Condition:
    return Condition(name, f"statement {name}", "value", "requirement", holds, fix=f"fix {name}")


def test_status_is_decided_by_conditions_then_tags() -> None:
    bound = [Constant("C", 20.0, BOUND, "projection")]
    assert certificate_status([_condition(True)], bound) == (CERTIFIED, "every condition holds and every constant "
                                                                        "is a proven bound")
    status, reason = certificate_status([_condition(True)], [*bound, Constant("M", 1.0, ASSUMPTION, "user")])
    assert status == UNDER_ASSUMPTIONS and "M (assumption)" in reason
    status, reason = certificate_status([_condition(True), _condition(False, "depth"), _condition(False, "noise")],
                                        bound)
    assert status == NOT_CERTIFIED and reason.startswith("statement depth") and "fix depth" in reason
    assert "1 more" in reason
    # No condition checked is no certificate.
    assert certificate_status([], bound)[0] == NOT_CERTIFIED
    with pytest.raises(ValueError, match="tag"):
        Constant("x", 1.0, "measured", "an old tag")


def _record(**overrides) -> Certificate:
    base = dict(method="m", theorem="t", epsilon=1.0, delta=1e-5, delta_guaranteed=1e-5, accountant="a",
                sigma_required=2.0, sigma_used=2.0, epsilon_certified=1.0, sensitivity=math.inf,
                conditions=[_condition(True)], constants=[Constant("λ_min", -0.1, ESTIMATE, "Lanczos")])
    return Certificate(**{**base, **overrides})


def test_certificate_round_trips_through_strict_json() -> None:
    cert = _record()
    data = json.loads(cert.to_json())
    assert data["status"] == UNDER_ASSUMPTIONS and data["certified"] is True
    assert data["sensitivity"] is None and data["sensitivity_infinite"] is True  # ∞ → null plus a flag
    back = Certificate.from_dict(data)
    assert back.sensitivity == math.inf and back.status == cert.status and back.constants == cert.constants
    none = Certificate.from_dict(json.loads(_record(sensitivity=None).to_json()))
    assert none.sensitivity is None


def test_a_card_without_conditions_is_never_read_as_certified() -> None:
    """A run card written before the typed record (label 'certified', no conditions) is not trusted."""
    legacy = {"certified": True, "label": "certified", "epsilon": 1.0, "delta": 1e-5, "sigma_used": 3.0,
              "sigma_required": 3.0, "epsilon_certified": 1.0, "delta_bound": 1.0}
    cert = Certificate.from_dict(legacy)
    assert cert.status == NOT_CERTIFIED and "run it again" in cert.reason
