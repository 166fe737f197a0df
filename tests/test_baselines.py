"""Heuristic baselines (fine-tune, NegGrad, NegGrad+, Fisher) and every registered method through the pipeline."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from digits_problem import accuracy, digits_context
from digits_problem import run_unlearner as run
from torch import nn

from unlearn_core.certificate import STATUSES
from unlearn_core.errors import DivergenceError
from unlearn_core.jsonio import to_jsonable
from unlearn_core.pipeline import RunConfig, prepare, run_method
from unlearn_core.training import TrainConfig
from unlearn_core.unlearners import get_unlearner, list_unlearners, methods_with, register_unlearner
from unlearn_core.unlearners.fisher import diagonal_fisher, fisher_noise_variance
from unlearn_core.unlearners.neggrad import forget_accuracy_target

FAMILIES = {"noisy_finetune": "certified", "output_perturbation": "certified", "cure_newton": "approximate",
            "damped_newton": "approximate", "finetune": "heuristic", "neggrad": "heuristic",
            "neggrad_plus": "heuristic", "fisher": "heuristic"}
#: Every registered method (the registry, never a hand-written list), run with its own demo settings.
ALL = tuple(cls.name for cls in list_unlearners())


pytestmark = pytest.mark.usefixtures("one_thread")



def test_registry_entries() -> None:
    registered = {cls.name: cls for cls in list_unlearners()}
    for name, family in FAMILIES.items():
        assert registered[name].family == family
    for cls in registered.values():
        assert cls.paper and cls.summary
        entry = cls.describe()
        json.dumps(entry)
        assert all(p["help"] for p in entry["hyperparameters"])
    assert "approximate (uncertified)" in registered["cure_newton"].summary.lower()


def test_capabilities_are_declared_on_the_class_and_checked_against_the_schema() -> None:
    """Each capability names a real hyperparameter, methods_with reads them, and a class that declares one its schema
    lacks is refused at registration."""
    for cls in list_unlearners():
        names = {p.name for p in cls.schema}
        caps = cls.capabilities()
        assert caps == cls.describe()["capabilities"]
        for key in ("budget_param", "noise_param", "epsilon_param"):
            assert caps[key] is None or caps[key] in names
        assert caps["sequential"] == ("requests" in names)
        assert caps["certificate"] == (cls.family == "certified")
    assert methods_with("certificate") == [c.name for c in list_unlearners() if c.family == "certified"]
    assert methods_with("sequential") == ["certified_newton", "descent_to_delete", "langevin"]
    assert "retrain" in methods_with("budget_param") and "fisher" not in methods_with("budget_param")
    with pytest.raises(ValueError, match="capability"):
        methods_with("teleport")

    class Broken(get_unlearner("finetune").__class__):
        name = "broken_budget"
        budget_param = "no_such_param"

    with pytest.raises(ValueError, match="budget_param='no_such_param' is not one of its hyperparameters"):
        register_unlearner(Broken)
    assert "broken_budget" not in {c.name for c in list_unlearners()}


def test_neggrad_lowers_forget_accuracy() -> None:
    """Unchecked ascent (the old defaults: 5 epochs, momentum 0.9, no clipping, no early stop) over-forgets."""
    ctx = digits_context()
    before = accuracy(ctx.model, ctx.x_forget, ctx.y_forget)
    after = accuracy(run("neggrad", ctx, epochs=5, momentum=0.9, max_grad_norm=None, stop_forget_acc=None).model,
                     ctx.x_forget, ctx.y_forget)
    assert after < before - 0.2
    plus = run("neggrad_plus", ctx, alpha=0.5, epochs=3).model
    assert accuracy(plus, ctx.x_forget, ctx.y_forget) < before - 0.2


def test_neggrad_defaults_stop_at_the_retrained_level() -> None:
    """The default early stop lands the forget accuracy near the retrained model's, without wrecking the rest."""
    ctx = digits_context()
    res = run("neggrad", ctx)
    target = res.diagnostics.details["stop_forget_acc"]
    assert target == pytest.approx(forget_accuracy_target(ctx.model, ctx))
    assert res.diagnostics.details["stopped_early"]
    trace = [c.value for c in res.diagnostics.curve if c.metric == "forget_accuracy"]
    assert trace[-1] <= target < trace[0]  # checked at every step until it reached the target
    forget_acc = accuracy(res.model, ctx.x_forget, ctx.y_forget)  # D_u has 140 < 512 points: all of it is checked
    assert target - 0.1 <= forget_acc <= target
    retrained = accuracy(ctx.retrained, ctx.x_forget, ctx.y_forget)
    assert abs(forget_acc - retrained) < 0.1
    assert accuracy(res.model, ctx.x_retain, ctx.y_retain) > 0.85  # chance is 0.1
    assert accuracy(res.model, ctx.x_test, ctx.y_test) > 0.85


def test_forget_accuracy_target_is_zero_for_a_removed_class() -> None:
    ctx = digits_context()
    forget = (ctx.y_train == 3).nonzero().squeeze(1)
    keep = (ctx.y_train != 3).nonzero().squeeze(1)
    class_ctx = dataclasses.replace(ctx, forget_idx=forget, retain_idx=keep)
    assert forget_accuracy_target(ctx.model, class_ctx) == 0.0
    # Random forgetting: the mean over D_u of the original model's per-class test accuracy.
    per_class = {c: accuracy(ctx.model, ctx.x_test[ctx.y_test == c], ctx.y_test[ctx.y_test == c]) for c in range(10)}
    expected = sum(per_class[int(c)] for c in ctx.y_forget) / ctx.y_forget.numel()
    assert forget_accuracy_target(ctx.model, ctx) == pytest.approx(expected, abs=1e-6)


def test_neggrad_divergence_raises_instead_of_returning_nan() -> None:
    ctx = digits_context()
    with pytest.raises(DivergenceError, match="lower lr"):
        run("neggrad", ctx, lr=1.0, momentum=0.9, max_grad_norm=None, stop_forget_acc=None, epochs=50)


@pytest.mark.parametrize("name", ["finetune", "neggrad_plus", "neggrad"])
def test_non_finite_weights_raise(name: str) -> None:
    ctx = digits_context()
    broken = copy.deepcopy(ctx.model)
    with torch.no_grad():
        broken[1].weight[0, 0] = float("nan")
    with pytest.raises(DivergenceError, match=f"{name} diverged"):
        run(name, dataclasses.replace(ctx, model=broken), stop_forget_acc=None) if name == "neggrad" else \
            run(name, dataclasses.replace(ctx, model=broken))


def test_finetune_keeps_retain_accuracy() -> None:
    ctx = digits_context()
    before = accuracy(ctx.model, ctx.x_retain, ctx.y_retain)
    res = run("finetune", ctx)
    assert accuracy(res.model, ctx.x_retain, ctx.y_retain) >= before - 0.01
    assert res.diagnostics.details["finetune"]["steps"] == 5 * -(-int(ctx.retain_idx.numel()) // 128)
    assert res.diagnostics.num_gradients == res.diagnostics.details["finetune"]["steps"]


def test_diagonal_fisher_matches_an_explicit_loop() -> None:
    """Golatkar's original: one example at a time, every class y, Σ_y p(y|x)(∂ℓ(x, y)/∂w)²."""
    ctx = digits_context()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 5), nn.Tanh(), nn.Linear(5, 10)).eval()
    x = ctx.x_retain[:30]
    fisher = diagonal_fisher(model, x, chunk_elements=7 * 10 * 400)  # several chunks
    ref = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(x.shape[0]):
        out = model(x[i : i + 1])
        prob = torch.softmax(out, -1).detach()
        for yv in range(10):
            loss = nn.functional.cross_entropy(out, torch.tensor([yv]))
            grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
            for (n, _), gr in zip(model.named_parameters(), grads, strict=True):
                ref[n] += prob[0, yv] * gr**2
    for n in ref:
        assert torch.allclose(fisher[n], ref[n] / x.shape[0], rtol=1e-4, atol=1e-9)


def test_fisher_variance_rules() -> None:
    fisher = {
        "hidden.weight": torch.tensor([[1e-9, 1.0], [4.0, 4.0], [1.0, 1.0]]),  # 3 rows: not the last layer
        "head.weight": torch.full((10, 2), 1e-9),  # first dimension = #classes → cap 1e2, ×10
        "hidden.bias": torch.tensor([1.0, 1e-9, 0.5]),  # 1-D → ×10
    }
    var = fisher_noise_variance(fisher, alpha=1e-6, num_classes=10)
    assert torch.allclose(var["hidden.weight"][0], torch.full((2,), 1e-6 * (1e3 + 1.0) / 2))
    assert torch.allclose(var["hidden.weight"][1], torch.full((2,), 1e-6 * 0.25))
    assert torch.allclose(var["head.weight"], torch.full((10, 2), 1e-6 * 1e2 * 10))
    assert torch.allclose(var["hidden.bias"], 10 * 1e-6 * torch.tensor([1.0, 1e3, 2.0]), rtol=1e-6)


def test_fisher_noise_follows_alpha() -> None:
    ctx = digits_context()
    small = run("fisher", ctx, alpha=1e-8, max_samples=200).diagnostics.noise_norm
    large = run("fisher", ctx, alpha=1e-6, max_samples=200).diagnostics.noise_norm
    assert large == pytest.approx(10 * small, rel=0.1)


def test_fisher_subsample_estimates_the_full_fisher() -> None:
    """max_samples makes F a Monte-Carlo mean over a random subset: per-tensor means agree with all of D_r."""
    ctx = digits_context()
    full = run("fisher", ctx, max_samples=0).diagnostics.details
    sub = run("fisher", ctx, max_samples=300).diagnostics.details
    assert full["fisher_samples"] == ctx.retain_idx.numel() and sub["fisher_samples"] == 300
    for key in ("fisher_mean_by_tensor", "noise_std_mean_by_tensor"):
        for name, value in full[key].items():
            assert sub[key][name] == pytest.approx(value, rel=0.1), (key, name)
    assert run("fisher", ctx).diagnostics.details["fisher_samples"] == min(2000, ctx.retain_idx.numel())


@pytest.mark.parametrize("name", ALL)
def test_every_method_runs_on_digits_mlp(name: str) -> None:
    ctx = digits_context()
    before = [p.detach().clone() for p in ctx.model.parameters()]
    res = run(name, ctx, **get_unlearner(name).demo_params)  # wall time: bench/bench_methods.py, never asserted
    assert all(torch.equal(a, b) for a, b in zip(before, ctx.model.parameters(), strict=True))
    assert res.model is not ctx.model
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    json.dumps(res.diagnostics.to_dict(), allow_nan=False)
    family = get_unlearner(name).family
    if family == "certified":
        assert res.certificate.status in STATUSES
        json.dumps(res.certificate.to_dict(), allow_nan=False)
    else:
        assert res.certificate is None


@pytest.fixture(scope="module")
def prepared_digits(tmp_path_factory):
    config = RunConfig(dataset="digits", model="mlp", forget="random:0.1", train=TrainConfig(epochs=3),
                       cache_dir=str(tmp_path_factory.mktemp("cache")))
    return prepare(config)


@pytest.mark.parametrize("name", ALL)
def test_every_method_through_the_pipeline(prepared_digits, name: str) -> None:
    overrides = {"subsolver_iters": 20} if name == "cure_newton" else dict(get_unlearner(name).demo_params)
    result = run_method(prepared_digits, name, overrides)
    card = json.loads(json.dumps(to_jsonable(result.card)))
    assert card["method"]["name"] == name
    assert (card["certificate"] is None) == (get_unlearner(name).family != "certified")
    assert card["models"]["unlearned"]["acc_test"] is not None


@pytest.mark.parametrize("name", ALL)
def test_every_method_runs_on_a_batchnorm_cnn(name: str, tmp_path) -> None:
    config = RunConfig(dataset="synthetic", model="cnn", norm="batch", width=4, train=TrainConfig(epochs=1),
                       cache_dir=str(tmp_path), compute_retrained=False)
    prepared = prepare(config)
    overrides = {"cg_iters": 50, "max_alpha_iters": 20, "lanczos_iters": 10} if name == "cure_newton" else \
        dict(get_unlearner(name).demo_params)
    if name == "damped_newton":
        overrides = {"max_iter": 50}
    if name == "certified_newton":  # LiSSA meets this untrained BatchNorm CNN's negative curvature: solve exactly
        overrides["solver"] = "exact"
    result = run_method(prepared, name, overrides)
    json.dumps(to_jsonable(result.card), allow_nan=False)
    assert all(torch.isfinite(p).all() for p in result.unlearned.parameters())
