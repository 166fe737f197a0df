"""Rewind-to-Delete (Mu & Klabjan 2025): the sensitivity against its recursion and against simulated trajectories,
the checkpoints kept in the model cache, and the certificate against the retrained oracle — which, for this recipe,
is exactly the reference the bound is about (gradient descent on D' from the same initialisation)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from digits_problem import digits_context
from digits_problem import run_unlearner as run
from torch import nn

from unlearn_core.certificate import BOUND, CERTIFIED, ESTIMATE, NOT_CERTIFIED, UNDER_ASSUMPTIONS
from unlearn_core.descent import contraction, softmax_bounds
from unlearn_core.descent.rewind_sensitivity import gd_expansion, rewind_sensitivity
from unlearn_core.evaluation import param_distance
from unlearn_core.limits import ModelShape
from unlearn_core.pipeline import RunConfig, prepare, run_method
from unlearn_core.recipes import checkpoint_steps
from unlearn_core.training import TrainConfig, train
from unlearn_core.unlearners import get_unlearner

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("rho", [0.97, 1.0, 1.3])
def test_sensitivity_is_the_distance_recursion(rho: float) -> None:
    """Δ = ρ^K · Σ_{j<T−K} ρ^j · (2ηGk/n): the recursion e ← ρe + 2ηGk/n for T − K steps, then e ← ρe for K."""
    total, lr, g, n, k = 40, 0.1, 3.0, 500, 20
    for rewind in (0, 7, 25, 40):
        e = 0.0
        for _ in range(total - rewind):
            e = rho * e + 2 * lr * g * k / n
        e *= rho**rewind
        got = rewind_sensitivity(total_steps=total, rewind_steps=rewind, lr=lr, expansion=rho, grad_bound=g, n=n,
                                 removed=k)
        assert got == pytest.approx(e, rel=1e-12, abs=1e-15)
    assert rewind_sensitivity(total_steps=total, rewind_steps=total, lr=lr, expansion=rho, grad_bound=g, n=n,
                              removed=k) == 0.0


def test_bound_covers_simulated_trajectories() -> None:
    """Gradient descent on D and on D' from one initialisation (float64 softmax regression); rewinding the D run and
    descending on D' lands within Δ of retraining — with the convex expansion, and with the (looser) non-convex one."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(70, 4, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (70,), generator=gen)
    wd, k, total = 0.01, 9, 60
    smooth = softmax_bounds.smoothness_bound(x[k:], weight_decay=wd)
    lr = 1.0 / smooth
    start = nn.Linear(4, 3).double()

    def descend(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor, steps: int) -> nn.Module:
        for _ in range(steps):
            model.zero_grad()
            (nn.functional.cross_entropy(model(xs), ys) + 0.5 * wd * sum((p * p).sum() for p in model.parameters())
             ).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.sub_(lr * p.grad)
        return model

    def fresh() -> nn.Module:
        model = nn.Linear(4, 3).double()
        model.load_state_dict(start.state_dict())
        return model

    retrained = descend(fresh(), x[k:], y[k:], total)
    g = softmax_bounds.gradient_bound(x)
    for rewind in (5, 20, 45):
        unlearned = descend(descend(fresh(), x, y, total - rewind), x[k:], y[k:], rewind)
        actual = param_distance(unlearned, retrained)
        for convex in (True, False):
            rho = gd_expansion(lr=lr, smoothness=smooth, mu=wd, convex=convex)
            bound = rewind_sensitivity(total_steps=total, rewind_steps=rewind, lr=lr, expansion=rho, grad_bound=g,
                                       n=70, removed=k)
            assert 0 < actual <= bound
    assert gd_expansion(lr=lr, smoothness=smooth, mu=wd, convex=True) == pytest.approx(
        contraction.gd_contraction(lr=lr, mu=wd, beta=smooth))


@pytest.fixture(scope="module")
def prepared_logreg(tmp_path_factory):
    config = RunConfig(dataset="digits", model="logreg", forget="random:0.1", method="rewind_to_delete",
                       params={"train_steps": 30, "checkpoints": 3}, train=TrainConfig(weight_decay=0.01),
                       cache_dir=str(tmp_path_factory.mktemp("r2d")))
    return prepare(config)


def test_checkpoints_are_cached_reproduce_the_trajectory_and_are_restored(prepared_logreg) -> None:
    """The gd recipe keeps its checkpoints in the model cache (for the original and the retrained model); the weights
    at a checkpoint are those of a fresh 15-step run of the same recipe; a deleted checkpoint makes the next preparation
    train again and store it."""
    traj = prepared_logreg.trajectories["original"]
    assert prepared_logreg.train_config.optimizer == "gd" and prepared_logreg.train_config.checkpoints == 3
    assert traj.available() == [0, *checkpoint_steps(30, 3), 30] == [0, 8, 15, 22, 30]
    assert set(prepared_logreg.trajectories) == {"original", "retrained"}
    files = sorted(Path(prepared_logreg.config.cache_dir).rglob("*.pt"))
    assert len(files) == 2 * (3 + 1)  # three checkpoints and the model, for the original and the retrained model
    fifteen = prepared_logreg.model_factory()
    train(fifteen, prepared_logreg.data.x_train, prepared_logreg.data.y_train,
          dataclasses.replace(prepared_logreg.train_config, epochs=15, checkpoints=0))
    assert param_distance(traj.load(15), fifteen) == 0.0
    assert param_distance(traj.load(30), prepared_logreg.original) == 0.0
    checkpoint = traj.store.cache.path(traj.store._key(15))
    checkpoint.unlink()
    again = prepare(prepared_logreg.config)
    assert checkpoint.is_file() and not again.cached["original"] and again.cached["retrained"]
    assert param_distance(again.trajectories["original"].load(15), fifteen) == 0.0


def test_certificate_on_logreg_covers_the_retrained_model(prepared_logreg) -> None:
    """Proven constants: "certified"; the noise-free result is within Δ of the retrained oracle (the exact reference);
    rewinding everything is retraining: Δ = 0, no noise, the release is the retrained model."""
    half = run_method(prepared_logreg, "rewind_to_delete", {"train_steps": 30, "checkpoints": 3, "rewind": 0.5})
    cert, diag = half.result.certificate, half.result.diagnostics
    assert cert.status == CERTIFIED and all(c.tag == BOUND for c in cert.constants)
    assert cert.details["rewound_to"] == 15 and cert.details["K"] == 15 and diag.num_gradients == 15
    assert 0 < diag.approx_error <= cert.sensitivity
    assert diag.details["gradients_vs_retraining"] == pytest.approx(0.5)
    full = run_method(prepared_logreg, "rewind_to_delete", {"train_steps": 30, "checkpoints": 3, "rewind": 1.0})
    assert full.result.certificate.sensitivity == 0.0 and full.result.certificate.sigma_used == 0.0
    assert full.result.certificate.status == CERTIFIED
    assert param_distance(full.unlearned, prepared_logreg.retrained) < 1e-5


def test_labels_on_a_network_and_on_a_model_trained_otherwise(tmp_path) -> None:
    """On an MLP trained by its recipe, L and G are measured (estimates): "certified under assumptions". On a model
    trained by Adam the gradient-descent condition fails: "not certified"."""
    config = RunConfig(dataset="digits", model="mlp", hidden=(8,), forget="random:0.05", method="rewind_to_delete",
                       params={"train_steps": 10, "checkpoints": 2}, cache_dir=str(tmp_path))
    res = run_method(prepare(config), "rewind_to_delete", {"train_steps": 10, "checkpoints": 2,
                                                           "curvature_points": 128, "lanczos_steps": 5})
    cert = res.result.certificate
    assert cert.status == UNDER_ASSUMPTIONS
    assert {c.name: c.tag for c in cert.constants}["L"] == ESTIMATE and math.isfinite(cert.sensitivity)
    other = run("rewind_to_delete", digits_context(), train_steps=10)
    assert other.certificate.status == NOT_CERTIFIED
    assert [c.name for c in other.certificate.failing()] == ["gd_trajectory"]


def test_checkpoints_are_in_the_estimate() -> None:
    """The run's estimate before any work counts C checkpoints of p floats for each of the two trajectories."""
    shape = ModelShape(num_params=650, activations=20, peak_activation=10, flops=1300, input_numel=64)
    estimate = get_unlearner("rewind_to_delete").work_estimate({"train_steps": 100, "checkpoints": 7}, shape=shape,
                                                               n_train=1437)
    assert sum(v for k, v in estimate.memory.items() if "checkpoints" in k) == 2 * 7 * 650 * 4
