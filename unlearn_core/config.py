"""The run configuration's schema: every field of ``RunConfig``/``TrainConfig`` declared once, with everything the
surfaces need to offer it.

Each user-settable field of :class:`unlearn_core.pipeline.RunConfig` and :class:`unlearn_core.training.TrainConfig`
is declared with :func:`setting` instead of a bare default: its type, range (the numbers of
:mod:`unlearn_core.limits`), help, level (``basic``: the dashboard's setup row; ``advanced``: its "Details"
expander), CLI flag, URL key, widget kind and label. :func:`unlearn_core.settings.run_settings` collects them, and
from that one list

* the CLI's flags and the configuration they build (:mod:`unlearn_core.cli.parser`),
* the dashboard's URL (de)serialisation and its flat configuration (:mod:`unlearn_core.service.ui_state`),
* the dashboard's widgets (``dashboard/widgets.py``), and
* ``python -m unlearn_core config --json``

are generated. Adding a field is one edit — a ``setting(...)`` on the dataclass — plus its test
(``tests/test_config_schema.py`` shows the shape: a field added there appears as a CLI flag, a URL key and a
widget). The per-method hyperparameters have their own schema of the same kind
(:class:`unlearn_core.unlearners.HyperParam`); ``params`` is the one field that carries them.

This module is a low layer: it imports nothing of the engine but :mod:`unlearn_core.errors`, so the dataclasses
that declare their fields with it can import it; :mod:`unlearn_core.settings`, above the pipeline, collects them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from unlearn_core.errors import ConfigError, abbreviate

#: The metadata key under which :func:`setting` stores a field's declaration.
SETTING_KEY = "unlearn_core.setting"
#: ``basic``: the dashboard's setup row (dataset, model, forget set, method); ``advanced``: the "Details" expander.
LEVELS = ("basic", "advanced")
#: How the dashboard shows a field: ``select`` (a choice), ``number``, ``text`` (parsed by ``parse``), ``checkbox``
#: (a ``bool``), ``custom``
#: (drawn by hand: the forget set's kind + amount/classes, the method, the hyperparameters), or ``None`` (no widget:
#: paths and cache switches).
WIDGETS = ("select", "number", "text", "checkbox", "custom", None)
#: The CLI's argument groups, in ``--help`` order.
CLI_GROUPS = ("data and model", "training recipe (original model and retrained oracle)", "seeds, device, cache",
              "unlearning")


@dataclass(frozen=True)
class Setting:
    """One field of the run configuration, as every surface offers it.

    Attributes:
        name: the attribute name (also the flat name of the dashboard's configuration and of ``config --json``).
        type: ``int``, ``float``, ``str``, ``bool``, ``tuple`` (parsed from text by ``parse``) or ``dict`` (``params``).
        help: one sentence for ``--help`` and ``config --json``.
        level: ``basic`` or ``advanced`` (:data:`LEVELS`).
        default: the dataclass's default (``default_factory()`` for a mutable one), filled in by :func:`settings_of`.
        path: where the field lives: ``()`` on ``RunConfig``, ``("train",)`` on its ``TrainConfig``.
        low, high: the inclusive numeric range (``None``: unbounded); ``low_open``/``high_open`` exclude an end.
        optional: ``None`` is a value (spelled ``none`` in the CLI and the URL).
        choices: the allowed strings, or a function returning them (registries that grow: datasets, models).
        parse: text → value for a field that is neither a number nor a choice (``hidden``, ``forget``); raises
            :class:`ConfigError`.
        fmt: value → text for the URL and the widget (default :func:`format_value`).
        cli: the flag (``--weight-decay``), ``None``: not on the command line. A ``bool`` gets ``--x``/``--no-x``;
            one named ``--no-x`` only that (it sets the field to False).
        cli_group: one of :data:`CLI_GROUPS`.
        cli_default: a function giving the CLI's default where it differs from the dataclass's (downloads).
        cli_metavar: the flag's metavar.
        url: the query key (``wd``, ``C``), ``None``: not in a deep link.
        widget: one of :data:`WIDGETS`.
        label: the widget's label.
        widget_help: the widget's tooltip (text, or a function returning it); ``None``: no tooltip.
        key: the widget's session-state key under the page prefix (default: the URL key, else the name).
        row, column: where an ``advanced`` field sits in the "Details" expander (row 0: widths and seeds; row 1:
            the training recipe; four columns each). A ``basic`` one takes the setup row's ``column``.
        toggle: for an optional number: the checkbox label that switches the value on (off: ``None``).
        toggle_key, toggle_help: that checkbox's key suffix and tooltip.
        placeholder: the number an optional widget shows while switched off.
        step: the number input's step.
        visible: ``visible(values)`` → whether the widget shows, given the setup row's values by name
            (``hidden`` only for the MLP); a field whose widget is not shown keeps its default.
    """

    name: str
    type: type
    help: str
    level: str = "advanced"
    default: Any = None
    path: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    parse: Callable[[str], Any] | None = None
    fmt: Callable[[Any], str] | None = None
    cli: str | None = None
    cli_group: str = CLI_GROUPS[0]
    cli_default: Callable[[], Any] | None = None
    cli_metavar: str | None = None
    url: str | None = None
    widget: str | None = None
    label: str | None = None
    widget_help: str | Callable[[], str] | None = None
    key: str | None = None
    row: int = 0
    column: int = 0
    toggle: str | None = None
    toggle_key: str | None = None
    toggle_help: str | None = None
    placeholder: Any = None
    step: float | None = None
    visible: Callable[[Mapping[str, Any]], bool] | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"setting {self.name!r}: level={self.level!r} is not one of {', '.join(LEVELS)}")
        if self.widget not in WIDGETS:
            raise ValueError(f"setting {self.name!r}: widget={self.widget!r} is not one of {WIDGETS}")
        if self.cli is not None and self.cli_group not in CLI_GROUPS:
            raise ValueError(f"setting {self.name!r}: cli_group={self.cli_group!r} is not one of {CLI_GROUPS}")

    # -- the values ---------------------------------------------------------------------------------------------

    @property
    def widget_key(self) -> str:
        """The widget's key under the page prefix (``explore.<key>``): the URL key unless set otherwise."""
        return self.key or self.url or self.name

    def allowed_choices(self) -> list[str]:
        """The allowed strings of a choice field (evaluated now: registries can grow)."""
        choices = self.choices() if callable(self.choices) else self.choices
        return list(choices or ())

    def range_text(self) -> str:
        """``[0, 1)``, ``(0, 1000]``… as the error messages write a range."""
        return (f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}")

    def format(self, value: Any) -> str:
        """The value as the URL and the widgets write it."""
        return self.fmt(value) if self.fmt is not None else format_value(value)

    def parse_text(self, text: str, *, name: str | None = None) -> Any:
        """A URL value (text) → the field's value; :class:`ConfigError` naming ``name`` (the URL key) and what is
        allowed. The ranges are the engine's own (``limits``), so a value accepted here is never refused or clamped
        later by a widget."""
        name = name or self.url or self.name
        if self.optional and text.strip().lower() in ("none", "null", ""):
            return None
        if self.parse is not None:
            return self.parse(text)
        if self.choices is not None:
            return parse_choice(name, text, self.allowed_choices())
        if self.type is bool:
            return parse_bool(name, text)
        if self.type is int:
            return parse_int(name, text, low=int(self.low), high=int(self.high), optional=self.optional)
        if self.type is float:
            return parse_float(name, text, low=self.low, high=self.high, low_open=self.low_open,
                               high_open=self.high_open, optional=self.optional)
        return text

    def to_json(self) -> dict[str, Any]:
        """The declaration as ``config --json`` prints it (choices evaluated, functions left out)."""
        return {
            "name": self.name, "path": ".".join((*self.path, self.name)), "type": self.type.__name__,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "low": self.low, "high": self.high, "low_open": self.low_open, "high_open": self.high_open,
            "optional": self.optional, "choices": self.allowed_choices() if self.choices is not None else None,
            "help": self.help, "level": self.level, "cli": self.cli, "url": self.url, "widget": self.widget,
            "label": self.label,
        }


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **declaration: Any):
    """A dataclass field declared with its :class:`Setting` (everything but ``name``, ``default`` and ``path``).

    Example (in ``TrainConfig``)::

        lr: float = setting(1e-3, type=float, low=LR_RANGE[0], high=LR_RANGE[1], help="learning rate of adam/sgd",
                            cli="--lr", url="lr", widget="number", label="Learning rate", row=1, column=2)
    """
    return dataclasses.field(default=default, default_factory=default_factory, metadata={SETTING_KEY: declaration})


def settings_of(cls: type, *, path: tuple[str, ...] = ()) -> list[Setting]:
    """The :class:`Setting` of every field of dataclass ``cls`` declared with :func:`setting`, nested dataclass
    fields (``RunConfig.train``) expanded in place, in declaration order."""
    out: list[Setting] = []
    for f in dataclasses.fields(cls):
        declaration = f.metadata.get(SETTING_KEY)
        if declaration is None:
            nested = f.default_factory if f.default_factory is not dataclasses.MISSING else None
            if nested is not None and dataclasses.is_dataclass(nested):
                out += settings_of(nested, path=(*path, f.name))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(Setting(name=f.name, default=default, path=path, **declaration))
    return out


def build(cls: type, values: Mapping[str, Any], *, path: tuple[str, ...] = (), **fixed: Any) -> Any:
    """An instance of dataclass ``cls`` from flat ``values`` by setting name (nested dataclasses built likewise).

    Fields not declared with :func:`setting` take ``fixed[name]`` when given (``TrainConfig.seed``), else their
    default; a setting missing from ``values`` takes its default too.
    """
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get(SETTING_KEY) is not None:
            if f.name in values:
                kwargs[f.name] = values[f.name]
        elif f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
            kwargs[f.name] = build(f.default_factory, values, path=(*path, f.name), **fixed)
        elif f.name in fixed:
            kwargs[f.name] = fixed[f.name]
    return cls(**kwargs)


def flatten(config: Any) -> dict[str, Any]:
    """The settings' values of a dataclass instance by name (nested ones included): the inverse of :func:`build`."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get(SETTING_KEY) is not None:
            out[f.name] = value
        elif dataclasses.is_dataclass(value):
            out.update(flatten(value))
    return out


# ------------------------------------------------------------------------------------------------------------
# Text ↔ value (the URL's and the CLI's spelling)
# ------------------------------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """``None`` → ``none``, ``True`` → ``true``, ``0.001`` → ``0.001`` (``%g``), ``(32, 32)`` → ``32-32``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    return str(value)


def parse_int(name: str, text: str, *, low: int, high: int, optional: bool = False) -> int | None:
    """An integer in [low, high] from text (``1e3`` is 1000; ``none`` when ``optional``), else :class:`ConfigError`."""
    allowed = f"an integer in [{low}, {high}]" + (" or 'none'" if optional else "")
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    try:
        as_float = float(text)
        if not as_float.is_integer():
            raise ValueError
        value = int(as_float)
    except (ValueError, OverflowError):
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected {allowed}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected {allowed}")
    return value


def parse_float(name: str, text: str, *, low: float, high: float, low_open: bool = False, high_open: bool = False,
                optional: bool = False) -> float | None:
    """A finite number in the range from text (``none`` when ``optional``), else :class:`ConfigError`."""
    allowed = (f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
               + (" or 'none'" if optional else ""))
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected {allowed}") from None
    if (not math.isfinite(value) or value < low or value > high or (low_open and value == low)
            or (high_open and value == high)):
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected {allowed}")
    return value


def parse_choice(name: str, text: str, choices: Sequence[str]) -> str:
    """``text`` when it is one of ``choices``, else :class:`ConfigError` naming them."""
    if text not in choices:
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: choose one of {', '.join(choices)}")
    return text


def parse_bool(name: str, text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, else :class:`ConfigError`."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected true or false")
