"""Models build for every dataset shape; training is seeded, norm-constrained and reaches known accuracy."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from unlearn_core.data import load_dataset
from unlearn_core.errors import ConfigError
from unlearn_core.evaluation import evaluate, param_distance
from unlearn_core.functional import get_flat_params, num_params
from unlearn_core.models import MODELS, build_model, has_batchnorm, parse_hidden
from unlearn_core.progress import Cancelled
from unlearn_core.training import TrainConfig, global_norm, project_to_ball, train


def test_zhang_mlp_has_26506_parameters() -> None:
    model = build_model("mlp", input_shape=(1, 28, 28), num_classes=10)
    assert num_params(model) == 26_506  # methods.md §2.3 / §8


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_every_model_runs_on_every_input_shape(name: str, shape: tuple[int, int, int]) -> None:
    if name == "resnet18" and shape != (1, 8, 8):
        pytest.skip("ResNet-18 forward on large inputs is slow on CPU; one shape suffices")
    model = build_model(name, input_shape=shape, num_classes=7, width=8 if name in ("cnn", "allcnn") else None)
    out = model.eval()(torch.randn(2, *shape))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("text", ["", "-", "a", "0", "32-5000", "-".join(["4"] * 9), "32.5"])
def test_parse_hidden_refuses_with_the_value_and_the_rule(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^hidden=.* is not valid: expected 1-8 widths in \[1, 4096\]"):
        parse_hidden(text)


def test_parse_hidden_reads_dashes_and_commas() -> None:
    assert parse_hidden("32-32") == parse_hidden("32,32") == parse_hidden(" 32 , 32 ") == (32, 32)
    assert parse_hidden("4096") == parse_hidden("4096-") == (4096,)  # a trailing separator is forgiven
    assert len(parse_hidden("-".join(["4"] * 8))) == 8


def test_norm_variants() -> None:
    group = build_model("resnet18", input_shape=(1, 8, 8), num_classes=10, norm="group")
    batch = build_model("resnet18", input_shape=(1, 8, 8), num_classes=10, norm="batch")
    plain = build_model("cnn", input_shape=(1, 8, 8), num_classes=10, norm="none")
    assert not has_batchnorm(group) and has_batchnorm(batch) and not has_batchnorm(plain)
    assert any(isinstance(m, nn.GroupNorm) for m in group.modules())
    with pytest.raises(ConfigError, match="norm 'layer' is not valid"):
        build_model("cnn", input_shape=(1, 8, 8), num_classes=10, norm="layer")


def test_initialisation_is_seeded_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, seed=5)
    after = torch.rand(1)
    b = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, seed=5)
    c = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, seed=6)
    assert torch.equal(before, after)
    assert param_distance(a, b) == 0.0 and param_distance(a, c) > 0


def test_projection_is_the_global_rescaling() -> None:
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10)
    w = get_flat_params(model)
    assert project_to_ball(model, 0.5)
    assert torch.allclose(get_flat_params(model), w * (0.5 / w.norm()), atol=1e-7)
    assert not project_to_ball(model, 10.0)


def test_norm_constrained_training_stays_in_the_ball() -> None:
    data = load_dataset("digits")
    model = build_model("mlp", input_shape=data.input_shape, num_classes=10)
    config = TrainConfig(epochs=5, lr=1e-2, norm_bound=3.0)
    train(model, data.x_train, data.y_train, config)
    assert global_norm(model) <= 3.0 + 1e-5
    unconstrained = build_model("mlp", input_shape=data.input_shape, num_classes=10)
    train(unconstrained, data.x_train, data.y_train, TrainConfig(epochs=5, lr=1e-2, norm_bound=None))
    assert global_norm(unconstrained) > 3.0  # the constraint was active, not vacuous


def test_digits_mlp_reaches_90_percent_and_is_deterministic() -> None:
    data = load_dataset("digits")
    models = []
    for _ in range(2):
        model = build_model("mlp", input_shape=data.input_shape, num_classes=10, seed=0)
        summary = train(model, data.x_train, data.y_train, TrainConfig(seed=0))
        models.append(model)
    _, acc = evaluate(models[0], data.x_test, data.y_test)
    assert acc >= 0.90
    assert param_distance(models[0], models[1]) == 0.0  # bit-for-bit on CPU
    assert summary["steps"] == 20 * 12


def test_progress_and_cancellation() -> None:
    data = load_dataset("synthetic")
    model = build_model("logreg", input_shape=data.input_shape, num_classes=4)
    records: list[dict] = []
    train(model, data.x_train, data.y_train, TrainConfig(epochs=2, batch_size=100), progress=records.append)
    assert records and records[-1]["epoch"] == 2 and records[-1]["step"] == 16
    assert {"stage", "epoch", "step", "loss", "acc", "eta_s"} <= set(records[-1])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        train(model, data.x_train, data.y_train, TrainConfig(epochs=2), cancel=cancel)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"epochs": -1}, "epochs=-1"), ({"lr": 0.0}, "lr=0.0"), ({"batch_size": 0}, "batch_size=0"),
     ({"optimizer": "rmsprop"}, "optimizer 'rmsprop'"), ({"norm_bound": -2.0}, "norm_bound=-2.0")],
)
def test_bad_recipes(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig(**kwargs).validate()
