"""What an audit can show, known before any work, and the one-run audit with many canaries.

The many-run audit's ceiling is checked against the Clopper–Pearson closed form (k = 0 errors: the upper limit is
1 − (α/2)^{1/n}); the one-run bound (Steinke, Nasr & Jagielski, NeurIPS 2023) against values computed by hand and
against the binomial tail written out with ``math.comb``; both audits end to end through the CLI, where a certified
release must never be refuted and an under-noised one must be.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from unlearn_core import experiments as ex
from unlearn_core import metrics as mt
from unlearn_core import one_run_audit as ora
from unlearn_core.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _cp_zero_upper(n: int, alpha: float) -> float:
    """Clopper–Pearson two-sided upper limit with no event in n trials: (α/2)^{1/n} = 1 − p."""
    return 1.0 - (alpha / 2) ** (1.0 / n)


@pytest.mark.parametrize("runs", [16, 23, 24, 32, 100, 1_000_000])
def test_the_ceiling_is_the_clopper_pearson_closed_form(runs: int) -> None:
    n = runs - runs // 2
    p = _cp_zero_upper(n, 0.05)
    assert mt.audit_epsilon_ceiling(runs) == pytest.approx(math.log((1 - p) / p), rel=1e-9)
    assert mt.audit_epsilon_ceiling(runs, delta=1e-5) == pytest.approx(math.log((1 - 1e-5 - p) / p), rel=1e-9)


def test_the_issues_figures_and_the_runs_a_claim_needs() -> None:
    assert mt.audit_epsilon_ceiling(16) == pytest.approx(0.535, abs=1e-3)  # the slider's smallest value
    assert mt.audit_epsilon_ceiling(1_000_000) == pytest.approx(11.82, abs=1e-2)  # no run count shows more
    need = mt.audit_runs_needed(1.0)
    assert mt.audit_epsilon_ceiling(need - 1) <= 1.0 < mt.audit_epsilon_ceiling(need)
    assert need == 23 and mt.audit_runs_needed(12.0) is None
    # through the audit's own plan: the claimed ε comes from each method's schema before any work
    power = {p.method: p for p in ex.audit_power(methods=["noisy_finetune", "output_perturbation"], params={
        "noisy_finetune": {"epsilon": 2.0}}, runs=16)}
    assert power["noisy_finetune"].epsilon == 2.0 and power["noisy_finetune"].runs_needed == 59
    assert not power["output_perturbation"].can_refute and power["output_perturbation"].runs_needed == 23
    assert "refuting it needs at least 23 runs per arm" in power["output_perturbation"].message(runs=16)


def test_a_weak_audit_is_refused_before_any_work_naming_what_it_needs() -> None:
    kwargs = {"methods": ["output_perturbation"], "params": None, "runs": 16, "statistic": "auto", "alpha": 0.05,
              "runs_per_cell": 10}
    with pytest.raises(ConfigError, match=r"runs=16 cannot refute any claim: .*0\.53 at most, below the claimed "
                                          r"ε = 1: refuting it needs at least 23 runs per arm"):
        ex.check_audit_args(sigma_factors=[1.0, 1e-6], allow_weak=False, **kwargs)
    ex.check_audit_args(sigma_factors=[1.0], allow_weak=True, **kwargs)  # the engine's default: the caller decides
    ex.check_audit_args(sigma_factors=[1.0, 10.0], allow_weak=False, **kwargs)  # ×10 certifies a smaller ε


# -- the one-run bound ---------------------------------------------------------------------------------------


def _binomial_tail(r: int, v: int, q: float) -> float:
    return sum(math.comb(r, j) * q**j * (1 - q) ** (r - j) for j in range(v, r + 1))


def test_the_one_run_p_value_against_hand_computed_values() -> None:
    # r = 2 guesses, both right, ε = 0 (q = ½), m = 4, δ = 0.01: β = ¼; α = max(P[B=1]/1, P[B≤1]/2) = max(½, ⅜)
    assert ora.p_value(m=4, r=2, v=2, epsilon=0.0, delta=0.01) == pytest.approx(0.25 + 0.5 * 2 * 4 * 0.01)
    for r, v, eps in [(10, 10, 1.0), (64, 50, 0.7), (40, 21, 0.0), (100, 0, 2.0)]:
        q = math.exp(eps) / (1 + math.exp(eps))
        assert ora.p_value(m=200, r=r, v=v, epsilon=eps, delta=0.0) == pytest.approx(_binomial_tail(r, v, q))
    # all of r guesses right, δ = 0: the bound solves q^r = β
    q = 0.05 ** (1 / 10)
    assert ora.epsilon_lower_bound(m=10, r=10, v=10, delta=0.0) == pytest.approx(math.log(q / (1 - q)), abs=1e-6)
    # unlearning's game: each canary is (2ε, (1 + e^ε)δ)-DP, so with δ = 0 the unlearning bound is half the DP one
    for v in (40, 55, 64):
        assert ora.unlearning_epsilon_lower(m=256, r=64, v=v, delta=0.0) == pytest.approx(
            ora.epsilon_lower_bound(m=256, r=64, v=v, delta=0.0) / 2, abs=1e-6)
    # δ > 0 only ever weakens the bound, and chance-level guessing shows nothing
    assert ora.unlearning_epsilon_ceiling(m=256, r=64, delta=1e-5) < ora.unlearning_epsilon_ceiling(m=256, r=64,
                                                                                                    delta=0.0)
    assert ora.unlearning_epsilon_lower(m=256, r=64, v=32, delta=1e-5) == 0.0
    bounds = [ora.unlearning_epsilon_lower(m=256, r=64, v=v, delta=1e-5) for v in range(30, 65)]
    assert bounds == sorted(bounds)


def test_guesses_take_the_extremes_and_abstain_in_between() -> None:
    t = ora.guesses_from_scores([0.1, 5.0, -3.0, 2.0, float("nan"), 0.0], 2)
    assert list(t) == [0, 1, -1, 1, -1, 0]
    with pytest.raises(ConfigError, match="guesses=4"):
        ora.guesses_from_scores([1.0] * 6, 4)
    with pytest.raises(ConfigError, match="canaries=1000 is not valid: at most"):
        ora.check_one_run_args(canaries=1000, guesses=10, n_train=1437)


# -- end to end ----------------------------------------------------------------------------------------------

DIGITS = ["--dataset", "digits", "--model", "mlp", "--device", "cpu", "--forget", "random:0.1"]


def test_one_run_audit_through_the_cli(tmp_path, capsys) -> None:
    """One canary model (60 epochs: it memorises its noise canaries), one release per σ: the certified release is
    not refuted, the release with σ × 1e-6 (the projected trained model itself) is, beside the ceiling."""
    from unlearn_core.cli import main

    args = ["experiment", "audit", *DIGITS, "--epochs", "60", "--mode", "one-run", "--canaries", "256",
            "--guesses", "32", "--methods", "output_perturbation", "--set", "output_perturbation.finetune_epochs=0",
            "--set", "output_perturbation.C0=10", "--sigma-factors", "1,1e-6", "--out", str(tmp_path)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "output_perturbation: this many canaries and guesses can show ε up to 1.50" in err
    rows = pd.read_csv(tmp_path / "audit.csv")
    assert list(rows["mode"]) == ["one_run"] * 2 and list(rows["guesses"]) == [64, 64]
    ok, under = rows.iloc[0], rows.iloc[1]
    assert ok["certified"] and not ok["refutes_claim"] and ok["epsilon_lower"] <= ok["epsilon_certified"]
    assert under["refutes_claim"] and under["correct"] >= 60 and under["epsilon_lower"] <= under["epsilon_lower_cap"]
    assert under["acc_test"] > 0.9  # the release is the useful trained model: its leak is real
    assert json.loads((tmp_path / "audit.json").read_text())["mode"] == "one_run"


def test_the_cli_refuses_an_audit_that_cannot_refute(tmp_path, capsys) -> None:
    from unlearn_core.cli import main

    args = ["experiment", "audit", *DIGITS, "--methods", "output_perturbation", "--runs", "16", "--out",
            str(tmp_path / "x")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: runs=16 cannot refute any claim") and "at least 23 runs per arm" in err
    assert "\n" not in err and not (tmp_path / "x").exists()


def test_the_direction_statistic_sees_what_the_estimated_projection_cannot() -> None:
    """The known direction A(D) − A(D_r) spends no runs estimating it: with 24 runs per arm it separates the arms of
    an under-noised output perturbation perfectly, and a certified release stays unrefuted."""
    from unlearn_core.pipeline import RunConfig
    from unlearn_core.training import TrainConfig

    base = RunConfig(dataset="digits", model="mlp", hidden=(16,), forget="random:0.1", train=TrainConfig(epochs=5),
                     device="cpu")
    df = ex.audit(base, methods=["output_perturbation"], params={"output_perturbation": {
        "finetune_epochs": 0, "C0": 10.0}}, sigma_factors=[1.0, 1e-6], runs=24, statistic="direction")
    ok, under = df.iloc[0], df.iloc[1]
    assert list(df["statistic"]) == ["direction", "direction"]
    assert not ok["refutes_claim"] and under["refutes_claim"] and under["fpr"] == under["fnr"] == 0.0


def test_lira_scores_the_targets_and_their_null_with_as_many_references(monkeypatch) -> None:
    """At exactly 64 runs the targets had 64 references (per-example variance) and the null 63 (pooled): two
    different attacks. Both now get k_B − 1."""
    import numpy as np

    seen: list[int] = []
    real = ex.mt.lira_mia

    def spy(tm, tn, rm, rn, **kw):
        seen.append(rm.shape[0])
        return real(tm, tn, rm, rn, **kw)

    monkeypatch.setattr(ex.mt, "lira_mia", spy)
    rng = np.random.default_rng(0)
    arm = {"phi_forget": rng.normal(size=(64, 5)), "phi_test": rng.normal(size=(64, 7))}
    out = ex._audit_lira(arm, {k: v + 0.1 for k, v in arm.items()})
    assert set(seen) == {63} and len(seen) == 128 and set(out) == {"lira_auc", "lira_tpr_at_1fpr", "lira_auc_reference"}
