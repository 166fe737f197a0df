"""A small, self-contained digits-MLP unlearning problem for the unlearner tests (built by hand, no cache).

sklearn's bundled 8×8 digits (no download) as N×1×8×8 tensors normalised with the training mean/std; a
64-32-32-10 MLP trained with Adam for a few seconds; 10 % of the training points forgotten at random. Built once
per process (``lru_cache``) and shared read-only: every unlearner copies ``ctx.model`` before touching it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from torch import nn

from unlearn_core.unlearners import get_unlearner, resolve_params
from unlearn_core.unlearners.base import UnlearnContext, UnlearnResult


@dataclass(frozen=True)
class SmallTrainConfig:
    """Stands in for training.TrainConfig (only the fields the unlearners read)."""

    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 30
    batch_size: int = 64
    weight_decay: float = 5e-4
    momentum: float = 0.9
    norm_bound: float | None = 20.0
    seed: int = 0


def make_mlp(seed: int, hidden: int = 32) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    )


def train_adam(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=5e-4)
    n = x.shape[0]
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, 128):
            idx = order[start : start + 128]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@functools.lru_cache(maxsize=2)
def digits_problem(seed: int = 0, epochs: int = 25) -> dict:
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
    original = train_adam(make_mlp(seed), x_train, y_train, epochs=epochs, seed=seed)
    retrained = train_adam(make_mlp(seed), x_train[retain_idx], y_train[retain_idx], epochs=epochs, seed=seed)
    return {
        "x_train": x_train, "y_train": y_train, "x_test": x[te], "y_test": y[te],
        "forget_idx": forget_idx, "retain_idx": retain_idx, "original": original, "retrained": retrained,
    }


def digits_context(seed: int = 0) -> UnlearnContext:
    prob = digits_problem(seed)
    return UnlearnContext(
        model=prob["original"], x_train=prob["x_train"], y_train=prob["y_train"], x_test=prob["x_test"],
        y_test=prob["y_test"], forget_idx=prob["forget_idx"], retain_idx=prob["retain_idx"], num_classes=10,
        train_config=SmallTrainConfig(seed=seed), model_factory=lambda seed_offset=0: make_mlp(seed + seed_offset),
        device=torch.device("cpu"), seed=seed, retrained=prob["retrained"],
    )


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == y).float().mean())


def run_unlearner(name: str, ctx: UnlearnContext, **overrides: object) -> UnlearnResult:
    """Call a registered unlearner directly with its schema defaults, overridden by ``overrides``."""
    unlearner = get_unlearner(name)
    return unlearner.unlearn(ctx, **resolve_params(unlearner.schema, dict(overrides), method=name))
