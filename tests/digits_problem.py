"""A small, self-contained digits-MLP unlearning problem for the unlearner tests (built by hand, no cache).

sklearn's bundled 8×8 digits (no download) as N×1×8×8 tensors normalised with the training mean/std; the
package's 64-32-32-10 MLP trained by ``training.train`` with Adam for a few seconds; 10 % of the training points
forgotten at random. Built once per process (``lru_cache``) and shared read-only: every unlearner copies
``ctx.model`` before touching it. (Its own split and scaling, not ``data.load_dataset("digits")``: the tests'
thresholds were set on this problem.)
"""

from __future__ import annotations

import dataclasses
import functools

import torch
from sklearn.datasets import load_digits
from torch import nn

from unlearn_core.evaluation import evaluate
from unlearn_core.models import build_model
from unlearn_core.training import TrainConfig, train
from unlearn_core.unlearners import get_unlearner, resolve_params
from unlearn_core.unlearners.base import UnlearnContext, UnlearnResult

# How the original and the retrained models are trained.
RECIPE = TrainConfig(lr=3e-3, epochs=25, batch_size=128, weight_decay=5e-4, norm_bound=None)
# What the unlearners see as ``ctx.train_config`` (they read its weight decay, 5e-4 as in RECIPE, and C = 20).
CONTEXT_RECIPE = TrainConfig(epochs=30, batch_size=64)


def make_mlp(seed: int) -> nn.Module:
    return build_model("mlp", input_shape=(1, 8, 8), num_classes=10, seed=seed)


@functools.lru_cache(maxsize=1)
def digits_problem(seed: int = 0) -> dict:
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=gen)
    n_train = 1400
    tr, te = perm[:n_train], perm[n_train:]
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    forget_idx = torch.sort(torch.randperm(n_train, generator=gen)[:140]).values
    mask = torch.ones(n_train, dtype=torch.bool)
    mask[forget_idx] = False
    retain_idx = torch.arange(n_train)[mask]
    x_train, y_train = x[tr], y[tr]
    recipe = dataclasses.replace(RECIPE, seed=seed)
    original, retrained = make_mlp(seed), make_mlp(seed)
    train(original, x_train, y_train, recipe)
    train(retrained, x_train[retain_idx], y_train[retain_idx], recipe)
    return {
        "x_train": x_train, "y_train": y_train, "x_test": x[te], "y_test": y[te],
        "forget_idx": forget_idx, "retain_idx": retain_idx, "original": original.eval(), "retrained": retrained.eval(),
    }


def digits_context(seed: int = 0, *, reproducible: bool = True) -> UnlearnContext:
    """The digits-MLP problem as an unlearning context. ``reproducible`` (the tests' default): seeded release noise, so
    that runs can be compared — a simulation; ``False``: the product's default, secure noise."""
    prob = digits_problem(seed)
    return UnlearnContext(
        model=prob["original"], x_train=prob["x_train"], y_train=prob["y_train"], x_test=prob["x_test"],
        y_test=prob["y_test"], forget_idx=prob["forget_idx"], retain_idx=prob["retain_idx"], num_classes=10,
        train_config=dataclasses.replace(CONTEXT_RECIPE, seed=seed),
        model_factory=lambda seed_offset=0: make_mlp(seed + seed_offset),
        device=torch.device("cpu"), seed=seed, retrained=prob["retrained"], reproducible=reproducible,
    )


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return evaluate(model, x, y)[1]


def run_unlearner(name: str, ctx: UnlearnContext, **overrides: object) -> UnlearnResult:
    """Call a registered unlearner directly with its schema defaults, overridden by ``overrides``."""
    unlearner = get_unlearner(name)
    return unlearner.unlearn(ctx, **resolve_params(unlearner.schema, dict(overrides), method=name))
