"""One unlearning run, end to end: data → forget split → original and retrained models (cached) → unlearner →
metrics → the JSON run card.

The CLI's ``run``, the experiments and the dashboard all go through here, so a configuration means the same
thing everywhere. Validation happens first, before anything is trained or written to the cache: bad input costs
nothing and leaves nothing behind.

Typical use::

    config = RunConfig(dataset="digits", model="mlp", forget="random:0.1", method="certified_newton",
                       params={"lam": 0.01, "epsilon": 1.0})
    result = run(config)
    result.card["models"]["unlearned"]["acc_test"]

Several methods on one configuration share the trained models: ``prepared = prepare(config)`` once, then
``run_method(prepared, name, params)`` per method.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_core import __version__
from unlearn_core.cache import ModelCache, config_hash
from unlearn_core.data import DataBundle, get_dataset_info, load_dataset
from unlearn_core.device import describe_device, resolve_device
from unlearn_core.evaluation import param_distance, split_metrics
from unlearn_core.forget import check_forget_spec, select_forget
from unlearn_core.models import build_model, get_model_info, has_batchnorm
from unlearn_core.paths import check_cache_dir, check_data_dir
from unlearn_core.preflight import check_estimate, check_run_config
from unlearn_core.privacy.noise import release_record
from unlearn_core.progress import ProgressCallback
from unlearn_core.run_config import RunConfig
from unlearn_core.training import FULL_BATCH_RECIPES, TrainConfig, resolve_train_config, train
from unlearn_core.trajectory import CacheCheckpoints, MemoryCheckpoints, Trajectory
from unlearn_core.unlearners import UnlearnContext, UnlearnResult, get_unlearner, resolve_params


def validate_config(config: RunConfig) -> dict[str, Any]:
    """Check every name and value that can be checked without data; return the method's resolved params.

    Names (dataset, model, method, device), the data and cache directories (an empty one, a cache that is a file,
    read-only or under /proc: :func:`unlearn_core.paths.check_cache_dir`), the forget spec against the dataset's
    classes and size, every
    number against its bound, and the run's estimated memory and arithmetic against the machine
    (:func:`unlearn_core.preflight.check_run_config`). The model is only ever built on the ``meta`` device here,
    so even an absurd width costs nothing.

    Called once per run, at the entry (the CLI, the dashboard's job submission, the experiments' entry), which then
    passes ``validated=True`` to :func:`prepare` / :func:`run`: each check builds a probe model.

    Raises:
        ConfigError: one line naming the bad value and what is allowed.
    """
    info = get_dataset_info(config.dataset)
    get_model_info(config.model)
    check_data_dir(config.data_dir)
    if config.use_cache:  # a cache that cannot hold files failed after the data had loaded (a traceback)
        check_cache_dir(config.cache_dir)
    check_forget_spec(config.forget, num_classes=info.num_classes, n_train=info.n_train, dataset=info.name)
    config.train.validate()
    device = resolve_device(config.device)
    unlearner = get_unlearner(config.method)
    params = resolve_params(unlearner.schema, dict(config.params), method=config.method)
    recipe = unlearner.recipe_for(config.train, params)  # a method with its own recipe: the user did not force another
    if recipe is not None:
        recipe.validate()
    check_run_config(config, unlearner, params, device=device)
    with torch.device("meta"):  # check_supported needs the architecture, not weights
        probe = build_model(
            config.model, input_shape=info.input_shape, num_classes=info.num_classes, hidden=config.hidden,
            norm=config.norm, width=config.width,
        )
    unlearner.check_supported(probe, params, model_name=config.model)
    return params


@dataclass
class Prepared:
    """The shared part of a run: data, split, and the original and retrained models (never to be mutated).

    ``train_config`` is the recipe as resolved for this model (``optimizer="auto"`` replaced by what it means
    here, :func:`unlearn_core.training.resolve_train_config`), the one that trained both models.
    ``train_summaries`` holds :func:`unlearn_core.training.train`'s summary of each model trained, under
    ``"original"`` and (when computed) ``"retrained"`` — ``grad_norm``, ``grad_tol``, ``converged``,
    ``stop_reason``, ``iterations``, … — the same whether the model was trained now or loaded from the cache.
    """

    config: RunConfig
    device: torch.device
    data: DataBundle
    forget_idx: torch.Tensor
    retain_idx: torch.Tensor
    train_config: TrainConfig
    original: nn.Module
    retrained: nn.Module | None
    timing_s: dict[str, float | None]
    cached: dict[str, bool]
    train_summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: One line per thing the model cache discarded or declined to store (:attr:`unlearn_core.cache.ModelCache.notes`).
    notes: list[str] = field(default_factory=list)
    #: The kept checkpoints of the models' training (``unlearn_core.trajectory.Trajectory``), under "original" and
    #: "retrained", when the recipe keeps them (``checkpoints > 0``).
    trajectories: dict[str, Trajectory] = field(default_factory=dict)
    #: The same preparation trained with another recipe, per recipe (:meth:`for_method`): built once per process.
    recipes: dict[str, Prepared] = field(default_factory=dict, repr=False)

    def for_method(
        self,
        unlearner: Any,
        params: dict[str, Any],
        *,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
    ) -> Prepared:
        """This preparation, or the same data and split with the models trained by the recipe ``unlearner`` needs.

        Langevin unlearning and Rewind-to-Delete certify only models trained by their own recipe
        (``Unlearner.training_optimizer``): for them the original and the retrained model are trained (or loaded
        from the cache) with ``unlearner.recipe_for(config.train, params)`` — the data, the forget set and the
        cache are shared — and the result is kept on this preparation, so several runs of the method (a sweep, an
        audit) train once. Any other method gets ``self``.

        Raises:
            ConfigError: the user forced an optimiser other than the method's.
        """
        convex = get_model_info(self.config.model).convex
        recipe = unlearner.recipe_for(self.config.train, params, x_train=self.data.x_train, convex=convex)
        if recipe is None:
            return self
        recipe = resolve_train_config(dataclasses.replace(recipe, seed=self.config.seed), convex=convex).validate()
        if recipe == self.train_config:
            return self
        key = config_hash(recipe.to_json())
        if key not in self.recipes:
            derived = dataclasses.replace(
                self, train_config=recipe, original=None, retrained=None,  # type: ignore[arg-type]
                timing_s={"train": None, "retrain": None}, cached={"original": False, "retrained": False},
                train_summaries={}, trajectories={}, recipes={},
            )
            _train_models(derived, compute_retrained=self.retrained is not None, progress=progress, cancel=cancel)
            self.recipes[key] = derived
        return self.recipes[key]

    def model_factory(self, seed_offset: int = 0) -> nn.Module:
        """A fresh initialisation; offset 0 is the one the original and the retrained models started from."""
        cfg = self.config
        return build_model(
            cfg.model, input_shape=self.data.input_shape, num_classes=self.data.num_classes,
            seed=cfg.seed + int(seed_offset), hidden=cfg.hidden, norm=cfg.norm, width=cfg.width,
        ).to(self.device)

    def context(
        self,
        *,
        progress: ProgressCallback | None = None,
        cancel: Any = None,
        seed: int | None = None,
    ) -> UnlearnContext:
        """An :class:`UnlearnContext` over this preparation (the unlearner gets the cached models read-only)."""
        return UnlearnContext(
            model=self.original,
            x_train=self.data.x_train,
            y_train=self.data.y_train,
            x_test=self.data.x_test,
            y_test=self.data.y_test,
            forget_idx=self.forget_idx,
            retain_idx=self.retain_idx,
            num_classes=self.data.num_classes,
            train_config=self.train_config,
            model_factory=self.model_factory,
            device=self.device,
            seed=self.config.seed if seed is None else seed,
            convex=get_model_info(self.config.model).convex,
            retrained=self.retrained,
            train_summaries={k: dict(v) for k, v in self.train_summaries.items()},
            progress=progress,
            cancel=cancel,
            reproducible=self.config.reproducible,
            trajectories=tuple(self.trajectories.values()),
        )

    def metrics(self, model: nn.Module) -> dict[str, float]:
        return split_metrics(
            model, x_train=self.data.x_train, y_train=self.data.y_train, forget_idx=self.forget_idx,
            retain_idx=self.retain_idx, x_test=self.data.x_test, y_test=self.data.y_test,
        )


def _index_digest(idx: torch.Tensor) -> str:
    return hashlib.sha256(np.ascontiguousarray(idx.cpu().numpy().astype(np.int64)).tobytes()).hexdigest()


def _model_key(config: RunConfig, train_config: TrainConfig, device: torch.device, **extra: Any) -> dict[str, Any]:
    """What determines trained weights (device type included: GPU kernels round differently)."""
    return {
        "dataset": config.dataset,
        "split_seed": config.split_seed,
        "model": config.model,
        "model_options": config.model_options(),
        "train": _recipe_key(train_config),
        "device_type": device.type,
        **extra,
    }


def _recipe_key(train_config: TrainConfig) -> dict[str, Any]:
    """The recipe as it enters a cache key: the full-batch recipes' fields (``noise``, ``checkpoints``) only when set,
    so that the keys of every model trained before those fields existed stay valid."""
    return {k: v for k, v in train_config.to_json().items() if not (k in ("noise", "checkpoints") and v == 0)}


def _train_cached(
    cache: ModelCache | None,
    key: dict[str, Any],
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    train_config: TrainConfig,
    *,
    stage: str,
    progress: ProgressCallback | None,
    cancel: Any,
    init: Any = None,
) -> tuple[dict[str, Any], bool, Trajectory | None]:
    """Train ``model`` (or load it from the cache); with a recipe that keeps checkpoints, also its trajectory.

    The checkpoints are written while the model trains, before the model's own entry, so a cached model has
    them; if one has gone missing since, the model is trained again (one trainer per key, the cache's lock).
    """
    keeps = train_config.checkpoints > 0 and train_config.optimizer in FULL_BATCH_RECIPES
    store: MemoryCheckpoints | CacheCheckpoints | None = None
    if keeps:
        store = MemoryCheckpoints() if cache is None else CacheCheckpoints(cache, key)

    def do_train(m: nn.Module) -> dict[str, Any]:
        return train(m, x, y, train_config, progress=progress, cancel=cancel, stage=stage,
                     checkpoint=store.save if store is not None else None)

    if cache is None:
        meta, hit = do_train(model), False
    else:
        meta, hit = cache.get_or_train(key, model, do_train, cancel=cancel)
        if hit and store is not None and store.missing(meta.get("checkpoint_steps", [])):
            cache.path(key).unlink(missing_ok=True)
            model.load_state_dict(init().state_dict())  # the hit loaded the trained weights: start afresh
            meta, hit = cache.get_or_train(key, model, do_train, cancel=cancel)
    if store is None:
        return meta, hit, None
    trajectory = Trajectory(total_steps=int(train_config.epochs), steps=tuple(meta.get("checkpoint_steps", [])),
                            recipe=train_config, final=model, init=init, store=store)
    return meta, hit, trajectory


def _summary_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The training summary stored with a cached model (its metadata less the cache key)."""
    return {k: v for k, v in meta.items() if k != "key"}


def prepare(
    config: RunConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
    validated: bool = False,
) -> Prepared:
    """Load data, draw the forget set, and train (or load from the cache) the original and retrained models.

    ``validated=True``: the caller has run :func:`validate_config` on ``config`` (or on a configuration that differs
    only in a value it checked, such as an experiment's seed), so it is not checked again.
    """
    if not validated:
        validate_config(config)
    device = resolve_device(config.device)
    if progress is not None:  # MNIST takes seconds to load: say so instead of "starting"
        progress({"stage": "data", "dataset": config.dataset})
    data = load_dataset(
        config.dataset, data_dir=config.data_dir, download=config.download, device=device,
        split_seed=config.split_seed,
    )
    forget_idx, retain_idx = select_forget(
        config.forget, data.y_train, seed=config.forget_seed, num_classes=data.num_classes, x_train=data.x_train
    )
    unlearner = get_unlearner(config.method)
    recipe = unlearner.recipe_for(config.train, resolve_params(unlearner.schema, dict(config.params),
                                                               method=config.method),
                                  x_train=data.x_train, convex=get_model_info(config.model).convex)
    train_config = resolve_train_config(
        dataclasses.replace(recipe or config.train, seed=config.seed), convex=get_model_info(config.model).convex
    )
    prep = Prepared(
        config=config, device=device, data=data, forget_idx=forget_idx, retain_idx=retain_idx,
        train_config=train_config, original=None, retrained=None,  # type: ignore[arg-type]
        timing_s={"train": None, "retrain": None}, cached={"original": False, "retrained": False},
    )
    _train_models(prep, compute_retrained=config.compute_retrained, progress=progress, cancel=cancel)
    return prep


def _train_models(prep: Prepared, *, compute_retrained: bool, progress: ProgressCallback | None, cancel: Any) -> None:
    """Train (or load) ``prep``'s original model and, if asked, its retrained oracle with ``prep.train_config``."""
    config, data, device, train_config = prep.config, prep.data, prep.device, prep.train_config
    cache = ModelCache(config.cache_dir) if config.use_cache else None
    original = prep.model_factory()
    meta, hit, trajectory = _train_cached(
        cache, _model_key(config, train_config, device, kind="original"), original, data.x_train, data.y_train,
        train_config, stage="train", progress=progress, cancel=cancel, init=prep.model_factory,
    )
    original.eval()
    prep.original, prep.timing_s["train"], prep.cached["original"] = original, meta.get("time_s"), hit
    prep.train_summaries["original"] = _summary_from_meta(meta)
    if trajectory is not None:
        prep.trajectories["original"] = trajectory
    if compute_retrained:
        retain_idx = prep.retain_idx.to(device)
        retrained = prep.model_factory()
        meta, hit, trajectory = _train_cached(
            cache,
            _model_key(config, train_config, device, kind="retrained", forget=_index_digest(prep.forget_idx)),
            retrained, data.x_train[retain_idx], data.y_train[retain_idx], train_config,
            stage="retrain", progress=progress, cancel=cancel, init=prep.model_factory,
        )
        retrained.eval()
        prep.retrained, prep.timing_s["retrain"], prep.cached["retrained"] = retrained, meta.get("time_s"), hit
        prep.train_summaries["retrained"] = _summary_from_meta(meta)
        if trajectory is not None:
            prep.trajectories["retrained"] = trajectory
    prep.notes = list(cache.notes) if cache is not None else []


def cached_stages(config: RunConfig) -> dict[str, bool]:
    """Which of ``config``'s trained models are in the model cache already (``{"train": …, "retrain": …}``): a time
    estimate before Run counts those stages as nothing. Trains nothing; the retrained model's key needs the forget
    set, so the labels are loaded (memoised per process)."""
    if not config.use_cache:
        return {"train": False, "retrain": False}
    device = resolve_device(config.device)
    cache = ModelCache(config.cache_dir)
    train_config = resolve_train_config(dataclasses.replace(config.train, seed=config.seed),
                                        convex=get_model_info(config.model).convex)
    found = {"train": cache.path(_model_key(config, train_config, device, kind="original")).is_file(),
             "retrain": False}
    if config.compute_retrained:
        data = load_dataset(config.dataset, data_dir=config.data_dir, download=False, device="cpu",
                            split_seed=config.split_seed)
        forget_idx, _ = select_forget(config.forget, data.y_train, seed=config.forget_seed,
                                      num_classes=data.num_classes)
        key = _model_key(config, train_config, device, kind="retrained", forget=_index_digest(forget_idx))
        found["retrain"] = cache.path(key).is_file()
    return found


@dataclass
class RunResult:
    """The outcome of one run: the run card (JSON-ready) and the models behind it."""

    card: dict[str, Any]
    unlearned: nn.Module
    result: UnlearnResult
    prepared: Prepared


def versions() -> dict[str, str]:
    import torchvision

    return {
        "unlearn_core": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def training_card(prepared: Prepared) -> dict[str, Any]:
    """The run card's ``training`` section: the recipe as requested and as resolved, and each model's summary.

    ``{"requested_optimizer": "auto", "recipe": {...resolved TrainConfig...}, "original": {...},
    "retrained": {...}}``; each summary is :func:`unlearn_core.training.train`'s (``grad_norm``, ``grad_tol``,
    ``converged``, ``stop_reason``, ``iterations``, ``iteration_unit``, …).
    """
    return {
        "requested_optimizer": prepared.config.train.optimizer,
        "recipe": prepared.train_config.to_json(),
        **{name: dict(summary) for name, summary in prepared.train_summaries.items()},
    }


def run_method(
    prepared: Prepared,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
    seed: int | None = None,
    checked: bool = False,
) -> RunResult:
    """Run one unlearner on a prepared configuration and assemble the run card.

    ``checked=True``: :func:`validate_config` has already checked ``method`` with these ``params`` on this
    configuration (:func:`run` does), so the method's support and estimate are not checked again.
    """
    unlearner = get_unlearner(method)
    resolved = resolve_params(unlearner.schema, dict(params or {}), method=method)
    prepared = prepared.for_method(unlearner, resolved, progress=progress, cancel=cancel)
    if not checked:
        unlearner.check_supported(prepared.original, resolved, model_name=prepared.config.model)
        # Experiments call this with hyperparameters the configuration's own check did not see (a sweep, a method
        # list).
        check_estimate(dataclasses.replace(prepared.config, method=method), unlearner, resolved,
                       device=prepared.device)
    ctx = prepared.context(progress=progress, cancel=cancel, seed=seed)
    start = time.perf_counter()
    result = unlearner.unlearn(ctx, **resolved)
    if prepared.device.type == "cuda":
        torch.cuda.synchronize(prepared.device)
    unlearn_s = time.perf_counter() - start
    unlearned = result.model.eval()
    if result.certificate is not None:  # a reproducible run's noise can be regenerated: a simulation, not a release
        result.certificate.simulation = ctx.reproducible

    models = {"original": prepared.metrics(prepared.original), "unlearned": prepared.metrics(unlearned)}
    distance: dict[str, float | None] = {
        "unlearned_to_original": param_distance(unlearned, prepared.original),
        "unlearned_to_retrained": None,
        "original_to_retrained": None,
    }
    if prepared.retrained is not None:
        models["retrained"] = prepared.metrics(prepared.retrained)
        distance["unlearned_to_retrained"] = param_distance(unlearned, prepared.retrained)
        distance["original_to_retrained"] = param_distance(prepared.original, prepared.retrained)
    config_json = {**prepared.config.to_json(), "method": method, "params": resolved,
                   "train": prepared.train_config.to_json()}
    if seed is not None:
        config_json["unlearn_seed"] = seed
    card = {
        "config": config_json,
        "method": {
            "name": unlearner.name, "family": unlearner.family, "paper": unlearner.paper,
            "summary": unlearner.summary,
        },
        "data": {
            "n_train": prepared.data.n_train,
            "n_forget": int(prepared.forget_idx.numel()),
            "n_retain": int(prepared.retain_idx.numel()),
            "n_test": int(prepared.data.y_test.numel()),
            "num_classes": prepared.data.num_classes,
        },
        "models": {k: models[k] for k in ("original", "retrained", "unlearned") if k in models},
        "distance": distance,
        "timing_s": {
            "train": prepared.timing_s["train"], "retrain": prepared.timing_s["retrain"], "unlearn": unlearn_s,
        },
        "cached": dict(prepared.cached),
        "training": training_card(prepared),
        "certificate": result.certificate.to_dict() if result.certificate is not None else None,
        "release": release_record(reproducible=ctx.reproducible),
        "diagnostics": result.diagnostics.to_dict(),
        "warnings": [
            *(["the model has BatchNorm buffers, which no certificate covers (use norm=group or none)"]
              if has_batchnorm(prepared.original) else []),
            *prepared.notes,
        ],
        "versions": versions(),
        "device": describe_device(prepared.device),
    }
    return RunResult(card=card, unlearned=unlearned, result=result, prepared=prepared)


def run(
    config: RunConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
    validated: bool = False,
) -> RunResult:
    """Prepare ``config`` and run its method: the whole of ``python -m unlearn_core run``.

    ``config`` is validated once (:func:`validate_config`), unless the caller did so (``validated=True``).
    """
    if not validated:
        validate_config(config)
    prepared = prepare(config, progress=progress, cancel=cancel, validated=True)
    return run_method(prepared, config.method, config.params, progress=progress, cancel=cancel, checked=True)
