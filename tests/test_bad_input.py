"""The bad-input table: every row exits with status 2 and one line naming the value, before any work.

Through the product, as a user types it: ``python -m unlearn_core ...`` (in-process ``main``, plus one real
subprocess), and the dashboard's deep-link parser. For every CLI row: exit status 2, exactly one stderr line
starting ``error:``, no traceback, the expected fragments (the value, and for the memory/compute rows the
estimate and the limit), nothing cached, nothing written. The first rows are the 14 that got a traceback, were
accepted, or were refused only after training when issue 15 was filed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from timeouts import scaled

from unlearn_core.cli import main
from unlearn_core.service import ui_state

ROOT = Path(__file__).resolve().parents[1]
HUGE = "99999999999999999999999"
LONG_INDICES = "indices:" + ",".join(map(str, range(10_000)))

# (argv after the command, fragments every one of which the error line contains)
ISSUE_ROWS = [
    (["run", "--model", "cnn", "--width", "100000"], ["width=100000", "720 GB", "[1, 4,096]"]),
    (["run", "--model", "allcnn", "--width", "100000"], ["width=100000", "[1, 4,096]"]),
    (["run", "--method", "certified_newton", "--set", "reps=1000", "--set", "batch=100000"],
     ["reps=1000", "batch=100000", "needs an estimated", "TB of memory", "above the limit"]),
    (["run", "--json", "/dev/null/x.json"], ["/dev/null/x.json", "/dev/null is not a directory"]),
    (["train", "--json", "/dev/null/x.json"], ["/dev/null/x.json", "/dev/null is not a directory"]),
    (["experiment", "compare", "--out", "/dev/null/x", "--methods", "finetune"], ["/dev/null/x", "not a directory"]),
    (["run", "--seed", HUGE], [f"seed={HUGE}", "[0, 4,294,967,295]"]),
    (["run", "--forget-seed", HUGE], [f"forget_seed={HUGE}", "[0, 4,294,967,295]"]),
    (["run", "--split-seed", HUGE], [f"split_seed={HUGE}", "[0, 4,294,967,295]"]),
    (["run", "--forget", "class-fraction:3,4:0.5"], ["class-fraction:3,4:0.5", "exactly one class"]),
    (["experiment", "sequential", "--requests", "1000"], ["requests=1000", "144 points"]),
    (["experiment", "audit", "--runs", "0"], ["runs=0", "[8, 1,000,000]"]),
    (["experiment", "audit", "--runs-per-cell", "0"], ["runs_per_cell=0"]),
    (["experiment", "audit", "--methods", "finetune"], ["'finetune' cannot be audited"]),
    (["experiment", "audit", "--sigma-factors", "0"], ["sigma_factors=[0.0]"]),
    (["experiment", "forget-size", "--sizes", "2000"], ["sizes=2000", "at most 1,436"]),
    (["experiment", "forget-size", "--sizes", "0"], ["size 0.0"]),
    (["experiment", "frontier", "--epsilons", "0"], ["epsilon"]),
    (["experiment", "frontier", "--methods", "finetune"], ["'finetune' has no 'epsilon' hyperparameter"]),
    (["run", "--batch-size", str(10**22)], [f"batch_size={10**22}", "[1, 65,536]"]),
    (["experiment", "compare", "--relearn-max-steps", "-1", "--methods", "finetune"],
     ["relearn-max-steps=-1", "[1, 100,000]"]),
]

MORE_ROWS = [
    (["run", "--dataset", "foo"], ["unknown dataset 'foo'"]),
    (["run", "--model", "bar"], ["unknown model 'bar'"]),
    (["run", "--method", "baz"], ["unknown method 'baz'"]),
    (["run", "--forget", "random:0.0"], ["strictly between 0 and 1"]),
    (["run", "--forget", "random:1.0"], ["strictly between 0 and 1"]),
    (["run", "--forget", "random:nan"], ["neither a fraction nor a count"]),
    (["run", "--forget", "random:1437"], ["count 1437 must be below the training-set size (digits: 1437)"]),
    (["run", "--forget", "class:12"], ["class 12 is not in this dataset"]),
    (["run", "--forget", "class:3,99"], ["class 99 is not in this dataset (digits: classes 0..9)"]),
    (["run", "--forget", "class:-1"], ["class -1 is not in this dataset"]),
    (["run", "--forget", "indices:"], ["the index list is empty"]),
    (["run", "--forget", "indices:5000"], ["index 5000 is out of range (digits: training positions 0..1436)"]),
    (["run", "--forget", LONG_INDICES + ",99999"], ["(48,903 characters)", "index 1437 is out of range"]),
    (["run", "--forget", "everything"], ["missing 'kind:' prefix"]),
    (["run", "--epochs", "-3"], ["epochs=-3"]),
    (["run", "--epochs", "100000"], ["epochs=100000", "[0, 1,000]"]),
    (["run", "--lr", "fast"], ["invalid float value: 'fast'"]),
    (["run", "--lr", "1e-7"], ["lr=1e-07", "[1e-06, 10]"]),
    (["run", "--lr", "nan"], ["lr=nan"]),
    (["run", "--lr", "1e309"], ["lr=inf"]),
    (["run", "--weight-decay", "5"], ["weight_decay=5.0", "[0, 1]"]),
    (["run", "--momentum", "1"], ["momentum=1.0", "[0, 1)"]),
    (["run", "--norm-bound", "1e9"], ["norm_bound=1000000000.0", "[0.001, 1e+06]"]),
    (["run", "--batch-size", "0"], ["batch_size=0"]),
    (["run", "--max-iter", str(10**9)], [f"max_iter={10**9}", "[0, 100,000]"]),
    (["run", "--grad-tol", "1e9"], ["grad_tol=1000000000.0", "(0, 1000]"]),
    (["run", "--device", "tpu"], ["device 'tpu' is not valid"]),
    (["run", "--hidden", "32,x"], ["hidden='32,x' is not valid: expected 1-8 widths in [1, 4096]"]),
    (["run", "--hidden", "0"], ["hidden='0' is not valid"]),
    (["run", "--model", "cnn", "--width", "0"], ["width=0", "[1, 4,096]"]),
    (["run", "--model", "allcnn", "--width", "4000"],
     ["width=4000", "needs an estimated", "GB of memory", "largest part: parameters", "above the limit"]),
    (["run", "--norm", "layer", "--model", "cnn"], ["norm 'layer' is not valid"]),
    (["run", "--set", "nope=1"], ["unknown hyperparameter 'nope'"]),
    (["run", "--set", "epochs=ten"], ["epochs='ten' is not valid"]),
    (["run", "--set", "epochs"], ["expected NAME=VALUE"]),
    (["run", "--method", "certified_newton", "--set", "lam=-1"], ["lam=", "expected a number in [0"]),
    (["run", "--method", "certified_newton", "--set", "reps=1001"], ["reps=", "[1, 1000]"]),
    (["run", "--method", "certified_newton", "--set", "solver=magic"], ["solver='magic'", "one of lissa, exact, cg"]),
    (["run", "--method", "certified_newton", "--set", "depth=1000000", "--set", "reps=1000", "--set", "batch=100"],
     ["depth=1000000", "needs an estimated", "above the limit"]),
    (["run", "--method", "finetune", "--set", "batch_size=100000"], ["batch_size=", "[1, 65536]"]),
    (["run", "--dataset", "mnist", "--data-dir", "/nonexistent/data", "--no-download"], ["expected MNIST/raw/"]),
    (["run", "--json", "/"], ["'/' is a directory"]),
    (["experiment", "compare", "--methods", "nope"], ["unknown method 'nope'"]),
    (["experiment", "compare", "--seeds", "0,0"], ["seeds='0,0'", "distinct"]),
    (["experiment", "compare", "--seeds", f"0,{HUGE}"], [f"seed={HUGE}"]),
    (["experiment", "compare", "--set", "lam=1"], ["expected METHOD.NAME=VALUE"]),
    (["experiment", "sequential", "--method", "finetune"], ["no 'requests' hyperparameter"]),
    (["experiment", "sequential", "--requests", "0"], ["requests=0"]),
    (["experiment", "sensitivity", "--param", "nope"], ["unknown hyperparameter 'nope'"]),
    (["experiment", "sensitivity", "--param", "reps", "--values", "1,1000", "--set", "batch=100000"],
     ["reps=1000", "needs an estimated", "above the limit"]),
    (["experiment", "budget", "--budgets", "-1"], ["budgets=-1", "[0, 1,000]"]),
    (["experiment", "audit", "--alpha", "1.5"], ["alpha=1.5"]),
    (["experiment", "audit", "--statistic", "foo"], ["statistic='foo'"]),
    (["experiment", "audit", "--method", "finetune"], ["cannot be audited"]),
    (["experiment", "audit", "--sigma-factors", "-1"], ["sigma_factors=[-1.0]"]),
    (["experiment", "audit", "--runs", "10000000"], ["runs=10000000"]),
    (["experiment", "compare", "--name", "../../x"], ["--name '../../x' is not valid"]),
    (["experiment", "compare", "--out", "/proc/unlearn"], ["--out '/proc/unlearn' cannot be written", "in /proc"]),
]


def _call(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors exit directly
        return int(exc.code)


@pytest.mark.parametrize(("argv", "fragments"), ISSUE_ROWS + MORE_ROWS,
                         ids=[" ".join(argv)[:70] for argv, _ in ISSUE_ROWS + MORE_ROWS])
def test_bad_cli_input_exits_2_with_one_line_before_any_work(argv, fragments, tmp_path, capsys) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    extra = ["--quiet", "--cache-dir", str(cache)]
    if argv[0] in ("run", "train") and "--json" not in argv:
        extra += ["--json", str(out / "card.json")]
    if argv[0] == "experiment" and "--out" not in argv:
        extra += ["--out", str(out)]
    code = _call([*argv, *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert len(err) < 700, f"the line is {len(err)} characters long"
    assert not cache.exists() and not out.exists()  # nothing trained, cached or written


def test_estimate_names_the_value_the_estimate_and_the_limit(tmp_path, capsys, monkeypatch) -> None:
    """The paper's MNIST MLP with LiSSA reps=100 × batch=1000 fits this machine, so validation accepts it; under a
    1 GB limit the CLI refuses it, and its one line has the values, the estimate and the limit."""
    from unlearn_core import limits, preflight
    from unlearn_core.pipeline import RunConfig, validate_config
    from unlearn_core.unlearners import get_unlearner

    config = RunConfig(dataset="mnist", method="certified_newton", params={"reps": 100, "batch": 1000})
    params = validate_config(config)  # a few GB: not an absurd value
    estimate = preflight.estimate_run(config, get_unlearner("certified_newton"), params).memory_bytes
    assert 2e9 < estimate < 6e9  # indices 1.6 GB + one (100 × 1000)-point HVP batch ≈ 1.4 GB + data
    monkeypatch.setenv("UNLEARN_MEMORY_LIMIT_GB", "1")
    code = _call(["run", "--dataset", "mnist", "--method", "certified_newton", "--set", "reps=100", "--set",
                  "batch=1000", "--quiet", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "reps=100" in err and "batch=1000" in err, err
    assert f"needs an estimated {limits.format_bytes(estimate)} of memory" in err
    assert "above the limit 1 GB (UNLEARN_MEMORY_LIMIT_GB)" in err
    assert not (tmp_path / "cache").exists()


def test_download_failure_names_its_cause_and_removes_what_it_created(tmp_path, capsys, monkeypatch) -> None:
    """No network here, and none needed: the mirror is a closed local port, so the download fails the same way."""
    from torchvision import datasets

    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    data = tmp_path / "data"
    code = _call(["run", "--dataset", "mnist", "--data-dir", str(data), "--download", "--quiet", "--cache-dir",
                  str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "Error downloading train-images-idx3-ubyte.gz: tried http://127.0.0.1:9/, got" in err
    assert "Connection refused" in err or "urlopen error" in err
    assert not data.exists()  # the MNIST/raw folders it made are gone
    assert not (tmp_path / "cache").exists()


def test_module_entry_point_reports_one_line_without_traceback(tmp_path) -> None:
    """One row as a real process (what a shell user sees), with the deadline scaled for a loaded machine."""
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "unlearn_core", "run", "--model", "cnn", "--width", "100000"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=scaled(120),
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "width=100000" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists()


# -- the dashboard's deep links (ui_state is the URL parser every page uses) -------------------------------------

URL_ROWS = [
    ({"forget": "class:99"}, "class 99 is not in this dataset (digits: classes 0..9)", "forget", "random:0.1"),
    ({"forget": "class:3,99"}, "class 99 is not in this dataset", "forget", "random:0.1"),
    ({"dataset": "synthetic", "forget": "class:5"}, "class 5 is not in this dataset (synthetic: classes 0..3)",
     "forget", "random:0.1"),
    ({"forget": "class-fraction:3,4:0.5"}, "exactly one class", "forget", "random:0.1"),
    ({"forget": "indices:5000"}, "index 5000 is out of range", "forget", "random:0.1"),
    ({"forget": LONG_INDICES}, "(48,897 characters)", "forget", "random:0.1"),
    ({"lr": "1e-7"}, "lr='1e-7' is not valid: expected a number in [1e-06, 10]", "lr", 1e-3),
    ({"lr": "1e309"}, "lr='1e309' is not valid", "lr", 1e-3),
    ({"C": "1e-4"}, "C='1e-4' is not valid: expected a number in [0.001, 1e+06]", "norm_bound", 20.0),
    ({"seed": HUGE}, f"seed='{HUGE}' is not valid: expected an integer in [0, 4294967295]", "seed", 0),
    ({"batch_size": "1e22"}, "batch_size='1e22' is not valid", "batch_size", 128),
    ({"epochs": "-1"}, "epochs='-1' is not valid", "epochs", 20),
    ({"dataset": "../../etc/passwd"}, "dataset='../../etc/passwd' is not valid", "dataset", "digits"),
    ({"method": "<script>alert(1)</script>"}, "method='<script>alert(1)</script>' is not valid", "method", None),
    ({"hidden": "32-99999"}, "hidden='32-99999' is not valid", "hidden", (32, 32)),
    ({"p." + "x" * 5000: "1"}, "characters)", "params", None),
]


@pytest.mark.parametrize(("query", "fragment", "field", "fallback"), URL_ROWS,
                         ids=[str(list(q))[:40] for q, *_ in URL_ROWS])
def test_bad_deep_link_warns_once_and_falls_back(query, fragment, field, fallback) -> None:
    base = ui_state.UIConfig(method=ui_state.default_method())
    cfg, _, warnings = ui_state.from_query(query, base=base)
    assert len(warnings) == 1 and fragment in warnings[0], warnings
    assert "\n" not in warnings[0] and len(warnings[0]) < 700
    if fallback is not None:
        assert getattr(cfg, field) == fallback


# -- the same deep links in the running app (AppTest): one warning, the widget shows the fallback ------------------


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    import streamlit as st

    from unlearn_core.service.jobs import shutdown_all

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    yield
    shutdown_all(timeout=scaled(60))
    st.cache_resource.clear()


def _open(query: dict[str, str]):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60))
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.usefixtures("fresh_app")
@pytest.mark.parametrize("spec", ["class:99", "class:3,99", LONG_INDICES + ",5000"])
def test_bad_forget_deep_link_warns_and_falls_back_in_the_app(spec) -> None:
    """``?forget=class:99`` used to become class 0 without a word (the widget reset it)."""
    at = _open({"forget": spec})
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1, warnings
    assert "is not in this dataset" in warnings[0] or "out of range" in warnings[0], warnings
    assert "using the default random:0.1" in warnings[0] and len(warnings[0]) < 700
    assert at.session_state["explore.fkind"] == "random" and at.session_state["explore.famount"] == 0.1
    assert at.query_params["forget"] in ("random:0.1", ["random:0.1"])  # the URL says what runs


@pytest.mark.usefixtures("fresh_app")
def test_out_of_range_lr_warns_instead_of_being_clamped_by_the_widget() -> None:
    at = _open({"lr": "1e-7"})
    assert [w.value for w in at.warning] == [
        "lr='1e-7' is not valid: expected a number in [1e-06, 10] — using the default 0.001"]
    assert at.number_input(key="explore.lr").value == pytest.approx(1e-3)


@pytest.mark.usefixtures("fresh_app")
def test_every_value_the_url_accepts_is_shown_unchanged_by_its_widget() -> None:
    """The URL parser and the widgets read the same limits: each bound, deep-linked, reaches the widget as is."""
    from unlearn_core import limits

    query = {"lr": "1e-06", "wd": "1", "C": "0.001", "batch_size": "65536", "epochs": "1000",
             "seed": str(limits.MAX_SEED), "forget_seed": str(limits.MAX_SEED)}
    at = _open(query)
    assert not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert ss["explore.lr"] == 1e-6 and ss["explore.wd"] == 1.0 and ss["explore.C"] == 0.001
    assert ss["explore.batch_size"] == 65536 and ss["explore.epochs"] == 1000
    assert ss["explore.seed"] == limits.MAX_SEED and ss["explore.forget_seed"] == limits.MAX_SEED
    widgets = {w.key: w for w in at.number_input}
    assert (widgets["explore.lr"].min, widgets["explore.lr"].max) == limits.LR_RANGE
    assert (widgets["explore.C"].min, widgets["explore.C"].max) == limits.NORM_BOUND_RANGE
    assert widgets["explore.batch_size"].max == limits.MAX_BATCH_SIZE
    assert widgets["explore.epochs"].max == limits.MAX_EPOCHS and widgets["explore.seed"].max == limits.MAX_SEED
