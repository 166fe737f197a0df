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
    # issue 24: sizes and fractions that round to nothing or to everything, numbers too long to echo, workers
    (["experiment", "forget-size", "--sizes", "1e-9"], ["sizes=1e-09", "(0 of its points)", "at least 1"]),
    (["experiment", "forget-size", "--sizes", "0.9999999"], ["sizes=0.9999999", "(1,437 of its points)"]),
    (["experiment", "forget-size", "--sizes", "1e300"], ["sizes=1e+300", "at most 1,436"]),
    (["experiment", "forget-size", "--sizes", "0.5,718"], ["two sizes give the same number of points (718, 718"]),
    (["run", "--forget", "random:1e-9"], ["random:1e-9", "is 0 points", "or a count"]),
    (["run", "--forget", "random:0.99999"], ["random:0.99999", "is 1,437 points"]),
    (["run", "--forget", "random:" + "9" * 400], ["(407 characters)", "must be below the training-set size"]),
    (["experiment", "compare", "--executor", "processes", "--workers", "1000000", "--methods", "retrain"],
     ["workers=1000000", "usable core"]),
    (["experiment", "compare", "--executor", "processes", "--workers", "0", "--methods", "retrain"], ["workers=0"]),
    (["run", "--json", ""], ["--json '' is empty"]),
    (["train", "--json", ""], ["--json '' is empty"]),
    (["experiment", "compare", "--out", "", "--methods", "retrain"], ["--out '' is empty"]),
    (["run", "--data-dir", ""], ["--data-dir '' is empty"]),
    (["experiment", "compare", "--name", "n" * 300, "--methods", "retrain"], ["file name of 304 bytes", "limit of"]),
]


def _call(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors exit directly
        return int(exc.code)


def _refused(argv: list[str], capsys, fragments: list[str]) -> str:
    """``argv`` exits 2 with exactly one ``error:`` line holding every fragment, no traceback; returns the line."""
    code = _call(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and len(err) < 700, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


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


# -- hostile deep links: every value shortened, unknown keys summarised, shown as plain text (issue 24) ------------

TEN_KB = "A" * 10_000


@pytest.mark.parametrize("key", ["lr", "forget", "dataset", "method", "hidden", "seed", "p.lam", "p.nope",
                                 "p." + TEN_KB])
def test_a_10kb_value_is_never_echoed_whole(key) -> None:
    """Each parameter with a 10 KB value: its one warning stays short (the value abbreviated, its length said)."""
    base = ui_state.UIConfig(method="certified_newton")
    _, _, warnings = ui_state.from_query({key: TEN_KB}, base=base)
    assert len(warnings) == 1 and len(warnings[0]) < 450, (len(warnings[0]), warnings[0][:200])
    assert "characters" in warnings[0]  # what was cut is said, not hidden


def test_many_unknown_hyperparameters_are_one_warning() -> None:
    base = ui_state.UIConfig(method="certified_newton")
    query = {f"p.x{i}": str(i) for i in range(200)}
    _, _, warnings = ui_state.from_query(query, base=base)
    from unlearn_core.unlearners import get_unlearner

    names = ", ".join(p.name for p in get_unlearner("certified_newton").schema)
    full = ("'p.x0'='0', 'p.x1'='1', 'p.x2'='2' and 197 more are not hyperparameters of certified_newton: "
            f"allowed names are {names} — ignored")
    (warning,) = warnings
    if len(full) <= 400:
        assert warning == full
    else:  # a long list of names is cut in its middle, and says so: one line ≤ 400 characters
        head, tail = warning.split(" … (", 1)
        assert full.startswith(head) and full.endswith(tail.split(") … ", 1)[1]) and "characters cut" in tail
        assert len(warning) <= 400 and warning.endswith("— ignored")
    by_method, warnings = ui_state.method_params_from_query({f"p.finetune.y{i}": TEN_KB for i in range(50)})
    assert by_method == {} and len(warnings) == 1 and "and 47 more are not hyperparameters of finetune" in warnings[0]
    assert len(warnings[0]) < 450
    with pytest.raises(Exception, match=r"preset='AAAA.*\(10,000 characters\)"):
        ui_state.parse_preset(TEN_KB)


HOSTILE = {
    "link": "[Your session expired - log in again](https://evil.example/login)",
    "image": "![t](https://tracker.example/pixel.png)",
    "bold": "**Certified: yes**",
    "autolink": "https://evil.example/x",
    "www": "www.evil.example",
    "mail": "admin@evil.example",
    "shortcode": ":material/verified: :red[Works]",
    "html": "<img src=x onerror=alert(1)>",
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_deep_link_value_is_shown_as_plain_text(kind) -> None:
    """The warning about a bad value is rendered by Streamlit as Markdown: the page passes it through
    ``text.plain``, which escapes every markup character and breaks the patterns Streamlit finds after parsing
    (literal autolinks, shortcodes) with an invisible word joiner. Checked here on the text; the browser test
    (tests/test_browser_reliability.py) checks what Chromium draws."""
    from unlearn_core.service.text import JOINER, plain

    _, _, (warning,) = ui_state.from_query({"lr": HOSTILE[kind]}, base=ui_state.UIConfig(method="retrain"))
    shown = plain(warning)
    visible = shown.replace(JOINER, "")
    # every markup character is escaped: removing the escapes gives back the message, character for character
    import re

    assert re.sub(r"\\(.)", r"\1", visible) == warning
    for pattern in ("](", "![", "**", "://", "www.", "@e", ":material/", ":red[", "<img"):
        assert not re.search(r"(?<!\\)" + re.escape(pattern), shown), (pattern, shown)  # none left unescaped


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
    from unlearn_core.service.text import plain

    at = _open({"lr": "1e-7"})
    assert [w.value for w in at.warning] == [
        plain("lr='1e-7' is not valid: expected a number in [1e-06, 10] — using the default 0.001")]
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


# -- output targets, by kind: what a --json, --out or --name path can be (issue 24) --------------------------------
# Each kind builds its target in tmp_path and returns (path, fragments of the one line). Every kind is tried with
# every command that writes a file; the target must be exactly as it was (a FIFO still a FIFO, a link still a link
# to the same place), nothing cached, nothing written.


def _state(path: Path) -> tuple | None:
    """What a path is, to compare before and after: its type bits, a link's target, a file's bytes."""
    import stat

    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISREG(st.st_mode):
        return ("file", path.read_bytes())
    return (stat.S_IFMT(st.st_mode), st.st_rdev)


def _char_device(tmp: Path) -> Path:
    """A character device of our own (the numbers of /dev/null), never the machine's: if the check regressed, the
    write would replace this one."""
    path = tmp / "chardev"
    try:
        os.mknod(path, 0o600 | __import__("stat").S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot create a character device here ({exc})")
    return path


def _symlink(tmp: Path, name: str, to: Path) -> Path:
    path = tmp / name
    path.symlink_to(to)
    return path


TARGET_KINDS = {
    "empty": lambda tmp: ("", ["'' is empty"]),
    "trailing slash": lambda tmp: (str(tmp / "newdir") + "/", ["is a directory"]),
    "existing directory": lambda tmp: (str(tmp), ["is a directory"]),
    "root": lambda tmp: ("/", ["is a directory"]),
    "symlink to a file": lambda tmp: (str(_symlink(tmp, "link.json", tmp / "elsewhere.json")),
                                      ["is a symbolic link", "never replaced"]),
    "dangling symlink": lambda tmp: (str(_symlink(tmp, "dangling.json", tmp / "missing" / "x.json")),
                                     ["is a symbolic link"]),
    "symlink to a directory": lambda tmp: (str(_symlink(tmp, "dirlink", tmp)), ["is a symbolic link"]),
    "named pipe": lambda tmp: (os.mkfifo(tmp / "fifo") or str(tmp / "fifo"), ["is a named pipe (FIFO)"]),
    "character device": lambda tmp: (str(_char_device(tmp)), ["is a character device"]),
    "name too long": lambda tmp: (str(tmp / ("x" * 300 + ".json")), ["a file name of 305 bytes", "limit of 255"]),
    "path too long": lambda tmp: (str(tmp.joinpath(*["d" * 200] * 21, "x.json")), ["the path is", "bytes long"]),
    "parent is a file": lambda tmp: ((tmp / "afile").write_text("x") and str(tmp / "afile" / "x.json"),
                                     ["afile is not a directory"]),
    "under /proc": lambda tmp: ("/proc/unlearn-card.json", ["cannot be written", "in /proc"]),
    "under /sys": lambda tmp: ("/sys/unlearn-card.json", ["cannot be written", "in /sys"]),
}


@pytest.mark.parametrize("command", ["run", "train"])
@pytest.mark.parametrize("kind", list(TARGET_KINDS))
def test_every_kind_of_bad_json_target_is_refused_before_any_work(kind, command, tmp_path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target, fragments = TARGET_KINDS[kind](work)
    before = {p: _state(p) for p in work.iterdir()}
    cache = tmp_path / "cache"
    _refused([command, "--json", target, "--quiet", "--epochs", "1", "--cache-dir", str(cache)], capsys,
             ["--json", *fragments])
    assert not cache.exists()
    assert {p: _state(p) for p in work.iterdir()} == before  # nothing replaced, nothing created


OUT_DIR_KINDS = {k: TARGET_KINDS[k] for k in ("empty", "parent is a file", "name too long", "path too long",
                                              "under /proc", "under /sys")}
OUT_DIR_KINDS["a file"] = lambda tmp: ((tmp / "afile").write_text("x") and str(tmp / "afile"),
                                       ["cannot be used as a directory"])
#: An output *file* of an experiment (``<out>/<stem>.csv|json|html``) that is not a regular file.
OUT_FILE_KINDS = {
    "csv is a directory": ("compare.csv", lambda p: p.mkdir(), ["compare.csv'", "is a directory"]),
    "json is a named pipe": ("compare.json", os.mkfifo, ["compare.json'", "is a named pipe"]),
    "html is a symlink": ("compare.html", lambda p: p.symlink_to(p.parent / "other.html"),
                          ["compare.html'", "is a symbolic link"]),
}


@pytest.mark.parametrize("kind", list(OUT_DIR_KINDS))
def test_every_kind_of_bad_experiment_directory_is_refused_before_any_work(kind, tmp_path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target, fragments = OUT_DIR_KINDS[kind](work)
    before = {p: _state(p) for p in work.iterdir()}
    cache = tmp_path / "cache"
    _refused(["experiment", "compare", "--methods", "retrain", "--out", target, "--quiet", "--cache-dir", str(cache)],
             capsys, ["--out", *fragments])
    assert not cache.exists() and {p: _state(p) for p in work.iterdir()} == before


@pytest.mark.parametrize("kind", list(OUT_FILE_KINDS))
def test_every_output_file_of_an_experiment_is_checked_before_any_work(kind, tmp_path, capsys) -> None:
    """``compare.csv`` a directory used to fail with a traceback after the whole experiment, with the JSON written."""
    out = tmp_path / "out"
    out.mkdir()
    name, make, fragments = OUT_FILE_KINDS[kind]
    make(out / name)
    before = {p: _state(p) for p in out.iterdir()}
    cache = tmp_path / "cache"
    _refused(["experiment", "compare", "--methods", "retrain", "--html", "--out", str(out), "--quiet", "--cache-dir",
              str(cache)], capsys, fragments)
    assert not cache.exists() and {p: _state(p) for p in out.iterdir()} == before


def test_outputs_are_written_all_or_none(tmp_path) -> None:
    """The experiment writer stages every file and renames only when all were written: a failure on the last one
    leaves the first ones untouched and no temporary file behind."""
    from unlearn_core.jsonio import write_files_atomic

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_text("old a")
    (out / "blocker").write_text("a file where a directory is needed")
    with pytest.raises(OSError):
        write_files_atomic({out / "a.csv": "new a", out / "b.json": "new b", out / "blocker" / "c.html": "new c"})
    assert (out / "a.csv").read_text() == "old a" and not (out / "b.json").exists()
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "blocker"]  # no temporary left
    written = write_files_atomic({out / "a.csv": "new a", out / "b.json": b"new b"})
    assert [p.read_text() for p in written] == ["new a", "new b"]
    assert oct((out / "b.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # as a plain open() would


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_an_experiment_writes_its_csv_json_and_an_offline_html_report(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert _call(["experiment", "compare", "--methods", "retrain", "--no-mia", "--no-relearn", "--epochs", "2",
                  "--html", "--out", str(out), "--quiet", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.html", "compare.json"]
    from unlearn_core.report import plotly_js

    report = (out / "compare.html").read_text()
    assert report.count(plotly_js()) == 1  # plotly.js once (its code names a CDN for maps: not this report's)
    rest = report.replace(plotly_js(), "")
    assert rest.count("<script") == 1 + rest.count('class="plotly-graph-div"') > 1
    assert "cdn.plot.ly" not in rest and "<script src" not in rest and "<link" not in rest


# -- directory and file states: the cache, the data ---------------------------------------------------------------

CACHE_KINDS = {
    "empty": lambda tmp: ("", ["--cache-dir '' is empty"]),
    "a file": lambda tmp: ((tmp / "afile").write_text("x") and str(tmp / "afile"), ["is not a directory"]),
    "under a file": lambda tmp: ((tmp / "afile").write_text("x") and str(tmp / "afile" / "cache"),
                                 ["is not a directory"]),
    "under /proc": lambda tmp: ("/proc/unlearn-cache", ["cannot be written", "in /proc"]),
    "under /sys": lambda tmp: ("/sys/unlearn-cache", ["cannot be written", "in /sys"]),
    "read-only": lambda tmp: _read_only(tmp),
}


def _read_only(tmp: Path) -> tuple[str, list[str]]:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory (a read-only mount is /proc's and /sys's row)")
    folder = tmp / "ro"
    folder.mkdir(mode=0o555)
    return str(folder / "cache"), ["cannot be written", "permission denied"]


@pytest.mark.parametrize(("kind", "via"), [(k, v) for k in CACHE_KINDS for v in ("flag", "environment")
                                            if (k, v) != ("empty", "environment")])  # empty variable = unset
def test_every_kind_of_unusable_cache_directory_is_one_line(kind, via, tmp_path, capsys, monkeypatch) -> None:
    """Each was a traceback after the data had loaded (a file, /proc, /sys), or wrote into the current directory
    (``--cache-dir ''``); the dashboard takes its cache from the environment, so both ways are checked."""
    work = tmp_path / "work"
    work.mkdir()
    target, fragments = CACHE_KINDS[kind](work)
    monkeypatch.chdir(work)
    argv = ["run", "--method", "retrain", "--epochs", "1", "--quiet"]
    if via == "flag":
        argv += ["--cache-dir", target]
    else:
        monkeypatch.setenv("UNLEARN_CACHE_DIR", target)
        fragments = ["UNLEARN_CACHE_DIR", *[f for f in fragments if "--cache-dir" not in f]]
    before = {p: _state(p) for p in work.iterdir()}
    err = _refused(argv, capsys, fragments)
    assert "choose a writable directory" in err or "is empty" in err
    assert {p: _state(p) for p in work.iterdir()} == before


@pytest.fixture(scope="module")
def bad_mnist(tmp_path_factory):
    """MNIST as torchvision reads it, but with broken labels: symlinks to the real images, label files rewritten."""
    from unlearn_core.data import missing_files

    if missing_files("mnist"):
        from skips import skip_or_fail

        skip_or_fail("MNIST files are missing in UNLEARN_DATA_DIR")
    real = Path(os.environ["UNLEARN_DATA_DIR"]) / "MNIST" / "raw"

    def make(name: str, train_labels: bytes, test_labels: bytes) -> Path:
        root = tmp_path_factory.mktemp(name)
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for f in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
            (raw / f).symlink_to(real / f)
        (raw / "train-labels-idx1-ubyte").write_bytes(train_labels)
        (raw / "t10k-labels-idx1-ubyte").write_bytes(test_labels)
        return root

    train = bytearray((real / "train-labels-idx1-ubyte").read_bytes())
    test = bytearray((real / "t10k-labels-idx1-ubyte").read_bytes())
    out_of_range = bytearray(train)
    out_of_range[8 + 5] = 12
    test_255 = bytearray(test)
    test_255[8 + 9_999] = 255
    short = bytearray(train[:-1])
    short[4:8] = (59_999).to_bytes(4, "big")  # a consistent header, one label short of the images
    return {
        "train label 12": (make("mnist-label-12", bytes(out_of_range), bytes(test)),
                           ["train label 12 at position 5 is outside 0..9", "download again"]),
        "test label 255": (make("mnist-label-255", bytes(train), bytes(test_255)),
                           ["test label 255 at position 9,999 is outside 0..9"]),
        "one label short": (make("mnist-short", bytes(short), bytes(test)),
                            ["60,000 images but 59,999 labels"]),
    }


@pytest.mark.parametrize("case", ["train label 12", "test label 255", "one label short"])
def test_data_with_bad_labels_is_refused_in_one_line_before_training(case, bad_mnist, tmp_path, capsys) -> None:
    """A label outside the classes was cross-entropy's traceback inside training, with the model cache's lock
    taken; now the loaded data is checked first, and nothing reaches the cache."""
    root, fragments = bad_mnist[case]
    cache = tmp_path / "cache"
    _refused(["run", "--dataset", "mnist", "--data-dir", str(root), "--method", "retrain", "--epochs", "1",
              "--quiet", "--cache-dir", str(cache)], capsys, ["dataset 'mnist'", str(root), *fragments])
    assert not cache.exists() or (not any(cache.rglob("*.pt")) and not any(cache.rglob("*.lock")))


def test_a_cached_model_with_nan_weights_is_retrained_and_said_in_one_line(tmp_path, capsys) -> None:
    """A cache entry full of NaN used to be served as valid; now it is deleted, trained again (to the same weights:
    training is seeded) and the run says so in one warning line, on stderr and in the card."""
    import json

    import torch

    cache = tmp_path / "cache"
    argv = ["run", "--method", "retrain", "--epochs", "2", "--quiet", "--cache-dir", str(cache)]
    assert _call([*argv, "--json", str(tmp_path / "clean.json")]) == 0
    capsys.readouterr()
    entries = sorted((cache / "models").glob("*/*.pt"))
    assert len(entries) == 2  # the original and the retrained model
    payload = torch.load(entries[0], weights_only=True)
    first = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][first].view(-1)[0] = float("nan")
    torch.save(payload, entries[0])
    assert _call([*argv, "--json", str(tmp_path / "healed.json")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "held non-finite weights" in lines[0] and "trained again" in lines[0], err
    clean, healed = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("clean", "healed"))
    assert healed["models"] == clean["models"]  # the same seeded weights again, never the NaN ones
    assert any("non-finite" in w for w in healed["warnings"]) and not clean["warnings"]
    assert all(torch.isfinite(v).all() for e in entries for v in torch.load(e, weights_only=True)["state_dict"].values()
               if v.is_floating_point())
