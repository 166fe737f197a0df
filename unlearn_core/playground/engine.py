r"""The playground's engine: a 2-D data set, a tiny model, a click that deletes points, and everything the page draws.

One call, :func:`unlearn`, does what a click asks for, in process and in about a second:

1. **Retrain** on the kept points, from the same initialisation and by the same recipe as the original model
   (the reference every unlearner is judged against). Retrained models are kept per forget set, so moving a
   slider does not retrain.
2. **Unlearn** with a method of the registry, through :func:`unlearn_core.pipeline.run_method` — the very function
   an Explore run calls — on a :class:`~unlearn_core.pipeline.Prepared` built from the 2-D data: the method, its
   certificate (status, Δ, σ, every condition) and the run card are Explore's, word for word.
3. **The noise-free step**: for a method that adds release noise (its ``noise_param``), the same run with that σ
   set to 0; otherwise the release itself.
4. **Two clouds** of ``draws`` simulated releases each (:mod:`unlearn_core.playground.noise`): one from the
   unlearned model, one from the model that never saw the points — the two distributions the certificate says are
   (ε, δ)-close. See :class:`Release` for how each is drawn.
5. **Decision boundaries** of all of them on a grid (:mod:`unlearn_core.playground.boundary`).

The training recipe is the project's convergent one (:func:`unlearn_core.training.resolve_train_config` with
``optimizer="auto"``): logistic regression is trained by full-batch L-BFGS until ‖∇(L + wd/2‖w‖²)‖ ≤ 1e-5, so the
original and the retrained models are minimisers — the hypothesis under which one Newton step lands on the retrained
model — and G = 1e-5 is a bound; the MLP by full-batch Adam (a ReLU network has no minimiser L-BFGS can certify).
Both project onto the C-ball, ‖w‖ ≤ :data:`NORM_BOUND`, after every step, as Zhang et al.'s bound assumes.

Nothing here imports streamlit; the page caches :func:`build_playground` per (data set, seed, model).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from unlearn_core.certificate import Certificate, certificate_from_card
from unlearn_core.data import DataBundle
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.evaluation import param_distance
from unlearn_core.functional import get_flat_params, num_params, set_flat_params
from unlearn_core.models import build_model, get_model_info
from unlearn_core.pipeline import Prepared, run_method
from unlearn_core.playground import noise
from unlearn_core.playground.boundary import Boundary, Grid, boundary_distance, boundary_of, make_grid
from unlearn_core.playground.data2d import N_TRAIN, make_dataset
from unlearn_core.run_config import RunConfig
from unlearn_core.training import TrainConfig, resolve_train_config, train
from unlearn_core.unlearners import get_unlearner, resolve_params
from unlearn_core.verdict import Verdict, verdict_from_card

T = TypeVar("T")

#: The radius C of the training projection ‖w‖ ≤ C (and the C certified Newton's bound assumes). The trained models
#: of every 2-D set stay inside it (largest ‖w*‖: 5.1, logistic regression on the separable set), so it never
#: stops a minimiser; a smaller C would shrink Zhang et al.'s Δ ≥ 2C but make the projection bite.
NORM_BOUND = 10.0
#: Weight decay of the training recipe: enough that logistic regression on the separable set has a minimiser.
WEIGHT_DECAY = 1e-3
#: Simulated releases per cloud: Gaussian draws cost a forward pass each; a method whose noise is inside it costs a
#: whole run per draw, so its clouds are smaller (:func:`cloud_draws`).
DRAWS = 6
RUN_DRAWS = 4
#: Most retrained models kept per playground (one per forget set a user visited).
RETRAINED_CACHE = 32


@dataclass(frozen=True)
class ModelSpec:
    """One of the playground's two models: its key, its title, the model registry's name and the MLP widths."""

    name: str
    title: str
    registry_name: str
    hidden: tuple[int, ...]


MODELS_2D: dict[str, ModelSpec] = {
    "logreg": ModelSpec("logreg", "Logistic regression (convex)", "logreg", (16, 16)),
    "mlp": ModelSpec("mlp", "MLP 2-16-16-2 (ReLU, not convex)", "mlp", (16, 16)),
}

#: The training recipe of both models; ``optimizer="auto"`` resolves to L-BFGS with a gradient tolerance for the
#: convex model and to (full-batch) Adam for the MLP (:func:`unlearn_core.training.resolve_train_config`): 200
#: epochs at lr 0.02 fit the four sets as well as 300 at 0.01 (train accuracy 0.95–1.0, test 0.89–1.0) in ⅔ of the
#: time, and retraining is most of an MLP click.
RECIPE = TrainConfig(optimizer="auto", lr=0.02, epochs=200, batch_size=N_TRAIN, weight_decay=WEIGHT_DECAY,
                     norm_bound=NORM_BOUND, max_iter=500)

#: The playground's settings of a method where its own defaults are made for image models: certified Newton solves
#: exactly (≤ 354 parameters: the dense solve takes milliseconds, and λ_min is then the exact eigenvalue, a bound,
#: where LiSSA would add its probabilistic term) and assumes the recipe's radius C.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "certified_newton": {"solver": "exact", "C": NORM_BOUND},
    # Koloskova et al.'s defaults are MNIST's (batches of 128: 10 epochs = 4,690 steps there, 20 on 200 points);
    # batches of 32 give 70 fine-tuning steps here, and each of a cloud's draws is a whole run.
    "noisy_finetune": {"batch_size": 32},
    "output_perturbation": {"batch_size": 32},
}
#: Per model, on top of :data:`METHOD_DEFAULTS`: logistic regression with weight decay is strongly convex, so certified
#: Newton uses the strong-convexity bound (Δ = ‖∇L(w̃, D_r)‖/μ, a proof: issue 19) — certified *and* useful, and the
#: guessing game is lost at small ε and won at large ε, as it should be. Zhang et al.'s worst-case bound (Δ ≥ 2C) is one
#: ``p.bound=zhang`` away, and stays the default on the MLP, where no strong convexity holds.
MODEL_METHOD_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "logreg": {"certified_newton": {"bound": "strong_convexity"}},
}


def one_thread(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` with one torch intra-op thread, then restore the caller's setting.

    Why: the playground's models have at most 354 parameters and 200 points — a training step is ≈ 10⁵ floating-point
    operations, far below where a second thread pays (:data:`unlearn_core.device.PARALLEL_STEP_FLOPS`) — and on the
    shared 2-core machine two threads made a click on the MLP 10–30× slower (7.7–36.6 s against 0.6–1.9 s, load
    average 12). The dashboard's script thread has torch's default (every core), so the engine sets it itself, as
    the job registry does for its workers; ``OMP_NUM_THREADS`` set by the user wins.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        if os.environ.get("OMP_NUM_THREADS"):
            return fn(*args, **kwargs)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(previous)

    return wrapper


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS_2D[name]
    except (KeyError, TypeError):
        raise ConfigError(f"model {abbreviate(name)} is not valid: choose one of {', '.join(MODELS_2D)}") from None


def method_params(method: str, overrides: Mapping[str, Any] | None = None, *, model: str | None = None
                  ) -> dict[str, Any]:
    """The method's hyperparameters in the playground: its schema's defaults, :data:`METHOD_DEFAULTS`, the
    ``model``'s :data:`MODEL_METHOD_DEFAULTS`, then ``overrides`` (raw text or typed values), validated by the
    method's schema.

    Raises:
        ConfigError: unknown method, unknown hyperparameter, or a value out of its range.
    """
    unlearner = get_unlearner(method)
    merged = {**METHOD_DEFAULTS.get(method, {}), **MODEL_METHOD_DEFAULTS.get(model or "", {}).get(method, {}),
              **dict(overrides or {})}
    return resolve_params(unlearner.schema, merged, method=method)


@dataclass
class Playground:
    """A data set, a model trained on all of it (the original, never modified) and the grid the page draws.

    Built by :func:`build_playground`; shared by every click on this (data set, seed, model), so it must not be
    mutated except through its retrained-model cache (guarded by a lock: the dashboard serves several sessions).
    """

    dataset: str
    seed: int
    model_spec: ModelSpec
    data: DataBundle
    train_config: TrainConfig  # the resolved recipe (optimizer "lbfgs" or "adam")
    original: nn.Module
    original_summary: dict[str, Any]
    grid: Grid
    original_boundary: Boundary
    _retrained: OrderedDict[tuple[int, ...], tuple[nn.Module, dict[str, Any]]] = field(
        default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n_train(self) -> int:
        return self.data.n_train

    @property
    def convex(self) -> bool:
        return get_model_info(self.model_spec.registry_name).convex

    def fresh_model(self) -> nn.Module:
        """The initialisation the original model started from (and every retrained model starts from)."""
        return build_model(self.model_spec.registry_name, input_shape=self.data.input_shape, num_classes=2,
                           seed=self.seed, hidden=self.model_spec.hidden)

    def check_forget(self, forget: Sequence[int]) -> tuple[int, ...]:
        """The forget set as sorted unique indices, checked against the data set.

        Raises:
            ConfigError: an index outside [0, n), or a forget set that leaves a class with no point.
        """
        try:
            indices = sorted({int(i) for i in forget})
        except (TypeError, ValueError):
            raise ConfigError(f"deleted points {abbreviate(list(forget))} are not valid: expected point numbers "
                              f"0-{self.n_train - 1}") from None
        bad = [i for i in indices if not 0 <= i < self.n_train]
        if bad:
            raise ConfigError(f"deleted point {bad[0]} is not valid: this data set has points 0-{self.n_train - 1}")
        if indices:
            kept = torch.ones(self.n_train, dtype=torch.bool)
            kept[torch.tensor(indices)] = False
            for label in (0, 1):
                if not bool((self.data.y_train[kept] == label).any()):
                    raise ConfigError(f"deleting these {len(indices)} points leaves no {self.data.class_names[label]}"
                                      " point: keep at least one point of each class")
        return tuple(indices)

    def retrained(self, forget: tuple[int, ...]) -> tuple[nn.Module, dict[str, Any]]:
        """A(D_r): the model retrained without ``forget`` (cached per forget set; never mutate it)."""
        if not forget:
            return self.original, self.original_summary
        with self._lock:
            hit = self._retrained.get(forget)
            if hit is not None:
                self._retrained.move_to_end(forget)
                return hit
        retain = _retain_index(self.n_train, forget)
        model = self.fresh_model()
        summary = train(model, self.data.x_train[retain], self.data.y_train[retain], self.train_config,
                        convex=self.convex, stage="retrain")
        model.eval()
        with self._lock:
            self._retrained[forget] = (model, summary)
            while len(self._retrained) > RETRAINED_CACHE:
                self._retrained.popitem(last=False)
        return model, summary

    def prepared(self, forget: tuple[int, ...], *, start: nn.Module | None = None) -> Prepared:
        """The pipeline's :class:`Prepared` for this forget set: what an Explore run hands its unlearner.

        ``start`` replaces the original model as the model to unlearn from (the retrained model, for the cloud of
        the model that never saw the points).
        """
        retrained, summary = self.retrained(forget)
        forget_idx = torch.tensor(forget, dtype=torch.int64)
        config = RunConfig(
            dataset=self.dataset, model=self.model_spec.registry_name, forget=_forget_text(forget),
            seed=self.seed, hidden=self.model_spec.hidden, train=RECIPE, device="cpu", use_cache=False,
            reproducible=True,  # the playground is a simulation: its noise is seeded, its certificates say so
        )
        return Prepared(
            config=config, device=torch.device("cpu"), data=self.data, forget_idx=forget_idx,
            retain_idx=_retain_index(self.n_train, forget), train_config=self.train_config,
            original=self.original if start is None else start, retrained=retrained,
            timing_s={"train": self.original_summary.get("time_s"), "retrain": summary.get("time_s")},
            cached={"original": True, "retrained": True},
            train_summaries={"original": dict(self.original_summary if start is None else summary),
                             "retrained": dict(summary)},
        )


def _retain_index(n: int, forget: tuple[int, ...]) -> torch.Tensor:
    keep = torch.ones(n, dtype=torch.bool)
    if forget:
        keep[torch.tensor(forget)] = False
    return keep.nonzero().squeeze(1)


def _forget_text(forget: tuple[int, ...]) -> str:
    """The forget set in the package's grammar (``indices:3,17``), as the run card and Explore write it."""
    return "indices:" + ",".join(str(i) for i in forget)


@one_thread
def build_playground(dataset: str, *, seed: int, model: str) -> Playground:
    """Draw the data set and train the original model on all of it.

    Raises:
        ConfigError: an unknown data set or model, or a seed outside [0, 2³²).
    """
    spec = get_model_spec(model)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed={abbreviate(seed)} is not valid: expected an integer in [0, {2**32 - 1}]")
    data = make_dataset(dataset, seed=seed)
    convex = get_model_info(spec.registry_name).convex
    recipe = resolve_train_config(RECIPE, convex=convex)
    original = build_model(spec.registry_name, input_shape=data.input_shape, num_classes=2, seed=seed,
                           hidden=spec.hidden)
    summary = train(original, data.x_train, data.y_train, recipe, convex=convex, stage="train")
    original.eval()
    grid = make_grid()
    return Playground(dataset=dataset, seed=seed, model_spec=spec, data=data, train_config=recipe, original=original,
                      original_summary=summary, grid=grid, original_boundary=boundary_of(original, grid))


# ----------------------------------------------------------------------------------------------------------------
# The release: how the method's output is distributed, from the model that saw the points and from the one that
# never did
# ----------------------------------------------------------------------------------------------------------------

GAUSSIAN, RUNS = "gaussian", "runs"


@dataclass
class Release:
    r"""The two distributions the certificate compares, as something the clouds and the game can draw from.

    * ``kind="gaussian"`` — the method releases its noise-free estimate plus one isotropic Gaussian draw,
      :math:`w^- = \tilde w + \xi`, :math:`\xi \sim N(0, \sigma^2 I_p)` (a method that reports the accuracy of its
      noise-free estimate says so: certified Newton), and the certificate compares it with the retrained model
      plus the same noise, :math:`\tilde w^* + \xi` (Zhang et al. 2024). Draws are centre + ξ, with ξ from
      :func:`unlearn_core.playground.noise.draw_release_noise`.
    * ``kind="runs"`` — the noise is inside the method (noisy fine-tuning, output perturbation): a draw is one run
      of the method with a fresh seed, from the original model (``unlearned``) or from the retrained one
      (``retrained``: the same mechanism applied to the model that never saw the points, which is the comparison
      of Koloskova et al. 2025's theorem).

    ``centre`` holds the noise-free models' flat parameters per side (``None`` where there is none), which the
    game's ideal guesser compares with.
    """

    kind: str
    sigma: float
    template: nn.Module
    centre: dict[str, torch.Tensor | None]
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    prepared: dict[str, Prepared] = field(default_factory=dict)

    @property
    def num_params(self) -> int:
        return num_params(self.template)

    @one_thread
    def draw(self, side: str, seeds: Sequence[int], *, stream: int = noise.CLOUD_STREAM) -> list[torch.Tensor]:
        """Flat parameter vectors of simulated releases from ``side`` (``"unlearned"`` or ``"retrained"``), one per
        seed; the same (stream, side, seed) always gives the same draw, and two streams never share one."""
        if side not in ("unlearned", "retrained"):
            raise ValueError(f"side={side!r}")
        out = []
        for s in seeds:
            if self.kind == GAUSSIAN:
                centre = self.centre[side]
                assert centre is not None
                xi = noise.draw_release_noise(self.num_params, self.sigma,
                                              generator=noise.simulation_generator(s, stream, _side(side)),
                                              dtype=centre.dtype)
                out.append(centre + xi)
            else:
                model = _unlearn_model(self.prepared[side], self.method, self.params, seed=_run_seed(s, side, stream))
                out.append(get_flat_params(model).detach().clone())
        return out

    @one_thread
    def boundaries(self, vectors: Sequence[torch.Tensor], grid: Grid) -> list[Boundary]:
        """The decision boundary of each parameter vector (a cloud), on ``grid``."""
        return [boundary_of(self.model(w), grid) for w in vectors]

    def model(self, flat: torch.Tensor) -> nn.Module:
        """A model with the parameters ``flat`` (a copy of the template)."""
        model = copy.deepcopy(self.template)
        set_flat_params(model, flat)
        return model.eval()


def _unlearn_model(prepared: Prepared, method: str, params: Mapping[str, Any], *, seed: int | None = None) -> nn.Module:
    """The model ``method`` releases on ``prepared`` (its own run, as in :func:`run_method`, without the run card's
    metrics: a cloud needs only the weights).

    The method draws its noise itself through its context's :meth:`~unlearn_core.unlearners.base.UnlearnContext.
    release_noise`, which is reproducible here (the playground's configuration is ``reproducible=True``: a
    simulation) and seeded by ``seed``: with :func:`Release.draw` (Gaussian draws) this is the second and last place
    where the playground's simulated noise comes from.
    """
    ctx = prepared.context(seed=seed)
    return get_unlearner(method).unlearn(ctx, **params).model.eval()


def _side(side: str) -> int:
    return 0 if side == "unlearned" else 1


def _run_seed(seed: int, side: str, stream: int) -> int:
    """The unlearner's seed of simulated run ``seed`` on ``side`` in ``stream`` (no two share their noise)."""
    return 2 * (int(stream) * 1_000_000 + int(seed)) + _side(side)


def _release_kind(outcome_diagnostics: Mapping[str, Any] | None, certificate: Certificate | None) -> str:
    """``gaussian`` when the method releases noise-free estimate + one Gaussian draw calibrated to a sensitivity Δ
    (it reports its estimate's accuracy, and its certificate has a Δ), else ``runs``."""
    reports_estimate = bool((outcome_diagnostics or {}).get("noiseless_accuracy"))
    has_sensitivity = certificate is not None and certificate.sensitivity is not None
    return GAUSSIAN if reports_estimate and has_sensitivity else RUNS


# ----------------------------------------------------------------------------------------------------------------
# One click
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one click computed: the run card (Explore's), the boundaries and the clouds, and the timings.

    ``error`` is set (one line) when the method cannot run on this problem; the original and retrained boundaries
    are there anyway. ``unlearned`` is the noise-free unlearned model's boundary (``unlearned_note`` says how it
    was obtained, or why there is none). ``distance`` holds boundary distances (:func:`boundary_distance`):
    ``unlearned_to_retrained``, ``original_to_retrained`` and their ``ratio``; ``timing_s`` the seconds of each
    phase and ``total``.
    """

    forget: tuple[int, ...]
    method: str
    family: str
    params: dict[str, Any]
    original: Boundary
    retrained: Boundary
    retrained_summary: dict[str, Any]
    card: dict[str, Any] | None = None
    certificate: Certificate | None = None
    verdict: Verdict | None = None
    error: str | None = None
    unlearned: Boundary | None = None
    unlearned_note: str = ""
    cloud_unlearned: list[Boundary] = field(default_factory=list)
    cloud_retrained: list[Boundary] = field(default_factory=list)
    cloud_note: str = ""
    release: Release | None = None
    distance: dict[str, float | None] = field(default_factory=dict)
    param_distance: dict[str, float | None] = field(default_factory=dict)
    timing_s: dict[str, float] = field(default_factory=dict)

    @property
    def sigma(self) -> float | None:
        return None if self.certificate is None else self.certificate.sigma_used


@one_thread
def unlearn(
    pg: Playground,
    forget: Sequence[int],
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    draws: int = DRAWS,
    noise_seed: int = 0,
) -> Outcome:
    """Delete ``forget`` from the playground's data: retrain, unlearn with ``method``, draw the clouds and every
    boundary (see the module docstring).

    ``params`` override the method's playground defaults (:func:`method_params`). Each cloud gets ``draws``
    releases (at most :data:`RUN_DRAWS` for a method whose noise is inside it; 0: no clouds, draw them later with
    :func:`draw_clouds`); ``noise_seed`` seeds them (draw k uses seed ``noise_seed·1000 + k``).

    Raises:
        ConfigError: a bad forget set, method name or hyperparameter (bad input: the page shows one line). A method
            that cannot run on this problem does not raise: the outcome's ``error`` says why.
    """
    tic = time.perf_counter()
    timing: dict[str, float] = {}
    forget_t = pg.check_forget(forget)
    unlearner = get_unlearner(method)
    resolved = method_params(method, params, model=pg.model_spec.name)
    if not 0 <= int(draws) <= 100:
        raise ConfigError(f"draws={draws!r} is not valid: expected an integer in [0, 100]")
    retrained, summary = pg.retrained(forget_t)
    timing["retrain"] = time.perf_counter() - tic
    mark = time.perf_counter()
    retrained_boundary = boundary_of(retrained, pg.grid) if forget_t else pg.original_boundary
    out = Outcome(forget=forget_t, method=method, family=unlearner.family, params=resolved,
                  original=pg.original_boundary, retrained=retrained_boundary, retrained_summary=summary,
                  timing_s=timing)
    original_to_retrained = boundary_distance(pg.original_boundary, retrained_boundary)
    out.distance = {"original_to_retrained": original_to_retrained}
    timing["boundaries"] = time.perf_counter() - mark
    if not forget_t:
        out.error = "no point is deleted yet: click a point (or draw a lasso around several) to delete it"
        timing["total"] = time.perf_counter() - tic
        return out

    mark = time.perf_counter()
    prepared = pg.prepared(forget_t)
    reason = unlearner.unsupported_reason(pg.original, resolved)
    if reason:
        out.error = f"{method} cannot run on this model: {reason}"
        timing["total"] = time.perf_counter() - tic
        return out
    try:
        result = run_method(prepared, method, resolved, checked=True)
    except Exception as exc:  # a method that cannot run here says why in one line; the page stays usable
        out.error = f"{method} cannot run on this problem: {_one_line(exc)}"
        timing["unlearn"] = time.perf_counter() - mark
        timing["total"] = time.perf_counter() - tic
        return out
    timing["unlearn"] = time.perf_counter() - mark
    card = result.card
    out.card = card
    out.certificate = certificate_from_card(card) if card.get("certificate") else None
    out.verdict = verdict_from_card(card)

    # The noise-free step and the release distribution.
    mark = time.perf_counter()
    noise_param = unlearner.noise_param
    noise_free: nn.Module | None = result.unlearned
    out.unlearned_note = "the method adds no noise: its release is the unlearned model"
    if noise_param is not None:
        try:
            noise_free = _unlearn_model(prepared, method, {**resolved, noise_param: 0.0})
            out.unlearned_note = f"the same run with its release noise switched off ({noise_param} = 0)"
        except Exception as exc:
            noise_free = None
            out.unlearned_note = f"no noise-free version: {_one_line(exc)}"
    timing["noise_free"] = time.perf_counter() - mark

    mark = time.perf_counter()
    sigma = out.sigma
    if unlearner.family == "oracle":
        out.cloud_note = f"{method} is retraining itself: it needs no noise, so there is no cloud"
    elif noise_param is None or out.certificate is None:
        out.cloud_note = (f"{method} adds no release noise, so there is no cloud: nothing hides the difference "
                          "between its model and the retrained one")
    elif not sigma or sigma <= 0:
        out.cloud_note = ("σ = 0: no noise was added" + (" (Δ is infinite, so no finite σ certifies the release)"
                                                           if out.certificate.sensitivity == math.inf else "")
                          + ", so there is no cloud")
    else:
        kind = _release_kind(card.get("diagnostics"), out.certificate)
        template = copy.deepcopy(pg.original).eval()
        if kind == GAUSSIAN and noise_free is not None:
            release = Release(kind=GAUSSIAN, sigma=float(sigma or 0.0), template=template,
                              centre={"unlearned": get_flat_params(noise_free).detach().clone(),
                                      "retrained": get_flat_params(retrained).detach().clone()})
            out.cloud_note = ("simulation: the noise-free unlearned model and the retrained model, each plus "
                              f"independent draws of N(0, σ²I) at the certificate's σ = {sigma:.3g}")
        else:
            from_retrained = pg.prepared(forget_t, start=retrained)
            centre: dict[str, torch.Tensor | None] = {
                "unlearned": None if noise_free is None else get_flat_params(noise_free).detach().clone(),
                "retrained": None,
            }
            if noise_free is not None:
                try:
                    centre["retrained"] = get_flat_params(
                        _unlearn_model(from_retrained, method, {**resolved, noise_param: 0.0})).detach().clone()
                except Exception:  # the same failure as the noise-free run on the other side
                    centre["retrained"] = None
            release = Release(kind=RUNS, sigma=float(sigma or 0.0), template=template, centre=centre, method=method,
                              params=resolved, prepared={"unlearned": prepared, "retrained": from_retrained})
            out.cloud_note = (f"simulation: runs of {method} with fresh seeds from the original model, and from "
                              "the retrained one (the same mechanism on the model that never saw the points)")
        out.release = release
    timing["release"] = time.perf_counter() - mark

    mark = time.perf_counter()
    if noise_free is not None:
        out.unlearned = boundary_of(noise_free, pg.grid)
        to_retrained = boundary_distance(out.unlearned, retrained_boundary)
        out.distance["unlearned_to_retrained"] = to_retrained
        out.distance["ratio"] = (to_retrained / original_to_retrained
                                 if original_to_retrained > 0 and math.isfinite(original_to_retrained) else None)
        base = param_distance(pg.original, retrained)
        step = param_distance(noise_free, retrained)
        out.param_distance = {"unlearned_to_retrained": step, "original_to_retrained": base,
                              "ratio": step / base if base > 0 else None}
    timing["boundaries"] += time.perf_counter() - mark
    timing["total"] = time.perf_counter() - tic
    if draws:
        return draw_clouds(pg, out, draws=min(int(draws), cloud_draws(out, gaussian=int(draws), runs=RUN_DRAWS)),
                           noise_seed=noise_seed)
    return out


def cloud_draws(outcome: Outcome, *, gaussian: int = DRAWS, runs: int = RUN_DRAWS) -> int:
    """How many releases each cloud of ``outcome`` gets: ``gaussian`` for Gaussian releases, ``runs`` for a method
    whose noise is inside it (one whole run per draw), 0 without a release."""
    if outcome.release is None:
        return 0
    return gaussian if outcome.release.kind == GAUSSIAN else runs


@one_thread
def draw_clouds(pg: Playground, outcome: Outcome, *, draws: int = DRAWS, noise_seed: int = 0) -> Outcome:
    """``outcome`` with its two clouds drawn: ``draws`` simulated releases from each side (:meth:`Release.draw`,
    seeds ``noise_seed·1000 + k``), as boundaries. A new :class:`Outcome` (the given one may be shared)."""
    if not 0 <= int(draws) <= 100:
        raise ConfigError(f"draws={draws!r} is not valid: expected an integer in [0, 100]")
    release = outcome.release
    out = dataclasses.replace(outcome, timing_s=dict(outcome.timing_s))
    if release is None or not draws:
        return out
    mark = time.perf_counter()
    seeds = [int(noise_seed) * 1000 + k for k in range(int(draws))]
    try:
        out.cloud_unlearned = release.boundaries(release.draw("unlearned", seeds), pg.grid)
        out.cloud_retrained = release.boundaries(release.draw("retrained", seeds), pg.grid)
    except Exception as exc:  # a method whose repeated runs fail: the picture keeps its three boundaries
        out.cloud_unlearned, out.cloud_retrained = [], []
        out.cloud_note = f"no cloud: {_one_line(exc)}"
    out.timing_s["clouds"] = time.perf_counter() - mark
    out.timing_s["total"] = out.timing_s.get("total", 0.0) + out.timing_s["clouds"]
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text and text[0] else type(exc).__name__


def nearest_point(pg: Playground, x: float, y: float) -> int:
    """The index of the training point nearest to (x, y) (where a click landed)."""
    pts = pg.data.x_train.reshape(-1, 2).numpy()
    return int(np.argmin(((pts - np.array([x, y])) ** 2).sum(axis=1)))
