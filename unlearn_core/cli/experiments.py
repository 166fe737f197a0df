"""``python -m unlearn_core experiment compare|sequential|sensitivity|budget|audit|forget-size|frontier ...``.

Each subcommand builds a :class:`~unlearn_core.pipeline.RunConfig` from the shared flags, runs one function of
:mod:`unlearn_core.experiments`, prints the seed-averaged summary and writes ``<out>/<name>.csv`` (the tidy rows),
``<out>/<name>.json`` (configuration, rows, summary, versions) and, with ``--html``, ``<out>/<name>.html`` (a
self-contained report with every figure; it opens offline). Every output is checked before any work and written
all or none.
Bad input raises :class:`~unlearn_core.errors.ConfigError` before anything is trained; :func:`unlearn_core.cli.main`
prints it as
one line and exits with status 2.

``experiment compare --scores challenge,tow,ulira`` adds the field's scores (:mod:`unlearn_core.field_evaluation`):
N released and N retrained models per method (``--models``), M U-LiRA shadows (``--shadows``), optionally the
audit (``--audit-runs``); it writes ``<name>_per_example.csv`` and, with ``--html``, the certified-vs-attacked figure.

Hyperparameters: ``--set NAME=VALUE`` for single-method experiments, ``--set METHOD.NAME=VALUE`` for compare,
budget, audit, forget-size and frontier (several methods).

Every subcommand takes the executor flags (:mod:`unlearn_core.executors`): ``--executor serial|processes|ray``,
``--workers N``, ``--address ray://HOST:10001`` (or ``RAY_ADDRESS``), ``--gpus-per-cell 0.25``,
``--threads-per-cell``. Progress is one line per finished cell on stderr: cells done / total, cells per second,
ETA. Only this process writes the output files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from unlearn_core.cli.commands import set_threads
from unlearn_core.cli.parser import OneLineParser, add_config_arguments, config_from_args, parse_sets
from unlearn_core.errors import ConfigError, abbreviate


def _csv(text: str, cast: Any, what: str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r} is empty: expected a comma-separated list of {what}")
    try:
        return [cast(t) for t in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {what}") from None


def _ints(text: str) -> list[int]:
    return _csv(text, int, "integers")


def _floats(text: str) -> list[float]:
    return _csv(text, float, "numbers")


def _names(text: str) -> list[str]:
    return _csv(text, str, "names")


def _method_sets(items: list[str], methods: list[str]) -> dict[str, dict[str, str]]:
    """``["certified_newton.depth=100"]`` → ``{"certified_newton": {"depth": "100"}}``."""
    out: dict[str, dict[str, str]] = {m: {} for m in methods}
    for item in items:
        head, sep, _ = item.partition("=")
        method, dot, name = head.partition(".")
        if not sep or not dot or not name.strip():
            raise ConfigError(f"--set {item!r} is not valid: expected METHOD.NAME=VALUE, e.g. --set finetune.lr=0.01")
        method = method.strip()
        if method not in out:
            raise ConfigError(f"--set {item!r} names method {method!r}, which is not among {', '.join(methods)}")
        out[method].update(parse_sets([item[len(method) + 1:]]))
    return out


def _common(p: argparse.ArgumentParser, full: bool = True) -> None:
    if full:
        add_config_arguments(p, method=False)
    e = p.add_argument_group("experiment")
    e.add_argument("--seeds", type=_ints, default=[0], help="comma-separated seeds, e.g. 0,1,2 (default 0)")
    e.add_argument("--out", default="experiments", help="output directory for CSV/JSON (default ./experiments)")
    e.add_argument("--name", default=None, help="file name stem (default: the experiment's name)")
    e.add_argument("--html", action="store_true", help="also write <name>.html: a self-contained report with every "
                   "figure (opens offline)")
    e.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    x = p.add_argument_group("execution (where the experiment's independent cells run)")
    x.add_argument("--executor", default="serial", help="serial (default), processes (local worker processes) or "
                   "ray (a local Ray, or a cluster with --address)")
    x.add_argument("--workers", type=int, default=None, help="worker processes (processes) or CPUs of a local Ray "
                   "(default: all cores)")
    x.add_argument("--address", default=None, help="Ray cluster address, e.g. ray://HOST:10001 (default: "
                   "$RAY_ADDRESS, else a local Ray)")
    x.add_argument("--gpus-per-cell", type=float, default=0.0, help="GPUs per cell with ray, fractional allowed "
                   "(e.g. 0.25: four cells share a GPU)")
    x.add_argument("--threads-per-cell", type=int, default=None, help="torch threads per cell (default 1 in "
                   "workers; serial leaves torch's setting)")
    x.add_argument("--connect-timeout", type=float, default=None, help="seconds to reach a Ray cluster, probe and "
                   "ray.init together (default $UNLEARN_RAY_TIMEOUT, else 30)")
    x.add_argument("--max-retries", type=int, default=3, help="times a cell whose worker was lost is run again "
                   "(default 3; finished cells are kept)")


#: The ``experiment`` subcommands, in the order the help lists them (``add_experiment_commands`` adds each).
EXPERIMENT_COMMANDS = ("compare", "sequential", "sensitivity", "budget", "audit", "forget-size", "frontier")


def add_experiment_commands(subparsers: Any, *, full: Any = lambda kind: True) -> None:
    """Add ``experiment`` with its seven subcommands to the CLI's subparsers; ``full(kind)`` says whether a
    subcommand gets its schema-generated flags (only the one being run needs them: they import the engine)."""
    exp = subparsers.add_parser("experiment", help="run a paper experiment over seeds and write CSV/JSON")
    sub = exp.add_subparsers(dest="experiment", required=True, parser_class=OneLineParser)

    p = sub.add_parser("compare", help="methods vs retraining: accuracy, distance, MIA, relearn time, wall time")
    _common(p, full("compare"))
    p.add_argument("--methods", type=_names, default=["certified_newton", "finetune"],
                   help="comma-separated method names (default certified_newton,finetune)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.NAME=VALUE",
                   help="a hyperparameter of one method (repeatable)")
    p.add_argument("--no-mia", action="store_true", help="skip membership inference")
    p.add_argument("--no-relearn", action="store_true", help="skip relearn time")
    p.add_argument("--relearn-max-steps", type=int, default=200, help="cap on relearn steps (default 200)")
    s = p.add_argument_group("the field's scores (many models per method, as cells on the executor)")
    s.add_argument("--scores", default=None, metavar="challenge,tow,ulira",
                   help="add the NeurIPS 2023 challenge score (challenge), tug-of-war (tow) and U-LiRA (ulira), "
                        "and each certificate read against the attacks")
    s.add_argument("--models", type=int, default=16, help="N: released and retrained models per method (default 16; "
                   "the challenge used 512)")
    s.add_argument("--shadows", type=int, default=16, help="M: U-LiRA's shadow models per method (even, default 16)")
    s.add_argument("--audit-runs", type=int, default=0, help="also audit every certified method with this many runs "
                   "per arm (0 = no audit, default)")
    s.add_argument("--alpha", type=float, default=0.05, help="1 − confidence of the attacks' lower bounds")
    s.add_argument("--models-per-cell", type=int, default=4, help="models per cell (default 4)")
    s.add_argument("--no-controls", action="store_true", help="skip the controls (doing nothing, a second retraining)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("sequential", help="k removal requests in a row (Zhang et al. Fig. 3)")
    _common(p, full("sequential"))
    p.add_argument("--method", default=None, help="a method with a 'requests' hyperparameter (default: the first "
                   "such method of the registry)")
    p.add_argument("--requests", type=int, default=10, help="number of requests k (default 10)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--no-retrain-each-step", action="store_true",
                   help="skip retraining per step (only the last step's actual error is then measured)")
    p.set_defaults(func=cmd_sequential)

    p = sub.add_parser("sensitivity", help="sweep one numeric hyperparameter (Zhang et al. Fig. 4)")
    _common(p, full("sensitivity"))
    p.add_argument("--method", default="certified_newton")
    p.add_argument("--param", default="lam", help="the hyperparameter to sweep (default lam)")
    p.add_argument("--values", type=_floats, default=[1e-3, 1e-2, 1e-1, 1.0], help="comma-separated values")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--mia", action="store_true", help="also run membership inference per value")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("budget", help="accuracy vs unlearning budget in epochs (Koloskova et al. Fig. 1)")
    _common(p, full("budget"))
    p.add_argument("--methods", type=_names, default=["noisy_finetune"], help="methods (retrain is always added)")
    p.add_argument("--budgets", type=_ints, default=[1, 2, 5, 10], help="comma-separated epoch budgets")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.NAME=VALUE")
    p.set_defaults(func=cmd_budget)

    p = sub.add_parser("audit", help="every certified method: empirical lower bound on ε vs the certified (ε, δ), "
                                     "per-example ε and LiRA, from many runs of the unlearner and the noisy retrain")
    _common(p, full("audit"))
    p.add_argument("--methods", type=_names, default=None,
                   help="certified methods to audit (default: every certified method of the registry)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.NAME=VALUE")
    p.add_argument("--sigma-factors", type=_floats, default=[1.0],
                   help="audited σ = factor × the method's σ (1 = as certified; e.g. 1,1e-6 adds an under-noised "
                        "run)")
    p.add_argument("--runs", type=int, default=100, help="independent runs per arm (unlearned, noisy retrain; "
                   "default 100; half choose the test, half count its errors)")
    p.add_argument("--runs-per-cell", type=int, default=10, help="runs per cell (default 10)")
    p.add_argument("--statistic", default="auto", help="auto, projection or direction (white-box) or forget_loss "
                   "(black-box)")
    p.add_argument("--alpha", type=float, default=0.05, help="1 − confidence of the bounds")
    p.add_argument("--mode", default="runs", choices=("runs", "one-run"), help="runs: many runs of both arms "
                   "(default); one-run: one unlearning run with many canaries (Steinke, Nasr & Jagielski 2023)")
    p.add_argument("--canaries", type=int, default=None, help="one-run: canaries inserted then deleted or never "
                   "inserted, by a fair coin (default 256)")
    p.add_argument("--guesses", type=int, default=None, help="one-run: guesses on each side (default 32)")
    p.add_argument("--allow-weak", action="store_true", help="run even when the design cannot show the claimed ε "
                   "(by default such an audit is refused before any work, naming the runs it needs)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("forget-size", help="cost, accuracy and the certificate as the forget set grows")
    _common(p, full("forget-size"))
    p.add_argument("--methods", type=_names, default=None,
                   help="comma-separated method names (default: every certified method of the registry)")
    p.add_argument("--sizes", type=_floats, default=[10, 50, 100, 200],
                   help="forget-set sizes: counts ≥ 1 or fractions < 1 (default 10,50,100,200)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.NAME=VALUE")
    p.set_defaults(func=cmd_forget_size)

    p = sub.add_parser("frontier", help="privacy–utility frontier: each certified method's accuracy against ε")
    _common(p, full("frontier"))
    p.add_argument("--methods", type=_names, default=None,
                   help="certified methods with an epsilon (default: every registered one)")
    p.add_argument("--epsilons", type=_floats, default=[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0],
                   help="comma-separated ε values (default 0.1,0.3,1,3,10,30,100)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="METHOD.NAME=VALUE",
                   help="a hyperparameter of one method (repeatable), e.g. --set certified_newton.lam=1")
    p.set_defaults(func=cmd_frontier)


# ----------------------------------------------------------------------------------------------------------------


def _outputs(args: argparse.Namespace, out: Path) -> list[Path]:
    """Every file the command will write: ``<out>/<stem>.csv``, ``.json`` and, with ``--html``, ``.html``."""
    stem = args.name or args.experiment.replace("-", "_")
    return [out / f"{stem}.{ext}" for ext in ("csv", "json", *(("html",) if args.html else ()))]


def _base(args: argparse.Namespace):
    """The validated base configuration; the experiment's own arguments and every output path are checked here too,
    so that a bad one costs nothing (issue 15: ``--requests 1000`` and ``--trials 0`` were refused after training;
    issue 24: an output that was a directory, or a 300-character ``--name``, failed after all the work)."""
    from unlearn_core.experiment_options import check_experiment_options
    from unlearn_core.paths import check_output_dir, check_output_file
    from unlearn_core.pipeline import validate_config

    config = config_from_args(args, method="retrain", params={})
    validate_config(config)
    default_methods(args)
    name = args.name
    if name is not None and (not name.strip() or Path(name).name != name or name in (".", "..")):
        raise ConfigError(f"--name {abbreviate(args.name)} is not valid: expected a file name stem without '/', "
                          "e.g. run1")
    out = check_output_dir(args.out)
    for path in _outputs(args, out):
        check_output_file(path, flag="--out/--name")
    check_workers(args)
    options = vars(args)
    if args.experiment == "audit":
        options = {**options, "mode": args.mode.replace("-", "_")}
    check_experiment_options(args.experiment, config, options, runs=_runs(args))
    set_threads(config)
    return config


def default_methods(args: argparse.Namespace) -> None:
    """Fill the method flags left out from the registry's capabilities, never from a list of names: ``audit`` and
    ``forget-size`` take every certified method, ``frontier`` every certified method with a target ε
    (``Unlearner.epsilon_param``), ``sequential`` the first method that serves requests in a row
    (``Unlearner.sequential``). Done here, not as argparse defaults, so that ``--help`` never imports the engine."""
    from unlearn_core.experiments import certified_methods, frontier_methods
    from unlearn_core.unlearners import methods_with

    kind = args.experiment
    if kind in ("audit", "forget-size", "frontier") and not args.methods:
        args.methods = frontier_methods() if kind == "frontier" else certified_methods()
    if kind == "sequential" and args.method is None:
        serving = methods_with("sequential")
        if not serving:
            raise ConfigError("experiment sequential needs a method with a 'requests' hyperparameter: none is "
                              "registered")
        args.method = serving[0]


def check_workers(args: argparse.Namespace) -> None:
    """``--workers`` at most the cores of this machine for the local executors (:func:`limits.check_workers`):
    ``--workers 1000000`` started a million loky processes at once."""
    from unlearn_core.limits import check_workers as check

    if args.workers is not None and not (args.executor == "ray" and (args.address or os.environ.get("RAY_ADDRESS"))):
        check(args.workers)


def _runs(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """The (method, hyperparameters) pairs the experiment will run, for the memory and compute check."""
    kind = args.experiment
    if kind in ("compare", "budget"):
        methods = list(dict.fromkeys([*args.methods, "retrain"])) if kind == "budget" else list(args.methods)
        sets = _method_sets(args.sets, methods)
        return [(m, sets[m]) for m in methods]
    if kind in ("audit", "forget-size", "frontier"):
        methods = list(args.methods)  # filled from the registry by default_methods when left out
        sets = _method_sets(args.sets, methods)
        if kind == "frontier":  # each method runs at every ε of the grid, under its own name for ε
            from unlearn_core.experiments import check_frontier_args
            from unlearn_core.unlearners import get_unlearner

            check_frontier_args(methods=methods, epsilons=args.epsilons, params=sets)
            return [(m, {**sets[m], get_unlearner(m).epsilon_param: str(e)}) for m in methods for e in args.epsilons]
        return [(m, sets[m]) for m in methods]
    params = parse_sets(args.sets)
    if kind == "sequential":
        return [(args.method, {**params, "requests": str(args.requests)})]
    if kind == "sensitivity":
        return [(args.method, {**params, args.param: str(v)}) for v in args.values]
    return [(args.method, params)]


def _executor(args: argparse.Namespace):
    from unlearn_core.executors import get_executor

    return get_executor(args.executor, workers=args.workers, address=args.address,
                        gpus_per_cell=args.gpus_per_cell, threads_per_cell=args.threads_per_cell,
                        max_retries=args.max_retries, connect_timeout_s=args.connect_timeout)


def estimate_line(estimate: Any, base: Any) -> str:
    """The estimate as a time on this device (:mod:`unlearn_core.device_time`), or its work where it cannot be
    measured."""
    try:
        from unlearn_core.device import resolve_device
        from unlearn_core.device_time import calibrate, describe_estimate, stage_seconds

        seconds = stage_seconds(estimate, calibrate(resolve_device(base.device)))
        return describe_estimate(seconds, caps=bool(estimate.caps))
    except Exception as exc:  # a measurement must never stop a run
        return f"{estimate.flops:.3g} floating-point operations in {estimate.steps:,.0f} steps (no time: {exc})"


class CellProgress:
    """One stderr line per finished cell (at most about one a second): phase, cells done / total, rate, ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0

    def __call__(self, info: dict[str, Any]) -> None:
        import time

        if self.enabled and info.get("stage") == "plan":  # where the cells ran and why, a lost worker
            print(f"  {info.get('message', '')}", file=sys.stderr)
            return
        if not self.enabled or info.get("stage") != "cells":
            return
        done, total = info.get("step", 0), info.get("steps", 0)
        now = time.monotonic()
        if done not in (0, total) and now - self.last < 1.0:
            return
        self.last = now
        rate, eta = info.get("cells_per_s"), info.get("eta_s")
        parts = [f"  {info.get('phase', 'cells')}: {done}/{total} cells"]
        if rate:
            parts.append(f"{rate:.2f} cells/s")
        if eta is not None and done < total:
            parts.append(f"ETA {eta:.0f} s")
        print(" · ".join(parts), file=sys.stderr)


def _progress(args: argparse.Namespace) -> CellProgress | None:
    return None if args.quiet else CellProgress(True)


def _run(args: argparse.Namespace, fn: Any, *fn_args: Any, **kwargs: Any) -> Any:
    """Call an experiment on the chosen executor (validated first), closing what the executor started.

    Before any work, the whole experiment's work is estimated (every cell's training and method), refused when far
    beyond the limits, and — unless ``--quiet`` — said as a time on this device."""
    from unlearn_core.experiment_options import check_experiment_estimate

    base = fn_args[0]
    options = {**kwargs, **({"methods": fn_args[1]} if len(fn_args) > 1 else {})}
    estimate = check_experiment_estimate(fn.__name__, base, **{"seeds": (base.seed,), **options})
    if not args.quiet:
        print(f"estimate: {estimate_line(estimate, base)}", file=sys.stderr)
    executor = _executor(args)
    if not args.quiet:
        print(f"executor: {executor.describe()}", file=sys.stderr)
    try:
        return fn(*fn_args, progress=_progress(args), executor=executor, **kwargs)
    finally:
        args.executor_report = executor.report()  # where the cells ran and why: the JSON's "executor"
        executor.close()


def _write(
    args: argparse.Namespace, name: str, df: Any, *, base: Any, by: list[str], extra: dict[str, Any]
) -> None:
    """Print the summary; write CSV, JSON and (optionally) a self-contained HTML report, all or none
    (:func:`unlearn_core.jsonio.write_files_atomic`). ``base``: the command's validated config."""
    import pandas as pd

    from unlearn_core import report
    from unlearn_core.experiments import summarize
    from unlearn_core.jsonio import json_text, write_files_atomic
    from unlearn_core.pipeline import versions
    from unlearn_core.plots import experiment_figures

    summary = summarize(df, by=by) if len(df) else pd.DataFrame()
    paths = _outputs(args, Path(args.out).expanduser())
    payload = {
        "experiment": name, "config": base.to_json(), "seeds": args.seeds, **extra,
        "executor": {"name": args.executor, "plans": getattr(args, "executor_report", [])},
        "rows": df.to_dict(orient="records"), "summary": summary.to_dict(orient="records"), "versions": versions(),
    }
    files: dict[Path, str] = {paths[0]: df.to_csv(index=False), paths[1]: json_text(payload)}
    if args.html:
        figures = experiment_figures(name, df) if len(df) else {}
        sections = [("Configuration", report.json_block({k: v for k, v in payload.items()
                                                           if k not in ("rows", "summary")})),
                    ("Summary over seeds", summary.to_html(index=False, na_rep="—") if len(summary) else
                     "<p>(no rows)</p>")]
        files[paths[2]] = report.html_document(f"unlearn-explorer: experiment {name} ({paths[0].stem})", sections,
                                               figures, tail=[("Rows", df.to_html(index=False, na_rep="—"))])
    written = write_files_atomic(files)
    cols = [c for c in summary.columns if c.endswith("_mean") and any(
        k in c for k in ("acc_", "dist_to_retrained", "mia_loss_auc", "time_s", "delta_bound", "epsilon", "grad_norm",
                         "lira", "approx_error"))]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(summary[by + cols].to_string(index=False) if len(summary) else "(no rows)")
    print("written: " + ", ".join(str(p) for p in written))


def cmd_compare(args: argparse.Namespace) -> int:
    from unlearn_core.experiments import compare

    base = _base(args)
    params = _method_sets(args.sets, args.methods)
    if args.scores is None:
        df = _run(args, compare, base, args.methods, params=params, seeds=args.seeds, mia=not args.no_mia,
                  relearn=not args.no_relearn, relearn_max_steps=args.relearn_max_steps)
        _write(args, "compare", df, base=base, by=["method"], extra={"methods": args.methods, "params": params})
        return 0
    from unlearn_core import field_evaluation as fe

    options = {"models": args.models, "shadows": args.shadows, "audit_runs": args.audit_runs, "alpha": args.alpha,
               "models_per_cell": args.models_per_cell, "controls": not args.no_controls}
    _, _, scores = fe.check_evaluate_args(methods=args.methods, params=params, scores=args.scores,
                                          **{k: v for k, v in options.items() if k != "controls"})
    df = _run(args, compare, base, args.methods, params=params, seeds=args.seeds, mia=not args.no_mia,
              relearn=not args.no_relearn, relearn_max_steps=args.relearn_max_steps)
    many = None
    if set(scores) - {"tow"}:  # ToW alone needs no more models than compare's
        many = _run(args, fe.evaluate, base, args.methods, params=params, scores=scores, **options)
    df = fe.with_scores(df, many, scores)
    extra: dict[str, Any] = {"methods": args.methods, "params": params, "scores": scores, **options}
    if many is not None:
        extra["evaluation"] = fe.summary_table(many).to_dict(orient="records")
        extra["per_example"] = fe.per_example_table(many).to_dict(orient="records")
    _write(args, "compare", df, base=base, by=["method"], extra=extra)
    if many is not None:
        _write_scores(args, many)
    return 0


def _write_scores(args: argparse.Namespace, many: Any) -> None:
    """The field's scores: a per-example CSV, the certified-vs-attacked figure (``--html``) and one line per
    method — its score and its certificate read against the attacks."""
    import pandas as pd

    from unlearn_core import field_evaluation as fe
    from unlearn_core.plots_evaluation import certified_vs_attacked_figure

    out, stem = Path(args.out), args.name or "compare"
    written = [out / f"{stem}_per_example.csv"]
    fe.per_example_table(many).to_csv(written[0], index=False)
    if args.html:
        fig = certified_vs_attacked_figure(many)
        if fig is not None:
            written.append(out / f"{stem}_certified_vs_attacked.html")
            fig.write_html(written[-1], include_plotlyjs="cdn")
    cols = [c for c in ("method", "challenge_forget_score", "challenge_final", "tow", "ulira_auc",
                        "ulira_epsilon_lower", "epsilon_certified", "attacked_epsilon") if c in many.columns]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(fe.summary_table(many)[cols].to_string(index=False))
    for _, row in many.iterrows():
        print(f"{row['method']}: {row['reading_text']}")
    print("written: " + ", ".join(str(p) for p in written))


def cmd_sequential(args: argparse.Namespace) -> int:
    from unlearn_core.experiments import sequential

    base = _base(args)
    params = parse_sets(args.sets)
    df = _run(args, sequential, base, requests=args.requests, method=args.method, params=params, seeds=args.seeds,
              retrain_each_step=not args.no_retrain_each_step)
    _write(args, "sequential", df, base=base, by=["step"],
           extra={"method": args.method, "params": params, "requests": args.requests})
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from unlearn_core.experiments import sensitivity

    base = _base(args)
    params = parse_sets(args.sets)
    df = _run(args, sensitivity, base, method=args.method, param=args.param, values=args.values, params=params,
              seeds=args.seeds, mia=args.mia)
    _write(args, "sensitivity", df, base=base, by=["value"],
           extra={"method": args.method, "param": args.param, "params": params})
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from unlearn_core.experiments import budget

    base = _base(args)
    methods = list(dict.fromkeys([*args.methods, "retrain"]))
    params = _method_sets(args.sets, methods)
    df = _run(args, budget, base, methods=methods, budgets=args.budgets, params=params, seeds=args.seeds)
    _write(args, "budget", df, base=base, by=["method", "budget_epochs"], extra={"methods": methods, "params": params})
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from unlearn_core.experiments import audit, audit_power, certified_methods

    base = _base(args)
    methods = args.methods or certified_methods()  # filled by default_methods
    params = _method_sets(args.sets, methods)
    mode = args.mode.replace("-", "_")
    if not args.quiet:  # what this design can show, before any work
        for power in audit_power(methods=methods, params=params, runs=args.runs, alpha=args.alpha, mode=mode,
                                 canaries=args.canaries, guesses=args.guesses):
            print(("" if power.can_refute else "warning: ") + power.message(mode=mode, runs=args.runs),
                  file=sys.stderr)
    df = _run(args, audit, base, methods=methods, params=params, sigma_factors=args.sigma_factors, runs=args.runs,
              seeds=args.seeds, statistic=args.statistic, alpha=args.alpha, runs_per_cell=args.runs_per_cell,
              mode=mode, canaries=args.canaries, guesses=args.guesses, allow_weak=args.allow_weak)
    _write(args, "audit", df, base=base, by=["method", "sigma_factor"],
           extra={"methods": methods, "params": params, "sigma_factors": args.sigma_factors, "runs": args.runs,
                  "mode": mode, "canaries": args.canaries, "guesses": args.guesses})
    return 0


def cmd_forget_size(args: argparse.Namespace) -> int:
    from unlearn_core.experiments import forget_size

    base = _base(args)
    params = _method_sets(args.sets, args.methods)
    df = _run(args, forget_size, base, methods=args.methods, sizes=args.sizes, params=params, seeds=args.seeds)
    _write(args, "forget_size", df, base=base, by=["method", "n_forget"],
           extra={"methods": args.methods, "params": params, "sizes": args.sizes})
    return 0


def cmd_frontier(args: argparse.Namespace) -> int:
    from unlearn_core.experiments import frontier, frontier_methods
    from unlearn_core.verdict import THRESHOLDS, frontier_first_epsilon

    base = _base(args)
    methods = args.methods or frontier_methods()  # filled by default_methods
    params = _method_sets(args.sets, methods)
    df = _run(args, frontier, base, methods=methods, epsilons=args.epsilons, params=params, seeds=args.seeds)
    _write(args, "frontier", df, base=base, by=["method", "epsilon"],
           extra={"methods": methods, "epsilons": args.epsilons, "params": params})
    points = 100 * THRESHOLDS.accuracy_points
    for method, mark in frontier_first_epsilon(df).items():
        if mark.first is None:
            print(f"{method}: always more than {points:g} points below retraining on this ε grid")
        elif mark.stays:
            print(f"{method}: at most {points:g} points below retraining from ε = {mark.first:g} on")
        else:
            print(f"{method}: at most {points:g} points below retraining from ε = {mark.first:g}, more again at "
                  f"ε = {mark.leaves_at:g}")
    return 0
