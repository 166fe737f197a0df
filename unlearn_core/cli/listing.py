"""The listing commands' text (``models``, ``methods``, ``config``) and the help of the commands whose flags come
from the run configuration's schema (``train``, ``run``, each ``experiment``), kept so that neither imports torch.

Why: these commands print what the registries declare — the models, the unlearners and their hyperparameter
schemas, the run configuration's schema — but the registries live in modules that import torch (a model is an
``nn.Module``, a method's file is its maths), which took 3 s on an idle 2-core machine and 37–39 s on a loaded
one, to print a list. So the text is computed once, the first time a process has the engine loaded anyway (a
``run``, a ``train``, an ``experiment``: :func:`prefill_listings`; or the first listing itself), and stored in the
cache directory under a key of the package's source files (path, size, modification time), the Python version and
the ``UNLEARN_*`` environment. Any edit of the package, an upgrade or another environment is another key, so a
listing is never stale: a missing entry is computed (importing torch, once) and stored.

A cache directory that cannot be written only costs the speed: the text is then computed every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def listing_key() -> str:
    """A digest of everything the listings depend on: each source file of the package (path, size, mtime), the
    Python version, and the ``UNLEARN_*`` variables (e.g. ``UNLEARN_DOWNLOAD`` changes a default)."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        digest.update(f"{path.relative_to(PACKAGE)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for name in sorted(k for k in os.environ if k.startswith("UNLEARN_") and k != "UNLEARN_CACHE_DIR"):
        digest.update(f"{name}={os.environ[name]}\n".encode())
    return digest.hexdigest()[:32]


def listing_file() -> Path:
    from unlearn_core.paths import cache_dir

    return cache_dir() / "cli-listings" / f"{listing_key()}.json"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(path: Path, entries: dict[str, str]) -> None:
    try:
        from unlearn_core.jsonio import write_files_atomic

        write_files_atomic({path: json.dumps(entries, indent=1)})
    except Exception:  # a read-only or broken cache only costs speed
        pass


def help_commands() -> list[tuple[str, ...]]:
    """The commands whose ``--help`` builds the schema's flags (and so imports torch): ``train``, ``run`` and each
    ``experiment`` subcommand."""
    from unlearn_core.cli.experiments import EXPERIMENT_COMMANDS

    return [("train",), ("run",), *(("experiment", kind) for kind in EXPERIMENT_COMMANDS)]


def _help_name(words: Sequence[str]) -> str:
    """The stored help's name: its command words and the terminal width argparse formats for."""
    return f"help {' '.join(words)} @{shutil.get_terminal_size().columns}"


def help_text(words: Sequence[str]) -> str:
    """What ``python -m unlearn_core *words --help`` prints, from the full parser."""
    from unlearn_core.cli import get_args_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        get_args_parser(list(words)).parse_args([*words, "--help"])
    return out.getvalue()


def stored_help(argv: Sequence[str]) -> str | None:
    """The help text for ``argv`` when it asks for one of :func:`help_commands`' help and nothing else (``run
    --help``, ``experiment audit -h``): stored, else computed with every listing and stored. ``None`` for any other
    ``argv`` (the parser answers it: a help that needs no schema, an error, a command)."""
    if len(argv) not in (2, 3) or argv[-1] not in ("-h", "--help"):
        return None
    words = tuple(argv[:-1])
    if words[0] not in ("train", "run", "experiment") or (words[0] == "experiment") != (len(words) == 2):
        return None
    from unlearn_core.cli.experiments import EXPERIMENT_COMMANDS

    if words[0] == "experiment" and words[1] not in EXPERIMENT_COMMANDS:
        return None
    path = listing_file()
    entries = _read(path)
    name = _help_name(words)
    if name not in entries:
        entries = _fill(path, entries)
    return entries.get(name)


def _wanted() -> dict[str, tuple[Callable[[bool], str], bool]]:
    from unlearn_core.cli.commands import config_text, methods_text, models_text

    listings: dict[str, tuple[Callable[[bool], str], bool]] = {
        f"{c}{' --json' if j else ''}": (f, j)
        for c, f, flags in (("models", models_text, (False,)), ("methods", methods_text, (False, True)),
                            ("config", config_text, (False, True)))
        for j in flags}
    for words in help_commands():
        listings[_help_name(words)] = (lambda _as_json, words=words: help_text(words), False)
    return listings


def _fill(path: Path, entries: dict[str, str]) -> dict[str, str]:
    """Every listing missing from ``entries`` computed (the engine is loaded for the first one anyway) and stored."""
    missing = {name: produce(as_json) for name, (produce, as_json) in _wanted().items() if name not in entries}
    if missing:
        entries = {**entries, **missing}
        _store(path, entries)
    return entries


def listing(command: str, as_json: bool, produce: Callable[[bool], str]) -> str:
    """The text of ``command`` (``--json`` or not): stored, else computed with every other listing (which imports
    the engine, once) and stored. ``produce`` computes it where it is not one of the stored listings."""
    name = f"{command}{' --json' if as_json else ''}"
    path = listing_file()
    if "torch" in sys.modules:
        # The engine is loaded already: the store would save nothing, and the live registry and schema are the truth
        # (a method or a setting registered at run time, in this process, is listed). A missing store is filled.
        if not path.exists():
            _fill(path, {})
        return produce(as_json)
    entries = _read(path)
    if name not in entries:
        entries = _fill(path, entries)
    return entries[name] if name in entries else produce(as_json)


def prefill_listings() -> None:
    """Store every listing now, if they are not stored yet — called after a command that loaded the engine, so that
    the next ``methods`` or ``config`` costs no import. Never raises."""
    try:
        path = listing_file()
        _fill(path, _read(path))
    except Exception:
        pass
