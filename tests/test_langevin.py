"""Langevin unlearning (Chien, Wang, Chen & Li 2024): its accountants against the authors' public code and an
independent optimisation, the W∞ bound against a coupled simulation, the noisy training recipe, and the method's
certificate through the pipeline and the CLI."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from digits_problem import digits_context
from digits_problem import run_unlearner as run
from scipy.optimize import minimize_scalar
from torch import nn

from unlearn_core.certificate import CERTIFIED, NOT_CERTIFIED, UNDER_ASSUMPTIONS
from unlearn_core.cli import main
from unlearn_core.descent import langevin_accounting as acc
from unlearn_core.descent import softmax_bounds
from unlearn_core.errors import ConfigError
from unlearn_core.pipeline import RunConfig, prepare, run_method, validate_config
from unlearn_core.recipes import noise_std_per_step
from unlearn_core.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

# The authors' MNIST setting (Graph-COM/Langevin_unlearning, main_lmc.py): classes 3 and 8 (n = 11,982), λ = 1e-6,
# m = λn, L = 1/4 + m, η = 1/L, M = 1, σ = 0.03, δ = 1/n.
N, LAM, SIGMA, M = 11_982, 1e-6, 0.03, 1.0
MU = LAM * N
ETA = 1.0 / (0.25 + MU)


def _public_code_epsilon(k: int, s: int) -> float:
    """The public code's ``epsilon_expression`` minimised over α ∈ (1, 10⁴) as its ``search_finetune_step`` does,
    rewritten here from the published formula (an independent implementation of the reference)."""

    def eps(alpha: float) -> float:
        return (math.exp(-k * MU * ETA / alpha) * 4 * alpha * s**2 * M**2 / (MU * SIGMA**2 * N**2)
                + math.log(N) / (alpha - 1))

    return float(minimize_scalar(eps, bounds=(1, 10000), method="bounded").fun)


@pytest.mark.parametrize(("removed", "k_public"), [(10, 781), (100, 2001), (1000, 3141)])
def test_lsi_accountant_reproduces_the_public_codes_step_counts(removed: int, k_public: int) -> None:
    """The public code searches K = 1, 11, 21, … and stops at the first K with ε ≤ 1: our exact smallest K lies in
    the ten steps before its answer, and our ε matches its formula."""
    drift = acc.drift_sensitivity(n=N, removed=removed, grad_bound=M)
    k = acc.lsi_steps(drift=drift, mu=MU, lr=ETA, sigma=SIGMA, epsilon=1.0, delta=1.0 / N, max_steps=100_000)
    assert k_public - 10 < k <= k_public
    for steps in (k - 1, k, k_public):
        ours = acc.lsi_epsilon(drift=drift, mu=MU, lr=ETA, sigma=SIGMA, steps=steps, delta=1.0 / N)
        assert ours == pytest.approx(_public_code_epsilon(steps, removed), rel=1e-6, abs=1e-9)
    assert _public_code_epsilon(k_public - 10, removed) > 1.0 >= _public_code_epsilon(k_public, removed)


def test_w_inf_closed_forms_against_numerical_optimisation() -> None:
    """ε = A + 2√(A ln 1/δ) is the minimum over α of αA + ln(1/δ)/(α − 1), and the closed-form K is the fewest
    steps reaching ε (checked one step either side)."""
    z, c, lr, sigma, delta = 3.0, 0.98, 0.05, 0.1, 1e-5
    for steps in (0, 50, 400):
        a = acc.w_inf_rdp(alpha=1.0, distance=z, contraction=c, steps=steps, lr=lr, sigma=sigma)

        def total(t: float, a: float = a) -> float:
            return acc.rdp_to_dp_epsilon(rdp=(1 + math.exp(t)) * a, alpha=1 + math.exp(t), delta=delta)

        numeric = minimize_scalar(total, bounds=(-30, 30), method="bounded")
        closed = acc.w_inf_epsilon(distance=z, contraction=c, steps=steps, lr=lr, sigma=sigma, delta=delta)
        assert closed == pytest.approx(float(numeric.fun), rel=1e-6)
    k = acc.w_inf_steps(distance=z, contraction=c, lr=lr, sigma=sigma, epsilon=1.0, delta=delta)
    assert acc.w_inf_epsilon(distance=z, contraction=c, steps=k, lr=lr, sigma=sigma, delta=delta) <= 1.0
    assert acc.w_inf_epsilon(distance=z, contraction=c, steps=k - 1, lr=lr, sigma=sigma, delta=delta) > 1.0


def test_coupled_learning_processes_stay_within_the_w_inf_bound() -> None:
    """Noisy gradient descent on D and on D' = D minus 5 points, from the same start with the same noise (the
    coupling of the proof), never drift further apart than Δ_g/μ — a float64 simulation of the bound."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (40,), generator=gen)
    mu, sigma = 0.1, 0.05
    beta = softmax_bounds.smoothness_bound(x, weight_decay=mu)
    lr = 1.0 / beta
    drift = acc.drift_sensitivity(n=40, removed=5, grad_bound=softmax_bounds.gradient_bound(x))
    z = acc.learning_w_inf_bound(drift=drift, mu=mu)
    a, b = nn.Linear(3, 3).double(), nn.Linear(3, 3).double()
    b.load_state_dict(a.state_dict())
    noise = torch.Generator().manual_seed(1)
    largest = 0.0
    for _ in range(400):
        xi = [torch.randn(p.shape, generator=noise, dtype=torch.float64) for p in a.parameters()]
        for model, (xs, ys) in ((a, (x, y)), (b, (x[5:], y[5:]))):
            model.zero_grad()
            decay = 0.5 * mu * sum((p * p).sum() for p in model.parameters())
            loss = nn.functional.cross_entropy(model(xs), ys) + decay
            loss.backward()
            with torch.no_grad():
                for p, e in zip(model.parameters(), xi, strict=True):
                    p.sub_(lr * p.grad).add_(math.sqrt(2 * lr) * sigma * e)
        gap = torch.cat([(p - q).detach().reshape(-1) for p, q in zip(a.parameters(), b.parameters(), strict=True)])
        gap = gap.norm()
        largest = max(largest, float(gap))
    assert 0 < largest <= z


def test_noisy_gd_recipe_is_seeded_and_adds_the_stated_noise() -> None:
    """Two runs with one seed give the same weights; the difference between a noisy and a noiseless run after one
    step is N(0, 2ησ²) per coordinate (the stated std within 10 % over 650 coordinates)."""
    x, y = torch.randn(300, 1, 8, 8), torch.randint(0, 10, (300,))
    recipe = TrainConfig(optimizer="noisy_gd", lr=0.05, epochs=1, noise=0.3, weight_decay=0.01, norm_bound=None)
    models = [nn.Sequential(nn.Flatten(), nn.Linear(64, 10)) for _ in range(3)]
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
    train(models[0], x, y, recipe)
    train(models[1], x, y, recipe)
    train(models[2], x, y, TrainConfig(optimizer="gd", lr=0.05, epochs=1, weight_decay=0.01, norm_bound=None))
    flat = [torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in models]
    assert torch.equal(flat[0], flat[1])
    assert float((flat[0] - flat[2]).std()) == pytest.approx(noise_std_per_step(lr=0.05, sigma=0.3), rel=0.1)


@pytest.fixture(scope="module")
def prepared_logreg(tmp_path_factory):
    config = RunConfig(dataset="digits", model="logreg", forget="random:0.05", method="langevin",
                       params={"weight_decay": 1.0, "train_steps": 50}, cache_dir=str(tmp_path_factory.mktemp("lv")))
    return prepare(config)


def test_certified_on_logreg_with_the_steps_the_accountant_asks_for(prepared_logreg) -> None:
    """Trained by its own recipe (noisy_gd), the method's auto K is the W∞ accountant's, recomputed here from the
    proven constants; ε certified ≤ ε; every condition holds; the LSI accountant makes the label rest on an
    assumption."""
    assert prepared_logreg.train_config.optimizer == "noisy_gd"
    res = run_method(prepared_logreg, "langevin", {"weight_decay": 1.0, "train_steps": 50})
    cert = res.result.certificate
    assert cert.status == CERTIFIED and all(c.holds for c in cert.conditions) and cert.epsilon_certified <= 1.0
    data = prepared_logreg.data
    beta = 0.5 * max(softmax_bounds.second_moment_lambda_max(data.x_train),
                     softmax_bounds.second_moment_lambda_max(data.x_train[prepared_logreg.retain_idx])) + 1.0
    lr = 1.0 / softmax_bounds.smoothness_bound(data.x_train, weight_decay=1.0)
    z = acc.drift_sensitivity(n=data.n_train, removed=int(prepared_logreg.forget_idx.numel()),
                              grad_bound=softmax_bounds.gradient_bound(data.x_train)) / 1.0
    k = acc.w_inf_steps(distance=z, contraction=1 - lr, lr=lr, sigma=0.05, epsilon=1.0, delta=1e-5)
    assert cert.details["steps"] == k and res.result.diagnostics.num_gradients == k
    assert res.result.diagnostics.details["gradients_vs_retraining"] == pytest.approx(k / 50)
    assert lr <= 2.0 / (1.0 + beta) and cert.details["lr"] == pytest.approx(lr)
    lsi = run_method(prepared_logreg, "langevin", {"weight_decay": 1.0, "train_steps": 50, "accountant": "lsi",
                                                   "steps": 200}).result.certificate
    assert lsi.status in (UNDER_ASSUMPTIONS, NOT_CERTIFIED)
    assert any(c.name == "C_LSI" and c.tag == "assumption" for c in lsi.constants)


def test_not_certified_on_a_model_trained_otherwise_or_not_convex(prepared_logreg) -> None:
    """The noisy process must have trained the model: the same run on a context whose recipe is L-BFGS is labelled
    "not certified" by the training-recipe condition; too few steps fail the noise condition; a network fails strong
    convexity."""
    ctx = dataclasses.replace(prepared_logreg.context(), train_config=TrainConfig(optimizer="lbfgs"))
    res = run("langevin", ctx, weight_decay=1.0, train_steps=50)
    assert res.certificate.status == NOT_CERTIFIED
    assert [c.name for c in res.certificate.failing()] == ["training_recipe"]
    short = run_method(prepared_logreg, "langevin", {"weight_decay": 1.0, "train_steps": 50, "steps": 5})
    assert [c.name for c in short.result.certificate.failing()] == ["noise"]
    mlp = run("langevin", digits_context(), train_steps=10, steps=3)
    assert mlp.certificate.failing()[0].name == "strongly_convex"
    # steps=auto where no K can certify (a network) takes T/10 steps, not max_steps, and says why
    auto = run("langevin", digits_context(), train_steps=40)
    assert auto.diagnostics.num_gradients == 4
    assert any("no number of steps certifies" in note for note in auto.certificate.notes)


def test_forcing_another_optimiser_is_refused_in_one_line(tmp_path, capsys) -> None:
    """The user asks for Adam with a method that trains with noisy_gd: the CLI says so in one line and exits 2,
    before anything is trained or cached."""
    config = RunConfig(dataset="digits", model="logreg", method="langevin", train=TrainConfig(optimizer="adam"))
    with pytest.raises(ConfigError, match="optimizer='adam' is not valid with method 'langevin'"):
        validate_config(config)
    code = main(["run", "--quiet", "--dataset", "digits", "--model", "logreg", "--method", "langevin",
                 "--optimizer", "adam", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "optimizer='adam' is not valid with method 'langevin'" in err
    assert not (tmp_path / "cache").exists()
