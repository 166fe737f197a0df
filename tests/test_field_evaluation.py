"""The field's evaluation through the engine and the CLI: controls, scores, and the certificate against the attacks.

Anchors: doing nothing scores 0 on the challenge (its peaky rule) and a second retraining sets the estimator's
floor; ToW is recomputed from the rows' accuracies; a method that *claims* a certificate but removes nothing is
caught — CERTIFICATE REFUTED — by U-LiRA against the noisy retrain; an honestly labelled under-noised release has
its *requested* ε refuted, which the reading calls a confirmation of the label, not a refuted certificate; bad
arguments cost nothing; `experiment compare --scores` writes the columns, the per-example CSV and the readings.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from unlearn_core import field_evaluation as fe
from unlearn_core.certificate import BOUND, Certificate, Condition, Constant
from unlearn_core.diagnostics import Diagnostics
from unlearn_core.errors import ConfigError
from unlearn_core.pipeline import RunConfig
from unlearn_core.plots_evaluation import certified_vs_attacked_figure
from unlearn_core.refutation import CLAIM_REFUTED, NO_CERTIFICATE, REFUTED
from unlearn_core.training import TrainConfig
from unlearn_core.tug_of_war import tug_of_war
from unlearn_core.unlearners import registry
from unlearn_core.unlearners.base import HyperParam, Unlearner, UnlearnResult

TINY = RunConfig(dataset="synthetic", model="mlp", hidden=(8,), forget="random:40", train=TrainConfig(epochs=3),
                 device="cpu")
DIGITS = RunConfig(dataset="digits", model="mlp", hidden=(16,), forget="random:0.1", train=TrainConfig(epochs=5),
                   device="cpu")


def test_rows_controls_and_scores() -> None:
    df = fe.evaluate(TINY, ["finetune", "output_perturbation"], models=4, shadows=4,
                     params={"finetune": {"epochs": 1}, "output_perturbation": {"finetune_epochs": 1}})
    assert list(df["method"]) == ["original", "retrained", "finetune", "output_perturbation"]
    rows = df.set_index("method")
    # Doing nothing: N copies of one model are "peaky", the challenge caps every example's ε: F = 0.
    assert rows.loc["original", "challenge_forget_score"] == 0.0
    assert rows.loc["original", "challenge_eps"] == [50.0] * 40
    assert 0.0 <= rows.loc["retrained", "challenge_forget_score"] <= 1.0  # the estimator's floor at N = 4
    for name, row in rows.iterrows():
        expected = tug_of_war(forget_unlearned=row["acc_forget"], retain_unlearned=row["acc_retain"],
                              test_unlearned=row["acc_test"], forget_retrained=row["acc_forget_retrained"],
                              retain_retrained=row["acc_retain_retrained"], test_retrained=row["acc_test_retrained"])
        assert row["tow"] == pytest.approx(expected), name
        assert row["challenge_final"] == pytest.approx(row["challenge_forget_score"] * row["challenge_utility"])
        assert len(row["ulira_eps"]) == 40 and 0.0 <= row["ulira_auc"] <= 1.0
    assert rows.loc["finetune", "reading"] == NO_CERTIFICATE and np.isnan(rows.loc["finetune", "epsilon_certified"])
    assert rows.loc["output_perturbation", "status"] == "certified"
    assert rows.loc["output_perturbation", "ulira_noisy_epsilon_lower"] >= 0.0  # a bound on the certified pair
    long = fe.per_example_table(df)
    assert len(long) == 4 * 2 * 40 and set(long["score"]) == {"challenge", "ulira"}
    assert "challenge_eps" not in fe.summary_table(df)
    fig = certified_vs_attacked_figure(df)
    assert [a.text.split("</b>")[0] for a in fig.layout.annotations if a.text.startswith("<b>")] == [
        "<b>finetune", "<b>output_perturbation", "<b>original (doing nothing)", "<b>retrained (a perfect unlearner)"]


#: Cheap settings by schema name (whichever a method has): every registered method through the evaluation in seconds.
CHEAP = {"depth": 50, "reps": 2, "lanczos_steps": 40, "curvature_points": 256, "finetune_epochs": 1, "epochs": 1,
         "T": 1, "cg_iters": 20, "max_alpha_iters": 10, "lanczos_iters": 10}


@pytest.mark.slow
def test_every_registered_method_is_scored() -> None:
    """The registry, not a hand list: every method (the new ones too, once registered) gets a challenge score and a
    ToW; those that issue a certificate get a status and a reading."""
    from unlearn_core.unlearners import get_unlearner, list_unlearners

    names = [cls.name for cls in list_unlearners()]
    params = {}
    for name in names:
        cls = get_unlearner(name)
        schema = {p.name for p in cls.schema}
        params[name] = {**cls.demo_params, **{k: v for k, v in CHEAP.items() if k in schema}}
    df = fe.evaluate(TINY, names, params=params, scores="challenge,tow", models=4, controls=False)
    assert list(df["method"]) == names
    assert df["challenge_forget_score"].between(0, 1).all() and df["tow"].between(0, 1).all()
    for _, row in df.iterrows():
        issues = get_unlearner(row["method"]).issues_certificate()
        assert (row["reading"] != NO_CERTIFICATE) == issues, row["method"]
        assert len(row["challenge_eps"]) == 40


class _Liar(Unlearner):
    """Claims a certified ε = 0.1 and removes nothing: the model it releases is the trained one."""

    name = "lying_noop"
    family = "certified"
    paper = "a test double"
    summary = "claims a certificate, does nothing"
    epsilon_param = "epsilon"
    schema = (HyperParam("epsilon", float, 0.1, "the claimed ε", low=1e-3, high=100.0),)

    def unlearn(self, ctx, **params):
        cert = Certificate(method=self.name, theorem="none", epsilon=params["epsilon"], delta=1e-5,
                           delta_guaranteed=1e-5, accountant="asserted", sigma_required=0.0, sigma_used=0.0,
                           epsilon_certified=params["epsilon"],
                           conditions=[Condition("claim", "trust me", "yes", "yes", holds=True)],
                           constants=[Constant("c", 1.0, BOUND, "asserted")])
        return UnlearnResult(model=ctx.copy_model(), certificate=cert, diagnostics=Diagnostics(time_s=0.0))


def test_a_false_certificate_is_refuted_and_an_honest_label_is_confirmed(monkeypatch) -> None:
    """Two releases that keep the forget set: one claims 'certified at ε = 0.1' (a lie: REFUTED), the other is
    output perturbation with σ a hundred-millionth of σ_required, honestly labelled 'not certified' — an attack
    above its requested ε refutes the request, as the label warned (CLAIM_REFUTED), not the bound it states at that
    σ (ε certified ≈ 10⁷)."""
    monkeypatch.setitem(registry._REGISTRY, "lying_noop", _Liar)
    from unlearn_core.unlearners import get_unlearner

    op = get_unlearner("output_perturbation")
    plan = op.plan({"epsilon": 0.1, "delta": 1e-5, "C0": 100.0, "mechanism": "classical", "sigma": None})
    under = {"epsilon": 0.1, "C0": 100.0, "finetune_epochs": 0, "sigma": plan.sigma_required * 1e-8}
    df = fe.evaluate(DIGITS, ["lying_noop", "output_perturbation"], params={"output_perturbation": under},
                     scores=["ulira"], models=16, shadows=4, controls=False)
    rows = df.set_index("method")
    liar = rows.loc["lying_noop"]
    assert liar["status"] == "certified" and liar["reading"] == REFUTED
    assert liar["ulira_noisy_epsilon_lower"] > liar["epsilon_certified"] == pytest.approx(0.1)
    assert liar["reading_text"].startswith("CERTIFICATE REFUTED") and liar["attacked_by"] == "U-LiRA vs noisy retrain"
    honest = rows.loc["output_perturbation"]
    assert honest["status"] == "not certified" and honest["epsilon_certified"] > 1e6
    assert honest["reading"] == CLAIM_REFUTED and honest["ulira_noisy_epsilon_lower"] > 0.1
    assert "as the label 'not certified' warned" in honest["reading_text"]
    fig = certified_vs_attacked_figure(df)
    titles = [a.text for a in fig.layout.annotations if a.text.startswith("<b>")]
    assert "CERTIFICATE REFUTED" in titles[0] and "requested ε refuted" in titles[1]
    assert any(s.fillcolor for s in fig.layout.shapes)  # the refuted gap is shaded


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"scores": "challenge,nope"}, "scores=challenge,nope is not valid"), ({"models": 2}, "models=2 is not valid"),
     ({"shadows": 5}, "shadows=5 is not valid: expected an even integer"), ({"audit_runs": 3}, "audit_runs=3"),
     ({"seeds": [0, 1]}, "one training seed"), ({"alpha": 0.0}, "alpha=0.0")],
)
def test_bad_arguments_cost_nothing(kwargs: dict, fragment: str, monkeypatch) -> None:
    monkeypatch.setattr(fe, "prepare_seed", lambda *a, **k: pytest.fail("trained before checking its arguments"))
    with pytest.raises(ConfigError, match=fragment):
        fe.evaluate(TINY, ["finetune"], **kwargs)


def _cli(argv: list[str]) -> int:
    from unlearn_core.cli import main

    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors exit directly
        return int(exc.code)


def test_cli_compare_with_scores(tmp_path, capsys) -> None:
    base = ["experiment", "compare", "--dataset", "synthetic", "--model", "mlp", "--hidden", "8", "--epochs", "3",
            "--forget", "random:40", "--methods", "finetune", "--set", "finetune.epochs=1", "--no-mia",
            "--no-relearn", "--quiet", "--out", str(tmp_path)]
    assert _cli([*base, "--scores", "challenge,tow,ulira", "--models", "4", "--shadows", "4"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "compare.csv").set_index("method")
    for col in ("tow", "tow_models", "challenge_forget_score", "challenge_final", "ulira_auc", "reading"):
        assert col in table.columns, col
    assert table.loc["retrained", "tow"] == 1.0  # paired with itself
    assert table.loc["finetune", "reading"] == NO_CERTIFICATE
    per_example = pd.read_csv(tmp_path / "compare_per_example.csv")
    assert len(per_example) == 3 * 2 * 40  # original, retrained, finetune × challenge, U-LiRA × 40 examples
    card = json.loads((tmp_path / "compare.json").read_text())
    assert card["scores"] == ["challenge", "tow", "ulira"] and len(card["per_example"]) == len(per_example)
    assert "finetune: No certificate to test." in printed
    (tmp_path / "compare.csv").unlink()
    assert _cli([*base, "--scores", "challenge,bogus"]) == 2
    err = capsys.readouterr().err
    assert "scores=challenge,bogus is not valid" in err and err.count("\n") == 1
    assert not (tmp_path / "compare.csv").exists()  # refused before anything ran or was written


def test_a_method_with_its_own_training_recipe_is_evaluated_on_models_trained_that_way() -> None:
    """Langevin unlearning certifies only models trained by its own noisy gradient descent: the many-model
    evaluation runs it on those (``Prepared.for_method``), so its certificate there is the one a single run gets —
    it read "not certified" (ε certified NaN) when the evaluation handed it the default recipe's model."""
    from unlearn_core.pipeline import run

    params = {"train_steps": 200}  # a short burn-in: the recipe, not its length, is what this test is about
    base = dataclasses.replace(TINY, model="logreg")  # the base's own method is not Langevin (as in compare --scores)
    single = run(dataclasses.replace(base, method="langevin", params=params)).card["certificate"]
    df = fe.evaluate(base, ["langevin"], params={"langevin": params}, scores="challenge", models=4, shadows=4,
                     controls=False)
    row = df.iloc[0]
    assert single["status"] == "certified" and row["status"] == single["status"]
    assert row["epsilon_certified"] == pytest.approx(single["epsilon_certified"], rel=1e-6)
