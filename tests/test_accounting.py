"""Koloskova et al.'s accounting against the recomputed test vectors of methods.md §8 and independent references."""

from __future__ import annotations

import itertools
import math

import dp_accounting
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from unlearn_core.errors import ConfigError
from unlearn_core.privacy import accounting as acc

DELTA = 1e-5

OFFICIAL_TABLE = [
    # (C0, C1, lr, lam) -> T, sigma (official-code formulas, eps_R = 1)
    ((20, 10, 0.01, 50), 11, 0.2568),
    ((0.1, 10, 1e-3, 50), 10, 0.07726),
    ((1, 10, 1e-3, 50), 47, 0.1205),
    ((0.01, 10, 1e-4, 10), 10, 0.00892),
    ((0.01, 100, 1e-4, 750), 1, 0.02722),
    ((20, 10, 0.01, 0), 200, 2.828),
]


def args(C0, C1, gamma, lam, T):
    return {"C0": C0, "C1": C1, "gamma": gamma, "lam": lam, "T": T}


@pytest.mark.parametrize(("consts", "T", "sigma"), OFFICIAL_TABLE)
def test_steps_rule_and_official_sigma_table(consts, T, sigma) -> None:
    C0, C1, gamma, lam = consts
    assert acc.grad_clip_steps_rule(C0=C0, C1=C1, gamma=gamma, lam=lam) == T
    got = acc.sigma_grad_clip_official(epsilon_r=1.0, **args(C0, C1, gamma, lam, T))
    assert got == pytest.approx(sigma, rel=1e-3)


def test_closed_forms_and_their_ratio_to_the_official_code() -> None:
    s0 = acc.sigma_grad_clip_closed_form(epsilon=1.0, delta=DELTA, **args(20, 10, 0.01, 0, 200))
    s50 = acc.sigma_grad_clip_closed_form(epsilon=1.0, delta=DELTA, **args(20, 10, 0.01, 50, 11))
    assert s0 == pytest.approx(28.79, rel=1e-3)
    assert s50 == pytest.approx(4.2705, rel=1e-3)
    off0 = acc.sigma_grad_clip_official(epsilon_r=1.0, **args(20, 10, 0.01, 0, 200))
    off50 = acc.sigma_grad_clip_official(epsilon_r=1.0, **args(20, 10, 0.01, 50, 11))
    assert s0 / off0 == pytest.approx(10.2, rel=1e-2)
    assert s50 / off50 == pytest.approx(16.6, rel=1e-2)
    # The closed-form σ put back through the RDP accountant certifies a smaller ε (the closed forms are loose).
    eps0 = acc.epsilon_grad_clip_rdp(sigma=s0, delta=DELTA, **args(20, 10, 0.01, 0, 200))
    eps50 = acc.epsilon_grad_clip_rdp(sigma=s50, delta=DELTA, **args(20, 10, 0.01, 50, 11))
    assert eps0 == pytest.approx(0.779, abs=2e-3)
    assert eps50 == pytest.approx(0.315, abs=2e-3)


def test_k1_official_conversion_versus_a_correct_one() -> None:
    assert acc.official_code_conversion(epsilon_r=1.0, delta=DELTA) == pytest.approx(1.0036, abs=1e-4)
    assert acc.k1_correct_epsilon(epsilon_r=1.0, delta=DELTA, lam=50.0) == pytest.approx(7.077, abs=1e-2)
    assert acc.k1_correct_epsilon(epsilon_r=1.0, delta=DELTA, lam=0.0) == pytest.approx(10.72, abs=1e-2)
    # The official σ is exactly an RDP curve α·ε_R (λ > 0) or 2α·ε_R (λ = 0): the identity behind K1.
    for lam, T, factor in ((50.0, 11, 1.0), (0.0, 200, 2.0)):
        sigma = acc.sigma_grad_clip_official(epsilon_r=0.7, **args(20, 10, 0.01, lam, T))
        c = acc.grad_clip_rdp_coefficient(sigma=sigma, **args(20, 10, 0.01, lam, T))
        assert c == pytest.approx(factor * 0.7, rel=1e-9)


def test_opacus_conversion_matches_an_independent_continuous_minimisation() -> None:
    """Balle et al. Thm 21 minimised over continuous α with SciPy (not via Opacus) agrees with our grid."""
    for c in (1.0, 2.0, 0.01, 1e-4):
        def f(a: float, c: float = c) -> float:
            return c * a + math.log((a - 1) / a) - (math.log(DELTA) + math.log(a)) / (a - 1)

        best = minimize_scalar(f, bounds=(1.0001, 1e7), method="bounded", options={"xatol": 1e-9})
        assert acc.epsilon_linear_rdp(c=c, delta=DELTA) == pytest.approx(best.fun, rel=2e-3)
    _, alpha, edge = acc.rdp_to_epsilon(orders=np.array([2.0, 3.0]), rdp=np.array([1e-6, 1.5e-6]), delta=DELTA)
    assert edge and alpha == 3.0


@pytest.mark.parametrize("lam", [0.0, 50.0])
def test_sigma_round_trips_and_rdp_needs_less_noise(lam: float) -> None:
    a = args(20, 10, 0.01, lam, 11 if lam else 200)
    for eps in (0.5, 1.0, 4.0):
        s_cf = acc.sigma_grad_clip_closed_form(epsilon=eps, delta=DELTA, **a)
        s_rdp = acc.sigma_grad_clip_rdp(epsilon=eps, delta=DELTA, **a)
        assert acc.epsilon_grad_clip_closed_form(sigma=s_cf, delta=DELTA, **a) == pytest.approx(eps, rel=1e-9)
        assert acc.epsilon_grad_clip_rdp(sigma=s_rdp, delta=DELTA, **a) == pytest.approx(eps, rel=1e-3)
        assert s_rdp < s_cf


def test_epsilon_decreases_as_sigma_grows() -> None:
    a = args(1, 1, 0.01, 50, 10)
    sigmas = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    for fn in (acc.epsilon_grad_clip_closed_form, acc.epsilon_grad_clip_rdp):
        eps = [fn(sigma=s, delta=DELTA, **a) for s in sigmas]
        assert all(x > y for x, y in itertools.pairwise(eps))
    eps_op = [acc.epsilon_output_perturbation(sigma=s, delta=DELTA, C0=0.1) for s in sigmas]
    assert all(x > y for x, y in itertools.pairwise(eps_op))
    eps_mc = [acc.model_clip_epsilon(sigma=s, delta=DELTA, T=6, C0=7, C2=0.01) for s in (0.005, 0.01, 0.02)]
    assert all(x > y for x, y in itertools.pairwise(eps_mc))


def test_output_perturbation_sigma() -> None:
    for C0, sigma in ((0.01, 0.09690), (0.1, 0.9690), (1.0, 9.690)):
        assert acc.sigma_output_perturbation(epsilon=1.0, delta=DELTA, C0=C0) == pytest.approx(sigma, rel=1e-3)
    # Analytic Gaussian at sensitivity 2C0 (methods.md §8: 3.7306 at Δ = 1, ε = 1).
    assert acc.sigma_output_perturbation_analytic(epsilon=1.0, delta=DELTA, C0=0.5) == pytest.approx(3.7306, rel=1e-3)
    assert acc.epsilon_output_perturbation(sigma=3.7306, delta=DELTA, C0=0.5) == pytest.approx(1.0, rel=1e-3)


def test_theta_is_the_analytic_gaussian_delta() -> None:
    assert acc.gaussian_delta_theta(epsilon=1.0, r=0.5) == pytest.approx(0.00682959, rel=1e-5)
    # Independent reference: dp_accounting's analytic Gaussian ε at σ = 2 (Δ = 1) for that δ is 1.
    assert dp_accounting.get_epsilon_gaussian(2.0, 0.00682959) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize(
    ("C2", "sigma", "T"),
    [(0.001, 0.01, 1), (0.01, 0.01, 6), (0.2, 0.2, 6), (0.5, 0.5, 6), (0.625, 0.5, 9), (0.975, 0.5, 36),
     (0.2, 0.5, 2), (0.5, 0.2, 137)],
)
def test_model_clipping_accountant_table(C2: float, sigma: float, T: int) -> None:
    assert acc.model_clip_steps(epsilon=1.0, delta=DELTA, C0=7.0, C2=C2, sigma=sigma) == T


def test_model_clipping_trajectory_values_and_required_sigma() -> None:
    traj = acc.model_clip_delta_trajectory(epsilon=1.0, delta_target=DELTA, C0=7.0, C2=0.01, sigma=0.01)
    expected = [1, 0.5099, 0.2160, 0.06486, 0.009548, 2.483e-4, 2.65e-8]
    assert traj == pytest.approx(expected, rel=2e-3)
    one = acc.model_clip_delta_trajectory(epsilon=1.0, delta_target=DELTA, C0=7.0, C2=0.001, sigma=0.01)
    assert one[-1] == pytest.approx(1.75e-8, rel=5e-3)
    s_req = acc.model_clip_sigma_required(epsilon=1.0, delta=DELTA, T=6, C0=7.0, C2=0.01)
    assert s_req <= 0.01
    assert acc.model_clip_steps(epsilon=1.0, delta=DELTA, C0=7.0, C2=0.01, sigma=s_req, max_steps=6) == 6
    assert acc.model_clip_steps(epsilon=1.0, delta=DELTA, C0=7.0, C2=0.01, sigma=0.99 * s_req, max_steps=6) is None


def test_bad_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lr·lam"):
        acc.sigma_grad_clip_closed_form(epsilon=1.0, delta=DELTA, **args(1, 1, 0.1, 10, 5))
    with pytest.raises(ConfigError, match="delta"):
        acc.sigma_output_perturbation(epsilon=1.0, delta=1.5, C0=1.0)
    with pytest.raises(ConfigError, match="epsilon"):
        acc.sigma_grad_clip_rdp(epsilon=-1.0, delta=DELTA, **args(1, 1, 0.01, 10, 5))


def test_grad_clip_accounting_reports_all_three() -> None:
    out = acc.grad_clip_accounting(epsilon=1.0, delta=DELTA, **args(20, 10, 0.01, 50, 11))
    assert set(out["sigma"]) == set(acc.ACCOUNTANTS)
    eps = acc.grad_clip_epsilons(sigma=out["sigma"]["official_code"], delta=DELTA, **args(20, 10, 0.01, 50, 11))
    assert eps["official_code"] == pytest.approx(1.0, rel=1e-6)  # what the code would report...
    assert eps["rdp"] > 6.5  # ...and what its σ really certifies (K1)
