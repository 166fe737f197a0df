"""Certified Newton unlearning against the retrained model, sequential requests, noise and divergence.

The convex test is the method's defining claim made checkable: for L2-regularised logistic regression trained
to convergence, one Newton step from w* lands much closer to the retrained minimiser w̃* than w* is.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from digits_problem import run_unlearner
from sklearn.datasets import load_digits
from torch import nn

from unlearn_core.errors import ConfigError, DivergenceError
from unlearn_core.evaluation import param_distance
from unlearn_core.forget import select_forget
from unlearn_core.functional import get_flat_params, num_params
from unlearn_core.training import TrainConfig, train
from unlearn_core.unlearners import UnlearnContext, get_unlearner, list_unlearners, resolve_params

WD = 1e-2


def _digits(dtype: torch.dtype = torch.float64):
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=dtype)
    x = (x - x.mean(0)) / (x.std(0) + 0.1)
    y = torch.tensor(data.target, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=gen)
    test, train_idx = perm[:297], perm[297:]
    return x[train_idx], y[train_idx], x[test], y[test]


def _fit_lbfgs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, wd: float) -> nn.Module:
    """Minimise mean CE + wd/2‖w‖² to (near) machine precision, so ∇L(w̃*, D_r) ≈ 0 as the bound assumes."""
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + 0.5 * wd * sum((p * p).sum() for p in model.parameters())
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)
    return model.eval()


def _logreg(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 10)).double()


@pytest.fixture(scope="module")
def convex_setup():
    x, y, xt, yt = _digits()
    forget, retain = select_forget("random:60", y, seed=1)
    original = _fit_lbfgs(_logreg(), x, y, WD)
    retrained = _fit_lbfgs(_logreg(), x[retain], y[retain], WD)
    return x, y, xt, yt, forget, retain, original, retrained


def _ctx(x, y, xt, yt, forget, retain, model, retrained=None, *, wd=WD, factory=None, seed=0,
         norm_bound=None) -> UnlearnContext:
    return UnlearnContext(
        model=model, x_train=x, y_train=y, x_test=xt, y_test=yt, forget_idx=forget, retain_idx=retain,
        num_classes=10, train_config=TrainConfig(weight_decay=wd, norm_bound=norm_bound, epochs=2, lr=1e-2),
        model_factory=factory or (lambda offset=0: _logreg(offset)), device=torch.device("cpu"), seed=seed,
        retrained=retrained, reproducible=True,  # the tests compare runs: a simulation, seeded release noise
    )


def _run(ctx: UnlearnContext, **overrides):
    return run_unlearner("certified_newton", ctx, **overrides)


def test_registered_with_schema() -> None:
    method = get_unlearner("certified_newton")
    assert method.family == "certified" and type(method) in list_unlearners()
    defaults = {p.name: p.default for p in method.schema}
    assert (defaults["lam"], defaults["C"], defaults["H"], defaults["depth"], defaults["reps"], defaults["batch"]) == (
        0.01, 20.0, 1000.0, 1000, 10, 10)
    assert defaults["mechanism"] == "analytic" and defaults["sigma"] is None and defaults["requests"] == 1
    assert resolve_params(method.schema, {"H": "auto"}, method="certified_newton")["H"] == "auto"
    with pytest.raises(ConfigError, match="solver"):
        resolve_params(method.schema, {"solver": "newton"}, method="certified_newton")
    big = nn.Linear(100, 60)
    assert "solver=exact" in method.unsupported_reason(big, {"solver": "exact"})
    assert method.unsupported_reason(big, {"solver": "cg"}) is None


@pytest.mark.parametrize("solver", ["exact", "lissa"])
def test_convex_newton_step_lands_near_the_retrained_model(convex_setup, solver: str) -> None:
    x, y, xt, yt, forget, retain, original, retrained = convex_setup
    before = get_flat_params(original).clone()
    ctx = _ctx(x, y, xt, yt, forget, retain, original, retrained)
    extra = {"H": "auto", "depth": 600, "reps": 8, "batch": 200} if solver == "lissa" else {}
    result = _run(ctx, solver=solver, lam=0.0, sigma=0.0, **extra)
    gap = param_distance(original, retrained)
    error = result.diagnostics.approx_error
    assert error == pytest.approx(param_distance(result.model, retrained), rel=1e-9)  # σ = 0: released = estimate
    assert gap > 0.05, "forgetting 60 points must move the minimiser measurably"
    assert error / gap < 0.1  # the acceptance criterion
    if solver == "exact":
        assert error / gap < 0.02  # an exact Newton step on a smooth convex loss: second-order small
    assert torch.equal(get_flat_params(original), before), "ctx.model must never be mutated"
    cert = result.certificate
    constants = {c.name: c for c in cert.constants}
    # The context does not say the model is convex, so λ_min is measured — and proven, by the float64 Cholesky of
    # the dense Hessian: solver=exact builds it anyway, and curvature_check=auto takes the proof where it is cheap
    # (p = 650 parameters here).
    assert constants["λ_min"].tag == "bound" and "Cholesky" in constants["λ_min"].how
    assert constants["λ_min"].value >= WD * 0.99  # convex + weight decay: λ_min ≥ wd
    assert constants["G"].tag == "estimate"  # measured at the unlearned model: not a bound
    assert cert.sigma_used == 0.0 and cert.status == "not certified"
    assert "noise" in {c.name for c in cert.failing()}
    assert result.diagnostics.grad_norm > 0


def test_forget_shortcut_agrees_with_retain_gradient_at_a_minimiser(convex_setup) -> None:
    x, y, xt, yt, forget, retain, original, retrained = convex_setup
    ctx = _ctx(x, y, xt, yt, forget, retain, original, retrained)
    a = _run(ctx, solver="exact", lam=0.0, sigma=0.0, grad_mode="retain")
    b = _run(ctx, solver="exact", lam=0.0, sigma=0.0, grad_mode="forget_shortcut")
    assert a.diagnostics.grad_norm == pytest.approx(b.diagnostics.grad_norm, rel=1e-5)
    assert param_distance(a.model, b.model) < 1e-5 * param_distance(original, retrained)


def test_default_sigma_is_the_required_one_and_certifies(convex_setup) -> None:
    x, y, xt, yt, forget, retain, original, retrained = convex_setup
    # ‖w*‖ ≈ 5.7: C = 5 would be a false premise (the first release certified it anyway); C = 10 holds.
    assert get_flat_params(original).norm() > 5.0
    assert _run(_ctx(x, y, xt, yt, forget, retain, original, retrained, norm_bound=5.0), solver="exact", lam=0.0,
                C=5.0).certificate.failing()[0].name == "start_norm"
    ctx = _ctx(x, y, xt, yt, forget, retain, original, retrained, norm_bound=10.0)
    result = _run(ctx, solver="exact", lam=0.0, C=10.0, epsilon=1.0)
    cert = result.certificate
    # Every condition holds; the guarantee rests on M (an assumption) and G (an estimate): not "certified" alone.
    assert cert.status == "certified under assumptions" and cert.certified, cert.reason
    assert {c.name for c in cert.soft_constants()} == {"M", "G"}
    assert cert.sigma_used == pytest.approx(cert.sigma_required)
    assert cert.epsilon_certified == pytest.approx(1.0, rel=1e-6)
    assert cert.delta_guaranteed == cert.delta  # no probabilistic lemma: δ is what was asked
    p = num_params(original)
    noise = result.diagnostics.requests[0].noise_norm
    assert noise == pytest.approx(cert.sigma_used * p**0.5, rel=0.1)  # ‖ξ‖ ≈ σ√p
    # The same run without the recipe's norm bound: the retrained model is not known to lie in the C-ball.
    loose = _run(_ctx(x, y, xt, yt, forget, retain, original, retrained), solver="exact", lam=0.0, C=10.0)
    assert loose.certificate.status == "not certified"
    assert loose.certificate.failing()[0].name == "recipe_norm"


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_official_reg_form_is_the_reference_codes_step_and_never_certified(convex_setup, solver: str) -> None:
    """reg_form="official" takes the step of the released code's objective (pitfall Z1), checked against autograd
    on that objective written out independently: gradient ∇CE + wd·∇Σ‖w_l‖, Hessian ∇²CE + (λ+wd)·∇²Σ‖w_l‖."""
    x, y, xt, yt, forget, retain, original, retrained = convex_setup
    lam = 0.05
    ctx = _ctx(x, y, xt, yt, forget, retain, original, retrained)
    result = _run(ctx, solver=solver, lam=lam, reg_form="official", epsilon=1.0)
    w = get_flat_params(original).clone()
    shapes = [p.shape for p in original.parameters()]
    sizes = [p.numel() for p in original.parameters()]

    def ce(flat: torch.Tensor) -> torch.Tensor:
        weight, bias = (b.reshape(s) for b, s in zip(torch.split(flat, sizes), shapes, strict=True))
        return nn.functional.cross_entropy(x[retain] @ weight.T + bias, y[retain])

    def norms(flat: torch.Tensor) -> torch.Tensor:
        return sum(torch.linalg.vector_norm(b) for b in torch.split(flat, sizes))

    grad = torch.autograd.functional.jacobian(lambda f: ce(f) + WD * norms(f), w)
    hess = torch.autograd.functional.hessian(lambda f: ce(f) + (lam + WD) * norms(f), w)
    expected = w - torch.linalg.solve(hess, grad)
    tol = 1e-8 if solver == "exact" else 1e-4  # CG stops at a relative residual of 1e-6
    assert float(torch.linalg.vector_norm(get_flat_params(result.model) - expected)) <= tol * float(
        torch.linalg.vector_norm(w - expected))
    cert = result.certificate
    assert cert.status == "not certified" and cert.failing()[0].name == "paper_step"
    data = cert.to_dict()
    assert data["sensitivity"] is None and data["sigma_required"] is None  # Δ = ∞, serialised as null
    assert cert.sigma_used == 0.0 and any("reg_form='official'" in note for note in cert.notes)
    assert math.isfinite(cert.sensitivity_terms["nonconvergence"])  # the paper's terms stay visible
    # The paper's default form on the same problem takes a different step.
    paper = _run(ctx, solver=solver, lam=lam, sigma=0.0)
    assert param_distance(paper.model, result.model) > 1e-3 * float(torch.linalg.vector_norm(w - expected))


@pytest.fixture(scope="module")
def mlp_setup():
    """A small ReLU MLP trained once for the module; tests never mutate it (one of them checks)."""
    x, y, xt, yt = _digits(torch.float32)
    forget, retain = select_forget("random:90", y, seed=2)

    def factory(offset: int = 0) -> nn.Module:
        torch.manual_seed(100 + offset)
        return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    model = factory()
    config = TrainConfig(epochs=3, lr=1e-2, weight_decay=5e-4, norm_bound=20.0)
    train(model, x, y, config)
    return x, y, xt, yt, forget, retain, model.eval(), factory


def test_sequential_requests_keep_sigma_and_really_add_noise(mlp_setup) -> None:
    x, y, xt, yt, forget, retain, model, factory = mlp_setup
    before = copy.deepcopy(model)
    ctx = _ctx(x, y, xt, yt, forget, retain, model, wd=5e-4, factory=factory)
    result = _run(ctx, requests=3, sigma=0.01, depth=30, reps=2, H=100.0, retrain_each_step=True,
                  chain_from="noiseless")
    steps = result.diagnostics.requests
    assert [s.request for s in steps] == [1, 2, 3]
    assert [s.n_forgotten for s in steps] == [30, 60, 90]
    assert [s.n_retain for s in steps] == [len(y) - 30, len(y) - 60, len(y) - 90]
    assert {s.sigma_used for s in steps} == {0.01}
    p = num_params(model)
    for s in steps:
        # The noise really changes the weights (pitfall S1), by ≈ σ√p.
        assert s.noise_norm == pytest.approx(0.01 * p**0.5, rel=0.15)
        assert s.approx_error > 0 and s.grad_norm > 0
        assert 0.0 <= s.accuracy.test <= 1.0 and s.accuracy_noiseless is not None
    assert result.diagnostics.details["chain_from"] == "noiseless" and result.certificate.details["requests"] == 3
    assert len(result.certificate.details["per_request_sensitivity"]) == 3
    assert "every_request" in {c.name for c in result.certificate.conditions}
    assert param_distance(model, before) == 0.0
    # The released model is the noised one: its distance to the start exceeds the noise alone's scale.
    assert param_distance(result.model, model) > 0.5 * 0.01 * p**0.5


def test_chain_from_noised_starts_each_request_from_the_release(mlp_setup) -> None:
    x, y, xt, yt, forget, retain, model, factory = mlp_setup
    ctx = _ctx(x, y, xt, yt, forget, retain, model, wd=5e-4, factory=factory)
    noised = _run(ctx, requests=2, sigma=0.05, depth=5, reps=1, H=100.0, chain_from="noised")
    plain = _run(ctx, requests=2, sigma=0.05, depth=5, reps=1, H=100.0, chain_from="noiseless")
    # Same first request, different starting points for the second: the second gradients differ.
    assert noised.diagnostics.requests[0].grad_norm == pytest.approx(plain.diagnostics.requests[0].grad_norm)
    assert noised.diagnostics.requests[1].grad_norm != pytest.approx(plain.diagnostics.requests[1].grad_norm,
                                                                     rel=1e-3)


def test_noised_chain_enters_each_request_inside_the_c_ball(mlp_setup) -> None:
    """The bound needs ‖w‖ ≤ C for the model entering every request; the noised release is projected onto the C-ball
    (post-processing) before the next request, and the card records it."""
    x, y, xt, yt, forget, retain, model, factory = mlp_setup
    ctx = _ctx(x, y, xt, yt, forget, retain, model, wd=5e-4, factory=factory, norm_bound=20.0)
    result = _run(ctx, requests=2, sigma=2.0, depth=5, reps=1, H=100.0, chain_from="noised", C=20.0)
    first, second = result.diagnostics.requests
    assert not first.projected_to_C and first.param_norm_start <= 20.0
    assert second.param_norm_start > 20.0 and second.projected_to_C  # σ√p ≫ C: the release left the ball
    assert {c.name: c.holds for c in result.certificate.conditions}["start_norm"]


def test_too_small_scale_is_reported_not_returned(mlp_setup) -> None:
    x, y, xt, yt, forget, retain, model, factory = mlp_setup
    ctx = _ctx(x, y, xt, yt, forget, retain, model, wd=5e-4, factory=factory)
    with pytest.raises(DivergenceError, match="LiSSA diverged at step"):
        _run(ctx, H=0.01, depth=200, reps=2)


def test_lanczos_steps_and_points_are_honoured(mlp_setup) -> None:
    """Fewer Lanczos steps from the same start vector span a nested Krylov space: λ_min can only be less negative
    (Cauchy interlacing), and the card says how many steps and points measured it."""
    x, y, xt, yt, forget, retain, model, factory = mlp_setup
    ctx = _ctx(x, y, xt, yt, forget, retain, model, wd=5e-4, factory=factory)

    def constants(**kw):
        cert = _run(ctx, depth=5, reps=1, H=100.0, curvature_points=300, curvature_check="lanczos", **kw).certificate
        return {c.name: c for c in cert.constants}, cert

    (few, few_cert), (many, _) = constants(lanczos_steps=40), constants(lanczos_steps=60)
    assert "Lanczos (40 steps) on 300 retain points" in few["λ_min"].how
    assert "Lanczos (60 steps) on 300 retain points" in many["λ_min"].how
    assert few["λ_min"].tag == many["λ_min"].tag == "estimate"
    # θ_min minus the Ritz residual: still ≥ the 60-step value up to that residual (interlacing on θ_min)
    assert few["λ_min"].value >= many["λ_min"].value - 1e-2
    assert few["L"].value <= many["L"].value + 1e-6
    floor = next(c for c in few_cert.conditions if c.name == "curvature_floor")
    assert "holds given an estimate" in floor.describe() or not floor.holds
    with pytest.raises(ConfigError, match="lanczos_steps=5 is not valid: expected an integer in \\[40"):
        constants(lanczos_steps=5)


def test_too_many_requests_is_a_config_error(mlp_setup) -> None:
    x, y, xt, yt, forget, _, model, factory = mlp_setup
    ctx = _ctx(x, y, xt, yt, forget[:2], torch.arange(2, len(y)), model, wd=5e-4, factory=factory)
    with pytest.raises(ConfigError, match="requests=3"):
        _run(ctx, requests=3)


def test_pipeline_run_card_has_certificate_and_diagnostics(tmp_path) -> None:
    from unlearn_core.pipeline import RunConfig, run

    config = RunConfig(dataset="digits", model="logreg", forget="random:50", method="certified_newton",
                       params={"depth": 40, "reps": 2, "lambda_min": "0", "G": "0.5", "L": "1"},
                       train=TrainConfig(epochs=3), use_cache=False, cache_dir=str(tmp_path))
    card = run(config).card
    json.dumps({"certificate": card["certificate"], "diagnostics": card["diagnostics"]}, allow_nan=False)
    cert = card["certificate"]
    assert cert["status"] in ("certified under assumptions", "not certified")
    tags = {c["name"]: c["tag"] for c in cert["constants"]}
    assert tags["λ_min"] == tags["G"] == tags["L"] == "assumption"
    assert cert["sensitivity_terms"]["lissa"] > 0 and cert["sigma_required"] > 0
    assert cert["delta_guaranteed"] == pytest.approx(cert["delta"] + 1e-6)  # δ + ρ (default ρ = 1e-6 < 1/n − δ)
    assert cert["delta_guaranteed"] < 1 / card["data"]["n_train"]
    diag = card["diagnostics"]
    assert diag["lissa"]["norm_steps"][-1] == 40 and len(diag["lissa"]["norms"][0]) == 2
    assert diag["approx_error"] is not None and diag["grad_norm"] > 0
