"""CureNewton against a dense Hessian: the cubic step's optimality equations, the hard case, and damped Newton."""

from __future__ import annotations

import json

import pytest
import torch
from dense_reference import dense_hessian
from digits_problem import digits_context, digits_problem
from digits_problem import run_unlearner as run
from torch import nn

from unlearn_core.functional import flat_gradient, get_flat_params
from unlearn_core.unlearners import get_unlearner, resolve_params
from unlearn_core.unlearners.base import UnlearnContext
from unlearn_core.unlearners.cure_newton import LABEL, cubic_model, solve_cubic_eigh

WD = 5e-4


pytestmark = pytest.mark.usefixtures("one_thread")



def tiny_context() -> UnlearnContext:
    """A 64-6-10 tanh MLP barely trained on 240 digits: a non-convex retain loss with an indefinite Hessian."""
    prob = digits_problem(0)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.Tanh(), nn.Linear(6, 10))
    x, y = prob["x_train"][:240], prob["y_train"][:240]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    base = digits_context(0)
    return UnlearnContext(
        model=model.eval(), x_train=x, y_train=y, x_test=base.x_test, y_test=base.y_test,
        forget_idx=torch.arange(0, 24), retain_idx=torch.arange(24, 240), num_classes=10,
        train_config=base.train_config, model_factory=base.model_factory, device=torch.device("cpu"), seed=0,
    )


@pytest.fixture(scope="module")
def tiny():
    ctx = tiny_context()
    H = dense_hessian(ctx.model, ctx.x_retain, ctx.y_retain, weight_decay=WD).double()
    H = 0.5 * (H + H.T)
    g = flat_gradient(ctx.model, ctx.x_retain, ctx.y_retain, weight_decay=WD).double()
    lam_min = float(torch.linalg.eigvalsh(H)[0])
    assert lam_min < 0, "the test problem must have an indefinite Hessian"
    return ctx, H, g, lam_min


def check_optimality(H, g, delta, alpha, M, lam_min, *, rtol) -> None:
    delta = delta.double()
    residual = H @ delta + alpha * delta + g
    assert float(residual.norm()) <= rtol * float(g.norm())
    assert alpha == pytest.approx(0.5 * M * float(delta.norm()), rel=rtol)
    assert alpha >= -lam_min - 1e-6  # H + αI ⪰ 0


@pytest.mark.parametrize("solver", ["eigh", "dual_bisection"])
def test_cure_newton_satisfies_its_optimality_equations(tiny, solver: str) -> None:
    ctx, H, g, lam_min = tiny
    M = 1.0
    w0 = get_flat_params(ctx.model).clone()
    res = run("cure_newton", ctx, M=M, solver=solver, cg_tol=1e-9, alpha_tol=1e-9, cg_iters=2000, lanczos_iters=200)
    assert torch.equal(get_flat_params(ctx.model), w0)
    delta = get_flat_params(res.model).double() - w0.double()
    d = res.diagnostics.details
    assert torch.isfinite(delta).all()
    check_optimality(H, g, delta, d["alpha"], M, lam_min, rtol=1e-4)
    assert d["cubic_model_decrease"] < 0
    assert res.certificate is None and get_unlearner("cure_newton").family == "approximate" and LABEL
    assert res.diagnostics.num_hvps > 0 and res.diagnostics.time_s > 0
    json.dumps(res.diagnostics.to_dict(), allow_nan=False)


def test_dual_bisection_agrees_with_the_eigendecomposition(tiny) -> None:
    ctx = tiny[0]
    a = run("cure_newton", ctx, M=1.0, solver="eigh")
    b = run("cure_newton", ctx, M=1.0, solver="dual_bisection", cg_tol=1e-9, alpha_tol=1e-9, cg_iters=2000,
            lanczos_iters=200)
    assert b.diagnostics.details["alpha"] == pytest.approx(a.diagnostics.details["alpha"], rel=1e-4)
    assert torch.allclose(get_flat_params(a.model), get_flat_params(b.model), atol=1e-4)


def test_cubic_step_is_the_global_minimiser_of_the_model(tiny) -> None:
    """m(Δ*) is below m at random perturbations and at every damped-Newton step (dense references)."""
    _, H, g, _ = tiny
    M = 1.0
    delta, _, _ = solve_cubic_eigh(H, g, M=M)
    best = cubic_model(g, H @ delta, delta, M)
    gen = torch.Generator().manual_seed(0)
    for scale in (1e-3, 1e-2, 1e-1):
        for _ in range(5):
            other = delta + scale * torch.randn(delta.shape, generator=gen, dtype=delta.dtype)
            assert cubic_model(g, H @ other, other, M) >= best - 1e-12
    eye = torch.eye(H.shape[0], dtype=H.dtype)
    for lam in (0.01, 0.1, 1.0, 10.0):
        step = -torch.linalg.solve(H + lam * eye, g)
        assert cubic_model(g, H @ step, step, M) >= best - 1e-12


def test_cure_newton_step_is_smaller_than_a_barely_damped_newton_step(tiny) -> None:
    ctx, H, g, lam_min = tiny
    cure = run("cure_newton", ctx, M=1.0, solver="eigh")
    for lam in (-lam_min + 1e-3, 1e-3):
        damped = run("damped_newton", ctx, lam=lam, solver="dense")
        step = -torch.linalg.solve(H + lam * torch.eye(H.shape[0], dtype=H.dtype), g)
        assert damped.diagnostics.details["step_norm"] == pytest.approx(float(step.norm()), rel=1e-4)
        assert damped.diagnostics.details["step_norm"] > 3 * cure.diagnostics.details["step_norm"]
        assert damped.certificate is None


def test_hard_case_is_solved_exactly() -> None:
    """g orthogonal to the bottom eigenvector: α = −λ₁ and the step is completed along that eigenvector."""
    H = torch.diag(torch.tensor([-1.0, 1.0, 2.0], dtype=torch.float64))
    g = torch.tensor([0.0, 0.1, 0.1], dtype=torch.float64)
    M = 1.0
    delta, alpha, info = solve_cubic_eigh(H, g, M=M)
    assert info["hard_case"] and alpha == pytest.approx(1.0)
    assert float((H @ delta + alpha * delta + g).norm()) < 1e-10
    assert float(delta.norm()) == pytest.approx(2 * alpha / M)


def test_stochastic_subsolver_on_digits_mlp() -> None:
    ctx = digits_context()
    res = run("cure_newton", ctx, solver="gd_subsolver", subsolver_iters=100)
    d = res.diagnostics.details
    assert d["cubic_model_decrease"] < 0 and d["step_norm"] > 0
    assert d["alpha"] == pytest.approx(0.5 * d["M"] * d["step_norm"], rel=1e-5)
    assert res.diagnostics.num_hvps >= 100


def test_eigh_is_refused_on_large_models() -> None:
    unlearner = get_unlearner("cure_newton")
    big = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    params = resolve_params(unlearner.schema, {"solver": "eigh"}, method="cure_newton")
    assert "solver=eigh" in unlearner.unsupported_reason(big, params)
    assert unlearner.unsupported_reason(big, resolve_params(unlearner.schema, {}, method="cure_newton")) is None
    damped = get_unlearner("damped_newton")
    assert "solver=dense" in damped.unsupported_reason(
        big, resolve_params(damped.schema, {"solver": "dense"}, method="damped_newton")
    )
