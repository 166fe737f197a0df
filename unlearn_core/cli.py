"""``python -m unlearn_core``: list datasets and methods, train, and run an unlearner end to end.

Shaped like torchvision's reference scripts: ``get_args_parser()`` builds the parser, ``main(argv)`` runs it.
Bad input (an unknown name, a value out of range, missing data) prints one line ``error: ...`` on stderr and
exits with status 2; nothing is trained, cached or written before the input has been validated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from unlearn_core.errors import ConfigError, DivergenceError

EXIT_USAGE = 2
EXIT_FAILED = 1


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (no usage dump) and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def _hidden(text: str) -> tuple[int, ...]:
    from unlearn_core.models import parse_hidden

    try:
        return parse_hidden(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _optional_float(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'none'") from None


def _download_default() -> bool:
    """Downloading is allowed by default on a normal install; ``UNLEARN_DOWNLOAD=0`` turns it off (CI, offline)."""
    return os.environ.get("UNLEARN_DOWNLOAD", "1").strip().lower() not in ("0", "false", "no", "off")


def add_config_arguments(parser: argparse.ArgumentParser, *, method: bool = True) -> None:
    """The flags that make a :class:`~unlearn_core.pipeline.RunConfig` (shared by ``train``, ``run``, experiments)."""
    from unlearn_core.training import CONVEX_GRAD_TOL, TrainConfig

    d = TrainConfig()
    g = parser.add_argument_group("data and model")
    g.add_argument("--dataset", default="digits", help="dataset name (see 'datasets'); default: digits")
    g.add_argument("--model", default="mlp", help="model name: logreg, mlp, cnn, allcnn, resnet18; default: mlp")
    g.add_argument("--hidden", type=_hidden, default=(32, 32), help="MLP hidden widths, e.g. 32,32")
    g.add_argument("--norm", default="auto", help="normalisation of conv models: auto, none, group, batch")
    g.add_argument("--width", type=int, default=None, help="channel width of cnn/allcnn")
    g.add_argument("--forget", default="random:0.1", help="forget set, e.g. random:0.1, random:1000, class:3, "
                   "class:3,5, class-fraction:3:0.5, indices:1,5,9")
    g.add_argument("--data-dir", default=None, help="dataset root (default: $UNLEARN_DATA_DIR or the user cache)")
    dl = g.add_mutually_exclusive_group()
    dl.add_argument("--download", dest="download", action="store_true", default=_download_default(),
                    help="download missing dataset files (default on; UNLEARN_DOWNLOAD=0 turns it off)")
    dl.add_argument("--no-download", dest="download", action="store_false", help="never download")
    t = parser.add_argument_group("training recipe (original model and retrained oracle)")
    t.add_argument("--optimizer", default=d.optimizer,
                   help="auto, adam, sgd or lbfgs (full-batch L-BFGS, strong-Wolfe line search; ignores --lr, "
                        "--batch-size, --momentum, --epochs). auto (default): lbfgs with --grad-tol "
                        f"{CONVEX_GRAD_TOL:g} for the convex model (logreg), adam for every other model")
    t.add_argument("--lr", type=float, default=d.lr, help=f"learning rate of adam/sgd (default {d.lr})")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs of adam/sgd (default {d.epochs})")
    t.add_argument("--max-iter", type=int, default=d.max_iter,
                   help=f"most L-BFGS iterations (default {d.max_iter})")
    t.add_argument("--grad-tol", type=_optional_float, default=d.grad_tol, metavar="TOL",
                   help="stop training once ‖∇(L(w, D) + wd/2‖w‖²)‖ ≤ TOL on the full training set (checked every "
                        "L-BFGS iteration, every adam/sgd epoch), for the original and the retrained model alike; "
                        "'none' (default, except for auto on logreg): no such rule"),
    t.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    t.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help=f"weight decay (default {d.weight_decay})")
    t.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (default 0.9)")
    t.add_argument("--norm-bound", type=_optional_float, default=d.norm_bound,
                   help="project ‖w‖ onto the C-ball after every step; 'none' disables (default 20)")
    r = parser.add_argument_group("seeds, device, cache")
    r.add_argument("--seed", type=int, default=0, help="initialisation, shuffling and unlearner seed (default 0)")
    r.add_argument("--forget-seed", type=int, default=0, help="seed of the forget-set draw (default 0)")
    r.add_argument("--split-seed", type=int, default=0, help="seed of the digits train/test split (default 0)")
    r.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    r.add_argument("--cache-dir", default=None, help="model cache root (default: $UNLEARN_CACHE_DIR or user cache)")
    r.add_argument("--no-cache", action="store_true", help="train without reading or writing the model cache")
    if method:
        m = parser.add_argument_group("unlearning")
        m.add_argument("--method", default="retrain", help="unlearner name (see 'methods')")
        m.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                       help="set a hyperparameter of the method (repeatable); names from 'methods --json'")


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    """``["lam=0.1", "H=auto"]`` → ``{"lam": "0.1", "H": "auto"}`` (values are parsed by the method's schema)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item!r} is not valid: expected NAME=VALUE, e.g. --set lam=0.01")
        out[name.strip()] = value.strip()
    return out


def config_from_args(args: argparse.Namespace, *, method: str | None = None, params: dict[str, Any] | None = None):
    """Build a :class:`~unlearn_core.pipeline.RunConfig` from parsed flags."""
    from unlearn_core.pipeline import RunConfig
    from unlearn_core.training import TrainConfig

    return RunConfig(
        dataset=args.dataset,
        model=args.model,
        forget=args.forget,
        method=method if method is not None else getattr(args, "method", "retrain"),
        params=params if params is not None else parse_sets(getattr(args, "sets", [])),
        train=TrainConfig(
            optimizer=args.optimizer, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
            weight_decay=args.weight_decay, momentum=args.momentum, norm_bound=args.norm_bound, seed=args.seed,
            grad_tol=args.grad_tol, max_iter=args.max_iter,
        ),
        seed=args.seed,
        forget_seed=args.forget_seed,
        split_seed=args.split_seed,
        hidden=tuple(args.hidden),
        norm=args.norm,
        width=args.width,
        device=args.device,
        data_dir=args.data_dir,
        download=args.download,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
    )


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


def cmd_models(args: argparse.Namespace) -> int:
    from unlearn_core.models import MODELS

    for info in MODELS.values():
        print(f"  {info.name:<9} norm default: {info.default_norm:<6} {info.description}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from unlearn_core.unlearners import list_unlearners

    methods = list_unlearners()
    if args.json:
        print(json.dumps({"methods": [cls.describe() for cls in methods]}, indent=2))
        return 0
    for cls in methods:
        print(f"{cls.name:<20} [{cls.family}] {cls.summary}")
        for p in cls.schema:
            print(f"    --set {p.name}={p.default!s:<10} {p.allowed():<32} {p.help}")
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


def cmd_train(args: argparse.Namespace) -> int:
    from unlearn_core.device import describe_device
    from unlearn_core.jsonio import write_json_atomic
    from unlearn_core.paths import check_output_file
    from unlearn_core.pipeline import prepare, training_card, validate_config, versions

    config = dataclasses.replace(config_from_args(args, method="retrain", params={}), compute_retrained=False)
    validate_config(config)
    if args.json:
        check_output_file(args.json)  # before training: a bad path must cost nothing
    set_threads(config)
    bar = TqdmProgress(not args.quiet)
    try:
        prepared = prepare(config, progress=bar)
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
    cached = " (from the cache)" if prepared.cached["original"] else ""
    print(f"original model: acc_train {acc_train:.4f}, acc_test {acc_test:.4f}; "
          f"trained in {prepared.timing_s['train'] or 0:.2f}s{cached}; device {describe_device(prepared.device)}")
    for line in training_lines(card["training"]):
        print(line)
    if args.json:
        write_json_atomic(args.json, card)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from unlearn_core.jsonio import write_json_atomic
    from unlearn_core.paths import check_output_file
    from unlearn_core.pipeline import run, validate_config

    config = config_from_args(args)
    validate_config(config)
    if args.json:
        check_output_file(args.json)  # before training: a bad path must cost nothing
    set_threads(config)
    bar = TqdmProgress(not args.quiet)
    try:
        result = run(config, progress=bar)
    finally:
        bar.close()
    _print_summary(result.card)
    if args.json:
        write_json_atomic(args.json, result.card)
        print(f"run card written to {args.json}")
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m unlearn_core", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("datasets", help="list datasets and whether their files are present")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="list models")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("methods", help="list unlearners and their hyperparameters")
    p.add_argument("--json", action="store_true", help="print every method's hyperparameter schema as JSON")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("train", help="train (or load from the cache) the original model")
    add_config_arguments(p, method=False)
    p.add_argument("--json", default=None, metavar="PATH", help="write a JSON summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="train, retrain and unlearn; print metrics and write a JSON run card")
    add_config_arguments(p, method=True)
    p.add_argument("--json", default=None, metavar="PATH", help="write the JSON run card here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    from unlearn_core.cli_experiments import add_experiment_commands

    add_experiment_commands(sub)
    return parser


def set_threads(config: Any) -> None:
    """Give torch the intra-op threads the work size calls for (:func:`unlearn_core.limits.threads_for`), unless
    the user chose (``OMP_NUM_THREADS`` set). Called after validation, before any work."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    from unlearn_core.limits import threads_for

    torch.set_num_threads(threads_for(config))


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DivergenceError as exc:
        # Not a usage error, but its cause is a hyperparameter the message names (e.g. LiSSA's scale H).
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
