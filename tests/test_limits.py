"""The limits and the memory/compute estimate against independent references (the real models, closed forms,
the loaded data)."""

from __future__ import annotations

import pytest
import torch

from unlearn_core import limits, preflight
from unlearn_core.data import DATASETS, load_dataset
from unlearn_core.errors import ConfigError
from unlearn_core.functional import num_params
from unlearn_core.models import MODELS, build_model, model_shape
from unlearn_core.pipeline import RunConfig
from unlearn_core.unlearners import get_unlearner, list_unlearners, resolve_params


@pytest.mark.parametrize("name", list(MODELS))
def test_meta_shape_counts_the_real_models_parameters(name) -> None:
    shape = (3, 16, 16) if name in ("allcnn", "resnet18") else (1, 8, 8)
    counted = model_shape(name, input_shape=shape, num_classes=10)
    assert counted.num_params == num_params(build_model(name, input_shape=shape, num_classes=10))
    assert counted.input_numel == shape[0] * shape[1] * shape[2]


@pytest.mark.parametrize("name", list(MODELS))
def test_a_model_counted_on_the_cpu_gives_the_meta_counts(name, monkeypatch) -> None:
    """Small models are counted by a CPU forward (no meta decompositions to import, ≈ 1.9 s of a command's start):
    the hooks see the same outputs, so every count equals the meta device's; the caller's random stream is kept."""
    from unlearn_core import models

    shape = (3, 16, 16) if name in ("allcnn", "resnet18") else (1, 8, 8)
    monkeypatch.setattr(models, "CPU_SHAPE_PARAMS", 10**9)  # every model on the CPU
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    on_cpu = model_shape(name, input_shape=shape, num_classes=10, norm="batch" if name != "mlp" else "auto")
    assert torch.equal(torch.random.get_rng_state(), before)
    monkeypatch.setattr(models, "CPU_SHAPE_PARAMS", 0)  # every model on meta
    on_meta = model_shape(name, input_shape=shape, num_classes=10, norm="batch" if name != "mlp" else "auto")
    assert on_cpu == on_meta and on_cpu.flops > 0


def test_mlp_flops_and_activations_are_the_closed_form() -> None:
    """784-32-32-10: 2·(784·32 + 32·32 + 32·10) multiply-add FLOPs plus one per ReLU output; outputs of every layer."""
    s = model_shape("mlp", input_shape=(1, 28, 28), num_classes=10, hidden=(32, 32))
    assert s.flops == 2 * (784 * 32 + 32 * 32 + 32 * 10) + 784 + 32 + 32  # Flatten and the two ReLUs count 1 each
    assert s.activations == 784 + 32 + 32 + 32 + 32 + 10 and s.peak_activation == 784


def test_width_grows_parameters_quadratically_without_allocating() -> None:
    small = model_shape("allcnn", input_shape=(3, 32, 32), num_classes=10, width=100)
    huge = model_shape("allcnn", input_shape=(3, 32, 32), num_classes=10, width=100_000)
    assert 0.9e6 < huge.num_params / small.num_params < 1.1e6  # (10³)², counted in milliseconds on 'meta'


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_registry_sizes_are_the_loaded_sizes(name) -> None:
    data = load_dataset(name)
    assert (DATASETS[name].n_train, DATASETS[name].n_test) == (data.n_train, int(data.y_test.numel()))


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_registry_sizes_are_the_loaded_sizes_mnist(name) -> None:
    data = load_dataset(name)
    assert (DATASETS[name].n_train, DATASETS[name].n_test) == (data.n_train, int(data.y_test.numel()))


def test_lissa_estimate_covers_the_index_tensor_lissa_draws() -> None:
    from unlearn_core.curvature import lissa_batch_indices

    shape = model_shape("mlp", input_shape=(1, 8, 8), num_classes=10)
    estimate = limits.estimate_lissa(shape, depth=50, reps=4, batch=8)
    drawn = lissa_batch_indices(1437, depth=50, reps=4, batch_size=8, seed=0)
    assert estimate.memory_bytes >= 2 * drawn.numel() * drawn.element_size()  # indices and their labels


@pytest.mark.parametrize("cls", list_unlearners(), ids=lambda c: c.name)
def test_every_method_default_fits_the_quick_demo_easily(cls) -> None:
    """No registered method's defaults come near the limit on digits (the estimate must not refuse real work)."""
    config = RunConfig(method=cls.name)
    params = resolve_params(cls.schema, {}, method=cls.name)
    estimate = preflight.estimate_run(config, get_unlearner(cls.name), params)
    assert estimate.memory_bytes < 2e9 and estimate.flops < 1e13, (estimate.memory, estimate.stages)


def test_paper_settings_are_accepted() -> None:
    """The presets' and the papers' settings pass the check on any machine with 8 GB."""
    for config in (RunConfig(dataset="mnist", method="certified_newton", train=RunConfig().train),
                   RunConfig(dataset="cifar10", model="resnet18", method="noisy_finetune"),
                   RunConfig(dataset="cifar10", model="allcnn", method="finetune")):
        unlearner = get_unlearner(config.method)
        params = resolve_params(unlearner.schema, {}, method=config.method)
        assert preflight.estimate_run(config, unlearner, params).memory_bytes < 0.8 * 8e9


def test_memory_limit_override_and_its_errors(monkeypatch) -> None:
    monkeypatch.setenv("UNLEARN_MEMORY_LIMIT_GB", "2.5")
    assert limits.memory_limit(torch.device("cpu")) == (2.5e9, "UNLEARN_MEMORY_LIMIT_GB")
    for bad in ("lots", "0", "-1", "nan"):
        monkeypatch.setenv("UNLEARN_MEMORY_LIMIT_GB", bad)
        with pytest.raises(ConfigError, match="UNLEARN_MEMORY_LIMIT_GB"):
            limits.memory_limit(torch.device("cpu"))
    monkeypatch.delenv("UNLEARN_MEMORY_LIMIT_GB")
    limit, how = limits.memory_limit(torch.device("cpu"))
    assert 0 < limit < float("inf") and how.startswith("80% of this machine's")


def test_format_bytes() -> None:
    assert [limits.format_bytes(n) for n in (7.2e11, 1.87e12, 2.02e10, 999, 1500)] == [
        "720 GB", "1.87 TB", "20.2 GB", "999 B", "1.5 kB"]


def test_thread_rule() -> None:
    """One thread for small steps or when another process holds a core; all cores only for big steps on an idle one."""
    from unlearn_core.device import PARALLEL_STEP_FLOPS, intra_op_threads

    assert intra_op_threads(step_flops=PARALLEL_STEP_FLOPS / 10, cores=8, load=0.0) == 1
    assert intra_op_threads(step_flops=PARALLEL_STEP_FLOPS * 10, cores=8, load=0.0) == 8
    assert intra_op_threads(step_flops=PARALLEL_STEP_FLOPS * 10, cores=2, load=1.2) == 1
    assert intra_op_threads(step_flops=PARALLEL_STEP_FLOPS * 10, cores=8, load=2.6) == 5
    assert intra_op_threads(step_flops=PARALLEL_STEP_FLOPS * 10, cores=2, load=40.0) == 1


def test_cli_gives_the_digits_mlp_one_thread(monkeypatch) -> None:
    from unlearn_core.cli.commands import set_threads

    previous = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        torch.set_num_threads(2)
        set_threads(RunConfig())  # digits MLP 32-32: 3·10⁶ FLOPs per step
        assert torch.get_num_threads() == 1
        assert preflight.threads_for(RunConfig(dataset="cifar10", model="resnet18"), cores=4) >= 1
    finally:
        torch.set_num_threads(previous)
