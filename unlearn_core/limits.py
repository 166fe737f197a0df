"""Every limit on a user-settable number, and the memory/compute estimate's arithmetic — numbers and pure functions.

Bad input must cost nothing: a typo such as ``--width 100000`` asked for a 720 GB tensor, and
``--set reps=1000 --set batch=100000`` (each within its own range) for an 800 GB one after the models had been
trained and cached. So before any work :func:`unlearn_core.preflight.check_run_config`

1. checks every numeric field of the run configuration against a named upper bound below (each says why it is
   what it is), then
2. estimates the run's peak memory and its arithmetic from the model's shape alone
   (:class:`ModelShape`, counted by :func:`unlearn_core.models.model_shape` on PyTorch's ``meta`` device, which
   allocates nothing) with the functions below, and refuses (:func:`refuse_over_limits`), in one line naming the
   value, the estimate and the limit, a run that cannot fit this machine.

This module is a low layer: it imports nothing of the engine but :mod:`unlearn_core.errors`. Whoever has the model
builds its shape and passes it in; the experiments' own argument checks live on the experiments' side
(:mod:`unlearn_core.experiment_options`). The run configuration's schema (:mod:`unlearn_core.config`) cites the
bounds below, so the CLI, the URL parser and the widgets share them: a value the URL accepts is one the widget
shows unchanged.

The estimates are deliberately coarse (within a small factor of what PyTorch allocates): they exist to refuse
values that are wrong by orders of magnitude, not to pack a machine to its last byte.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from unlearn_core.errors import ConfigError, abbreviate

# ----------------------------------------------------------------------------------------------------------------
# Bounds on single values
# ----------------------------------------------------------------------------------------------------------------

#: Seeds (``seed``, ``forget_seed``, ``split_seed`` and every experiment seed): numpy's and scikit-learn's
#: ``random_state`` accept [0, 2³² − 1] (the digits split passes ``split_seed`` there); torch would take 2⁶⁴ − 1,
#: so the tighter range holds everywhere. ``99999999999999999999999`` was an overflow traceback.
MAX_SEED = 2**32 - 1
#: Epochs of the training recipe: 1,000 is 20× the papers' 50; beyond it a run is a typo, not an experiment.
MAX_EPOCHS = 1000
#: Mini-batch size: 65,536 is above every training split here (the largest, SVHN, has 73,257 points, so a
#: bigger batch is one full-batch step anyway) and keeps one batch's activations sane.
MAX_BATCH_SIZE = 65_536
#: Learning rate [low, high]: below 1e-6 nothing moves in the recipe's 20–50 epochs; above 10 Adam and SGD diverge
#: on every model here. The dashboard's widget has the same range, so ``?lr=1e-7`` is refused, never clamped.
LR_RANGE = (1e-6, 10.0)
#: Coupled weight decay: above 1 the decay dominates every loss here and the model collapses to 0.
MAX_WEIGHT_DECAY = 1.0
#: Norm bound C [low, high]: the certificate's radius; ‖w‖ of every model here is O(10–1000).
NORM_BOUND_RANGE = (1e-3, 1e6)
#: L-BFGS iterations of the convergent recipe: each is one full-data gradient plus a line search; 100,000 is 200×
#: the default 500, which already reaches ‖∇‖ ≤ 1e-5 on every convex model here.
MAX_LBFGS_ITER = 100_000
#: Gradient tolerance (0, 1000]: the recipe's stopping rule ‖∇(L + wd/2‖w‖²)‖ ≤ tol; above 1000 nothing trains.
GRAD_TOL_RANGE = (0.0, 1e3)
#: Training noise σ of the noisy_gd recipe (each step adds √(2·lr)·σ·ξ): above 100 the weights are noise.
MAX_TRAIN_NOISE = 100.0
#: Checkpoints of a gd/noisy_gd trajectory kept in the cache: each is as large as the model, so 1,000 of a
#: ResNet-18 are 45 GB of disk; Rewind-to-Delete needs one before the rewind point, a few dozen are plenty.
MAX_CHECKPOINTS = 1000
#: MLP hidden layers and widths (URL, widget and CLI share :func:`unlearn_core.models.parse_hidden`): enough for any
#: MNIST-scale experiment, small enough that a typo cannot allocate gigabytes.
MAX_HIDDEN_LAYERS = 8
MAX_HIDDEN_WIDTH = 4096
#: Channel width of ``cnn``/``allcnn``: 4096 is 43× AllCNN's 96. Parameters grow as width² (a 3×3 convolution
#: of 2w channels holds 36·w² weights), so ``--width 100000`` meant 1.5·10¹² parameters.
MAX_CONV_WIDTH = 4096

#: Experiments: distinct seeds per experiment (each trains two models; 100 is already hours on a CPU).
MAX_SEEDS = 100
#: ``experiment audit --runs``: runs per arm; ≥ 8 so that each half (one chooses the test, one counts its errors)
#: has four; 10⁶ runs give Clopper–Pearson intervals of ±0.1 %, and each run holds a parameter vector.
AUDIT_RUNS_RANGE = (8, 1_000_000)
#: ``experiment compare --relearn-max-steps``: SGD steps until the forget accuracy returns (≥ 1, or nothing is
#: measured); 100,000 is 70 epochs of MNIST's 1,000-point forget set at batch 32.
RELEARN_STEPS_RANGE = (1, 100_000)
#: ``experiment sensitivity --values`` / ``experiment budget --budgets`` / ``experiment audit --sigma-factors`` /
#: ``experiment forget-size --sizes``: points on one curve.
MAX_SWEEP_POINTS = 100

# ----------------------------------------------------------------------------------------------------------------
# Memory and compute
# ----------------------------------------------------------------------------------------------------------------

#: Share of the device's memory a run may be estimated to need. The rest is for the operating system, the
#: dashboard, the browser and the estimate's own slack (it is within a small factor, not exact).
MEMORY_FRACTION = 0.8
#: ``UNLEARN_MEMORY_LIMIT_GB`` overrides the limit (tests, a machine shared with other work).
MEMORY_LIMIT_ENV = "UNLEARN_MEMORY_LIMIT_GB"
#: Estimated floating-point operations of one run. 10¹⁸ is ≈ 3 hours of a 100-TFLOP/s GPU at full use, and months
#: of a CPU; ResNet-18 on CIFAR-10 for 1,000 epochs (train + retrain) is 3·10¹⁷. Beyond it a value is a typo.
MAX_FLOPS = 1e18
#: Bytes per stored number (float32 parameters, activations and data).
FLOAT_BYTES = 4
#: Copies of the parameter vector alive at once during a run: the model, its gradient and Adam's two moments;
#: the original, retrained and unlearned models; the cache's CPU copy while saving.
PARAMETER_COPIES = 8
#: Batch size of evaluation (:func:`unlearn_core.evaluation.evaluate`): inference keeps ≈ 3 layer outputs alive.
EVAL_BATCH = 4096
#: The longest estimated run (or experiment) accepted: a week. Beyond it a value is a typo (``finetune_epochs=10⁵``,
#: ``--runs 10⁶``), not a plan; ``UNLEARN_MAX_HOURS`` overrides it for a machine meant to run that long.
MAX_RUN_HOURS = 7 * 24.0
MAX_RUN_HOURS_ENV = "UNLEARN_MAX_HOURS"
#: The speed the refusal assumes, per device type: ``(floating-point operations per second, seconds per step)``.
#: Deliberately generous to the run (a fast CPU core pair, a mid-range GPU), and fixed, so that a refusal never
#: depends on how loaded the machine was when it measured itself; the times *shown* before Run use this device's
#: measured speed instead (:mod:`unlearn_core.device_time`).
REFERENCE_SPEED = {"cpu": (2e10, 2e-5), "cuda": (2e13, 2e-5), "mps": (2e12, 5e-5)}


@dataclass(frozen=True)
class ModelShape:
    """What one forward pass of a model costs, per example (counted on the ``meta`` device, nothing allocated).

    Attributes:
        num_params: trainable and frozen parameters.
        activations: numbers written by all leaf modules (what training keeps for the backward pass).
        peak_activation: the largest single layer output (what inference holds at once, about).
        flops: floating-point operations of the forward pass (2 per multiply-add of convolutions and linears).
        input_numel: numbers in one input example.
    """

    num_params: int
    activations: int
    peak_activation: int
    flops: int
    input_numel: int


@dataclass
class Estimate:
    """A run's estimated peak memory (bytes, by part) and work: arithmetic (floating-point operations) and steps.

    ``work`` splits the work by run stage (``train``, ``retrain``, ``unlearn``, ``metrics``) as ``[flops, steps]``:
    a *step* is one small sequential operation (an optimizer step, a Hessian-vector product, a solver iteration)
    whose fixed cost — Python, kernel launches — dominates on small models, where the arithmetic is nothing. Time
    on a device is ``flops / rate + steps × overhead`` with both measured there
    (:mod:`unlearn_core.device_time`); ``flops`` is the total, which :data:`MAX_FLOPS` bounds.
    """

    memory: dict[str, float] = field(default_factory=dict)
    flops: float = 0.0
    #: Which stages run one after another (their memory does not add up): the largest counts.
    stages: dict[str, float] = field(default_factory=dict)
    #: Work by run stage: ``{"train": [flops, steps], ...}``.
    work: dict[str, list[float]] = field(default_factory=dict)
    #: The iteration caps counted in full (L-BFGS's ``max_iter``, a solver's): the run may stop earlier, so the work
    #: is an upper bound ("at most").
    caps: list[str] = field(default_factory=list)

    @property
    def memory_bytes(self) -> float:
        return sum(self.memory.values()) + max(self.stages.values(), default=0.0)

    @property
    def steps(self) -> float:
        return sum(steps for _, steps in self.work.values())

    def add_work(self, stage: str, flops: float, steps: float) -> Estimate:
        """Add ``flops`` and ``steps`` to ``stage`` (and ``flops`` to the total); returns ``self``."""
        entry = self.work.setdefault(stage, [0.0, 0.0])
        entry[0] += float(flops)
        entry[1] += float(steps)
        self.flops += float(flops)
        return self

    def merge(self, other: Estimate | None) -> Estimate:
        """Add ``other``'s memory parts, stages and work to this one (the training's estimate plus a method's)."""
        if other is None:
            return self
        self.memory.update(other.memory)
        self.stages.update(other.stages)
        accounted = sum(f for f, _ in other.work.values())
        for stage, (flops, steps) in other.work.items():
            self.add_work(stage, flops, steps)
        self.flops += other.flops - accounted  # arithmetic an estimate did not assign to a stage
        self.caps += [c for c in other.caps if c not in self.caps]
        return self

    def largest(self) -> str:
        """The biggest part, named, for the message (``"LiSSA batches 800 GB"``)."""
        parts = {**self.memory, **self.stages}
        name = max(parts, key=parts.__getitem__)
        return f"{name} {format_bytes(parts[name])}"


def format_bytes(n: float) -> str:
    """``7.2e11`` → ``"720 GB"`` (decimal units, three significant digits)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def training_work(shape: ModelShape, *, n: int, batch_size: int, epochs: int, optimizer: str = "adam",
                  max_iter: int = 0) -> tuple[float, float]:
    """``(flops, steps)`` of training one model on ``n`` examples with a recipe.

    Mini-batch optimizers: ``epochs`` × ⌈n / batch⌉ steps, each forward + backward ≈ 3 forward passes per example.
    Full-batch L-BFGS (the convex recipe): at most ``max_iter`` iterations of at most 1.25 function evaluations each
    (torch's default ``max_eval``), each a full-data forward + backward — an upper bound, as it stops at
    ``grad_tol``.
    """
    if optimizer == "lbfgs":
        evaluations = 1.25 * max(0, int(max_iter))
        return evaluations * 3.0 * n * shape.flops, evaluations * max(1.0, math.ceil(n / EVAL_BATCH))
    steps = float(epochs) * max(1, math.ceil(n / max(1, batch_size)))
    return 3.0 * epochs * n * shape.flops, steps


def evaluation_work(shape: ModelShape, *, n: int, models: int = 3) -> tuple[float, float]:
    """``(flops, steps)`` of evaluating ``models`` models on ``n`` examples (the run card's metrics)."""
    return models * float(n) * shape.flops, models * float(math.ceil(n / EVAL_BATCH))


def estimate_training(shape: ModelShape, *, n_train: int, n_test: int, batch_size: int, epochs: int,
                      optimizer: str = "adam", max_iter: int = 0, n_retain: int | None = None,
                      retrain: bool = True) -> Estimate:
    """Memory and work of loading the data, training the original and the retrained model, and the metrics.

    * data: the train and test images as float32, twice (the loaded tensors and the retain set's gathered copy);
    * parameters: :data:`PARAMETER_COPIES` copies of the parameter vector;
    * training (a stage): one mini-batch's activations, kept for the backward pass, and their gradients;
    * evaluation (a stage): :data:`EVAL_BATCH` examples' largest layer output, three alive at once;
    * work: :func:`training_work` of the original (``n_train``) and the retrained model (``n_retain``, default
      ``n_train``), and :func:`evaluation_work` of three models on train and test.
    """
    data = 2.0 * FLOAT_BYTES * shape.input_numel * (n_train + n_test)
    params = float(PARAMETER_COPIES * FLOAT_BYTES * shape.num_params)
    train = 2.0 * FLOAT_BYTES * min(batch_size, n_train) * shape.activations
    evaluation = 3.0 * FLOAT_BYTES * min(EVAL_BATCH, max(n_train, n_test)) * shape.peak_activation
    estimate = Estimate(memory={"data": data, "parameters": params},
                        stages={"training activations": train, "evaluation activations": evaluation})
    recipe = {"batch_size": batch_size, "epochs": epochs, "optimizer": optimizer, "max_iter": max_iter}
    if optimizer == "lbfgs":
        estimate.caps.append("max_iter (L-BFGS stops at grad_tol)")
    estimate.add_work("train", *training_work(shape, n=n_train, **recipe))
    if retrain:
        estimate.add_work("retrain", *training_work(shape, n=n_train if n_retain is None else n_retain, **recipe))
    estimate.add_work("metrics", *evaluation_work(shape, n=n_train + n_test))
    return estimate


def estimate_lissa(shape: ModelShape, *, depth: int, reps: int, batch: int, requests: int = 1) -> Estimate:
    """Memory and work of LiSSA (Agarwal, Bullins & Hazan 2017) as :func:`unlearn_core.curvature.lissa` runs it.

    It draws all depth × reps × batch indices up front (int64) and gathers their labels (int64); each step holds one
    (reps × batch) input batch, its activations for the forward-over-reverse Hessian-vector product (≈ 3× a
    forward pass) and three (reps × p) iterates. Each HVP costs ≈ 6 forward passes; ``requests`` sequential
    requests run it once each; each of the ``depth`` iterations is one step.
    """
    points = float(depth) * reps * batch
    indices = 2.0 * 8 * points
    batch_memory = FLOAT_BYTES * float(reps) * batch * (shape.input_numel + 3 * shape.activations)
    iterates = 3.0 * FLOAT_BYTES * reps * shape.num_params
    estimate = Estimate(stages={"LiSSA batch indices": indices + batch_memory + iterates})
    return estimate.add_work("unlearn", 6.0 * points * shape.flops * max(1, requests), float(depth) * max(1, requests))


def hvp_work(shape: ModelShape, *, products: float, points: int, chunk: int = EVAL_BATCH) -> tuple[float, float]:
    """``(flops, steps)`` of ``products`` Hessian-vector products over ``points`` examples each (≈ 6 forward passes
    per example; a full-data product is ⌈points / chunk⌉ steps)."""
    return 6.0 * products * points * shape.flops, products * max(1.0, math.ceil(points / chunk))


def estimate_minibatch_method(shape: ModelShape, *, batch_size: int, n: int = 0, epochs: float = 0,
                              steps: float | None = None) -> Estimate:
    """A method taking gradient steps on mini-batches of ``batch_size`` (fine-tuning, NegGrad, noisy fine-tuning):
    the batch's activations, and — given ``epochs`` over ``n`` examples, or a number of ``steps`` — its work."""
    estimate = Estimate(stages={"method mini-batch activations": 2.0 * FLOAT_BYTES * batch_size * shape.activations})
    if steps is None and n and epochs:  # every example once per epoch, the last batch partial
        estimate.add_work("unlearn", 3.0 * float(epochs) * n * shape.flops,
                          float(epochs) * max(1, math.ceil(n / max(1, batch_size))))
    elif steps:
        estimate.add_work("unlearn", 3.0 * steps * min(batch_size, n or batch_size) * shape.flops, steps)
    return estimate


def memory_limit(device: Any = None) -> tuple[float, str]:
    """(bytes, how it was chosen): :data:`MEMORY_FRACTION` of the device's memory, or ``$UNLEARN_MEMORY_LIMIT_GB``."""
    env = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if env:
        try:
            gb = float(env)
        except ValueError:
            raise ConfigError(f"{MEMORY_LIMIT_ENV}={abbreviate(env)} is not valid: expected a number of GB") from None
        if not (math.isfinite(gb) and gb > 0):
            raise ConfigError(f"{MEMORY_LIMIT_ENV}={abbreviate(env)} is not valid: expected a number of GB > 0")
        return gb * 1e9, f"{MEMORY_LIMIT_ENV}"
    kind = getattr(device, "type", str(device or "cpu"))
    if kind == "cuda":
        import torch

        total = float(torch.cuda.get_device_properties(device).total_memory)
        where = "this GPU's"
    else:
        try:
            total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):  # not POSIX: no limit we can know
            return math.inf, "unknown memory"
        where = "this machine's"
    how = f"{MEMORY_FRACTION:.0%} of {where} {format_bytes(total)}; {MEMORY_LIMIT_ENV} overrides"
    return MEMORY_FRACTION * total, how


# ----------------------------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------------------------


def check_int(name: str, value: Any, *, low: int, high: int, why: str = "") -> int:
    """``value`` as an int in [low, high], else one-line :class:`ConfigError` naming it and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}={abbreviate(value)} is not valid: expected an integer in [{low}, {high:,}]"
                          + (f" ({why})" if why else ""))
    return value


def check_float(name: str, value: Any, *, low: float, high: float, low_open: bool = False) -> float:
    """``value`` as a finite number in [low, high] (or (low, high]), else one-line :class:`ConfigError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > high or value < low or (low_open and value == low):
        raise ConfigError(f"{name}={abbreviate(value)} is not valid: expected a number in "
                          f"{'(' if low_open else '['}{low:g}, {high:g}]")
    return float(value)


def check_seed(name: str, value: Any) -> int:
    return check_int(name, value, low=0, high=MAX_SEED, why="the range numpy and scikit-learn seeds accept")


def check_train_limits(train: Any) -> None:
    """Upper bounds of the training recipe (its own ``validate`` checks types, lower bounds and choices)."""
    check_int("epochs", train.epochs, low=0, high=MAX_EPOCHS)
    check_int("batch_size", train.batch_size, low=1, high=MAX_BATCH_SIZE)
    check_float("lr", train.lr, low=LR_RANGE[0], high=LR_RANGE[1])
    check_float("weight_decay", train.weight_decay, low=0.0, high=MAX_WEIGHT_DECAY)
    check_int("max_iter", train.max_iter, low=0, high=MAX_LBFGS_ITER)
    if train.grad_tol is not None:
        check_float("grad_tol", train.grad_tol, low=GRAD_TOL_RANGE[0], high=GRAD_TOL_RANGE[1], low_open=True)
    if train.norm_bound is not None:
        check_float("norm_bound", train.norm_bound, low=NORM_BOUND_RANGE[0], high=NORM_BOUND_RANGE[1])
    check_float("noise", train.noise, low=0.0, high=MAX_TRAIN_NOISE)
    check_int("checkpoints", train.checkpoints, low=0, high=MAX_CHECKPOINTS)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the system has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_workers(workers: Any, *, cores: int | None = None) -> int:
    """Local worker processes (``--workers``, ``UNLEARN_WORKERS``): an integer in [1, the usable cores].

    Why the cores: each worker is a process with its own torch and its own copy of the data; on a 2-core machine a
    third only competes with the other two (and ``--workers 1000000`` made loky start a million processes at once).
    A Ray cluster's CPUs are the cluster's business, not this machine's: only local executors are checked.
    """
    cores = usable_cores() if cores is None else cores
    return check_int("workers", workers, low=1, high=cores,
                     why=f"this machine has {cores} usable core{'s' if cores != 1 else ''}; more local workers only "
                         "compete for them")


def max_run_seconds() -> tuple[float, str]:
    """The longest estimated run accepted, and how it was chosen (:data:`MAX_RUN_HOURS`; ``UNLEARN_MAX_HOURS``)."""
    text = os.environ.get(MAX_RUN_HOURS_ENV, "").strip()
    if not text:
        return MAX_RUN_HOURS * 3600.0, f"{MAX_RUN_HOURS_ENV} overrides"
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not (math.isfinite(hours) and hours > 0):
        raise ConfigError(f"{MAX_RUN_HOURS_ENV}={abbreviate(text)} is not valid: expected a number of hours > 0")
    return hours * 3600.0, MAX_RUN_HOURS_ENV


def reference_seconds(estimate: Estimate, device: Any = None) -> dict[str, float]:
    """Seconds per stage of ``estimate`` at :data:`REFERENCE_SPEED` for the device's type."""
    rate, step = REFERENCE_SPEED.get(getattr(device, "type", str(device or "cpu")), REFERENCE_SPEED["cpu"])
    parts = {stage: flops / rate + steps * step for stage, (flops, steps) in estimate.work.items()}
    unassigned = estimate.flops - sum(f for f, _ in estimate.work.values())
    if unassigned > 0:
        parts["other"] = unassigned / rate
    return parts


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.0f} days"
    return f"{seconds / 3600:.3g} h"


def refuse_over_limits(estimate: Estimate, *, what: str, device: Any = None) -> Estimate:
    """``estimate`` when it fits :func:`memory_limit` and :data:`MAX_FLOPS`, else a one-line :class:`ConfigError`.

    ``what`` names the values that drive the estimate (``the run (model=cnn width=100000 ...)``).

    Raises:
        ConfigError: ``the run (model=cnn width=... ) needs an estimated 720 GB of memory (largest part: ...), above
            the limit 18.9 GB (80% of this machine's 23.6 GB; ...)``; or its arithmetic above :data:`MAX_FLOPS`; or
            its time at :data:`REFERENCE_SPEED` above :func:`max_run_seconds` (a week).
    """
    limit, how = memory_limit(device)
    if estimate.memory_bytes > limit:
        raise ConfigError(f"{what} needs an estimated {format_bytes(estimate.memory_bytes)} of memory "
                          f"(largest part: {estimate.largest()}), above the limit {format_bytes(limit)} ({how})")
    if estimate.flops > MAX_FLOPS:
        raise ConfigError(f"{what} needs an estimated {estimate.flops:.2g} floating-point operations, above the limit "
                          f"{MAX_FLOPS:.0e} (hours on a large GPU, months on a CPU)")
    parts = reference_seconds(estimate, device)
    total = sum(parts.values())
    limit_s, how_s = max_run_seconds()
    if total > limit_s:
        stage = max(parts, key=parts.__getitem__)
        kind = getattr(device, "type", str(device or "cpu"))
        raise ConfigError(f"{what} needs an estimated {estimate.flops:.2g} floating-point operations in "
                          f"{estimate.steps:,.0f} steps, about {_duration(total)} even on a fast {kind.upper()} "
                          f"(largest part: {stage}, {_duration(parts[stage])}), above the limit of "
                          f"{_duration(limit_s)} ({how_s})")
    return estimate
