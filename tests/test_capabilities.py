"""The CLI, the experiments and the pages ask a method's capabilities and schema, never a list of names.

A throw-away certified method whose ε hyperparameter is called ``eps`` (output perturbation with ε renamed) is
registered for the module: ``experiment frontier`` must sweep its ``eps`` (it failed with "unknown hyperparameter
'epsilon'"), the Sensitivity page must offer ``eps`` to sweep, and the presets must set ``eps``. The sweep's grid
and the schema-derived sweep choices are engine functions, checked here against ``numpy.geomspace`` and the schema.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from timeouts import scaled

from unlearn_core.cli import get_args_parser, main
from unlearn_core.cli.experiments import default_methods
from unlearn_core.errors import ConfigError
from unlearn_core.experiment_options import sweep_values, sweepable_params
from unlearn_core.experiments import certified_methods, frontier_methods
from unlearn_core.privacy import accounting
from unlearn_core.service import ui_state
from unlearn_core.unlearners import methods_with, registry
from unlearn_core.unlearners.output_perturbation import OutputPerturbation

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
NAME = "eps_renamed_for_test"


class EpsRenamed(OutputPerturbation):
    """Output perturbation whose target ε is the hyperparameter ``eps`` (declared by ``epsilon_param``)."""

    name = NAME
    epsilon_param = "eps"
    frontier_grid = ()  # one run per ε: the test is about the name, not the grid
    schema = tuple(dataclasses.replace(p, name="eps") if p.name == "epsilon" else p
                   for p in OutputPerturbation.schema)

    def plan(self, params, *, batchnorm=False, n=None):
        return super().plan({**{k: v for k, v in params.items() if k != "eps"}, "epsilon": params["eps"]},
                            batchnorm=batchnorm, n=n)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """A cache of this test's own: the CLI stores its listings (``methods``, ``config --json``) in the cache under a
    key of the source files, and a listing stored here with the throw-away method must not be read by a later test."""
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True, scope="module")
def _registered():
    registry.register_unlearner(EpsRenamed)  # the registry's own checks: eps is a hyperparameter
    try:
        yield
    finally:
        registry._REGISTRY.pop(NAME, None)


def test_the_registry_lists_the_renamed_method_by_its_capabilities() -> None:
    assert NAME in certified_methods() and NAME in frontier_methods() and NAME in methods_with("epsilon_param")
    assert "epsilon" not in {p.name for p in EpsRenamed.schema}


def test_sweepable_parameters_come_from_the_schema() -> None:
    # The three names the page used to list, exactly where the methods have them ...
    assert sweepable_params("certified_newton") == ["lam", "epsilon", "delta"]
    assert sweepable_params("noisy_finetune") == ["epsilon", "delta"]
    assert sweepable_params("retrain") == []
    # ... and the renamed ε under its own name, with the other basic log-scale knobs of the schema.
    assert sweepable_params(NAME) == ["eps", "delta", "C0"]
    for method in ui_state.method_names():
        schema = {p.name: p for p in registry.get_unlearner(method).schema}
        for name in sweepable_params(method):
            p = schema[name]
            assert p.type is float and p.log and p.level == "basic" and not p.auto and not p.optional


def test_sweep_values_are_the_log_grid_checked_against_the_schema() -> None:
    assert sweep_values("certified_newton", "lam", low=0.01, high=1.0, count=3) == pytest.approx([0.01, 0.1, 1.0])
    got = sweep_values(NAME, "eps", low=0.01, high=1.0, count=5)
    assert got == pytest.approx(list(np.geomspace(0.01, 1.0, 5)), rel=1e-12)
    with pytest.raises(ConfigError, match=r"sweep range \[1, 1\] is not valid: expected 0 < from < to"):
        sweep_values(NAME, "eps", low=1.0, high=1.0, count=3)
    with pytest.raises(ConfigError, match=r"sweep='epsilon' is not valid for eps_renamed_for_test: choose one of "
                                          r"eps, delta, C0"):
        sweep_values(NAME, "epsilon", low=0.1, high=1.0, count=3)
    with pytest.raises(ConfigError, match=r"eps=1000.0 is not valid: expected a number in \[0.001, 100\]"):
        sweep_values(NAME, "eps", low=1.0, high=1000.0, count=2)
    with pytest.raises(ConfigError, match=r"values=1 is not valid"):
        sweep_values(NAME, "eps", low=0.1, high=1.0, count=1)


def test_presets_set_epsilon_under_the_methods_own_name() -> None:
    params = ui_state.preset_params("Quick demo", NAME)
    assert params["eps"] == 1.0 and "epsilon" not in params
    assert ui_state.preset_params("Quick demo", "noisy_finetune")["epsilon"] == 1.0
    assert "epsilon" not in ui_state.preset_params("Quick demo", "finetune")


def test_cli_defaults_come_from_the_registry() -> None:
    parser = get_args_parser(["experiment", "forget-size"])
    for kind, expected in (("forget-size", certified_methods()), ("audit", certified_methods()),
                           ("frontier", frontier_methods())):
        args = get_args_parser(["experiment", kind]).parse_args(["experiment", kind])
        default_methods(args)
        assert args.methods == expected and NAME in args.methods
    args = get_args_parser(["experiment", "sequential"]).parse_args(["experiment", "sequential"])
    default_methods(args)
    assert args.method == methods_with("sequential")[0] == "certified_newton"
    given = parser.parse_args(["experiment", "forget-size", "--methods", "finetune"])
    default_methods(given)
    assert given.methods == ["finetune"]


def test_experiment_frontier_sweeps_the_methods_own_epsilon(tmp_path, capsys) -> None:
    """Through the CLI: every ε of the grid reaches the method as ``eps`` — the certificate's σ is the analytic
    Gaussian σ at that ε (computed here independently from the accountant), and ε certified equals it."""
    code = main(["experiment", "frontier", "--dataset", "digits", "--model", "logreg", "--forget", "random:0.1",
                 "--methods", NAME, "--epsilons", "1,10", "--set", f"{NAME}.finetune_epochs=1", "--seeds", "0",
                 "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    df = pd.read_csv(tmp_path / "frontier.csv")
    cand = df[(df["role"] == "candidate") & (df["method"] == NAME)].sort_values("epsilon_run")
    assert list(cand["epsilon_run"]) == [1.0, 10.0]
    for _, row in cand.iterrows():
        eps = float(row["epsilon_run"])
        expected = accounting.sigma_output_perturbation_analytic(epsilon=eps, delta=1e-5, C0=0.01)
        assert row["sigma_used"] == pytest.approx(expected, rel=1e-9)
        assert row["epsilon_certified"] == pytest.approx(eps, rel=1e-6)
    front = df[(df["role"] == "frontier") & (df["method"] == NAME)]
    assert sorted(front["epsilon"]) == [1.0, 10.0]
    assert f"{NAME}:" in out.out


def test_the_sensitivity_page_offers_the_methods_own_epsilon() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60))
    at.query_params.update({"method": NAME, "sweep": "eps", "from": "0.1", "to": "10"})
    at.switch_page("pages/sensitivity.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["sensitivity.method"] == NAME
    sweep = at.selectbox(key="sensitivity.sweep")
    assert sweep.value == "eps" and list(sweep.options) == ["eps", "delta", "C0"]
    assert at.session_state["sensitivity.lo.eps"] == 0.1 and at.session_state["sensitivity.hi.eps"] == 10.0
    assert not at.warning, [w.value for w in at.warning]
