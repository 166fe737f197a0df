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
import atexit
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from unlearn_core.cli.commands import (
    cmd_config,
    cmd_datasets,
    cmd_methods,
    cmd_models,
    cmd_run,
    cmd_train,
)
from unlearn_core.cli.experiments import add_experiment_commands
from unlearn_core.cli.listing import prefill_listings, stored_help
from unlearn_core.cli.parser import EXIT_FAILED, EXIT_USAGE, OneLineParser, add_config_arguments
from unlearn_core.errors import ConfigError, DivergenceError

#: The commands whose flags are generated from the run configuration's schema (importing it imports torch).
ENGINE_COMMANDS = ("train", "run", "experiment")


def _selected(argv: Sequence[str] | None) -> tuple[str | None, str | None] | None:
    """(command, experiment kind) named by ``argv``; ``None`` for "build every command" (``argv`` not given)."""
    if argv is None:
        return None
    words = [a for a in argv if not a.startswith("-")]
    return (words[0] if words else None, words[1] if len(words) > 1 else None)


def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. With ``argv``, only the command it names gets the schema-generated flags: ``--help`` and
    the listing commands then never import the engine (torch took 3–39 s to import on a loaded machine, for a
    help text). Without ``argv`` every command is complete (for introspection and tests)."""
    selected = _selected(argv)

    def full(command: str, kind: str | None = None) -> bool:
        if selected is None:
            return True
        return selected[0] == command and (kind is None or selected[1] == kind)

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
    if full("train"):
        add_config_arguments(p, method=False)
    p.add_argument("--json", default=None, metavar="PATH", help="write a JSON summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="train, retrain and unlearn; print metrics and write a JSON run card")
    if full("run"):
        add_config_arguments(p, method=True)
    p.add_argument("--json", default=None, metavar="PATH", help="write the JSON run card here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    add_experiment_commands(sub, full=lambda kind: full("experiment", kind))
    return parser


#: Exit status of a command stopped by SIGTERM (128 + 15, as a shell reports it) and by Ctrl-C (128 + 2).
EXIT_TERMINATED, EXIT_INTERRUPTED = 143, 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's ``KeyboardInterrupt`` (a subclass: every ``except`` and
    ``finally`` that stops workers on Ctrl-C stops them on SIGTERM too)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI: parse, dispatch, and turn bad input into one line and exit status 2.

    SIGTERM is handled like SIGINT while the command runs (from the main thread; the previous handler is put back
    after): an experiment on worker processes stopped by ``kill`` used to leave its loky workers running for more
    than ten minutes, holding the caller's pipes; now the same clean-up as Ctrl-C's runs (the executor stops its
    cells and workers) and the command exits with status 143.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding program): leave its signals alone
        previous = None
    try:
        # `run --help`, `experiment audit --help`: from the store, without importing torch (with torch loaded, as in
        # an embedding program, the live parser costs nothing more and sees what was registered at run time)
        stored = None if "torch" in sys.modules else stored_help(argv)
        if stored is not None:
            sys.stdout.write(stored)
            return 0
        prestart_workers_early(argv)  # after the handler: a SIGTERM from here on stops the workers too
        parser = get_args_parser(argv)
        args = parser.parse_args(argv)
        code = int(args.func(args) or 0)
        if code == 0 and args.command in ENGINE_COMMANDS:
            prefill_listings()  # the engine is loaded now: the listing commands will not need to load it
        return code
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DivergenceError as exc:
        # Not a usage error, but its cause is a hyperparameter the message names (e.g. LiSSA's scale H).
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Terminated:
        print("error: terminated (SIGTERM): stopped, workers included; nothing was written", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def prestart_workers_early(argv: Sequence[str]) -> None:
    """``experiment ... --executor processes``: start the worker processes before the full parser is built.

    Why before: building the experiment's parser imports the run configuration's schema, and with it torch (≈ 3 s
    of a 30-s audit on a 2-core machine); workers started after it were still importing when the first cells were
    ready for them. The executor flags are read with the parser of the ``experiment`` command alone (no schema
    flags: ``parse_known_args``, nothing imported), and nothing is said here: a bad flag (or a bad
    ``UNLEARN_PRESTART``) only means no pre-start, and the full parse and the experiment's own
    :func:`~unlearn_core.executors.get_executor` report it in one line before any work.
    """
    if not argv or argv[0] != "experiment" or "processes" not in " ".join(argv):
        return
    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            early, _ = get_args_parser(["experiment"]).parse_known_args(list(argv))
        if getattr(early, "executor", None) == "processes":
            from unlearn_core.executors import get_executor

            get_executor("processes", workers=early.workers, threads_per_cell=early.threads_per_cell).prestart()
    except (SystemExit, ConfigError):
        return


def stop_local_workers() -> None:
    """Stop loky's reusable pool of worker processes, if this process started one (the ``processes`` executor):
    the command is over, and idle workers would otherwise live on for their ten-minute idle timeout."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    pool = getattr(module, "_executor", None) if module is not None else None
    if pool is not None:
        pool.shutdown(wait=True, kill_workers=True)


def exit_now(code: int) -> NoReturn:
    """End the process right after the command: clean-up handlers run, the interpreter's teardown does not.

    Why: a finished run used to exit 2–19 s after its last line. Measured: its ``atexit`` handlers take
    milliseconds, and no thread is left; the time is the interpreter's own teardown of the ≈ 1,500 modules that
    torch, scipy and scikit-learn bring (2 s for a bare ``import torch`` on a loaded 2-core machine, 5.5 s with the
    engine's imports). So: run the ``atexit`` handlers (executors, loky, Ray, temporary files), flush the streams,
    and leave with ``os._exit``. Everything the command writes is written and fsync'd before ``main`` returns.

    Local worker processes are stopped first (:func:`stop_local_workers`): the ordinary exit stops loky's reusable
    pool from ``threading``'s shutdown hook, which runs before ``atexit``; without it, multiprocessing's ``atexit``
    handler would wait for idle workers that only time out after ten minutes.
    """
    try:
        stop_local_workers()
        run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
        if run_exit_handlers is not None:
            run_exit_handlers()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # a handler failed, or stdout is a closed pipe: leave the slow, ordinary way
        sys.exit(code)
    os._exit(code)
