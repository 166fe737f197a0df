"""Release noise nobody can subtract (issue 19, finding 4): secure by default, reproducible only as a labelled
simulation, through the product (``pipeline.run``, the CLI, the run card)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from unlearn_core.certificate import Certificate
from unlearn_core.functional import get_flat_params
from unlearn_core.pipeline import RunConfig, run
from unlearn_core.privacy.noise import SIMULATION_LABEL, NoiseSource, release_record
from unlearn_core.settings import run_settings
from unlearn_core.training import TrainConfig, project_to_ball

#: output perturbation without fine-tuning: the release is exactly Π_C0(w*) + ξ, so ξ can be read off it.
PARAMS = {"C0": 0.5, "finetune_epochs": 0}


def _config(tmp_path, **kw) -> RunConfig:
    return RunConfig(dataset="digits", model="mlp", hidden=(8,), forget="random:0.05", method="output_perturbation",
                     params=PARAMS, train=TrainConfig(epochs=2), cache_dir=str(tmp_path), **kw)


def _noise(result) -> torch.Tensor:
    """ξ = release − Π_C0(w*) (the release has no fine-tuning)."""
    clean = copy.deepcopy(result.prepared.original)
    project_to_ball(clean, PARAMS["C0"])
    return get_flat_params(result.unlearned) - get_flat_params(clean)


def test_secure_release_noise_differs_between_runs_and_cannot_be_regenerated_from_the_card(tmp_path) -> None:
    a, b = run(_config(tmp_path)), run(_config(tmp_path))
    noise_a, noise_b = _noise(a), _noise(b)
    sigma = a.card["certificate"]["sigma_used"]
    assert not torch.equal(noise_a, noise_b), "two releases of the same configuration and seed must differ"
    # The noise is N(0, σ²I): right size, and unrelated between the two runs.
    p = noise_a.numel()
    assert float(noise_a.norm()) == pytest.approx(sigma * math.sqrt(p), rel=0.2)
    assert abs(float(torch.dot(noise_a, noise_b)) / (sigma * sigma * p)) < 5 / math.sqrt(p)
    # Everything the card records is no key: regenerating "the" noise from its seed the way the earlier versions did
    # (a torch.Generator seeded from seed·1000003 + 7919 + offset) recovers nothing.
    card = a.card
    assert card["release"] == release_record(reproducible=False) and card["release"]["simulation"] is False
    assert card["certificate"]["simulation"] is False and SIMULATION_LABEL not in card["certificate"]["headline"]
    seed = card["config"]["seed"]
    for offset in [*range(16), 1000, 1001]:  # the streams the earlier versions drew release noise from
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + 7919 + offset)
        guess = torch.cat([torch.randn(t.shape, generator=gen).reshape(-1) for t in a.unlearned.parameters()]) * sigma
        assert float((noise_a - guess).norm()) > 0.5 * float(noise_a.norm())
    assert set(card["release"]) == {"noise", "simulation", "label", "why"}  # the mode is recorded, never a state
    assert "os.urandom" in card["release"]["why"]


def test_reproducible_mode_repeats_exactly_and_says_simulation_everywhere(tmp_path) -> None:
    a, b = run(_config(tmp_path, reproducible=True)), run(_config(tmp_path, reproducible=True))
    assert torch.equal(get_flat_params(a.unlearned), get_flat_params(b.unlearned))
    card = a.card
    assert card["config"]["reproducible"] is True and card["release"]["simulation"] is True
    assert card["release"]["label"] == SIMULATION_LABEL == "simulation — not a release"
    cert = Certificate.from_dict(card["certificate"])
    assert cert.simulation and cert.headline().startswith(SIMULATION_LABEL)
    # ... and the noise is exactly the seeded stream: a simulation anyone with the card can repeat.
    gen = torch.Generator().manual_seed(int(card["config"]["seed"]) * 1_000_003 + 7919 + 1)
    sigma = card["certificate"]["sigma_used"]
    expected = torch.cat([torch.randn(t.shape, generator=gen).reshape(-1) for t in a.unlearned.parameters()]) * sigma
    assert torch.allclose(_noise(a), expected, atol=1e-6)


def test_reproducible_is_one_setting_for_cli_url_and_widget() -> None:
    (setting,) = [s for s in run_settings() if s.name == "reproducible"]
    assert (setting.cli, setting.url, setting.widget, setting.default) == ("--reproducible", "reproducible",
                                                                            "checkbox", False)


def test_cli_reproducible_flag_labels_the_summary(tmp_path) -> None:
    env_python = sys.executable
    out = subprocess.run(
        [env_python, "-m", "unlearn_core", "run", "--dataset", "digits", "--model", "mlp", "--hidden", "8",
         "--epochs", "2", "--forget", "random:0.05", "--method", "output_perturbation", "--set", "finetune_epochs=0",
         "--reproducible", "--quiet", "--cache-dir", str(tmp_path), "--json", str(tmp_path / "card.json")],
        capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert f"certificate: {SIMULATION_LABEL}" in out.stdout
    assert json.loads((tmp_path / "card.json").read_text())["release"]["simulation"] is True


def test_secure_gaussian_is_standard_normal() -> None:
    """The secure source's draws (Box–Muller on os.urandom) are N(0, 1): Kolmogorov–Smirnov, moments, no repeats."""
    z = NoiseSource.secure().gaussian(200_000, sigma=1.0, dtype=torch.float64).numpy()
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.01 and abs(stats.kurtosis(z)) < 0.1
    assert not np.array_equal(z[:1000], NoiseSource.secure().gaussian(1000, sigma=1.0, dtype=torch.float64).numpy())
    assert repr(NoiseSource.secure()) == "NoiseSource(secure)"


def _noised_methods() -> list[str]:
    from unlearn_core.unlearners import get_unlearner, methods_with

    return [m for m in methods_with("certificate") if get_unlearner(m).noise_param is not None
            or get_unlearner(m).epsilon_param is not None]


@pytest.mark.parametrize("method", _noised_methods())
def test_every_certified_method_releases_secure_noise_and_repeats_only_as_a_simulation(method, tmp_path) -> None:
    """Registry-wide (no hand-kept list): every certified method's release differs between two runs of one
    configuration and seed, unless the run is reproducible — then the two are equal and labelled a simulation."""
    from unlearn_core.unlearners import get_unlearner

    unlearner = get_unlearner(method)
    model = (unlearner.certified_models or ("logreg",))[0]
    base = RunConfig(dataset="digits", model=model, hidden=(8,), forget="random:0.05", method=method,
                     params=dict(unlearner.demo_params or {}), train=TrainConfig(epochs=2), cache_dir=str(tmp_path))
    a, b = run(base), run(base)
    if float(a.card["certificate"].get("sigma_used") or 0) > 0:
        assert not torch.equal(get_flat_params(a.unlearned), get_flat_params(b.unlearned)), method
    assert a.card["release"]["simulation"] is False and not a.card["certificate"]["simulation"]
    sim = dataclasses.replace(base, reproducible=True)
    c, d = run(sim), run(sim)
    assert torch.equal(get_flat_params(c.unlearned), get_flat_params(d.unlearned)), method
    assert c.card["certificate"]["simulation"] is True and c.card["release"]["label"] == SIMULATION_LABEL
