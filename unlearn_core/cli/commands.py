"""The CLI's commands: list datasets, models, methods and the configuration schema; train; run end to end.

Each ``cmd_*`` takes the parsed flags and returns the exit status; :func:`unlearn_core.cli.main` dispatches to them.
Nothing is trained, cached or written before the input has been validated (once: :func:`validate_config`, then
the pipeline trusts it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from unlearn_core.cli.parser import config_from_args

if TYPE_CHECKING:  # listing commands and --help never import the engine (torch)
    from unlearn_core.pipeline import RunConfig


class TqdmProgress:
    """A progress callback: one tqdm bar per stage on a terminal; one plain line per stage otherwise (a pipe, a CI
    log), so that a log still says what ran and when it started."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.stage: str | None = None
        self.terminal = sys.stderr.isatty()

    def __call__(self, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        stage = str(info.get("stage", "work"))
        if not self.terminal:
            if stage != self.stage:
                self.stage = stage
                steps = f" ({info['steps']} steps)" if isinstance(info.get("steps"), int) else ""
                print(f"{stage}{steps}", file=sys.stderr, flush=True)
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            # disable=None: a bar on a terminal, nothing when stderr is a pipe or a CI log.
            self.bar = tqdm(
                total=info.get("steps"), desc=stage, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=None, mininterval=0.2,
            )
        if "step" in info and self.bar is not None:
            self.bar.update(int(info["step"]) - self.bar.n)
        keys = ("iteration", "epoch", "loss", "acc", "grad_norm", "norm")
        postfix = {k: info[k] for k in keys if k in info and info[k] is not None}
        if "iteration" in postfix:  # L-BFGS reports its iteration as the epoch too (for the charts)
            postfix.pop("epoch", None)
        if postfix and self.bar is not None:
            self.bar.set_postfix(
                {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_datasets(args: argparse.Namespace) -> int:
    from unlearn_core.data import DATASETS, missing_files
    from unlearn_core.paths import data_dir

    rows = []
    for info in DATASETS.values():
        missing = missing_files(info.name, data_dir=args.data_dir)
        rows.append({
            "name": info.name, "classes": info.num_classes, "input_shape": list(info.input_shape),
            "available": not missing, "downloadable": info.downloadable, "description": info.description,
        })
    if args.json:
        print(json.dumps({"data_dir": str(data_dir(args.data_dir)), "datasets": rows}, indent=2))
        return 0
    print(f"data directory: {data_dir(args.data_dir)}")
    for row in rows:
        status = "ready" if row["available"] else "missing (downloadable)" if row["downloadable"] else "missing"
        shape = "×".join(map(str, row["input_shape"]))
        print(f"  {row['name']:<14} {row['classes']:>3} classes  {shape:<8} {status:<22} {row['description']}")
    return 0


def models_text(as_json: bool = False) -> str:
    """``models``: one line per model of the registry."""
    from unlearn_core.models import MODELS

    return "\n".join(f"  {info.name:<9} norm default: {info.default_norm:<6} {info.description}"
                     for info in MODELS.values())


def config_text(as_json: bool = False) -> str:
    """``config``: the run configuration's schema (:func:`unlearn_core.settings.run_settings`): every field, its
    type, default, range, help, level, CLI flag, URL key and widget."""
    from unlearn_core.settings import run_settings

    settings = run_settings()
    if as_json:
        return json.dumps({"settings": [s.to_json() for s in settings]}, indent=2)
    lines = []
    for s in settings:
        flag = s.cli or "(no flag)"
        url = f"?{s.url}=" if s.url else "(not in the URL)"
        lines.append(f"{'.'.join((*s.path, s.name)):<20} {flag:<16} {url:<16} [{s.level}] {s.help}")
    return "\n".join(lines)


def methods_text(as_json: bool = False) -> str:
    """``methods``: every unlearner, its family, summary and hyperparameters (``--json``: their schemas)."""
    from unlearn_core.unlearners import list_unlearners

    methods = list_unlearners()
    if as_json:
        return json.dumps({"methods": [cls.describe() for cls in methods]}, indent=2)
    lines = []
    for cls in methods:
        lines.append(f"{cls.name:<20} [{cls.family}] {cls.summary}")
        for p in cls.schema:
            lines.append(f"    --set {p.name}={p.default!s:<10} {p.allowed():<32} {p.help}")
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    from unlearn_core.cli.listing import listing

    print(listing("models", False, models_text))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from unlearn_core.cli.listing import listing

    print(listing("config", args.json, config_text))
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from unlearn_core.cli.listing import listing

    print(listing("methods", args.json, methods_text))
    return 0


def training_lines(training: dict[str, Any]) -> list[str]:
    """One line per trained model: optimiser, iterations, final gradient norm and whether ``grad_tol`` was met."""
    lines = []
    for name in ("original", "retrained"):
        s = training.get(name)
        if not s:
            continue
        unit = "L-BFGS iterations" if s.get("iteration_unit") == "lbfgs_iteration" else "epochs"
        text = f"training {name}: {s.get('optimizer')}, {s.get('iterations')} {unit}, ‖∇‖ = {s.get('grad_norm'):.3g}"
        if s.get("converged") is not None:
            text += (f" ≤ grad_tol {s['grad_tol']:g} (converged)" if s["converged"]
                     else f" > grad_tol {s['grad_tol']:g} (not converged: {s.get('stop_reason')})")
        lines.append(text)
    return lines


def _print_summary(card: dict[str, Any]) -> None:
    from unlearn_core.certificate import certificate_from_card
    from unlearn_core.verdict import verdict_from_card

    for warning in card.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
    verdict = verdict_from_card(card)
    if verdict is not None:  # first: the result in words (unlearn_core.verdict), then the numbers behind it
        print(f"verdict: {verdict.headline}")
        for answer in verdict.answers:
            print(f"  {answer.question} {answer.short}")
    print(f"device: {card['device']}")
    header = f"{'model':<10} {'acc_forget':>10} {'acc_retain':>10} {'acc_test':>10}"
    print(header)
    for name, m in card["models"].items():
        print(f"{name:<10} {m['acc_forget']:>10.4f} {m['acc_retain']:>10.4f} {m['acc_test']:>10.4f}")
    dist = card.get("distance", {})
    for key, value in dist.items():
        if value is not None:
            print(f"{key}: {value:.4f}")
    for line in training_lines(card.get("training") or {}):
        print(line)
    timing = card.get("timing_s", {})
    print("time (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timing.items() if v is not None))
    approx = (card.get("diagnostics") or {}).get("approx_error")
    if approx is not None and dist.get("original_to_retrained"):
        print(f"noise-free estimate to retrained: {approx:.4f} "
              f"({approx / dist['original_to_retrained']:.3g} × the original's distance)")
    cert = certificate_from_card(card)
    if cert is None:
        print(f"certificate: none ({card['method']['family']} method, no (ε, δ) guarantee)")
        return
    print(f"certificate: {cert.headline()}")
    for condition in cert.failing():
        print(f"  fails: {condition.describe()}")
    for constant in cert.soft_constants() if cert.certified else []:
        print(f"  rests on {constant.name} = {constant.value:.4g} ({constant.tag}: {constant.how})"
              if constant.value is not None else f"  rests on {constant.name} ({constant.tag}: {constant.how})")


def _start(config: RunConfig, args: argparse.Namespace) -> TqdmProgress:
    """The entry of ``train`` and ``run``, before any work: validate the configuration (the only time: the pipeline
    is then told ``validated=True``), check the output path (a bad one must cost nothing), fit torch's threads."""
    from unlearn_core.paths import check_output_file
    from unlearn_core.pipeline import validate_config

    params = validate_config(config)
    if args.json is not None:  # '' too: it used to mean "no card" and exit 0
        check_output_file(args.json)
    set_threads(config)
    if not args.quiet:
        print(f"estimate: {run_estimate_line(config, params)}", file=sys.stderr)
    return TqdmProgress(not args.quiet)


def run_estimate_line(config: RunConfig, params: dict[str, Any]) -> str:
    """The run's work (:func:`unlearn_core.preflight.estimate_run`) as a time on this device, the models already
    in the cache counting nothing (:func:`unlearn_core.pipeline.cached_stages`)."""
    try:
        from unlearn_core.device import resolve_device
        from unlearn_core.device_time import calibrate, describe_estimate, stage_seconds
        from unlearn_core.pipeline import cached_stages
        from unlearn_core.preflight import estimate_run
        from unlearn_core.unlearners import get_unlearner

        estimate = estimate_run(config, get_unlearner(config.method), params)
        seconds = stage_seconds(estimate, calibrate(resolve_device(config.device)), cached=cached_stages(config))
        return describe_estimate(seconds, caps=bool(estimate.caps))
    except Exception as exc:  # a measurement must never stop a run
        return f"unavailable ({type(exc).__name__}: {str(exc)[:80]})"


def cmd_train(args: argparse.Namespace) -> int:
    from unlearn_core.device import describe_device
    from unlearn_core.jsonio import write_json_atomic
    from unlearn_core.pipeline import prepare, training_card, versions

    config = dataclasses.replace(config_from_args(args, method="retrain", params={}), compute_retrained=False)
    bar = _start(config, args)
    try:
        prepared = prepare(config, progress=bar, validated=True)
    finally:
        bar.close()
    from unlearn_core.evaluation import evaluate

    loss_train, acc_train = evaluate(prepared.original, prepared.data.x_train, prepared.data.y_train)
    loss_test, acc_test = evaluate(prepared.original, prepared.data.x_test, prepared.data.y_test)
    metrics = {"acc_train": acc_train, "acc_test": acc_test, "loss_train": loss_train, "loss_test": loss_test}
    card = {
        "config": {**{k: v for k, v in config.to_json().items() if k not in ("method", "params", "forget")},
                   "train": prepared.train_config.to_json()},
        "models": {"original": metrics},
        "timing_s": {"train": prepared.timing_s["train"]},
        "cached": {"original": prepared.cached["original"]},
        "training": training_card(prepared),
        "versions": versions(),
        "device": describe_device(prepared.device),
    }
    for note in prepared.notes:
        print(f"warning: {note}", file=sys.stderr)
    cached = " (from the cache)" if prepared.cached["original"] else ""
    print(f"original model: acc_train {acc_train:.4f}, acc_test {acc_test:.4f}; "
          f"trained in {prepared.timing_s['train'] or 0:.2f}s{cached}; device {describe_device(prepared.device)}")
    for line in training_lines(card["training"]):
        print(line)
    if args.json is not None:
        write_json_atomic(args.json, card)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from unlearn_core.jsonio import write_json_atomic
    from unlearn_core.pipeline import run

    config = config_from_args(args)
    bar = _start(config, args)
    try:
        result = run(config, progress=bar, validated=True)
    finally:
        bar.close()
    _print_summary(result.card)
    if args.json is not None:
        write_json_atomic(args.json, result.card)
        print(f"run card written to {args.json}")
    return 0


def set_threads(config: RunConfig) -> None:
    """Give torch the intra-op threads the work size calls for (:func:`unlearn_core.preflight.threads_for`), unless
    the user chose (``OMP_NUM_THREADS`` set). Called after validation, before any work."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    from unlearn_core.preflight import threads_for

    torch.set_num_threads(threads_for(config))
