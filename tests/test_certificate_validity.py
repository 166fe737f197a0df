"""A certificate you can stake a deletion on (issue 19): each finding of the hostile review as a regression test
through the product (the CLI or ``pipeline.run``), and the accountants against an independent one (dp-accounting).

Every test here fails on the commit before the issue's fixes (8cace2b): the run it makes was labelled certified
(or not) against the facts these tests check.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import subprocess
import sys

import dp_accounting
import pytest
import torch
from dense_reference import dense_hessian
from dp_accounting.rdp import RdpAccountant

from unlearn_core.certificate import Certificate
from unlearn_core.data import DATASETS
from unlearn_core.functional import flat_gradient
from unlearn_core.pipeline import RunConfig, run
from unlearn_core.privacy import accounting as acc
from unlearn_core.training import TrainConfig
from unlearn_core.unlearners import get_unlearner, resolve_params

pytestmark = pytest.mark.usefixtures("one_thread")

#: Rényi orders of the independent accountant: the package's own grid, so that the two conversions (Opacus's in the
#: package, dp-accounting's here) are compared at the same orders — on a different grid each finds a slightly
#: different minimum (1e-6 relative), which is the grids' difference, not an error.
ORDERS = acc.DEFAULT_ORDERS


def _tiny(method: str, params: dict, **kw) -> RunConfig:
    """A digits MLP small enough for the dense checks (64-8-10, p = 610), trained for a few epochs."""
    return RunConfig(dataset="digits", model="mlp", hidden=(8,), forget=kw.pop("forget", "random:0.05"),
                     method=method, params=params, train=TrainConfig(epochs=5), reproducible=True, **kw)


def _shift_sensitivity(*, C0: float, C1: float, gamma: float, lam: float, T: int) -> tuple[float, float]:
    """(Z, S) of the clipped, contracted, noised iteration, written out here (not the package's function):
    Z = 2C₀ρ^T + 2γC₁Σ_{k<T}ρ^k, S = Σ_{k<T}ρ^{2k}, ρ = 1 − γλ."""
    rho = 1.0 - gamma * lam
    Z = 2.0 * C0 * rho**T + 2.0 * gamma * C1 * sum(rho**k for k in range(T))
    S = sum(rho ** (2 * k) for k in range(T))
    return Z, S


def _dp_accounting_epsilon(sigma: float, delta: float, **args) -> float:
    """ε of noise σ by dp-accounting's RDP accountant: one Gaussian event of noise multiplier σ√S/Z, i.e. the RDP
    curve α Z²/(2σ²S) of the shifted-Rényi bound, converted by dp-accounting's own code."""
    Z, S = _shift_sensitivity(**args)
    accountant = RdpAccountant(orders=list(ORDERS))
    accountant.compose(dp_accounting.GaussianDpEvent(sigma * math.sqrt(S) / Z))
    return float(accountant.get_epsilon(delta))


# -- 1. accountants valid by construction -----------------------------------------------------------------------

#: (C₀, C₁, γ, λ, T) over the regimes the schema reaches: λ = 0 (the finding), γλ on both sides of the closed
#: form's quoted (1/2, 1), T from 1 to the code's rule and far above it.
CONFIGS = [(0.3, 0.3, 0.01, 0.0, 100), (20.0, 10.0, 0.01, 0.0, 200), (0.3, 0.3, 0.01, 50.0, 10),
           (1.0, 1.0, 0.01, 75.0, 3), (20.0, 10.0, 0.001, 1.0, 1), (3.0, 3.0, 0.1, 1.0, 500)]
EPSILONS = [0.01, 0.3, 1.0, 6.0, 20.0, 100.0, 1000.0]
DELTAS = [1e-12, 1e-5, 1e-2, 0.5]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "C0={}_C1={}_lr={}_lam={}_T={}".format(*c))
def test_tightest_sigma_certifies_epsilon_by_dp_accounting(config) -> None:
    """Over ε up to the UI's 1000 and δ across its range: the σ the default (tightest valid) accountant gives
    certifies ε by dp-accounting's RDP accountant; the closed form counts as valid only where it does too, and where
    it is declared invalid it really over-claims."""
    C0, C1, gamma, lam, T = config
    args = {"C0": C0, "C1": C1, "gamma": gamma, "lam": lam, "T": T}
    seen_invalid = False
    for delta in DELTAS:
        for eps in EPSILONS:
            out = acc.grad_clip_accounting(epsilon=eps, delta=delta, **args)
            name, sigma = acc.tightest_valid(out["sigma"], out["valid"])
            assert _dp_accounting_epsilon(sigma, delta, **args) <= eps * (1 + 1e-6), (name, eps, delta)
            assert sigma >= out["sigma"]["rdp"] * (1 - 1e-9)  # never below the RDP σ
            closed = out["sigma"]["paper_closed_form"]
            eps_closed = _dp_accounting_epsilon(closed, delta, **args)
            if out["valid"]["paper_closed_form"]:
                assert eps_closed <= eps * (1 + 1e-6)
            else:
                seen_invalid = True
                assert eps_closed > eps * (1 - 1e-6)
    if lam == 0:  # the λ = 0 closed form over-claims above ε_max(δ) (7.9 at δ = 1e-5): the grid reaches it
        assert seen_invalid


def test_lambda_zero_closed_form_range_is_where_rdp_confirms_it() -> None:
    """The derived range of the λ = 0 closed form, ε ≤ ε_max(δ), is exactly where dp-accounting confirms its σ."""
    args = {"C0": 0.3, "C1": 0.3, "gamma": 0.01, "lam": 0.0, "T": 100}
    for delta in (1e-12, 1e-5, 0.1):
        edge = acc.closed_form_epsilon_max(delta=delta)
        for eps, inside in ((0.97 * edge, True), (1.03 * edge, False)):
            sigma = acc.sigma_grad_clip_closed_form(epsilon=eps, delta=delta, **args)
            assert (_dp_accounting_epsilon(sigma, delta, **args) <= eps) == inside
            assert acc.closed_form_validity(epsilon=eps, delta=delta, **args).holds == inside


@pytest.mark.parametrize("forget, eps", [("random:0.05", 20.0), ("class:3", 50.0)])
def test_finding1_noisy_finetune_is_not_certified_at_an_epsilon_its_noise_does_not_deliver(forget, eps) -> None:
    """Finding 1: λ = 0 at ε = 20 (and 50) took the closed form's σ outside its range; RDP gave ε = 25.3 (93.5)."""
    params = {"lam": 0.0, "epsilon": eps, "finetune_epochs": 0}
    card = run(_tiny("noisy_finetune", params, forget=forget)).card
    cert = card["certificate"]
    assert cert["status"] == "certified" and cert["accountant"] == "rdp"
    args = {"C0": 0.3, "C1": 0.3, "gamma": 0.01, "lam": 0.0, "T": cert["details"]["T"]}
    assert _dp_accounting_epsilon(cert["sigma_used"], 1e-5, **args) <= eps * (1 + 1e-6)
    assert cert["epsilon_certified"] <= eps * (1 + 1e-9)
    assert "closed form is not proven here" in " ".join(cert["notes"])


def test_finding5_status_and_epsilon_come_from_one_accountant() -> None:
    """Finding 5: accountant=paper_closed_form said "not certified (accountant_valid)" next to a valid RDP ε of 0.31:
    the run is judged by the tightest valid accountant for the σ it used."""
    card = run(_tiny("noisy_finetune", {"accountant": "paper_closed_form", "finetune_epochs": 0})).card
    cert = Certificate.from_dict(card["certificate"])
    assert cert.status == "certified" and cert.epsilon_certified == pytest.approx(0.3149, rel=1e-3)
    assert cert.epsilon_certified <= cert.epsilon and cert.details["judged_by"] == "rdp"


# -- 2. curvature: proven or labelled ------------------------------------------------------------------------------


def test_finding2_too_few_lanczos_steps_are_refused_through_the_cli(tmp_path) -> None:
    """Finding 2: 3 Lanczos steps reported λ_min > 0 on an indefinite Hessian; fewer than 40 are now refused."""
    out = subprocess.run(
        [sys.executable, "-m", "unlearn_core", "run", "--dataset", "digits", "--model", "mlp", "--forget",
         "random:0.05", "--method", "certified_newton", "--set", "lanczos_steps=3", "--set",
         "lissa_bound=a_posteriori", "--set", "G=1", "--quiet", "--cache-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 2 and "lanczos_steps=3 is not valid" in out.stderr and "[40" in out.stderr
    assert "Traceback" not in out.stderr


def test_finding2_cholesky_proves_the_indefinite_hessian_that_few_lanczos_steps_miss() -> None:
    """The dense float64 Cholesky proof on the retain Hessian: its bound is below (and within 1e-6 of) the dense
    eigendecomposition's λ_min; the Hessian is indefinite, so λ = 0.01 is proven too small — not certified, with no
    "given an estimate"."""
    config = _tiny("certified_newton", {"lam": 0.01, "solver": "exact", "G": 1.0, "curvature_check": "cholesky"})
    result = run(config)
    prepared = result.prepared
    cert = result.result.certificate
    floor = next(c for c in cert.conditions if c.name == "curvature_floor")
    lam_min = next(c for c in cert.constants if c.name == "λ_min")
    x_r = prepared.data.x_train[prepared.retain_idx].double()
    y_r = prepared.data.y_train[prepared.retain_idx]
    wd = prepared.train_config.weight_decay
    dense = dense_hessian(copy.deepcopy(prepared.original).double(), x_r, y_r, weight_decay=wd)
    truth = float(torch.linalg.eigvalsh(dense)[0])
    assert truth < -0.01, "the 64-8-10 MLP's retain Hessian is indefinite"
    assert lam_min.tag == "bound" and truth - 1e-6 <= lam_min.value <= truth
    assert not floor.holds and floor.given == "" and cert.status == "not certified"
    # A few Lanczos steps miss it (the finding), the enforced 40 do not (measured on this model too).
    from unlearn_core.curvature import lanczos, make_data_hvp

    hvp = make_data_hvp(copy.deepcopy(prepared.original).double(), x_r, y_r, weight_decay=wd)
    with torch.no_grad():
        estimates = {k: lanczos(hvp, dense.shape[0], num_iter=k, seed=0, dtype=torch.float64) for k in (3, 40)}
    assert estimates[3].lambda_min > estimates[40].lambda_min
    assert estimates[40].lambda_min == pytest.approx(truth, abs=0.05 * abs(truth))
    # The Ritz residual is what it claims: an eigenvalue lies within it of the Ritz value.
    eigenvalues = torch.linalg.eigvalsh(dense)
    for est in estimates.values():
        assert float((eigenvalues - est.lambda_min).abs().min()) <= est.residual_min * (1 + 1e-6) + 1e-9


def test_lanczos_estimate_is_labelled_holds_given_an_estimate() -> None:
    card = run(_tiny("certified_newton", {"lam": 1.0, "lissa_bound": "a_posteriori", "G": 1.0, "H": "auto",
                                          "depth": 100, "reps": 2, "batch": 64, "curvature_check": "lanczos"})).card
    cert = Certificate.from_dict(card["certificate"])
    floor = next(c for c in cert.conditions if c.name == "curvature_floor")
    assert floor.holds and "holds given an estimate" in floor.describe()
    assert cert.status == "certified under assumptions" and "curvature_floor" in cert.reason


# -- 3. the forget-set shortcut ------------------------------------------------------------------------------------


def test_finding3_forget_shortcut_carries_its_minimiser_gap_in_delta() -> None:
    """Finding 3: the shortcut assumes ∇L(w*, D) = 0; its error (n/n_r)‖∇L(w*, D)‖/(λ + λ_min), measured
    independently here, is now a term of Δ with a condition naming the hypothesis."""
    params = {"solver": "exact", "lam": 1.0, "grad_mode": "forget_shortcut"}
    result = run(_tiny("certified_newton", params))
    prepared, cert = result.prepared, result.result.certificate
    n, n_r = prepared.data.n_train, int(prepared.retain_idx.numel())
    wd = prepared.train_config.weight_decay
    full = flat_gradient(copy.deepcopy(prepared.original).double(), prepared.data.x_train.double(),
                         prepared.data.y_train, weight_decay=wd)
    lam_min = next(c for c in cert.constants if c.name == "λ_min").value
    expected = (n / n_r) * float(full.norm()) / (1.0 + lam_min)
    assert cert.sensitivity_terms["minimiser_gap"] == pytest.approx(expected, rel=1e-4)
    assert expected > 0.01  # the Adam-trained model is no minimiser: the term is not negligible
    gap = next(c for c in cert.conditions if c.name == "shortcut_gap")
    assert "∇L(w, D) = 0" in gap.statement
    assert cert.sensitivity >= cert.sensitivity_terms["nonconvergence"] + expected


# -- 4. δ is a hypothesis ------------------------------------------------------------------------------------------


def test_finding6_a_vacuous_delta_is_not_certified() -> None:
    card = run(_tiny("output_perturbation", {"delta": 0.4, "finetune_epochs": 0})).card
    cert = Certificate.from_dict(card["certificate"])
    assert cert.status == "not certified" and cert.failing()[0].name == "delta_meaningful"
    assert card["certificate"]["epsilon_certified"] is None  # nothing is certified at any ε
    # ... and the experiments' rows (the Forget-set size page's table) say the same: no ε next to "not certified".
    from unlearn_core.experiments import _cert_columns

    row = _cert_columns(card["certificate"])
    assert row["status"] == "not certified" and row["epsilon_certified"] is None
    # The defaults keep δ + ρ below 1/n on every dataset of the registry (certified Newton's LiSSA lemma adds ρ).
    newton = resolve_params(get_unlearner("certified_newton").schema, {}, method="certified_newton")
    largest = max(info.n_train for info in DATASETS.values())
    assert newton["delta"] + newton["rho"] < 1.0 / largest
    for name in ("noisy_finetune", "output_perturbation"):
        assert resolve_params(get_unlearner(name).schema, {}, method=name)["delta"] < 1.0 / largest


# -- 5. sequential requests ----------------------------------------------------------------------------------------


def test_finding5_sequential_requests_are_not_uncertified_by_rounding() -> None:
    """Finding 5: 3 requests on logistic regression were "not certified" because request 2 needed σ 6.6e-7
    (relative) above request 1's, printed as "σ_used = 2.844e+05, σ_required = 2.844e+05"."""
    base = RunConfig(dataset="digits", model="logreg", forget="random:0.05", method="certified_newton",
                     params={"solver": "exact", "requests": 3}, reproducible=True)
    card = run(base).card
    cert = Certificate.from_dict(card["certificate"])
    # M is an assumption (Zhang et al.'s bound), every other constant a bound: certified under that assumption.
    assert cert.status == "certified under assumptions" and cert.reason.endswith("given M (assumption)")
    details = card["certificate"]["details"]
    assert details["per_request_status"] == ["certified under assumptions"] * 3
    deltas = details["per_request_sensitivity"]
    assert max(deltas) / deltas[0] - 1 < 0.01  # the spread the default 1 % margin covers
    # Without the margin, a later request whose Δ exceeds the first's fails by the noise alone, and says by how much.
    tight = run(dataclasses.replace(base, params={**base.params, "sequential_margin": 0.0})).card
    noise = next(c for c in tight["certificate"]["conditions"] if c["name"] == "noise")
    assert noise["holds"] == (max(deltas) <= deltas[0] * (1 + 1e-9))
    if not noise["holds"]:
        assert "σ_used/σ_required = 1 − " in noise["value"]  # the "2.844e+05 vs 2.844e+05", with digits


# -- 6. the frontier -----------------------------------------------------------------------------------------------


def test_finding7_frontier_points_are_certified_and_never_fall() -> None:
    """Finding 7: the frontier crowned an uncertified certified_newton (λ = 0.01: Δ = ∞, no noise) and fell to 10 %
    at large ε. Now: only releases certified at ε or below are frontier points, each the best over the method's
    grid, so the curve is non-decreasing; certified Newton at λ = 0.01 appears only as uncertified candidates."""
    from unlearn_core import experiments as ex
    from unlearn_core import plots

    base = _tiny("noisy_finetune", {})
    df = ex.frontier(base, methods=["certified_newton", "output_perturbation"], epsilons=[1.0, 100.0],
                     params={"certified_newton": {"depth": 50, "reps": 2},
                             "output_perturbation": {"finetune_epochs": 5}})
    front = df[df["role"] == "frontier"]
    assert set(front["method"]) == {"output_perturbation"}
    assert (front["epsilon_certified"] <= front["epsilon"] * (1 + 1e-9)).all()
    assert (front["epsilon_run"] <= front["epsilon"]).all()
    means = front.groupby("epsilon")["acc_test"].mean().sort_index()
    assert means.is_monotonic_increasing
    candidates = df[df["role"] == "candidate"]
    newton = candidates[candidates["method"] == "certified_newton"]
    assert len(newton) == 2 and (newton["status"] == "not certified").all()
    assert set(candidates[candidates["method"] == "output_perturbation"]["setting"]) == {
        "C0=0.01", "C0=0.1", "C0=1"}  # the grid less the pinned fine-tuning epochs
    assert candidates["epsilon"].isna().all() and (df["simulation"].dropna() == True).all()  # noqa: E712
    fig = plots.frontier_figure(df)
    hollow = [t for t in fig.data if t.name == "certified_newton — not certified"]
    assert len(hollow) == 1 and hollow[0].marker.symbol == "circle-open"
    assert not [t for t in fig.data if t.name == "certified_newton"]
