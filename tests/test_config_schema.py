"""The run configuration's schema (unlearn_core.config): one declaration per field, and every surface generated
from it — the CLI flags, the URL keys, the dashboard's widgets and ``config --json`` — plus validation once per run.

The central test adds a field to the schema (a ``setting`` on a subclass of RunConfig, exactly the one edit a new
field needs) and finds it as a CLI flag, a URL key, a widget and in ``config --json``, with its declared range
enforced by the URL parser and the widget alike.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from streamlit.testing.v1 import AppTest
from timeouts import scaled

from unlearn_core import config as schema
from unlearn_core import pipeline, preflight, settings
from unlearn_core.cli import get_args_parser, main
from unlearn_core.cli.parser import config_from_args
from unlearn_core.pipeline import RunConfig
from unlearn_core.service import ui_state
from unlearn_core.training import TrainConfig


def test_every_dataclass_field_is_a_setting_or_says_why_not() -> None:
    """Each field of RunConfig/TrainConfig is declared in the schema, except the three that are not user settings
    (the nested recipe, the recipe's copy of the seed, and the experiments' switch for the oracle)."""
    names = {s.name for s in settings.run_settings()}
    fields = {f.name for f in dataclasses.fields(RunConfig)} | {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields - names == {"train", "compute_retrained"}  # "seed": RunConfig's; TrainConfig.seed is its copy
    defaults = {s.name: s.default for s in settings.run_settings()}
    assert defaults["lr"] == TrainConfig().lr and defaults["hidden"] == RunConfig().hidden
    assert schema.flatten(RunConfig()) == defaults


def test_the_four_cli_only_fields_are_reachable_from_url_and_widgets() -> None:
    """momentum, norm, width and split_seed were CLI-only; now each has a URL key and an advanced widget."""
    by_name = {s.name: s for s in settings.run_settings()}
    for name in ("momentum", "norm", "width", "split_seed"):
        s = by_name[name]
        assert s.cli and s.url and s.widget and s.level == "advanced", name
    cfg = ui_state.UIConfig(momentum=0.5, norm="group", width=8, split_seed=7)
    parsed, _, warnings = ui_state.from_query(ui_state.to_query(cfg), base=ui_state.UIConfig())
    assert warnings == []
    assert (parsed.momentum, parsed.norm, parsed.width, parsed.split_seed) == (0.5, "group", 8, 7)
    run = parsed.to_run_config()
    assert (run.train.momentum, run.norm, run.width, run.split_seed) == (0.5, "group", 8, 7)
    _, _, warnings = ui_state.from_query({"momentum": "1"}, base=ui_state.UIConfig())
    assert warnings == ["momentum='1' is not valid: expected a number in [0, 1) — using the default 0.9"]


def test_cli_flags_build_the_same_config_as_the_dataclass_defaults() -> None:
    args = get_args_parser().parse_args(["run"])
    built = dataclasses.replace(config_from_args(args), download=False)
    assert built == RunConfig()
    args = get_args_parser().parse_args(["run", "--momentum", "0.5", "--width", "none", "--grad-tol", "1e-4",
                                         "--hidden", "8,4", "--no-cache", "--split-seed", "3", "--seed", "5"])
    built = config_from_args(args)
    assert (built.train.momentum, built.width, built.train.grad_tol, built.hidden) == (0.5, None, 1e-4, (8, 4))
    assert (built.use_cache, built.split_seed, built.seed, built.train.seed) == (False, 3, 5, 5)


def test_config_json_is_the_schema(capsys) -> None:
    assert main(["config", "--json"]) == 0
    settings = {s["name"]: s for s in json.loads(capsys.readouterr().out)["settings"]}
    assert settings["weight_decay"]["url"] == "wd" and settings["weight_decay"]["cli"] == "--weight-decay"
    assert settings["weight_decay"]["path"] == "train.weight_decay"
    assert (settings["lr"]["low"], settings["lr"]["high"]) == (1e-6, 10.0)
    assert "digits" in settings["dataset"]["choices"] and settings["dataset"]["level"] == "basic"


# -- adding a field: one declaration, every surface ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExtendedConfig(RunConfig):
    """RunConfig plus one field, declared exactly as a new field would be (the one edit)."""

    dropout: float = schema.setting(
        0.1, type=float, low=0.0, high=0.9, cli="--dropout", url="dropout", widget="number", label="Dropout rate",
        row=1, column=2, help="dropout of the MLP's hidden layers (default 0.1)")


@pytest.fixture
def extended(monkeypatch):
    """The schema as if ``dropout`` had been declared on RunConfig."""
    monkeypatch.setattr(settings, "run_config_class", lambda: ExtendedConfig)
    monkeypatch.setattr(ui_state, "UIConfig", ui_state._make_ui_config())
    return ui_state.UIConfig


def test_an_added_field_appears_as_cli_flag_url_key_and_config_json(extended, capsys) -> None:
    args = get_args_parser().parse_args(["run", "--dropout", "0.25"])
    built = config_from_args(args)
    assert isinstance(built, ExtendedConfig) and built.dropout == 0.25
    assert "--dropout" in get_args_parser()._subparsers._group_actions[0].choices["run"].format_help()

    cfg = extended(dropout=0.3)
    assert ui_state.to_query(cfg)["dropout"] == "0.3"
    parsed, _, warnings = ui_state.from_query({"dropout": "0.5"}, base=extended())
    assert parsed.dropout == 0.5 and warnings == []
    assert parsed.to_run_config().dropout == 0.5
    _, _, warnings = ui_state.from_query({"dropout": "2"}, base=extended())
    assert warnings == ["dropout='2' is not valid: expected a number in [0, 0.9] — using the default 0.1"]

    assert main(["config", "--json"]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)["settings"]]
    assert "dropout" in names


def _extended_page() -> None:
    import streamlit as st

    from dashboard import widgets

    widgets.init_page("t")
    widgets.config_widgets("t")
    cfg = widgets.read_config("t")
    st.caption(f"dropout {cfg.dropout}")


def test_an_added_field_appears_as_a_widget_in_details_seeded_from_the_url(extended) -> None:
    at = AppTest.from_function(_extended_page, default_timeout=scaled(60))
    at.query_params["dropout"] = "0.4"
    at.run()
    assert not at.exception
    widget = at.number_input(key="t.dropout")
    assert widget.label == "Dropout rate" and (widget.min, widget.max) == (0.0, 0.9) and widget.value == 0.4
    assert any(c.value == "dropout 0.4" for c in at.caption)
    widget.set_value(0.2).run()
    assert any(c.value == "dropout 0.2" for c in at.caption)


# -- validation runs once per run ----------------------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch):
    """Counts of validate_config and of the estimate check it runs (each builds a probe model)."""
    counts = {"validate": 0, "check": 0}
    validate, check = pipeline.validate_config, preflight.check_run_config

    def counting_validate(config):
        counts["validate"] += 1
        return validate(config)

    def counting_check(*args, **kwargs):
        counts["check"] += 1
        return check(*args, **kwargs)

    monkeypatch.setattr(pipeline, "validate_config", counting_validate)
    monkeypatch.setattr(pipeline, "check_run_config", counting_check)
    return counts


def test_validate_config_runs_once_per_run(counted, tmp_path) -> None:
    config = RunConfig(method="finetune", params={"epochs": 1}, train=TrainConfig(epochs=1),
                       cache_dir=str(tmp_path / "cache"))
    pipeline.run(config)
    assert counted == {"validate": 1, "check": 1}


def test_validate_config_runs_once_per_cli_run(counted, tmp_path) -> None:
    code = main(["run", "--method", "finetune", "--set", "epochs=1", "--epochs", "1", "--quiet",
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 0 and counted == {"validate": 1, "check": 1}


def test_a_validated_config_is_trusted_and_a_bad_one_still_refused(counted, tmp_path) -> None:
    from unlearn_core.errors import ConfigError

    config = RunConfig(method="retrain", train=TrainConfig(epochs=1), cache_dir=str(tmp_path / "cache"))
    pipeline.validate_config(config)
    pipeline.run(config, validated=True)
    assert counted == {"validate": 1, "check": 1}
    with pytest.raises(ConfigError, match="epochs=-1"):
        pipeline.run(dataclasses.replace(config, train=TrainConfig(epochs=-1)))
    assert counted == {"validate": 2, "check": 1}  # refused by the recipe's own check, before the estimate
