"""The pipeline: shared preparation, cached models reused, the oracle is what retraining gives, honest timings."""

from __future__ import annotations

import pytest
import torch

from unlearn_core.errors import ConfigError
from unlearn_core.evaluation import param_distance
from unlearn_core.pipeline import RunConfig, prepare, run, run_method, validate_config
from unlearn_core.training import TrainConfig

FAST = TrainConfig(epochs=5)


def test_prepare_then_several_methods_share_models(tmp_path) -> None:
    config = RunConfig(dataset="digits", forget="class:3", train=FAST, cache_dir=str(tmp_path))
    prepared = prepare(config)
    assert not prepared.cached["original"] and not prepared.cached["retrained"]
    before = [p.detach().clone() for p in prepared.original.parameters()]
    a = run_method(prepared, "retrain", {"seed_offset": 0})
    b = run_method(prepared, "retrain", {"seed_offset": 1})
    # The cached original was never mutated by the unlearners.
    assert all(torch.equal(x, y) for x, y in zip(before, prepared.original.parameters(), strict=True))
    assert a.card["distance"]["unlearned_to_retrained"] == 0.0
    assert b.card["distance"]["unlearned_to_retrained"] > 0.0  # an independent retrain: the noise floor
    # Forgetting a whole class: the retrained model has (almost) never seen a 3.
    assert a.card["models"]["retrained"]["acc_forget"] < 0.2 < a.card["models"]["original"]["acc_forget"]
    again = prepare(config)
    assert again.cached == {"original": True, "retrained": True}
    assert param_distance(again.original, prepared.original) == 0.0


def test_batchnorm_model_carries_a_warning(tmp_path) -> None:
    config = RunConfig(dataset="synthetic", model="cnn", norm="batch", width=4, train=TrainConfig(epochs=1),
                       cache_dir=str(tmp_path), compute_retrained=False)
    card = run(config).card
    assert any("BatchNorm" in w for w in card["warnings"])
    assert card["distance"]["unlearned_to_retrained"] is None and "retrained" not in card["models"]


def test_validation_happens_before_any_training(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        validate_config(RunConfig(method="retrain", params={"lam": 1}))
    with pytest.raises(ConfigError, match="seed=-1"):
        run(RunConfig(seed=-1, cache_dir=str(tmp_path)))
    assert not (tmp_path / "models").exists()
