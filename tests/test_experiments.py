"""Experiments on a tiny configuration (synthetic blobs, a small MLP, a few epochs): facts, not snapshots.

The anchors: the ``retrain`` method reproduces the pipeline's oracle exactly on a CPU (so every retrain-relative
metric is 0 / equal for it); the Δ bound decreases with λ (Zhang et al. Fig. 4); untrained retraining sits at
chance; for every certified method of the registry the audit's ε lower bound stays below the certified ε at the
certified σ and refutes the claimed ε at a σ far below it; output perturbation's σ does not depend on n_u.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from unlearn_core import experiments as ex
from unlearn_core.errors import ConfigError
from unlearn_core.pipeline import RunConfig
from unlearn_core.training import TrainConfig
from unlearn_core.unlearners import get_unlearner

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
        # Triantafillou et al.'s per-example ε across the two seeds: the retrain method *is* the retrained
        # models, so no threshold tells them apart (ε̂ = 0 for every example, forgetting quality 1).
        assert rows.loc["retrain", "pe_epsilon_max"] == 0.0 and rows.loc["retrain", "forgetting_quality"] == 1.0
        assert np.isnan(rows.loc["retrained", "pe_epsilon_max"])  # the reference itself has no such value
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


# -- audit: every certified method of the registry, a certified run and a deliberately under-noised one --------

DIGITS = RunConfig(dataset="digits", model="mlp", hidden=(16,), forget="random:0.1", train=TrainConfig(epochs=5),
                   device="cpu")


def _audit_params(method: str) -> dict:
    """A certified configuration of ``method`` on digits, kept cheap, chosen through schema names only: the method's
    demo settings (for certified Newton λ = 1: λ + λ_min > 0 on digits), a shorter LiSSA with the deterministic
    residual bound (the LiSSA lemma's sampled floor fails on this MLP), G assumed above the retrained model's actual
    gradient (≈ 0.2; the G measured at the unlearned model is below it), one noisy step, no fine-tuning
    (post-processing the certificate does not need)."""
    names = {p.name for p in get_unlearner(method).schema}
    params = dict(get_unlearner(method).demo_params)
    cheap = {"depth": 50, "reps": 2, "lanczos_steps": 40, "curvature_points": 256, "finetune_epochs": 0, "T": 1,
             "lissa_bound": "a_posteriori", "G": 1.0}
    params.update({k: v for k, v in cheap.items() if k in names})
    return params


def _audit_config(method: str) -> RunConfig:
    """DIGITS, on the first model the method's certificate covers when it does not cover the MLP (a theorem about
    strongly convex losses: logreg)."""
    models = get_unlearner(method).certified_models
    return DIGITS if not models or "mlp" in models else dataclasses.replace(DIGITS, model=models[0])


@pytest.mark.parametrize("method", ex.certified_methods())
def test_audit_passes_a_certified_run_and_catches_an_under_noised_one(method: str) -> None:
    df = ex.audit(_audit_config(method), methods=[method], params={method: _audit_params(method)},
                  sigma_factors=[1.0, 1e-10], runs=40)
    assert list(df["sigma_factor"]) == [1.0, 1e-10] and (df["runs"] == 40).all() and (df["n_eval"] == 20).all()
    ok, under = df.iloc[0], df.iloc[1]
    # As certified: the run is certified, and the audit's lower bound stays below the certified (and claimed) ε.
    assert ok["certified"] and ok["status"] != "not certified"
    assert ok["epsilon_lower"] <= ok["epsilon_certified"] <= ok["epsilon"] * (1 + 1e-6)
    assert not ok["refutes_claim"] and not ok["refutes_certificate"]
    # σ ten orders of magnitude below: the audit must refute the claimed ε (its label already says not certified).
    assert under["sigma"] == pytest.approx(1e-10 * ok["sigma"])
    assert not under["certified"] and under["refutes_claim"]
    assert under["epsilon_lower"] > under["epsilon"]
    assert under["epsilon_lower"] <= under["epsilon_lower_cap"] + 1e-12
    # The per-example and LiRA attacks see the under-noised release too, and the noised one no more than chance
    # allows (their null values: the noisy retrain against itself).
    assert under["pe_epsilon_median"] > under["pe_epsilon_median_null"]
    assert under["pe_epsilon_q90"] >= under["pe_epsilon_median"]  # a quantile of the same values (∞ allowed)
    assert under["lira_auc"] > under["lira_auc_reference"]
    assert 0.0 <= ok["forgetting_quality"] <= 1.0 and ok["acc_test_reference"] >= 0.0


def test_audit_validates_before_any_run() -> None:
    with pytest.raises(ConfigError, match="'finetune' cannot be audited: it carries no certificate"):
        ex.audit(BASE, methods=["finetune"])
    with pytest.raises(ConfigError, match="runs=4 is not valid"):
        ex.audit(BASE, runs=4)
    with pytest.raises(ConfigError, match="sigma_factors"):
        ex.audit(BASE, sigma_factors=[0.0])
    with pytest.raises(ConfigError, match="statistic='nope'"):
        ex.audit(BASE, statistic="nope")
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        ex.audit(BASE, methods=["output_perturbation"], params={"output_perturbation": {"bogus": 1}})


def test_forget_size_rows_and_reference() -> None:
    df = ex.forget_size(BASE, methods=["finetune", "output_perturbation"], sizes=[10, 40],
                        params={"finetune": {"epochs": 1}, "output_perturbation": {"finetune_epochs": 1}})
    assert list(df["method"]) == ["retrained", "finetune", "output_perturbation"] * 2
    assert list(df["n_forget"]) == [10] * 3 + [40] * 3
    ref = df[df["method"] == "retrained"]
    assert (ref["time_s"] == ref["retrain_time_s"]).all() and (ref["dist_to_retrained"] == 0).all()
    op = df[df["method"] == "output_perturbation"]
    assert op["status"].notna().all() and df[df["method"] == "finetune"]["status"].isna().all()
    # Output perturbation's σ depends on (ε, δ, C₀) only, not on how many points are forgotten.
    assert op["sigma_required"].nunique() == 1
    # Each size has its own retrained model: the reference accuracies differ in general, never the original.
    assert (df[df["method"] != "retrained"]["acc_test_retrained"].to_numpy() == np.repeat(ref["acc_test"], 2)).all()
    with pytest.raises(ConfigError, match=r"size 2\.5 is not valid"):
        ex.forget_size(BASE, sizes=[2.5])


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
    """``experiment frontier`` on digits: reference rows, the frontier's points (the best release certified at each ε
    over the method's grid), the candidate runs behind them with their settings, σ shrinking with ε by the
    mechanism's closed form, the marks consistent with the points, and the figure drawn from the written CSV."""
    from unlearn_core import plots
    from unlearn_core.certificate import sigma_analytic
    from unlearn_core.cli import main
    from unlearn_core.verdict import frontier_first_epsilon

    epsilons = [0.3, 1.0, 10.0]
    code = main(["experiment", "frontier", "--dataset", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "5",
                 "--forget", "random:0.1", "--methods", "noisy_finetune,output_perturbation",
                 "--set", "noisy_finetune.finetune_epochs=3", "--set", "output_perturbation.finetune_epochs=3",
                 "--epsilons", ",".join(map(str, epsilons)), "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    df = pd.read_csv(tmp_path / "frontier.csv")
    assert (tmp_path / "frontier.json").exists()
    assert list(df["method"].iloc[:2]) == ["original", "retrained"] and df["epsilon"].iloc[:2].isna().all()
    assert set(df["role"]) == {"reference", "frontier", "candidate"}
    ref = df.set_index("method").loc["retrained"]
    assert ref["dist_to_retrained"] == 0.0
    front, cand = df[df["role"] == "frontier"], df[df["role"] == "candidate"]
    for method in ("noisy_finetune", "output_perturbation"):
        rows = front[front["method"] == method].sort_values("epsilon")
        assert list(rows["epsilon"]) == epsilons  # one point per ε (one seed)
        assert (rows["epsilon_certified"] <= rows["epsilon"] * (1 + 1e-9)).all()  # certified at ε or below
        assert rows["acc_test"].is_monotonic_increasing  # the envelope cannot fall as ε grows
        grid = cand[cand["method"] == method]
        assert len(grid) == 3 * len(epsilons) and grid["epsilon"].isna().all()  # 3 grid settings per ε
        for _, row in rows.iterrows():  # each point is one of the candidates, the best admitted one
            admitted = grid[grid["epsilon_certified"] <= row["epsilon"] * (1 + 1e-9)]
            assert row["acc_test"] == pytest.approx(admitted["acc_test"].max())
            assert row["setting"] in set(grid["setting"])
    # Output perturbation's σ is the analytic Gaussian mechanism at sensitivity 2·C₀ (δ = 1e-5), for each C₀ of its
    # grid; it shrinks with ε.
    for _, row in cand[cand["method"] == "output_perturbation"].iterrows():
        expected = sigma_analytic(epsilon=row["epsilon_run"], delta=1e-5, sensitivity=2 * row["param.C0"])
        assert row["sigma_used"] == pytest.approx(expected, rel=1e-9)
    noisy = cand[cand["method"] == "noisy_finetune"]
    assert (noisy["status"] == "certified").all()
    assert np.allclose(noisy["epsilon_certified"], noisy["epsilon_run"], rtol=1e-6)  # σ is the one ε needs, no more
    marks = frontier_first_epsilon(df)
    for method, mark in marks.items():
        mean = front[front["method"] == method].groupby("epsilon")["acc_test"].mean()
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
    line = next(t for t in fig.data if t.name == "output_perturbation")
    assert all("run for ε" in text and "C0=" in text for text in line.text)  # the chosen setting in the tooltip
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
