"""The CLI's parser pieces: the run configuration's flags, generated from its schema (:mod:`unlearn_core.config`).

Every flag of ``train``, ``run`` and the ``experiment`` subcommands that makes a
:class:`~unlearn_core.pipeline.RunConfig` comes from :func:`unlearn_core.settings.run_settings`: its name, type,
default and help are declared once, on the dataclass. The flags only convert text to the field's type (an integer,
a number or ``none``, a tuple of widths); every range and name is checked afterwards by
:func:`unlearn_core.pipeline.validate_config`, so that the message is the engine's one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from unlearn_core.config import CLI_GROUPS, Setting, build
from unlearn_core.errors import ConfigError

if TYPE_CHECKING:  # the schema imports the engine (torch): only the commands that run it load it
    from unlearn_core.pipeline import RunConfig

EXIT_USAGE = 2
EXIT_FAILED = 1


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (no usage dump) and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def _text_type(s: Setting) -> Any:
    """The argparse ``type`` of a setting: text → the field's type, nothing more (ranges are checked later)."""
    if s.type is tuple and s.parse is not None:
        def parse(text: str) -> Any:
            try:
                return s.parse(text)
            except ConfigError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return parse
    if s.type in (int, float):
        if not s.optional:
            return s.type

        def optional(text: str) -> Any:
            if text.strip().lower() in ("none", "off", ""):
                return None
            try:
                return s.type(text)
            except ValueError:
                kind = "an integer" if s.type is int else "a number"
                raise argparse.ArgumentTypeError(f"{text!r} is not {kind} or 'none'") from None
        return optional
    return None  # a string stays a string


def add_setting_argument(group: Any, s: Setting) -> None:
    """One setting's flag(s) in ``group``: ``--x VALUE``; a bool ``--x``/``--no-x``, or only ``--no-x``."""
    default = s.cli_default() if s.cli_default is not None else s.default
    if s.type is bool:
        if s.cli.startswith("--no-"):
            group.add_argument(s.cli, dest=s.name, action="store_false", default=default, help=s.help)
            return
        pair = group.add_mutually_exclusive_group()
        pair.add_argument(s.cli, dest=s.name, action="store_true", default=default, help=s.help)
        pair.add_argument("--no-" + s.cli[2:], dest=s.name, action="store_false", help=f"the opposite of {s.cli}")
        return
    kwargs: dict[str, Any] = {"dest": s.name, "default": default, "help": s.help}
    if (kind := _text_type(s)) is not None:
        kwargs["type"] = kind
    if s.cli_metavar:
        kwargs["metavar"] = s.cli_metavar
    group.add_argument(s.cli, **kwargs)


def add_config_arguments(parser: argparse.ArgumentParser, *, method: bool = True) -> None:
    """The flags that make a :class:`~unlearn_core.pipeline.RunConfig` (shared by ``train``, ``run``, experiments),
    one per setting with a ``cli`` flag, in :data:`~unlearn_core.config.CLI_GROUPS`; ``method=False`` leaves out
    the "unlearning" group (``--method``, ``--set``)."""
    from unlearn_core.settings import run_settings

    settings = [s for s in run_settings() if s.cli is not None or s.name == "params"]
    for title in CLI_GROUPS:
        if title == CLI_GROUPS[3] and not method:
            continue
        group = parser.add_argument_group(title)
        for s in settings:
            if s.cli_group != title:
                continue
            if s.name == "params":  # the method's own schema parses them: NAME=VALUE, repeatable
                group.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                                   help="set a hyperparameter of the method (repeatable); names from 'methods --json'")
            else:
                add_setting_argument(group, s)


def parse_sets(items: Sequence[str]) -> dict[str, str]:
    """``["lam=0.1", "H=auto"]`` → ``{"lam": "0.1", "H": "auto"}`` (values are parsed by the method's schema)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item!r} is not valid: expected NAME=VALUE, e.g. --set lam=0.01")
        out[name.strip()] = value.strip()
    return out


def config_from_args(args: argparse.Namespace, *, method: str | None = None,
                     params: dict[str, Any] | None = None) -> RunConfig:
    """Build a :class:`~unlearn_core.pipeline.RunConfig` from parsed flags (every setting with a flag)."""
    from unlearn_core import settings as run_schema
    from unlearn_core.settings import run_settings

    values = {s.name: getattr(args, s.name) for s in run_settings() if s.cli is not None and hasattr(args, s.name)}
    values["method"] = method if method is not None else getattr(args, "method", "retrain")
    values["params"] = params if params is not None else parse_sets(getattr(args, "sets", []))
    if isinstance(values.get("hidden"), list):
        values["hidden"] = tuple(values["hidden"])
    return build(run_schema.run_config_class(), values, seed=values.get("seed", 0))
