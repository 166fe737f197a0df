"""Descent-to-Delete (Neel, Roth & Sharifi-Malvajerdi 2021): its constants, its contraction and its certificate,
each against an independent reference — dense Hessians (``tests/dense_reference.py``), minimisers solved by scipy in
float64 without the package, and ``dp_accounting``'s Gaussian mechanism."""

from __future__ import annotations

import dataclasses
import itertools
import math

import dp_accounting
import numpy as np
import pytest
import torch
from dense_reference import dense_hessian, flat_parameters
from digits_problem import digits_context
from digits_problem import run_unlearner as run
from scipy.optimize import minimize
from torch import nn

from unlearn_core.certificate import BOUND, CERTIFIED, NOT_CERTIFIED
from unlearn_core.descent import contraction, softmax_bounds
from unlearn_core.equal_epsilon import cheaper_at_equal_epsilon, compare_at_equal_epsilon
from unlearn_core.errors import ConfigError
from unlearn_core.pipeline import RunConfig, prepare, run_method
from unlearn_core.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


# -- an independent softmax-regression problem, solved without the package -----------------------------------------


def _problem(seed: int = 0, n: int = 60, d: int = 4, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * 1.5
    y = torch.randint(0, k, (n,), generator=gen)
    return x, y


def _linear(d: int, k: int, w: torch.Tensor | None = None) -> nn.Module:
    model = nn.Linear(d, k).double()
    if w is not None:
        with torch.no_grad():
            model.weight.copy_(w[: d * k].view(k, d))
            model.bias.copy_(w[d * k :])
    return model


def _objective(x: np.ndarray, y: np.ndarray, k: int, wd: float):
    """F(θ) = mean CE + wd/2‖θ‖² and its gradient for θ = (W, b) flattened as nn.Linear's (weight rows, then bias),
    written from scratch in numpy."""
    n, d = x.shape
    xt = np.hstack([x, np.ones((n, 1))])
    onehot = np.eye(k)[y]

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.hstack([theta[: d * k].reshape(k, d), theta[d * k :, None]])  # k × (d+1)
        z = xt @ w.T
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        value = -np.mean(np.log(p[np.arange(n), y])) + 0.5 * wd * theta @ theta
        g = (p - onehot).T @ xt / n  # k × (d+1)
        grad = np.concatenate([g[:, :d].ravel(), g[:, d]]) + wd * theta
        return float(value), grad

    return f


#: How far the scipy minimiser may be from the true one: ‖∇F‖ < 1e-7 there and F is μ-strongly convex (μ ≥ 0.05),
#: so the distance is below 2e-6 — the slack every comparison with it allows.
SLACK = 2e-6


def _minimiser(x: torch.Tensor, y: torch.Tensor, k: int, wd: float) -> torch.Tensor:
    f = _objective(x.reshape(x.shape[0], -1).double().numpy(), y.numpy(), k, wd)
    d = int(x[0].numel())
    res = minimize(f, np.zeros(k * (d + 1)), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 20_000})
    assert np.linalg.norm(f(res.x)[1]) < 1e-7
    return torch.from_numpy(res.x)


def test_softmax_constants_bound_the_dense_hessian_and_every_gradient() -> None:
    """β ≥ λ_max(∇²F) and λ_min ≥ wd at several θ (dense Hessians); √2·max‖x̃‖ bounds each per-example gradient;
    ‖∇F(0)‖ is exact."""
    x, y = _problem()
    wd = 0.03
    beta = softmax_bounds.smoothness_bound(x, weight_decay=wd)
    g_bound = softmax_bounds.gradient_bound(x)
    gen = torch.Generator().manual_seed(1)
    for scale in (0.0, 1.0, 5.0):
        w = torch.randn(4 * 3 + 3, generator=gen, dtype=torch.float64) * scale
        model = _linear(4, 3, w)
        eig = torch.linalg.eigvalsh(dense_hessian(model, x, y, weight_decay=wd))
        assert eig[-1] <= beta * (1 + 1e-12) and eig[0] >= wd - 1e-10
        for i in range(x.shape[0]):
            model.zero_grad()
            nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
            norm = torch.cat([model.weight.grad.reshape(-1), model.bias.grad]).norm()
            assert norm <= g_bound * (1 + 1e-12)
    zero = _linear(4, 3, torch.zeros(15, dtype=torch.float64))
    nn.functional.cross_entropy(zero(x), y).backward()
    exact = torch.cat([zero.weight.grad.reshape(-1), zero.bias.grad]).norm()
    assert softmax_bounds.zero_gradient_norm(x, y, num_classes=3) == pytest.approx(float(exact), rel=1e-12)


def test_contraction_shift_and_distance_bounds_against_exact_minimisers() -> None:
    """The minimiser moves by at most kL/(μ(n−k)); one gradient step bounds the distance to the minimiser; the
    gradient step contracts by γ — each checked against minimisers solved by scipy in float64."""
    x, y = _problem(seed=2, n=80)
    wd, k = 0.05, 12
    full, kept = _minimiser(x, y, 3, wd), _minimiser(x[k:], y[k:], 3, wd)
    theta_norm = softmax_bounds.minimiser_norm_bound(
        zero_gradient=softmax_bounds.zero_gradient_norm(x, y, num_classes=3), mu=wd)
    assert float(full.norm()) <= theta_norm + SLACK
    lipschitz = softmax_bounds.gradient_bound(x[:k]) + wd * theta_norm
    shift = contraction.minimiser_shift(n=80, removed=k, lipschitz=lipschitz, mu=wd)
    assert float((full - kept).norm()) <= shift + 2 * SLACK
    beta = softmax_bounds.smoothness_bound(x[k:], weight_decay=wd)
    lr = contraction.optimal_step(mu=wd, beta=beta)
    gamma = contraction.gd_contraction(lr=lr, mu=wd, beta=beta)
    assert gamma == pytest.approx((beta - wd) / (beta + wd))
    f = _objective(x[k:].numpy(), y[k:].numpy(), 3, wd)
    gen = np.random.default_rng(0)
    for _ in range(5):
        a, b = gen.normal(size=15) * 3, gen.normal(size=15) * 3
        ta, tb = a - lr * f(a)[1], b - lr * f(b)[1]
        assert np.linalg.norm(ta - tb) <= gamma * np.linalg.norm(a - b) * (1 + 1e-12)
        step = np.linalg.norm(a - ta)
        bound = contraction.distance_from_gradient_mapping(step_length=step, contraction=gamma)
        assert np.linalg.norm(a - kept.numpy()) <= bound + SLACK


@pytest.fixture(scope="module")
def prepared_logreg(tmp_path_factory):
    config = RunConfig(dataset="digits", model="logreg", forget="random:0.1", train=TrainConfig(weight_decay=0.05),
                       cache_dir=str(tmp_path_factory.mktemp("d2d-cache")))
    return prepare(config)


def test_certificate_on_logreg_is_proven_and_covers_the_exact_minimiser(prepared_logreg) -> None:
    """On softmax regression every condition holds and every constant is a bound, so the label is "certified"; the
    noise-free state after K steps is within Δ of the retain objective's exact minimiser (scipy, float64), the a
    posteriori distance is below the a priori one, and σ certifies ε by dp_accounting's analytic Gaussian."""
    res = run_method(prepared_logreg, "descent_to_delete", {"steps": 300})
    cert = res.result.certificate
    assert cert.status == CERTIFIED and all(c.holds for c in cert.conditions)
    assert all(c.tag == BOUND for c in cert.constants)
    delta, sigma = cert.sensitivity, cert.sigma_used
    eps = dp_accounting.get_epsilon_gaussian(sigma / delta, 1e-5)
    assert eps == pytest.approx(1.0, rel=1e-3)
    # The noise-free state: the same run with no noise (σ = 0 is "not certified by the bound", same weights).
    clean = run_method(prepared_logreg, "descent_to_delete", {"steps": 300, "sigma": 0.0})
    assert clean.result.certificate.status == NOT_CERTIFIED
    assert clean.result.certificate.failing()[0].name == "noise"
    data = prepared_logreg.data
    keep = prepared_logreg.retain_idx
    exact = _minimiser(data.x_train[keep], data.y_train[keep], 10, 0.05)
    distance = float((flat_parameters(clean.unlearned).double() - exact).norm())
    assert distance <= delta + SLACK
    posterior = cert.details["a_posteriori_distance"]
    assert distance <= posterior * (1 + 1e-3) + SLACK and posterior <= delta
    terms = cert.sensitivity_terms
    gamma = cert.details["contraction"]
    assert terms["contracted"] == pytest.approx((terms["start"] + terms["shift"]) * gamma**300, rel=1e-9)


def test_sequential_requests_chain_the_contraction(prepared_logreg) -> None:
    """Three requests: each starts from the previous secret state, so its start distance is the previous request's
    contracted distance; one record per request, the last against the retrained oracle."""
    res = run_method(prepared_logreg, "descent_to_delete", {"steps": 40, "requests": 3})
    terms = res.result.certificate.details["per_request_terms"]
    assert len(terms) == 3 and len(res.result.diagnostics.requests) == 3
    for before, after in itertools.pairwise(terms):
        assert after["start"] == pytest.approx(before["contracted"])
    assert [r.n_forgotten for r in res.result.diagnostics.requests][-1] == prepared_logreg.forget_idx.numel()
    assert res.result.diagnostics.requests[-1].approx_error is not None


def test_not_certified_where_a_hypothesis_fails(prepared_logreg) -> None:
    """A network is not strongly convex; a step above 2/β does not contract: each is named as the failing condition,
    and the method still runs."""
    mlp = run("descent_to_delete", digits_context(), steps=20)
    assert mlp.certificate.status == NOT_CERTIFIED
    assert mlp.certificate.failing()[0].name == "strongly_convex"
    assert math.isinf(mlp.certificate.sensitivity)
    big = run_method(prepared_logreg, "descent_to_delete", {"steps": 5, "lr": 1.0}).result.certificate
    assert big.status == NOT_CERTIFIED and big.failing()[0].name == "contraction"


def test_equal_epsilon_comparison_with_certified_newton(prepared_logreg) -> None:
    """Both methods at ε = 2 on the same logistic regression: one row each, ε certified ≤ 2 where certified, the same
    retrained accuracy, and a sentence naming the cheapest certified method; an uncertified method is refused."""
    base = dataclasses.replace(prepared_logreg.config, method="descent_to_delete")
    rows = compare_at_equal_epsilon(base, ["descent_to_delete", "certified_newton"], epsilon=2.0,
                                    params={"descent_to_delete": {"steps": 50},
                                            "certified_newton": {"solver": "exact", "lam": 0.0}})
    assert list(rows["method"]) == ["descent_to_delete", "certified_newton"] and (rows["epsilon"] == 2.0).all()
    assert rows["acc_test_retrained"].nunique() == 1
    d2d = rows.iloc[0]
    assert d2d["certified"] and d2d["epsilon_certified"] <= 2.0 * (1 + 1e-9) and d2d["num_gradients"] == 52
    text = cheaper_at_equal_epsilon(rows)
    assert text.startswith("at ε = 2, ")
    # Certified Newton's bound on this model rests on C = 20 and M = 1: Δ ≈ 10⁴, its noise destroys the model.
    assert "certified_newton is certified but its noise destroys the model" in text
    with pytest.raises(ConfigError, match="'finetune' cannot be compared at equal ε"):
        compare_at_equal_epsilon(base, ["finetune"], epsilon=1.0)
