"""The dashboard's configuration state, UI-free: query-parameter (de)serialisation, validation and presets.

A deep link carries the *whole* configuration (``?dataset=digits&model=mlp&forget=random:0.1&method=...``), so a
shared URL reproduces a run. Parsing is forgiving by design: every bad value produces one warning line that
names the value and what is allowed, and that field falls back to its default — the page still opens.

Method hyperparameters travel as ``p.<name>=<value>`` and are parsed by the method's own
:class:`~unlearn_core.unlearners.HyperParam` schema (the one source of names, types and ranges).

This module does not import streamlit, so it is unit-tested directly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from unlearn_core import limits
from unlearn_core.data import DATASETS
from unlearn_core.device import DEVICE_CHOICES
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.forget import check_forget_spec, parse_forget_spec
from unlearn_core.models import MODELS, parse_hidden
from unlearn_core.training import CONVEX_GRAD_TOL, OPTIMIZERS, TrainConfig
from unlearn_core.unlearners import get_unlearner, list_unlearners, resolve_params

PARAM_PREFIX = "p."


def method_names() -> list[str]:
    """Registered methods (built from the registry, so the UI works whichever methods have landed)."""
    return [cls.name for cls in list_unlearners()]


def default_method() -> str:
    """The headline method when registered (certified Newton), else the first certified one, else retrain."""
    names = method_names()
    for preferred in ("certified_newton", "certified_lissa"):
        if preferred in names:
            return preferred
    for cls in list_unlearners():
        if cls.family == "certified":
            return cls.name
    return "retrain" if "retrain" in names else names[0]


@dataclass(frozen=True)
class UIConfig:
    """Everything a page can configure; maps 1:1 onto :class:`unlearn_core.pipeline.RunConfig`."""

    dataset: str = "digits"
    model: str = "mlp"
    hidden: tuple[int, ...] = (32, 32)
    forget: str = "random:0.1"
    method: str = "retrain"
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    forget_seed: int = 0
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 5e-4
    norm_bound: float | None = 20.0
    optimizer: str = "auto"
    grad_tol: float | None = None
    max_iter: int = 500
    device: str = "auto"

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            optimizer=self.optimizer, lr=self.lr, epochs=self.epochs, batch_size=self.batch_size,
            weight_decay=self.weight_decay, norm_bound=self.norm_bound, seed=self.seed, grad_tol=self.grad_tol,
            max_iter=self.max_iter,
        )

    def to_run_config(self, **overrides: Any):
        """The engine's :class:`RunConfig` (imported lazily: the pipeline pulls in torchvision)."""
        from unlearn_core.pipeline import RunConfig

        kwargs: dict[str, Any] = dict(
            dataset=self.dataset, model=self.model, forget=self.forget, method=self.method,
            params=dict(self.params), train=self.train_config(), seed=self.seed, forget_seed=self.forget_seed,
            hidden=tuple(self.hidden), device=self.device,
        )
        kwargs.update(overrides)
        return RunConfig(**kwargs)


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    return str(value)


def to_query(config: UIConfig, *, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The configuration as URL query parameters (every field, so the link is self-contained)."""
    query = {
        "dataset": config.dataset, "model": config.model, "hidden": _fmt(config.hidden), "forget": config.forget,
        "method": config.method, "seed": _fmt(config.seed), "forget_seed": _fmt(config.forget_seed),
        "epochs": _fmt(config.epochs), "lr": _fmt(config.lr), "batch_size": _fmt(config.batch_size),
        "wd": _fmt(config.weight_decay), "C": _fmt(config.norm_bound), "optimizer": config.optimizer,
        "grad_tol": _fmt(config.grad_tol), "max_iter": _fmt(config.max_iter), "device": config.device,
    }
    for name, value in config.params.items():
        query[PARAM_PREFIX + name] = _fmt(value)
    for name, value in (extra or {}).items():
        query[name] = _fmt(value)
    return query


def _first(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def _parse_int(name: str, text: str, *, low: int, high: int) -> int:
    try:
        as_float = float(text)
        if not as_float.is_integer():
            raise ValueError
        value = int(as_float)
    except ValueError:
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected an integer in [{low}, {high}]") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected an integer in [{low}, {high}]")
    return value


def _parse_float(name: str, text: str, *, low: float, high: float, low_open: bool = False,
                 optional: bool = False) -> float | None:
    allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}]" + (" or 'none'" if optional else "")
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected {allowed}") from None
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: expected {allowed}")
    return value


def _parse_choice(name: str, text: str, choices: list[str] | tuple[str, ...]) -> str:
    if text not in choices:
        raise ConfigError(f"{name}={abbreviate(text)} is not valid: choose one of {', '.join(choices)}")
    return text


def _parse_forget(text: str) -> str:
    parse_forget_spec(text)  # raises a one-line ConfigError naming the spec and the grammar
    return text


def from_query(
    query: Mapping[str, Any],
    *,
    base: UIConfig | None = None,
    extra_fields: Mapping[str, Any] | None = None,
) -> tuple[UIConfig, dict[str, Any], list[str]]:
    """Parse URL query parameters into a :class:`UIConfig`; unknown or bad values become warnings.

    Args:
        query: ``st.query_params.to_dict()`` (values are strings; lists take the last value).
        base: the defaults to fall back to (e.g. the last configuration of this session).
        extra_fields: page-specific parameters, ``name -> parser(text) -> value`` (a parser raises
            :class:`ConfigError`); their parsed values are returned in the second element.

    Returns:
        ``(config, extras, warnings)``; every warning is one line naming the value and what is allowed.
    """
    base = base or UIConfig(method=default_method())
    raw = {str(k): _first(v) for k, v in query.items()}
    warnings: list[str] = []
    updates: dict[str, Any] = {}

    parsers = {
        "dataset": ("dataset", lambda t: _parse_choice("dataset", t, list(DATASETS))),
        "model": ("model", lambda t: _parse_choice("model", t, list(MODELS))),
        "hidden": ("hidden", parse_hidden),
        "forget": ("forget", _parse_forget),
        # The same ranges as the widgets (pages/_common.py reads these constants too): a value the URL accepts is
        # shown unchanged, never clamped by the widget.
        "seed": ("seed", lambda t: _parse_int("seed", t, low=0, high=limits.MAX_SEED)),
        "forget_seed": ("forget_seed", lambda t: _parse_int("forget_seed", t, low=0, high=limits.MAX_SEED)),
        "epochs": ("epochs", lambda t: _parse_int("epochs", t, low=0, high=limits.MAX_EPOCHS)),
        "lr": ("lr", lambda t: _parse_float("lr", t, low=limits.LR_RANGE[0], high=limits.LR_RANGE[1])),
        "batch_size": ("batch_size", lambda t: _parse_int("batch_size", t, low=1, high=limits.MAX_BATCH_SIZE)),
        "wd": ("weight_decay", lambda t: _parse_float("wd", t, low=0.0, high=limits.MAX_WEIGHT_DECAY)),
        "C": ("norm_bound", lambda t: _parse_float("C", t, low=limits.NORM_BOUND_RANGE[0],
                                                   high=limits.NORM_BOUND_RANGE[1], optional=True)),
        "optimizer": ("optimizer", lambda t: _parse_choice("optimizer", t, OPTIMIZERS)),
        "grad_tol": ("grad_tol", lambda t: _parse_float("grad_tol", t, low=limits.GRAD_TOL_RANGE[0], high=limits.GRAD_TOL_RANGE[1], low_open=True,
                                                         optional=True)),
        "max_iter": ("max_iter", lambda t: _parse_int("max_iter", t, low=0, high=limits.MAX_LBFGS_ITER)),
        "device": ("device", lambda t: _parse_choice("device", t, DEVICE_CHOICES)),
    }
    for key, (attr, parse) in parsers.items():
        if key in raw:
            try:
                updates[attr] = parse(raw[key])
            except ConfigError as exc:
                warnings.append(f"{exc} — using the default {_fmt(getattr(base, attr))}")

    method = base.method
    if "method" in raw:
        names = method_names()
        if raw["method"] in names:
            method = raw["method"]
        else:
            warnings.append(f"method={abbreviate(raw['method'])} is not valid: choose one of {', '.join(names)} — "
                            f"using the default {method}")
    params: dict[str, Any] = dict(base.params) if method == base.method else {}
    schema = {p.name: p for p in get_unlearner(method).schema}
    for key, text in raw.items():
        if not key.startswith(PARAM_PREFIX):
            continue
        name = key[len(PARAM_PREFIX):]
        if name not in schema:
            allowed = ", ".join(schema) or "(none)"
            warnings.append(
                f"{abbreviate(key)}={abbreviate(text)} is not a hyperparameter of {method}: allowed names are "
                f"{allowed} — ignored"
            )
            continue
        try:
            params[name] = schema[name].parse(text)
        except ConfigError as exc:
            warnings.append(f"{exc} — using the default {_fmt(schema[name].default)}")
    params = {k: v for k, v in params.items() if k in schema}

    extras: dict[str, Any] = {}
    for key, parse in (extra_fields or {}).items():
        if key in raw:
            try:
                extras[key] = parse(raw[key])
            except ConfigError as exc:
                warnings.append(str(exc))

    # Parameters this page does not know (e.g. another page's ``methods``) are ignored silently: the URL may
    # have been carried over by navigation, and a warning would blame the user for the app's own link.

    config = dataclasses.replace(base, **updates, method=method, params=params)
    # The forget spec against the dataset it will run on (known only now: ``?dataset=`` may have changed it).
    # ``?forget=class:99`` used to pass the parser and be reset to class 0 by the widget without a word.
    info = DATASETS[config.dataset]
    try:
        check_forget_spec(config.forget, num_classes=info.num_classes, n_train=info.n_train, dataset=info.name)
    except ConfigError as exc:
        fallback = base.forget
        try:
            check_forget_spec(fallback, num_classes=info.num_classes, n_train=info.n_train)
        except ConfigError:
            fallback = UIConfig().forget
        warnings.append(f"{exc} — using the default {fallback}")
        config = dataclasses.replace(config, forget=fallback)
    return config, extras, warnings


def full_params(config: UIConfig) -> dict[str, Any]:
    """The method's hyperparameters with defaults filled in (validated by the schema)."""
    unlearner = get_unlearner(config.method)
    return resolve_params(unlearner.schema, dict(config.params), method=config.method)


# -- presets ------------------------------------------------------------------------------------------------

PRESETS: dict[str, str] = {
    "Quick demo": "digits + MLP, seconds on a CPU",
    "Paper: MNIST MLP": "Zhang et al.'s MNIST 784-32-32-10 MLP, 1,000 forgotten points, 50 epochs (minutes on a CPU)",
    "Convex: logistic regression": "multinomial logistic regression on digits: convex (λ_min ≥ wd > 0), trained to a "
                                   "minimiser by full-batch L-BFGS (‖∇‖ ≤ 1e-5); the exact Newton step with λ = 0 "
                                   "lands next to the retrained model",
}


def quick_params(method: str) -> dict[str, Any]:
    """The quick demo's hyperparameters for ``method``: the method's own ``demo_params`` (validated by its schema)."""
    cls = get_unlearner(method)
    resolve_params(cls.schema, dict(cls.demo_params), method=method)
    return dict(cls.demo_params)


#: The convex preset's hyperparameters (certified_newton's names): the exact Newton step of the theory, with no
#: local convex term — logistic regression with weight decay wd has λ_min ≥ wd > 0, so λ = 0 keeps λ + λ_min > 0.
#: From the minimiser the L-BFGS recipe reaches, this step lands at ≈ 5 % of the original model's distance to the
#: retrained model (digits, random:0.1, wd 5e-3); the default λ = 0.01 would damp it to ≈ 54 %.
CONVEX_PARAMS: dict[str, Any] = {"solver": "exact", "lam": 0.0}


def convex_params(method: str) -> dict[str, Any]:
    """The convex preset's hyperparameters that ``method`` has (validated by its schema)."""
    names = {p.name for p in get_unlearner(method).schema}
    return {k: v for k, v in CONVEX_PARAMS.items() if k in names}


def preset_params(name: str, method: str) -> dict[str, Any]:
    """A preset's hyperparameters for ``method`` (pages with their own method list keep the method and take these)."""
    if name == "Quick demo":
        return quick_params(method)
    if name == "Convex: logistic regression":
        return convex_params(method)
    return {}


def preset(name: str) -> UIConfig:
    """One-click configurations. Unknown names raise :class:`ConfigError`."""
    method = default_method()
    if name == "Quick demo":
        return UIConfig(dataset="digits", model="mlp", hidden=(32, 32), forget="random:0.1", method=method,
                        epochs=20, params=quick_params(method))
    if name == "Paper: MNIST MLP":
        return UIConfig(dataset="mnist", model="mlp", hidden=(32, 32), forget="random:1000", method=method,
                        epochs=50, lr=1e-3, weight_decay=5e-4, norm_bound=20.0, batch_size=128)
    if name == "Convex: logistic regression":
        # The convergent recipe: full-batch L-BFGS until ‖∇(L + wd/2‖w‖²)‖ ≤ grad_tol, for the original and the
        # retrained model alike, so both are minimisers and one Newton step moves the first onto the second.
        return UIConfig(dataset="digits", model="logreg", forget="random:0.1", method=method, optimizer="lbfgs",
                        grad_tol=CONVEX_GRAD_TOL, weight_decay=5e-3, params=convex_params(method))
    raise ConfigError(f"preset {name!r} is not valid: choose one of {', '.join(PRESETS)}")
