"""The run configuration, :class:`RunConfig`: everything that determines a run, each field declared once.

Its own module, below the pipeline and the pre-flight checks that both read it (so that neither imports the other
for it); :mod:`unlearn_core.pipeline` re-exports it, so ``from unlearn_core.pipeline import RunConfig`` keeps
working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from unlearn_core import limits
from unlearn_core.config import CLI_GROUPS, setting
from unlearn_core.data import DATASETS
from unlearn_core.device import DEVICE_CHOICES
from unlearn_core.forget import parse_forget_spec
from unlearn_core.models import MODELS, NORMS, parse_hidden
from unlearn_core.training import TrainConfig


def _download_default() -> bool:
    """Downloading is allowed by default on the command line; ``UNLEARN_DOWNLOAD=0`` turns it off (CI, offline)."""
    return os.environ.get("UNLEARN_DOWNLOAD", "1").strip().lower() not in ("0", "false", "no", "off")


def _forget_text(text: str) -> str:
    parse_forget_spec(text)  # one-line ConfigError naming the spec and the grammar
    return text


def _conv_model(values: Mapping[str, Any]) -> bool:
    return values.get("model") not in ("logreg", "mlp")


_DATA, _SEEDS, _UNLEARN = CLI_GROUPS[0], CLI_GROUPS[2], CLI_GROUPS[3]


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run. ``seed`` drives the model initialisation, the training shuffle and the
    unlearner's own randomness (and, with ``reproducible``, its release noise); ``forget_seed`` the forget-set draw;
    ``split_seed`` the digits split.

    Every field is declared once with its CLI flag, URL key, widget and range (:mod:`unlearn_core.config`); the
    training recipe's fields are :class:`~unlearn_core.training.TrainConfig`'s.
    """

    dataset: str = setting(
        "digits", type=str, level="basic", choices=lambda: list(DATASETS), cli="--dataset", url="dataset",
        widget="select", label="Dataset", column=0, help="dataset name (see 'datasets'); default: digits",
        widget_help=lambda: "\n\n".join(f"**{k}**: {v.description}" for k, v in DATASETS.items()))
    model: str = setting(
        "mlp", type=str, level="basic", choices=lambda: list(MODELS), cli="--model", url="model", widget="select",
        label="Model", column=1, help="model name: logreg, mlp, cnn, allcnn, resnet18; default: mlp",
        widget_help=lambda: "\n\n".join(f"**{k}**: {v.description}" for k, v in MODELS.items()))
    forget: str = setting(
        "random:0.1", type=str, level="basic", parse=_forget_text, cli="--forget", url="forget", widget="custom",
        label="Forget set", column=2, widget_help="Which training points are to be forgotten.",
        help="forget set, e.g. random:0.1, random:1000, class:3, class:3,5, class-fraction:3:0.5, indices:1,5,9, "
             "subclass:3:0 (a k-means cluster of class 3), memorised:high:0.05 (by a memorisation proxy)")
    method: str = setting(
        "retrain", type=str, level="basic", cli="--method", cli_group=_UNLEARN, url="method", widget="custom",
        label="Unlearning method", column=4, help="unlearner name (see 'methods')")
    params: dict[str, Any] = setting(  # noqa: RUF009 (a dataclasses.field, like the others)
        default_factory=dict, type=dict, level="basic", cli_group=_UNLEARN, widget="custom",
        help="the method's hyperparameters: --set NAME=VALUE on the command line, p.NAME=VALUE in the URL; names "
             "from 'methods --json'")
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = setting(
        0, type=int, low=0, high=limits.MAX_SEED, cli="--seed", cli_group=_SEEDS, url="seed", widget="number",
        label="Seed", row=0, column=3, step=1, help="initialisation, shuffling and unlearner seed (default 0)",
        widget_help="Initialisation, shuffling and the unlearner's own randomness.")
    forget_seed: int = setting(
        0, type=int, low=0, high=limits.MAX_SEED, cli="--forget-seed", cli_group=_SEEDS, url="forget_seed",
        widget="number", label="Forget-set seed", row=0, column=2, step=1,
        help="seed of the forget-set draw (default 0)")
    split_seed: int = setting(
        0, type=int, low=0, high=limits.MAX_SEED, cli="--split-seed", cli_group=_SEEDS, url="split_seed",
        widget="number", label="Split seed (digits)", row=0, column=2, step=1,
        help="seed of the digits train/test split (default 0)",
        widget_help="The digits dataset has no fixed test set: this seed draws its train/test split. The other "
                    "datasets ignore it.")
    reproducible: bool = setting(
        False, type=bool, cli="--reproducible", cli_group=_SEEDS, url="reproducible", widget="checkbox",
        label="Reproducible noise (simulation)", row=0, column=1,
        help="draw the release noise from a generator seeded from --seed, so the run repeats exactly: a simulation, "
             "not a release (anyone with the run card can subtract the noise); default: off, the noise comes from "
             "the operating system's secure generator and is never recorded",
        widget_help="Off (default): the release noise comes from the operating system's secure generator and is "
                    "never recorded — a real release. On: it is drawn from the seed, so the run repeats exactly, "
                    "and it is labelled *simulation — not a release*: anyone with the run card can subtract it.")
    hidden: tuple[int, ...] = setting(
        (32, 32), type=tuple, parse=parse_hidden, cli="--hidden", url="hidden", widget="text", label="Hidden widths",
        row=0, column=0, help="MLP hidden widths, e.g. 32,32", widget_help="MLP hidden layer widths, e.g. 32-32",
        visible=lambda values: values.get("model") == "mlp")
    norm: str = setting(
        "auto", type=str, choices=("auto", *NORMS), cli="--norm", url="norm", widget="select",
        label="Normalisation", row=0, column=0, help="normalisation of conv models: auto, none, group, batch",
        widget_help="Of the convolutional models. auto: the model's own default; batch (BatchNorm) is outside every "
                    "certificate (its running statistics keep a trace of the forgotten data).",
        visible=_conv_model)
    width: int | None = setting(
        None, type=int, optional=True, low=1, high=limits.MAX_CONV_WIDTH, cli="--width", url="width",
        widget="number", label="Channel width", row=0, column=0, step=1, toggle="Set the channel width",
        toggle_key="use_width", placeholder=16, help="channel width of cnn/allcnn",
        toggle_help="Off: the model's own width (cnn 16, allcnn 96).",
        visible=lambda values: values.get("model") in ("cnn", "allcnn"))
    device: str = setting(
        "auto", type=str, choices=DEVICE_CHOICES, cli="--device", cli_group=_SEEDS, url="device", widget="select",
        label="Device", row=1, column=0, help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    data_dir: str | None = setting(
        None, type=str, optional=True, cli="--data-dir",
        help="dataset root (default: $UNLEARN_DATA_DIR or the user cache)")
    download: bool = setting(
        False, type=bool, cli="--download", cli_default=_download_default,
        help="download missing dataset files (default on; UNLEARN_DOWNLOAD=0 turns it off)")
    cache_dir: str | None = setting(
        None, type=str, optional=True, cli="--cache-dir", cli_group=_SEEDS,
        help="model cache root (default: $UNLEARN_CACHE_DIR or user cache)")
    use_cache: bool = setting(
        True, type=bool, cli="--no-cache", cli_group=_SEEDS, help="train without reading or writing the model cache")
    compute_retrained: bool = True  # not a setting: the experiments and `train` turn the oracle off

    def model_options(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "norm": self.norm, "width": self.width}

    def to_json(self) -> dict[str, Any]:
        """The reproducible part of the configuration (paths and cache switches are not part of the result)."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "model_options": self.model_options(),
            "forget": self.forget,
            "method": self.method,
            "params": dict(self.params),
            "train": self.train.to_json(),
            "seed": self.seed,
            "forget_seed": self.forget_seed,
            "split_seed": self.split_seed,
            "reproducible": self.reproducible,
            "device": self.device,
        }
