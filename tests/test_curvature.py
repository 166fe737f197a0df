"""Curvature tools against dense references: CG and Lanczos vs ``torch.linalg``, LiSSA vs the exact solve.

Everything runs in float64 on tiny models so that the references (dense Hessian, ``eigvalsh``, ``solve``) are
exact to rounding and the tolerances below measure the algorithms, not float32 noise.
"""

from __future__ import annotations

import pytest
import torch
from dense_reference import dense_hessian, dense_solve
from torch import nn

from unlearn_core.certificate import delta_a_posteriori
from unlearn_core.curvature import (
    conjugate_gradient,
    exact_inverse_hvp,
    extreme_eigenvalues,
    hessian_matrix,
    lanczos,
    lissa,
    lissa_batch_indices,
    make_data_hvp,
    make_lissa_hvp,
    make_mlp_batched_hvp,
    power_iteration,
    regularised_residual_norm,
    sampled_lambda_max,
    sampled_lambda_min,
)
from unlearn_core.errors import ConfigError, DivergenceError
from unlearn_core.functional import SumOfNormsRegulariser, flat_gradient, num_params


def _data(n: int = 240, d: int = 6, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    w = torch.randn(d, classes, generator=gen, dtype=torch.float64)
    y = (x @ w + 0.5 * torch.randn(n, classes, generator=gen, dtype=torch.float64)).argmax(1)
    return x, y


def _logreg(d: int = 6, classes: int = 3) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(d, classes)).double().eval()


def _mlp(d: int = 6, classes: int = 3) -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, classes)).double().eval()


def _spd(p: int, cond: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(p, p, generator=gen, dtype=torch.float64))
    eig = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), p, dtype=torch.float64)
    return q @ torch.diag(eig) @ q.T


# ------------------------------------------------------------------------------------------------- CG, Lanczos


def test_cg_matches_dense_solve() -> None:
    a = _spd(60, 1e3)
    b = torch.randn(60, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    res = conjugate_gradient(lambda v: a @ v, b, tol=1e-10, max_iter=500)
    exact = dense_solve(a, b)
    assert res.converged
    assert torch.linalg.vector_norm(res.x - exact) / torch.linalg.vector_norm(exact) < 1e-8
    assert res.residuals[0] == pytest.approx(1.0) and res.residuals[-1] <= 1e-10
    # The classical CG bound: ‖e_k‖_A ≤ 2((√κ−1)/(√κ+1))^k ‖e_0‖_A, i.e. k ≤ ½√κ·ln(2/tol) iterations suffice
    # (for the A-norm; rounding makes plain CG lose orthogonality, so p = 60 is not the bound here).
    assert res.iterations <= 0.5 * 1e3**0.5 * torch.log(torch.tensor(2 / 1e-10 * 1e3**0.5)).item()


def test_cg_reports_non_convergence_and_refuses_indefinite() -> None:
    a = _spd(60, 1e6)
    b = torch.ones(60, dtype=torch.float64)
    res = conjugate_gradient(lambda v: a @ v, b, tol=1e-12, max_iter=3)
    assert not res.converged and res.iterations == 3
    indefinite = torch.diag(torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64))
    with pytest.raises(DivergenceError, match="negative curvature"):
        conjugate_gradient(lambda v: indefinite @ v, torch.ones(3, dtype=torch.float64), tol=1e-10)


def test_lanczos_and_power_match_eigh_on_mlp_hessian() -> None:
    x, y = _data()
    model = _mlp()
    p = num_params(model)
    hess = dense_hessian(model, x, y, weight_decay=1e-3)
    eig = torch.linalg.eigvalsh(hess)
    assert eig[0] < 0 < eig[-1], "the tanh MLP's Hessian should be indefinite (a real test of λ_min)"
    hvp = make_data_hvp(model, x, y, weight_decay=1e-3, backend="functorch")
    full = lanczos(hvp, p, num_iter=p, dtype=torch.float64)
    assert full.lambda_max == pytest.approx(float(eig[-1]), rel=1e-8)
    assert full.lambda_min == pytest.approx(float(eig[0]), rel=1e-6, abs=1e-10)
    # Extreme eigenvalues converge first: far fewer steps than p already give them to 1e-4.
    short = lanczos(hvp, p, num_iter=30, dtype=torch.float64)
    assert short.iterations == 30 and p > 30
    assert short.lambda_max == pytest.approx(float(eig[-1]), rel=1e-4)
    # Interlacing: Ritz values never leave the spectrum.
    assert float(eig[0]) - 1e-10 <= short.lambda_min and short.lambda_max <= float(eig[-1]) + 1e-10


def test_power_iteration_matches_eigh() -> None:
    # A dense indefinite matrix with well-separated extremes (power iteration converges like |λ₂/λ₁|^k).
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(40, 40, generator=gen, dtype=torch.float64))
    eig = torch.cat([torch.tensor([-3.0, 10.0], dtype=torch.float64), torch.linspace(-1, 5, 38, dtype=torch.float64)])
    a = q @ torch.diag(eig) @ q.T
    top, steps = power_iteration(lambda v: a @ v, 40, num_iter=500, tol=1e-12, dtype=torch.float64)
    assert top == pytest.approx(10.0, rel=1e-6) and steps < 500
    both = extreme_eigenvalues(lambda v: a @ v, 40, method="power", num_iter=2000, tol=1e-13, dtype=torch.float64)
    assert both.lambda_max == pytest.approx(10.0, rel=1e-6)
    assert both.lambda_min == pytest.approx(-3.0, rel=1e-4)
    with pytest.raises(ConfigError, match="method"):
        extreme_eigenvalues(lambda v: a @ v, 40, method="arnoldi")


def test_sampled_lambda_max_matches_dense_batch_hessians() -> None:
    x, y = _data()
    model = _logreg()
    # Replay the batches the function draws (seeded like lissa_batch_indices' generator) and compare with eigh.
    gen = torch.Generator().manual_seed(5)
    idx = torch.randint(x.shape[0], (4, 12), generator=gen)
    dense_max = max(float(torch.linalg.eigvalsh(dense_hessian(model, x[i], y[i], lam=0.1))[-1]) for i in idx)
    est = sampled_lambda_max(model, x, y, batch_size=12, num_batches=4, lam=0.1, num_iter=300, seed=5)
    assert est == pytest.approx(dense_max, rel=1e-3)


def test_sampled_lambda_min_matches_dense_batch_hessians() -> None:
    """ζ_min of the LiSSA lemma: the smallest eigenvalue over the sampled batch Hessians, replayed with eigh. By
    concavity of λ_min, it can only lie below the λ_min of those batches' mean Hessian."""
    x, y = _data()
    model = _mlp()
    gen = torch.Generator().manual_seed(5)
    idx = torch.randint(x.shape[0], (4, 5), generator=gen)
    batch_hessians = [dense_hessian(model, x[i], y[i], lam=0.01) for i in idx]
    dense_min = min(float(torch.linalg.eigvalsh(h)[0]) for h in batch_hessians)
    p = num_params(model)
    est = sampled_lambda_min(model, x, y, batch_size=5, num_batches=4, lam=0.01, num_iter=p, seed=5)
    assert est == pytest.approx(dense_min, abs=1e-8)  # a full Krylov space: Lanczos is exact
    assert est <= float(torch.linalg.eigvalsh(sum(batch_hessians) / 4)[0]) + 1e-12
    assert est < 0  # small batches of a tanh MLP have negative curvature


def test_a_posteriori_bound_holds_against_a_dense_solve() -> None:
    """‖v̂ − v*‖ ≤ ‖(H + λI)v̂ − g‖/(λ + λ_min) for any estimate v̂, with equality up to the condition number."""
    x, y = _data()
    model = _mlp()
    lam = 0.5
    a = dense_hessian(model, x, y, lam=lam)
    eig = torch.linalg.eigvalsh(a)
    assert float(eig[0]) > 0, "the test needs a positive-definite regularised Hessian"
    g = flat_gradient(model, x, y)
    v_star = dense_solve(a, g)
    for iterations in (1, 3, 8):  # ever better estimates, from a truncated CG
        v_hat = conjugate_gradient(lambda v: a @ v, g, tol=1e-14, max_iter=iterations).x
        residual = regularised_residual_norm(model, x, y, v_hat, g, lam=lam)
        assert residual == pytest.approx(float(torch.linalg.vector_norm(a @ v_hat - g)), rel=1e-8)
        bound = delta_a_posteriori(residual_norm=residual, lam=lam, lambda_min=float(eig[0]) - lam)
        actual = float(torch.linalg.vector_norm(v_hat - v_star))
        assert actual <= bound * (1 + 1e-9)
        assert bound <= actual * float(eig[-1] / eig[0]) * (1 + 1e-9)  # within the condition number


# ------------------------------------------------------------------------------------------- batched HVPs


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [nn.Flatten(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 5), nn.ReLU(), nn.Dropout(0.3),
                 nn.Linear(5, 3)],
        lambda: [nn.Flatten(), nn.Linear(12, 3)],
        lambda: [nn.Linear(12, 4, bias=False), nn.ReLU(), nn.Identity(), nn.Linear(4, 3)],
    ],
)
def test_mlp_fast_hvp_equals_torch_func(layers) -> None:
    torch.manual_seed(4)
    model = nn.Sequential(*layers()).double().eval()
    p = num_params(model)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, 3, 4, generator=gen, dtype=torch.float64)
    if not isinstance(model[0], nn.Flatten):
        x = x.reshape(5, 6, 12)
    y = torch.randint(0, 3, (5, 6), generator=gen)
    v = torch.randn(5, p, generator=gen, dtype=torch.float64)
    fast = make_mlp_batched_hvp(model)
    assert fast is not None
    reference = make_lissa_hvp(model, backend="functorch")[0](v, x, y)
    assert torch.allclose(fast(v, x, y), reference, rtol=1e-10, atol=1e-13)
    # Row r really uses batch r only: the dense Hessian of batch 2 times v[2].
    dense = dense_hessian(model, x[2], y[2])
    assert torch.allclose(fast(v, x, y)[2], dense @ v[2], rtol=1e-10, atol=1e-13)
    # The fused LiSSA update is v ← g + decay·v − alpha·Hv in place: twice (the buffer is reused), then with
    # fewer repetitions (the buffer is reallocated).
    g = torch.randn(p, generator=gen, dtype=torch.float64)
    state = v.clone()
    for rows in (slice(None), slice(None), slice(0, 2)):
        reference_hvp = make_lissa_hvp(model, backend="functorch")[0]
        expected = g + 0.9 * state[rows] - 0.01 * reference_hvp(state[rows], x[rows], y[rows])
        part = state[rows].clone()
        fast.lissa_update_(part, x[rows], y[rows], g=g, decay=0.9, alpha=0.01)
        assert torch.allclose(part, expected, rtol=1e-10, atol=1e-13)
        state[rows] = part


def test_sum_of_norms_regulariser_against_autograd() -> None:
    """The reference code's Σ_l‖w_l‖ (pitfall Z1): gradient and Hessian against autograd's dense ones."""
    model = _mlp()
    reg = SumOfNormsRegulariser(model)
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def total(flat: torch.Tensor) -> torch.Tensor:
        return sum(torch.linalg.vector_norm(b) for b in torch.split(flat, reg.sizes))

    dense = torch.autograd.functional.hessian(total, w)
    assert torch.allclose(reg.grad(), torch.autograd.functional.jacobian(total, w), rtol=1e-12, atol=1e-14)
    v = torch.randn(4, w.numel(), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(reg.hvp(v), v @ dense, rtol=1e-10, atol=1e-13)
    assert torch.allclose(reg.hvp(v[1]), dense @ v[1], rtol=1e-10, atol=1e-13)
    assert torch.allclose(reg.hvp(v, scale=0.3), 0.3 * (v @ dense), rtol=1e-10, atol=1e-13)
    # Zero along each tensor's own direction ŵ_l — the reason it is not the paper's λI.
    first = torch.zeros_like(w)
    first[: reg.sizes[0]] = w[: reg.sizes[0]]
    assert float(torch.linalg.vector_norm(reg.hvp(first))) < 1e-12


def test_data_hvp_fast_path_equals_full_hvp() -> None:
    x, y = _data()
    model = _mlp()
    v = torch.randn(num_params(model), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fast = make_data_hvp(model, x, y, weight_decay=1e-3, lam=0.2, batch_size=70)(v)
    reference = dense_hessian(model, x, y, weight_decay=1e-3, lam=0.2) @ v
    assert torch.allclose(fast, reference, rtol=1e-10, atol=1e-13)


def test_hvp_backend_selection() -> None:
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    assert make_mlp_batched_hvp(conv) is None
    assert make_lissa_hvp(conv)[1] == "functorch"
    assert make_lissa_hvp(_mlp())[1] == "mlp"
    assert make_lissa_hvp(_mlp(), backend="functorch")[1] == "functorch"
    with pytest.raises(ConfigError, match="hvp_backend"):
        make_lissa_hvp(conv, backend="mlp")
    frozen = _mlp()
    frozen[0].weight.requires_grad_(False)
    assert make_mlp_batched_hvp(frozen) is None


# ----------------------------------------------------------------------------------------------------- LiSSA


def _neumann(a: torch.Tensor, g: torch.Tensor, *, scale: float, depth: int) -> torch.Tensor:
    """E[LiSSA] exactly: (1/H) Σ_{j=0}^{s} (I − A/H)^j g (the batches are independent and unbiased)."""
    term, total = g.clone(), g.clone()
    for _ in range(depth):
        term = term - a @ term / scale
        total = total + term
    return total / scale


@pytest.mark.parametrize("which", ["logreg", "mlp"])
def test_lissa_matches_exact_solve_and_improves_with_depth(which: str) -> None:
    x, y = _data()
    model = _logreg() if which == "logreg" else _mlp()
    wd = 1e-3
    full = dense_hessian(model, x, y, weight_decay=wd)
    lam_min = float(torch.linalg.eigvalsh(full)[0])
    lam = max(0.0, -lam_min) + 0.05  # make the regularised Hessian positive definite (the MLP is non-convex)
    g = flat_gradient(model, x, y, weight_decay=wd)
    a = full + lam * torch.eye(full.shape[0], dtype=torch.float64)
    exact = dense_solve(a, g)
    errors = []
    for depth in (5, 400):
        res = lissa(model, x, y, g, lam=lam, weight_decay=wd, scale="auto", depth=depth, reps=32, batch_size=60,
                    seed=depth)
        mean = _neumann(a, g, scale=res.scale, depth=depth)
        # Justified tolerance: LiSSA is unbiased for the Neumann partial sum; its deviation is the noise of a mean
        # of `reps` repetitions, whose expected norm is ‖std over repetitions‖/√reps (= rep_spread·‖mean‖/√reps).
        noise = res.rep_spread * float(torch.linalg.vector_norm(res.ihvp)) / res.reps**0.5
        assert float(torch.linalg.vector_norm(res.ihvp - mean)) <= 4.0 * noise + 1e-12
        errors.append(float(torch.linalg.vector_norm(res.ihvp - exact) / torch.linalg.vector_norm(exact)))
        assert res.steps[-1] == depth and len(res.norms) == len(res.steps) and len(res.norms[0]) == 32
    shallow, deep = errors
    # Deep enough, the truncation bias (1 − (λ+λ_min)/H)^s is negligible and only the sampling noise is left.
    assert deep < 0.05
    assert deep < shallow / 3


@pytest.mark.parametrize(("backend", "extra"), [("mlp", False), ("functorch", False), ("mlp", True)])
def test_lissa_equals_plain_sequential_loop_on_the_same_batches(backend: str, extra: bool) -> None:
    """The batched recursion computes exactly what a repetition-after-repetition loop computes, also with an
    extra curvature term (the reference code's regulariser, as ``reg_form="official"`` passes it)."""
    x, y = _data()
    model = _mlp()
    g = flat_gradient(model, x, y)
    depth, reps, b, scale, lam = 25, 3, 7, 20.0, 0.3
    reg = SumOfNormsRegulariser(model)
    term = (lambda v: 0.2 * reg.hvp(v)) if extra else None
    res = lissa(model, x, y, g, lam=lam, scale=scale, depth=depth, reps=reps, batch_size=b, seed=11,
                hvp_backend=backend, extra_hvp=term)
    assert res.hvp_backend == backend
    idx = lissa_batch_indices(x.shape[0], depth=depth, reps=reps, batch_size=b, seed=11)
    finals = []
    for r in range(reps):
        v = g.clone()
        for t in range(depth):
            hv = dense_hessian(model, x[idx[t, r]], y[idx[t, r]], lam=lam) @ v
            if extra:
                hv = hv + 0.2 * reg.hvp(v)
            v = g + v - hv / scale
        finals.append(v / scale)
    expected = torch.stack(finals).mean(0)
    assert torch.allclose(res.ihvp, expected, rtol=1e-10, atol=1e-12)
    assert res.norms[-1] == pytest.approx([float(torch.linalg.vector_norm(f)) for f in finals], rel=1e-10)
    assert res.num_hvps == depth * reps


def test_lissa_norm_curve_is_subsampled_but_keeps_the_last_step() -> None:
    x, y = _data(n=60)
    model = _logreg()
    g = flat_gradient(model, x, y)
    res = lissa(model, x, y, g, lam=0.1, scale=10.0, depth=1003, reps=2, batch_size=4, max_points=100)
    assert len(res.steps) <= 101 and res.steps[-1] == 1003 and res.steps == sorted(res.steps)
    diag = res.diagnostics()
    assert diag["norm_steps"][-1] == 1003 and len(diag["norms"]) == len(diag["norm_steps"])


def test_lissa_divergence_is_reported_with_advice() -> None:
    x, y = _data()
    model = _logreg()
    g = flat_gradient(model, x, y)
    with pytest.raises(DivergenceError, match=r"LiSSA diverged at step \d+ .*increase H above .*λ_max≈"):
        lissa(model, x, y, g, lam=0.01, scale=0.01, depth=200, reps=2, batch_size=10)


def test_lissa_rejects_bad_arguments() -> None:
    x, y = _data(n=20)
    model = _logreg()
    g = flat_gradient(model, x, y)
    with pytest.raises(ConfigError, match="H=-1"):
        lissa(model, x, y, g, lam=0.1, scale=-1.0, depth=3)
    with pytest.raises(ConfigError, match="depth=0"):
        lissa(model, x, y, g, lam=0.1, depth=0)


# ---------------------------------------------------------------------------------------------- exact solves


def test_exact_inverse_hvp_dense_and_cg_agree() -> None:
    x, y = _data()
    model = _mlp()
    g = flat_gradient(model, x, y, weight_decay=1e-3)
    dense, info = exact_inverse_hvp(model, x, y, g, lam=1.0, weight_decay=1e-3, method="dense")
    cg, cg_info = exact_inverse_hvp(model, x, y, g, lam=1.0, weight_decay=1e-3, method="cg", tol=1e-12)
    reference = dense_solve(dense_hessian(model, x, y, weight_decay=1e-3, lam=1.0), g)
    assert torch.allclose(dense, reference, rtol=1e-9, atol=1e-12)
    assert torch.linalg.vector_norm(cg - reference) / torch.linalg.vector_norm(reference) < 1e-9
    assert cg_info["converged"] and info["lambda_min_reg"] > 0


def test_dense_solve_refuses_large_models() -> None:
    model = nn.Linear(100, 60).double()
    x, y = torch.randn(4, 100, dtype=torch.float64), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ConfigError, match="solver=exact"):
        exact_inverse_hvp(model, x, y, torch.zeros(num_params(model)), lam=0.1, method="dense")


@pytest.mark.parametrize("which", ["mlp", "mlp_relu", "conv"])
def test_hessian_matrix_matches_torch_func_hessian(which: str) -> None:
    """The column-by-column MLP assembly (and the torch.func fallback) against ``torch.func.hessian``.

    batch_size=70 splits the 240 points into unequal chunks and columns_per_call=5 leaves a ragged last block,
    so both weightings are exercised; float64 makes the reference exact to rounding.
    """
    x, y = _data()
    if which == "mlp":
        model = _mlp()
    elif which == "mlp_relu":
        torch.manual_seed(4)
        model = nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)).double().eval()
    else:  # not a plain MLP: the torch.func fallback
        torch.manual_seed(5)
        model = nn.Sequential(nn.Unflatten(1, (1, 6)), nn.Conv1d(1, 2, 3), nn.Tanh(), nn.Flatten(),
                              nn.Linear(8, 3)).double().eval()
    reference = dense_hessian(model, x, y, weight_decay=1e-3, lam=0.25)
    got = hessian_matrix(model, x, y, weight_decay=1e-3, lam=0.25, batch_size=70, columns_per_call=5)
    assert got.shape == reference.shape == (num_params(model), num_params(model))
    torch.testing.assert_close(got, 0.5 * (reference + reference.T), rtol=1e-10, atol=1e-12)
