"""``python -m unlearn_core``: list datasets, models, methods and the configuration schema, train, run an unlearner
end to end, and run the paper experiments.

Shaped like torchvision's reference scripts: :func:`get_args_parser` builds the parser, :func:`main` runs it. The
run configuration's flags are generated from its schema (:mod:`unlearn_core.cli.parser`); the commands are in
:mod:`unlearn_core.cli.commands`, the ``experiment`` subcommands in :mod:`unlearn_core.cli.experiments`. Bad input
(an unknown name, a value out of range, missing data) prints one line ``error: ...`` on stderr and exits with
status 2; nothing is trained, cached or written before the input has been validated.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from unlearn_core.cli.commands import (
    cmd_config,
    cmd_datasets,
    cmd_methods,
    cmd_models,
    cmd_run,
    cmd_train,
)
from unlearn_core.cli.experiments import add_experiment_commands
from unlearn_core.cli.parser import EXIT_FAILED, EXIT_USAGE, OneLineParser, add_config_arguments
from unlearn_core.errors import ConfigError, DivergenceError


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

    p = sub.add_parser("config", help="the run configuration's schema: every field, its flag, URL key and range")
    p.add_argument("--json", action="store_true", help="print the schema as JSON")
    p.set_defaults(func=cmd_config)

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

    add_experiment_commands(sub)
    return parser


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
