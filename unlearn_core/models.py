"""Model registry: logistic regression, MLP, a small CNN, AllCNN and ResNet-18.

Input size comes from the dataset (``input_shape`` = C×H×W), so every model runs on 8×8 digits, 28×28 MNIST
and 32×32 colour images alike.

**Normalisation and the certificates.** The certified methods treat the network output as a function of its
trainable parameters alone. BatchNorm breaks this twice: in training mode the output depends on the rest of the
batch, and its running statistics are buffers that neither the Newton step nor noisy fine-tuning updates, so
they keep a trace of the forgotten data outside any bound. Every convolutional model therefore offers
``norm="none"`` and ``norm="group"`` (GroupNorm: per-example, parameters only); ``norm="batch"`` exists for
comparison with the papers' code and is labelled as outside the certificate. All curvature work runs in eval
mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unlearn_core import limits
from unlearn_core.errors import ConfigError, abbreviate

NORMS = ("none", "group", "batch")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    default_norm: str
    convex: bool


MODELS: dict[str, ModelInfo] = {
    "logreg": ModelInfo("logreg", "multinomial logistic regression (convex with weight decay)", "none", True),
    "mlp": ModelInfo("mlp", "MLP with ReLU, default hidden widths 32-32 (Zhang et al.: 784-32-32-10)", "none", False),
    "cnn": ModelInfo("cnn", "small CNN: two 3×3 conv blocks (16, 32 channels), pooling, linear head", "none", False),
    "allcnn": ModelInfo(
        "allcnn", "All-CNN (Springenberg et al.) with 96/192 channels (width scalable)", "group", False
    ),
    "resnet18": ModelInfo(
        "resnet18", "torchvision ResNet-18, 3×3 stem without max-pool for small images", "group", False
    ),
}


def model_names() -> list[str]:
    return list(MODELS)


def get_model_info(name: str) -> ModelInfo:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {abbreviate(name)}: choose one of {', '.join(MODELS)}") from None


def _norm_layer(norm: str) -> Callable[[int], nn.Module]:
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "group":
        return lambda channels: nn.GroupNorm(num_groups=_num_groups(channels), num_channels=channels)
    return lambda channels: nn.Identity()


def _num_groups(channels: int) -> int:
    """32 groups where the width allows (Wu & He 2018); otherwise the largest divisor ≤ channels/2."""
    for groups in range(min(32, max(channels // 2, 1)), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def has_batchnorm(model: nn.Module) -> bool:
    """True when the model has BatchNorm buffers (outside every certificate, see the module docstring)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class MLP(nn.Sequential):
    """Flatten → [Linear → ReLU] × len(hidden) → Linear."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class SmallCNN(nn.Sequential):
    """Conv3×3(16) → norm → ReLU → MaxPool2 → Conv3×3(32) → norm → ReLU → AdaptiveAvgPool(2) → Linear."""

    def __init__(self, in_channels: int, num_classes: int, norm: str, width: int = 16) -> None:
        make_norm = _norm_layer(norm)
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1),
            make_norm(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            make_norm(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * 4, num_classes),
        )


class AllCNN(nn.Sequential):
    """All-CNN-C (Springenberg et al. 2015): only convolutions, strided convs instead of pooling.

    Channels 96/192 as in the reference code; ``width`` scales them for CPU use. Dropout is off (as in the
    reference code's default) because the curvature and the certificates need a deterministic output.
    """

    def __init__(self, in_channels: int, num_classes: int, norm: str, width: int = 96) -> None:
        make_norm = _norm_layer(norm)
        c1, c2 = width, 2 * width

        def block(cin: int, cout: int, kernel: int, stride: int, padding: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding), make_norm(cout), nn.ReLU()]

        super().__init__(
            *block(in_channels, c1, 3, 1, 1),
            *block(c1, c1, 3, 1, 1),
            *block(c1, c1, 3, 2, 1),
            *block(c1, c2, 3, 1, 1),
            *block(c2, c2, 3, 1, 1),
            *block(c2, c2, 3, 2, 1),
            *block(c2, c2, 3, 1, 1),
            *block(c2, c2, 1, 1, 0),
            nn.Conv2d(c2, num_classes, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )


def _resnet18(in_channels: int, num_classes: int, norm: str) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes, norm_layer=_norm_layer(norm))
    # Small images (8-32 px): a 3×3 stride-1 stem and no max-pool, as is standard for CIFAR-size ResNets.
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


#: Limits on MLP hidden widths typed by a user (URL, widget, CLI), kept with every other limit in
#: :mod:`unlearn_core.limits`.
MAX_HIDDEN_LAYERS = limits.MAX_HIDDEN_LAYERS
MAX_HIDDEN_WIDTH = limits.MAX_HIDDEN_WIDTH


def parse_hidden(text: str) -> tuple[int, ...]:
    """MLP hidden widths from text such as ``32-32`` or ``32,32`` (the URL, the dashboard and the CLI share it).

    Raises:
        ConfigError: not 1–8 integers in [1, 4096] (the message names the value and what is allowed).
    """
    try:
        values = tuple(int(v) for v in str(text).replace(",", "-").split("-") if v.strip())
    except ValueError:
        values = ()
    if not values or len(values) > MAX_HIDDEN_LAYERS or any(not 1 <= v <= MAX_HIDDEN_WIDTH for v in values):
        raise ConfigError(f"hidden={abbreviate(text)} is not valid: expected 1-{MAX_HIDDEN_LAYERS} widths in "
                          f"[1, {MAX_HIDDEN_WIDTH}] joined by '-' or ',', e.g. 32-32")
    return values


def build_model(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    seed: int = 0,
    hidden: tuple[int, ...] = (32, 32),
    norm: str = "auto",
    width: int | None = None,
) -> nn.Module:
    """A freshly initialised model, seeded: the same (name, shape, options, seed) give the same weights.

    The seed is applied inside a forked RNG so that building a model never disturbs the caller's random state.

    Args:
        name: a key of :data:`MODELS`.
        input_shape: C×H×W of one example.
        num_classes: output width.
        seed: initialisation seed (the original model and its retrained oracle share it).
        hidden: MLP hidden widths.
        norm: ``none``, ``group`` or ``batch`` for convolutional models; ``auto`` takes the model's default.
        width: channel width of ``cnn`` (default 16) or ``allcnn`` (default 96).
    """
    info = get_model_info(name)
    if norm == "auto":
        norm = info.default_norm
    if norm not in NORMS:
        raise ConfigError(f"norm {abbreviate(norm)} is not valid: choose one of auto, {', '.join(NORMS)}")
    if any(h < 1 for h in hidden) or not hidden:
        raise ConfigError(f"hidden widths {hidden!r} are not valid: expected positive integers such as 32,32")
    if width is not None and width < 1:
        raise ConfigError(f"width {width} is not valid: expected a positive integer")
    channels, height, wide = input_shape
    in_features = channels * height * wide
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if name == "logreg":
            model: nn.Module = nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))
        elif name == "mlp":
            model = MLP(in_features, tuple(hidden), num_classes)
        elif name == "cnn":
            model = SmallCNN(channels, num_classes, norm, width or 16)
        elif name == "allcnn":
            model = AllCNN(channels, num_classes, norm, width or 96)
        else:
            model = _resnet18(channels, num_classes, norm)
    return model


#: Largest model (parameters) and example (values) that :func:`model_shape` runs on the CPU rather than ``meta``.
CPU_SHAPE_PARAMS = 2_000_000
CPU_SHAPE_INPUT = 100_000


def model_shape(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    hidden: tuple[int, ...] = (32, 32),
    norm: str = "auto",
    width: int | None = None,
) -> limits.ModelShape:
    """Parameters, activations and forward FLOPs of a model, from a forward pass of one example.

    Why the meta device: it runs the real model code (so every registered model and option is counted the way it
    is built) but allocates nothing, so ``width=100000`` is measured in milliseconds instead of attempted. Its
    first forward, though, imports torch's decompositions and sympy (≈ 1.9 s of a command's start-up on a 2-core
    machine), so a model that is small by construction — at most :data:`CPU_SHAPE_PARAMS` parameters (counted on
    the meta device, which needs no forward) and one example of at most :data:`CPU_SHAPE_INPUT` values — is built
    and run on the CPU instead (a few megabytes): the hooks count the same outputs either way (tested).
    """
    kwargs = {"input_shape": input_shape, "num_classes": num_classes, "hidden": hidden, "norm": norm, "width": width}
    with torch.device("meta"):
        model = build_model(name, **kwargs)
    device = "meta"
    if sum(p.numel() for p in model.parameters()) <= CPU_SHAPE_PARAMS and math.prod(input_shape) <= CPU_SHAPE_INPUT:
        with torch.random.fork_rng(devices=[]):  # building initialises weights: the caller's random stream is kept
            model = build_model(name, **kwargs)
        device = "cpu"
    counts = {"activations": 0, "peak": 0, "flops": 0}

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        n = output.numel()
        counts["activations"] += n
        counts["peak"] = max(counts["peak"], n)
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            counts["flops"] += 2 * n * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            counts["flops"] += 2 * n * module.in_features
        else:
            counts["flops"] += n  # norms, activations, pooling: about one operation per output

    handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    model.eval()
    with torch.no_grad():
        model(torch.zeros((1, *input_shape), device=device))
    for handle in handles:
        handle.remove()
    return limits.ModelShape(
        num_params=sum(p.numel() for p in model.parameters()),
        activations=counts["activations"],
        peak_activation=counts["peak"],
        flops=counts["flops"],
        input_numel=math.prod(input_shape),
    )
