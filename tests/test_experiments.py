"""Experiments on a tiny configuration (synthetic blobs, a small MLP, a few epochs): facts, not snapshots.

The anchors: the ``retrain`` method reproduces the pipeline's oracle exactly on a CPU (so every retrain-relative
metric is 0 / equal for it); the Δ bound decreases with λ (Zhang et al. Fig. 4); untrained retraining sits at
chance; the audit's ε lower bound never exceeds the exact ε of the pair, and exceeds a certificate whose bound is
smaller than the actual distance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from unlearn_core import experiments as ex
from unlearn_core.certificate import epsilon_for_sigma
from unlearn_core.errors import ConfigError
from unlearn_core.pipeline import RunConfig
from unlearn_core.training import TrainConfig

BASE = RunConfig(dataset="synthetic", model="mlp", hidden=(8,), forget="random:40", train=TrainConfig(epochs=3),
                 device="cpu")
NEWTON = {"depth": 20, "reps": 2, "batch": 20}


def test_compare_rows_and_retrain_reference() -> None:
    df = ex.compare(BASE, ["retrain", "finetune"], params={"finetune": {"epochs": 1}}, seeds=[0, 1],
                    relearn_max_steps=20)
    assert len(df) == 2 * 4
    assert set(df["method"]) == {"original", "retrained", "retrain", "finetune"}
    for seed in (0, 1):
        rows = df[df.seed == seed].set_index("method")
        assert rows.loc["retrained", "dist_to_retrained"] == 0.0
        assert rows.loc["retrained", "kl_test"] == pytest.approx(0.0, abs=1e-12)
        # The retrain unlearner (seed_offset 0) reproduces the cached oracle exactly on a CPU.
        assert rows.loc["retrain", "dist_to_retrained"] == pytest.approx(0.0, abs=1e-6)
        for col in ("acc_forget", "acc_test", "mia_loss_auc", "mia_posterior_auc"):
            assert rows.loc["retrain", col] == pytest.approx(rows.loc["retrained", col], abs=1e-6)
        assert rows.loc["finetune", "dist_to_retrained"] > 0
        assert 0.0 <= rows.loc["finetune", "mia_loss_auc"] <= 1.0
        assert rows.loc["original", "relearn_steps"] == 0  # already at its own forget accuracy
    summary = ex.summarize(df, columns=["acc_test"])
    fin = df[df.method == "finetune"]["acc_test"].to_numpy()
    row = summary.set_index("method").loc["finetune"]
    assert row["acc_test_mean"] == pytest.approx(fin.mean())
    assert row["acc_test_ci95"] == pytest.approx(1.96 * fin.std(ddof=1) / math.sqrt(2))


def test_compare_validates_before_training() -> None:
    with pytest.raises(ConfigError, match="unknown method"):
        ex.compare(BASE, ["nope"])
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        ex.compare(BASE, ["finetune"], params={"finetune": {"bogus": 1}})
    with pytest.raises(ConfigError, match="seeds"):
        ex.compare(BASE, ["finetune"], seeds=[])


def test_summarize_against_numpy() -> None:
    df = pd.DataFrame({"method": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0], "x": [1.0, 2.0, 4.0, 3.0]})
    out = ex.summarize(df).set_index("method")
    x = np.array([1.0, 2.0, 4.0])
    assert out.loc["a", "x_mean"] == pytest.approx(x.mean())
    assert out.loc["a", "x_std"] == pytest.approx(x.std(ddof=1))
    assert out.loc["a", "x_n"] == 3
    assert out.loc["a", "x_ci95"] == pytest.approx(1.96 * x.std(ddof=1) / math.sqrt(3))
    assert "seed_mean" not in out.columns
    with pytest.raises(ConfigError, match="no column"):
        ex.summarize(df, by="nope")


def test_sequential_steps() -> None:
    df = ex.sequential(BASE, requests=4, params={**NEWTON, "sigma": 0.0}, seeds=[0], retrain_each_step=False)
    assert list(df["step"]) == [1, 2, 3, 4]
    assert list(df["n_forgotten"]) == [10, 20, 30, 40]
    assert (np.diff(df["n_retain"]) == -10).all()
    # The last step's actual error is measured against the pipeline's oracle (retrained on D \ D_u).
    assert df["approx_error"].iloc[-1] > 0 and df["approx_error"].iloc[:-1].isna().all()
    assert df["acc_test_retrained"].nunique() == 1
    with pytest.raises(ConfigError, match="requests"):
        ex.sequential(BASE, method="finetune")


def test_sensitivity_bound_decreases_with_lambda() -> None:
    values = [10.0, 100.0, 1000.0]
    df = ex.sensitivity(BASE, param="lam", values=values, params=NEWTON, seeds=[0])
    assert list(df["value"]) == values
    bounds = df["delta_bound"].to_numpy(dtype=float)
    assert np.isfinite(bounds).all() and (np.diff(bounds) < 0).all()
    assert (df["sigma_required"].to_numpy(dtype=float) > 0).all()
    # λ_min is measured at w* once per seed: the same for every λ; the noise-free accuracies sit beside it.
    assert df["lambda_min"].nunique() == 1 and "acc_test_noiseless" in df
    assert ((df["acc_test_noiseless"] >= 0) & (df["acc_test_noiseless"] <= 1)).all()
    with pytest.raises(ConfigError, match="numeric hyperparameter"):
        ex.sensitivity(BASE, param="solver", values=[1.0])


def test_budget_includes_budget_matched_retraining() -> None:
    df = ex.budget(BASE, methods=["finetune"], budgets=[0, 2], params={"finetune": {"lr": 0.05}}, seeds=[0])
    assert set(df["method"]) == {"finetune", "retrain"}
    retrain0 = df[(df.method == "retrain") & (df.budget_epochs == 0)].iloc[0]
    assert retrain0["acc_test"] < 0.5  # an untrained fresh initialisation on 4 classes: near chance
    ft0 = df[(df.method == "finetune") & (df.budget_epochs == 0)].iloc[0]
    assert ft0["dist_to_retrained"] > 0  # zero epochs of fine-tuning = the original model
    with pytest.raises(ConfigError, match="no epoch budget"):
        ex.budget(BASE, methods=["fisher"])


def test_gaussian_release_audit_bounds() -> None:
    torch.manual_seed(0)
    a = torch.randn(50)
    u = torch.randn(50)
    u = u / u.norm()
    delta = 1e-5
    # Identical endpoints: nothing to detect.
    same = ex.gaussian_release_audit(a, a.clone(), sigma=1.0, delta=delta, trials=1000, seed=1)
    assert same["epsilon_lower"] == 0.0
    # Distance 3σ: detectable, but never beyond the exact ε of the pair.
    mid = ex.gaussian_release_audit(a + 3.0 * u, a, sigma=1.0, delta=delta, trials=4000, seed=2)
    exact = epsilon_for_sigma(sigma=1.0, delta=delta, sensitivity=3.0)
    assert 0.5 < mid["epsilon_lower"] <= exact
    assert mid["epsilon_gaussian_at_actual"] == pytest.approx(exact)
    # A certificate claiming Δ = 1 when the actual distance is 10σ is refuted.
    far = ex.gaussian_release_audit(a + 10.0 * u, a, sigma=1.0, delta=delta, trials=1000, seed=3)
    assert far["epsilon_lower"] > epsilon_for_sigma(sigma=1.0, delta=delta, sensitivity=1.0)
    assert far["epsilon_lower"] == pytest.approx(far["epsilon_lower_cap"])


def test_audit_end_to_end() -> None:
    df = ex.audit(BASE, method="output_perturbation", params={"C0": 1.0}, sigmas=[None, 1e-3], trials=400)
    assert len(df) == 2
    certified = df[df.sigma_is_method_default].iloc[0]
    assert certified["actual_distance"] <= certified["bound"] + 1e-9  # both endpoints in the C0-ball
    assert certified["epsilon_lower"] <= certified["epsilon_certified"]
    assert not df["refuted"].any()
    newton = ex.audit(BASE, params={**NEWTON, "lam": 100.0}, sigmas=[None, 1e-4], trials=400)
    assert newton["epsilon_certified"].iloc[0] == pytest.approx(1.0, rel=1e-3)  # σ_required certifies ε
    assert newton["epsilon_lower"].iloc[0] < 0.5
    assert newton["epsilon_lower"].iloc[1] > 3.0  # σ = 1e-4 (the reference code's scale) is plainly audible
    with pytest.raises(ConfigError, match="cannot be audited"):
        ex.audit(BASE, method="finetune")


def test_cli_experiment_writes_csv_json_and_refuses_bad_input(tmp_path, capsys) -> None:
    import json

    from unlearn_core.cli import main

    common = ["--dataset", "synthetic", "--hidden", "8", "--epochs", "3", "--forget", "random:40", "--device", "cpu",
              "--out", str(tmp_path), "--quiet"]
    assert main(["experiment", "budget", "--methods", "finetune", "--budgets", "0,1", *common]) == 0
    rows = pd.read_csv(tmp_path / "budget.csv")
    assert len(rows) == 4 and set(rows["method"]) == {"finetune", "retrain"}
    payload = json.loads((tmp_path / "budget.json").read_text())
    assert payload["experiment"] == "budget" and len(payload["rows"]) == 4 and payload["summary"]
    capsys.readouterr()
    assert main(["experiment", "compare", "--methods", "nope", *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown method 'nope'") and "\n" not in err
    assert main(["experiment", "compare", "--methods", "finetune", "--set", "lr=1", *common]) == 2
    assert "METHOD.NAME=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "compare.csv").exists()


# -- the privacy–utility frontier (issue 12) -----------------------------------------------------------------------


def test_frontier_on_digits_through_the_cli(tmp_path, capsys) -> None:
    """``experiment frontier`` on digits: reference rows, one row per (method, ε), σ shrinking with ε by the
    mechanisms' closed forms, the marks consistent with the rows, and the figure drawn from the written CSV."""
    from unlearn_core import plots
    from unlearn_core.certificate import sigma_classical
    from unlearn_core.cli import main
    from unlearn_core.verdict import frontier_first_epsilon

    epsilons = [0.3, 1.0, 10.0]
    code = main(["experiment", "frontier", "--dataset", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "5",
                 "--forget", "random:0.1", "--methods", "noisy_finetune,output_perturbation",
                 "--epsilons", ",".join(map(str, epsilons)), "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    df = pd.read_csv(tmp_path / "frontier.csv")
    assert (tmp_path / "frontier.json").exists()
    assert list(df["method"].iloc[:2]) == ["original", "retrained"] and df["epsilon"].iloc[:2].isna().all()
    ref = df.set_index("method").loc["retrained"]
    assert ref["dist_to_retrained"] == 0.0
    for method in ("noisy_finetune", "output_perturbation"):
        rows = df[df["method"] == method].sort_values("epsilon")
        assert list(rows["epsilon"]) == epsilons
        assert rows["sigma_used"].is_monotonic_decreasing and rows["sigma_used"].iloc[0] > rows["sigma_used"].iloc[-1]
    # Output perturbation's σ is the classical Gaussian mechanism at sensitivity 2·C₀ (C₀ = 0.01, δ = 1e-5).
    for _, row in df[df["method"] == "output_perturbation"].iterrows():
        expected = sigma_classical(epsilon=row["epsilon"], delta=1e-5, sensitivity=2 * 0.01)
        assert row["sigma_used"] == pytest.approx(expected, rel=1e-9)
    noisy = df[df["method"] == "noisy_finetune"]
    assert (noisy["status"] == "certified").all()
    assert np.allclose(noisy["epsilon_certified"], noisy["epsilon"], rtol=1e-6)  # σ is the one ε needs, no more
    marks = frontier_first_epsilon(df)
    for method, mark in marks.items():
        mean = df[df["method"] == method].groupby("epsilon")["acc_test"].mean()
        gaps = ref["acc_test"] - mean  # how far below retraining (above it is no cost)
        if mark.first is None:
            assert (gaps > 0.02).all()
        else:
            assert gaps[mark.first] <= 0.02 and (gaps[gaps.index < mark.first] > 0.02).all()
            assert mark.stays == bool((gaps[gaps.index >= mark.first] <= 0.02).all())
        assert f"{method}: " in out
    fig = plots.frontier_figure(df)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    names = {t.name for t in fig.data}
    assert {"noisy_finetune", "output_perturbation"} <= names
    stars = [t for t in fig.data if t.marker.symbol == "star"]
    assert len(stars) == sum(m.first is not None for m in marks.values())
    assert [a.text for a in fig.layout.annotations if a.text in ("retrained", "original")] == ["retrained",
                                                                                             "original", "original"]


def test_frontier_refuses_a_method_without_epsilon() -> None:
    with pytest.raises(ConfigError, match="has no 'epsilon' hyperparameter"):
        ex.frontier(BASE, methods=["finetune"])
    with pytest.raises(ConfigError, match="epsilons"):
        ex.frontier(BASE, methods=["noisy_finetune"], epsilons=[0.0])
    assert "retrain" not in ex.frontier_methods() and "noisy_finetune" in ex.frontier_methods()
