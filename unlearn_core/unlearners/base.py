"""The common unlearner interface (Captum-style) and the hyperparameter schema.

Every unlearner is a subclass of :class:`Unlearner` with

* ``name`` — the registry name, identical in the engine, the CLI (``--method``), the JSON run card and the UI;
* ``family`` — ``certified``, ``approximate``, ``heuristic`` or ``oracle``;
* ``paper`` — the reference it implements;
* ``schema`` — a tuple of :class:`HyperParam`, the *one* source of hyperparameter names, types, defaults and
  ranges: the CLI's ``--set NAME=VALUE``, ``methods --json`` and the dashboard's sliders are all built from it;
* ``unlearn(ctx, **params)`` returning an :class:`UnlearnResult` — the new model, its certificate (``None``
  for uncertified methods) and method-specific diagnostics.

Why a context object rather than many arguments: every method needs the same handful of things (the trained
model, the data split, the training recipe, a fresh-initialisation factory for retraining, progress and
cancellation hooks), and the optional retrained oracle lets a method record its *actual* approximation error
next to its bound without the method ever training the oracle itself.
"""

from __future__ import annotations

import copy
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import torch
from torch import nn

from unlearn_core.certificate import Certificate
from unlearn_core.curvature import dense_refusal
from unlearn_core.diagnostics import Diagnostics
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.functional import num_params
from unlearn_core.privacy.noise import NoiseSource
from unlearn_core.progress import Cancelled, ProgressCallback

FAMILIES = ("certified", "approximate", "heuristic", "oracle")
#: How prominently the dashboard shows a hyperparameter: ``basic`` ones first, with their human label; ``advanced``
#: ones in an "Advanced" expander. The CLI and the URL treat both alike.
LEVELS = ("basic", "advanced")


@dataclass(frozen=True)
class HyperParam:
    """One hyperparameter of one method.

    Attributes:
        name: the name used everywhere (engine keyword, CLI ``--set`` name, JSON key, URL parameter, widget key).
        type: ``float``, ``int``, ``bool`` or ``str``.
        default: the default value (the paper's or its released code's where they give one).
        low, high: inclusive numeric range, ``None`` for unbounded.
        choices: the allowed values of a ``str`` parameter.
        help: one sentence for ``--help``, ``methods --json`` and the widget tooltip.
        log: the UI should use a log scale (``lam``, ``epsilon``, ``delta``...).
        auto: the string ``"auto"`` is accepted in place of a number (e.g. LiSSA's scale ``H=auto``).
        optional: ``None`` is accepted (e.g. a σ override that defaults to "use the required one").
        level: ``basic`` (shown first in the dashboard: λ, ε, δ, iteration counts, the method's main knobs) or
            ``advanced`` (in the "Advanced" expander).
        label: the human label of the dashboard's widget, e.g. "λ — local convex term"; display only: the name
            stays the identifier everywhere. ``None`` shows the name.
        unit: the unit shown after the label ("epochs", "HVP steps", "points"...), when there is one.
    """

    name: str
    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    log: bool = False
    auto: bool = False
    optional: bool = False
    level: str = "advanced"
    label: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"HyperParam {self.name!r}: level={self.level!r} is not one of {', '.join(LEVELS)}")

    @property
    def display(self) -> str:
        """The widget label: the human label (or the name) and the unit in brackets unless the label says it (the
        dashboard's tooltip adds the name, which the CLI, the JSON card and the URL use)."""
        text = self.label or self.name
        if self.unit and self.unit not in text:
            text += f" ({self.unit})"
        return text

    def allowed(self) -> str:
        """A short human description of the allowed values, used in every error message."""
        if self.type is bool:
            text = "true or false"
        elif self.choices is not None:
            text = "one of " + ", ".join(self.choices)
        else:
            kind = "an integer" if self.type is int else "a number"
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            text = f"{kind} in [{lo}, {hi}]"
        if self.auto:
            text += " or 'auto'"
        if self.optional:
            text += " or 'none'"
        return text

    def parse(self, raw: Any) -> Any:
        """Turn a raw value (a CLI/URL string or a JSON/UI value) into a validated value.

        Raises:
            ConfigError: naming the parameter, the value and what is allowed.
        """
        if isinstance(raw, str):
            text = raw.strip()
            if self.auto and text.lower() == "auto":
                return "auto"
            if self.optional and text.lower() in ("none", "null", ""):
                return None
            try:
                if self.type is bool:
                    if text.lower() in ("1", "true", "yes", "on"):
                        value: Any = True
                    elif text.lower() in ("0", "false", "no", "off"):
                        value = False
                    else:
                        raise ValueError(text)
                elif self.type is int:
                    as_float = float(text)
                    if not as_float.is_integer():
                        raise ValueError(text)
                    value = int(as_float)
                elif self.type is float:
                    value = float(text)
                else:
                    value = text
            except ValueError:
                raise ConfigError(f"{self.name}={abbreviate(raw)} is not valid: expected {self.allowed()}") from None
        else:
            value = raw
        return self.validate(value)

    def validate(self, value: Any) -> Any:
        """Check a typed value against the type, range and choices."""
        if value is None and self.optional:
            return None
        if value == "auto" and self.auto:
            return "auto"
        bad = ConfigError(f"{self.name}={abbreviate(value)} is not valid: expected {self.allowed()}")
        if self.type is bool:
            if not isinstance(value, bool):
                raise bad
            return value
        if self.type is str:
            if not isinstance(value, str) or (self.choices is not None and value not in self.choices):
                raise bad
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if self.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise bad
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise bad
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise bad
        return value

    def to_json(self) -> dict[str, Any]:
        """The schema entry as printed by ``python -m unlearn_core methods --json``."""
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "low": self.low,
            "high": self.high,
            "choices": list(self.choices) if self.choices is not None else None,
            "log": self.log,
            "auto": self.auto,
            "optional": self.optional,
            "level": self.level,
            "label": self.label,
            "unit": self.unit,
            "help": self.help,
        }


def resolve_params(schema: tuple[HyperParam, ...], overrides: dict[str, Any], *, method: str) -> dict[str, Any]:
    """Defaults of ``schema`` updated by ``overrides`` (raw strings or typed values), all validated.

    Raises:
        ConfigError: for an unknown name (listing the allowed names) or an invalid value.
    """
    by_name = {p.name: p for p in schema}
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        allowed = ", ".join(sorted(by_name)) or "(none)"
        raise ConfigError(f"unknown hyperparameter {abbreviate(unknown[0])} for method {method!r}: allowed names are "
                          f"{allowed}")
    params = {p.name: p.default for p in schema}
    for name, raw in overrides.items():
        params[name] = by_name[name].parse(raw)
    return params


@dataclass
class UnlearnContext:
    """Everything an unlearner may use.

    ``model`` is the trained model w* = A(D). It may be a cached object shared with other callers, so methods
    must never modify it: call :meth:`copy_model` to get a private copy to work on. ``train_config`` is the
    resolved recipe (never ``optimizer="auto"`` when built by the pipeline) that trained ``model`` and
    ``retrained``; ``train_summaries`` says how that training ended.
    """

    model: nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    forget_idx: torch.Tensor
    retain_idx: torch.Tensor
    num_classes: int
    train_config: Any  # unlearn_core.training.TrainConfig
    # model_factory(seed_offset=0): a fresh, seeded initialisation of the same architecture on ctx.device;
    # offset 0 is the initialisation the original model and the retrained oracle both started from.
    model_factory: Callable[..., nn.Module]
    device: torch.device
    seed: int = 0
    #: The model family is convex (logistic regression): its Hessian is PSD everywhere, so λ_min ≥ weight decay
    #: is a proven bound rather than an estimate (``models.ModelInfo.convex``).
    convex: bool = False
    retrained: nn.Module | None = None
    # The training summaries of the models in the context, under "original" and (when the oracle was trained)
    # "retrained": unlearn_core.training.train's dict (grad_norm, grad_tol, converged, stop_reason, iterations,
    # ...). With a gradient tolerance in the recipe, training.gradient_bound_from_recipe(ctx.train_config,
    # ctx.train_summaries) turns them into G = grad_tol, a bound on the retrained model's retain gradient.
    train_summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: ProgressCallback | None = None
    cancel: threading.Event | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: ``RunConfig.reproducible``: the release noise comes from a generator seeded from ``seed`` (a simulation that
    #: anyone with the run card can repeat, noise included) instead of the operating system's secure generator.
    reproducible: bool = False
    #: The stored training trajectories (``unlearn_core.trajectory.Trajectory``) of the models in the context, when
    #: their recipe kept checkpoints (``gd``/``noisy_gd`` with ``checkpoints > 0``): Rewind-to-Delete rewinds the
    #: one that :meth:`trajectory_of` finds for the model it unlearns.
    trajectories: tuple[Any, ...] = ()

    def trajectory_of(self, model: nn.Module) -> Any:
        """The trajectory whose trained model *is* ``model`` (identity), or ``None`` when none was kept."""
        return next((t for t in self.trajectories if t.belongs_to(model)), None)

    # Gathered once per context: on MNIST the retain images are ~185 MB, and a method reads them several times.
    # A context is built per request and its index tensors are never reassigned.
    @cached_property
    def x_retain(self) -> torch.Tensor:
        return self.x_train[self.retain_idx]

    @cached_property
    def y_retain(self) -> torch.Tensor:
        return self.y_train[self.retain_idx]

    @property
    def x_forget(self) -> torch.Tensor:
        return self.x_train[self.forget_idx]

    @property
    def y_forget(self) -> torch.Tensor:
        return self.y_train[self.forget_idx]

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_forget(self) -> int:
        return int(self.forget_idx.numel())

    def weight_decay(self, override: float | None = None) -> float:
        """The coupled weight decay of the objective: ``override`` when set, else the training recipe's.

        Methods that take gradients or HVPs of "the" retain loss use the loss the model was trained on,
        cross-entropy + (wd/2)‖w‖², unless the user overrides wd.
        """
        if override is not None:
            return float(override)
        return float(getattr(self.train_config, "weight_decay", 0.0) or 0.0)

    def copy_model(self) -> nn.Module:
        """A deep copy of the trained model, on the context's device, safe to modify."""
        return copy.deepcopy(self.model).to(self.device)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A seeded CPU generator for the method's own randomness that the guarantee does not hide (batch order,
        subsamples, LiSSA's draws). Never for the release noise: that is :meth:`release_noise`."""
        return torch.Generator().manual_seed(int(self.seed) * 1_000_003 + 7919 + offset)

    def release_noise(self, stream: int = 1) -> NoiseSource:
        """The source of the release's Gaussian noise (:class:`~unlearn_core.privacy.noise.NoiseSource`).

        Secure (``os.urandom``, never recorded) unless the run is ``reproducible``; then the seeded generator of
        ``stream`` (an offset of :meth:`generator`), so that a simulation repeats exactly.
        """
        return NoiseSource.reproducible(self.generator(offset=stream)) if self.reproducible else NoiseSource.secure()

    def report(self, **info: Any) -> None:
        """Send a progress record to the callback, if any, and honour cancellation."""
        self.check_cancelled()
        if self.progress is not None:
            self.progress(info)

    def check_cancelled(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")


@dataclass
class UnlearnResult:
    """What every unlearner returns: the released model, its certificate (or None) and diagnostics.

    ``certificate`` is the typed :class:`~unlearn_core.certificate.Certificate` for certified methods (the same
    record for every one of them) and ``None`` for approximate, heuristic and oracle methods. ``diagnostics`` is
    the typed :class:`~unlearn_core.diagnostics.Diagnostics` (one shape for every method; method-specific values
    in its ``details``).
    """

    model: nn.Module
    certificate: Certificate | None
    diagnostics: Diagnostics


class Unlearner(ABC):
    """Base class of all unlearners. Subclasses set the class attributes and implement :meth:`unlearn`."""

    name: ClassVar[str]
    family: ClassVar[str]
    paper: ClassVar[str]
    summary: ClassVar[str]
    schema: ClassVar[tuple[HyperParam, ...]] = ()
    #: ``(solver value, alternatives)`` for methods whose ``solver`` hyperparameter has a dense-Hessian choice:
    #: that choice stores a p × p matrix, so it is refused above ``curvature.DENSE_MAX_PARAMS`` (``dense_refusal``).
    dense_solver: ClassVar[tuple[str, str] | None] = None
    #: Hyperparameters for a quick demonstration on a small model (digits MLP): the quick-demo preset and the tests
    #: that run every registered method use them. Empty when the defaults are already fast there.
    demo_params: ClassVar[dict[str, Any]] = {}

    # Capabilities (Opacus-style class attributes): declared once, here, on the method; the experiments, the CLI
    # and the pages ask the class (or :func:`unlearn_core.unlearners.registry.methods_with`), never a list of
    # names. :func:`~unlearn_core.unlearners.registry.register_unlearner` checks each against the schema.

    #: The hyperparameter that sets the unlearning budget in epochs (``experiment budget`` sweeps it), or None.
    budget_param: ClassVar[str | None] = None
    #: Whether the method serves k deletion requests in a row through its ``requests`` hyperparameter
    #: (``experiment sequential``, the Sequential page).
    sequential: ClassVar[bool] = False
    #: The hyperparameter holding the σ of the release's Gaussian noise (``None`` = what the bound requires), which
    #: the audit pins to the same value in both arms and scales by its σ factors; None when there is none.
    noise_param: ClassVar[str | None] = None
    #: The hyperparameter holding the target ε of the certificate (the frontier sweeps it), or None.
    epsilon_param: ClassVar[str | None] = None
    #: A small grid of the method's own hyperparameters the privacy–utility frontier tries at every ε: a tuple of
    #: settings (name → value), each run at each ε; the frontier's point at ε is the best certified test accuracy
    #: over them (:func:`unlearn_core.experiments.frontier`). A setting the user pins is not swept. Empty: one run.
    frontier_grid: ClassVar[tuple[dict[str, Any], ...]] = ()
    #: The models on which every hypothesis of the certificate can hold (``("logreg",)`` for a theorem about strongly
    #: convex losses), or None: any model. The method still runs elsewhere, labelled by its failing condition;
    #: tests and demos that want a certified run pick the first model listed.
    certified_models: ClassVar[tuple[str, ...] | None] = None
    #: The training optimiser the certificate needs (``"noisy_gd"``: Langevin unlearning learns and unlearns with the
    #: same noisy process; ``"gd"``: Rewind-to-Delete rewinds a gradient-descent trajectory), or None: any recipe.
    #: Such a method builds its recipe from its hyperparameters (:meth:`training_recipe`), and the pipeline trains
    #: the original and the retrained model with it (:meth:`recipe_for`).
    training_optimizer: ClassVar[str | None] = None

    @classmethod
    def issues_certificate(cls) -> bool:
        """Whether every run returns a typed :class:`~unlearn_core.certificate.Certificate` (family ``certified``):
        the methods the audit audits and the verdict's "certified?" reads."""
        return cls.family == "certified"

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        """The capabilities as JSON (``methods --json``; :func:`unlearn_core.unlearners.registry.methods_with`)."""
        return {
            "certificate": cls.issues_certificate(),
            "budget_param": cls.budget_param,
            "sequential": cls.sequential,
            "noise_param": cls.noise_param,
            "epsilon_param": cls.epsilon_param,
            "demo_params": dict(cls.demo_params),
            "frontier_grid": [dict(setting) for setting in cls.frontier_grid],
            "certified_models": list(cls.certified_models) if cls.certified_models is not None else None,
            "training_optimizer": cls.training_optimizer,
        }

    def training_recipe(self, train_config: Any, params: dict[str, Any], *, x_train: torch.Tensor | None = None,
                        convex: bool = False) -> Any:
        """The recipe (a ``TrainConfig``) that trains the original and the retrained model for this method, built
        from the user's ``train_config`` and the method's ``params``; None: the user's recipe as it is. Methods
        with a :attr:`training_optimizer` override it.

        ``x_train`` (the training inputs) and ``convex`` (the model family's flag) let a recipe take a step size from
        the data (η = 1/β); without them (the configuration's validation, before any data is loaded) it is a sketch
        whose only use is to check the user's choices."""
        return None

    def recipe_for(self, train_config: Any, params: dict[str, Any], *, x_train: torch.Tensor | None = None,
                   convex: bool = False) -> Any:
        """:meth:`training_recipe`, after checking that the user did not force another optimiser.

        Raises:
            ConfigError: the user's recipe names an optimiser other than ``auto`` and the method's.
        """
        if self.training_optimizer is None:
            return None
        chosen = getattr(train_config, "optimizer", "auto")
        if chosen not in ("auto", self.training_optimizer):
            raise ConfigError(f"optimizer={chosen!r} is not valid with method {self.name!r}: it trains the original "
                              f"and the retrained model with its own recipe ({self.training_optimizer}); leave the "
                              "optimizer on auto")
        return self.training_recipe(train_config, params, x_train=x_train, convex=convex)

    def unsupported_reason(self, model: nn.Module, params: dict[str, Any]) -> str | None:
        """Why this method cannot run on ``model`` with ``params`` (``None`` when it can).

        The CLI and the UI call this before any work so that they can refuse clearly; e.g. the dense Hessian
        path is only for models with few parameters. Subclasses that add reasons should call ``super()``.
        """
        if self.dense_solver is None or params.get("solver") != self.dense_solver[0]:
            return None
        solver, alternatives = self.dense_solver
        return dense_refusal(num_params(model), solver=solver, alternatives=alternatives)

    def check_supported(self, model: nn.Module, params: dict[str, Any], *, model_name: str | None = None) -> None:
        """Raise :class:`ConfigError` with :meth:`unsupported_reason` when the method cannot run.

        ``pipeline.validate_config`` and ``pipeline.run_method`` check before any work (naming the model);
        unlearners call this too, so that a direct ``unlearn(...)`` call from Python refuses the same way.
        """
        reason = self.unsupported_reason(model, params)
        if reason:
            on = f"model {model_name!r}" if model_name else "this model"
            raise ConfigError(f"method {self.name!r} cannot run on {on}: {reason}")

    def work_estimate(self, params: dict[str, Any], *, shape: Any, n_train: int, n_forget: int = 0,
                      train: Any = None) -> Any:
        """The memory and work this method adds to a run, as a :class:`unlearn_core.limits.Estimate` (or None).

        :func:`unlearn_core.preflight.check_run_config` adds it to the training estimate and refuses, before any
        work, a run that cannot fit this machine or would take far too long; the dashboard and the CLI turn its
        work into a time on this device before Run (:mod:`unlearn_core.device_time`). Count the method's *own*
        work on the ``"unlearn"`` stage (``Estimate.add_work``): its epochs, iterations, Hessian-vector products,
        requests — a run of hundreds of hours was accepted without a word when only the model was counted.
        ``shape`` is the model's :class:`unlearn_core.limits.ModelShape`, ``n_forget`` the forget set's size (known
        before loading the data, a class's taken as its share), ``train`` the training recipe as it will run.

        The default covers methods that take gradient steps on mini-batches of their ``batch_size``: ``epochs``
        epochs over the retain set when the schema has an ``epochs`` too, else the batch's memory only.
        """
        batch = params.get("batch_size")
        if isinstance(batch, int) and not isinstance(batch, bool):
            from unlearn_core.limits import estimate_minibatch_method

            epochs = params.get("epochs")
            epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else 0
            return estimate_minibatch_method(shape, batch_size=min(batch, n_train), n=n_train - n_forget,
                                             epochs=epochs)
        return None

    @abstractmethod
    def unlearn(self, ctx: UnlearnContext, **params: Any) -> UnlearnResult:
        """Remove the forget set's influence from ``ctx.model``; never mutate ``ctx.model``."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The method's registry entry as JSON (``methods --json``)."""
        return {
            "name": cls.name,
            "family": cls.family,
            "paper": cls.paper,
            "summary": cls.summary,
            "hyperparameters": [p.to_json() for p in cls.schema],
            "capabilities": cls.capabilities(),
        }
