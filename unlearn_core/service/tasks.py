"""The dashboard's job bodies: the worker functions its pages submit to :class:`~unlearn_core.service.jobs.JobRegistry`.

UI-free (tested without Streamlit). A task runs a configuration that the page has already validated
(:func:`unlearn_core.pipeline.validate_config` at submission), so the pipeline does not validate it again.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from unlearn_core.errors import ConfigError
from unlearn_core.executors import Executor
from unlearn_core.pipeline import RunConfig, RunResult
from unlearn_core.progress import Cancelled
from unlearn_core.service.jobs import WorkerFn
from unlearn_core.service.runstore import RunStore, RunStoreError


def _optional_mia(result: RunResult) -> dict[str, Any] | None:
    """MIA numbers from :mod:`unlearn_core.metrics` when that module provides ``mia_report`` (else ``None``)."""
    try:
        from unlearn_core import metrics
    except ImportError:
        return None
    report = getattr(metrics, "mia_report", None)
    if report is None:
        return None
    return report(original=result.prepared.original, unlearned=result.unlearned,
                  retrained=result.prepared.retrained, splits=metrics.prepared_splits(result.prepared))


def _fit_threads(config: RunConfig) -> None:
    """In a job's thread: no more intra-op threads than the work size calls for (``preflight.threads_for``) nor than
    the registry allows; left alone when ``OMP_NUM_THREADS`` is set."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    from unlearn_core.preflight import threads_for

    torch.set_num_threads(max(1, min(torch.get_num_threads(), threads_for(config))))


def save_or_warn(store: RunStore, card: dict[str, Any], **kwargs: Any) -> str | None:
    """Store a finished run; when the store cannot be written, keep the result anyway and say so in the card.

    Why: a broken or locked ``runs.sqlite`` made Run on Explore fail after all its work. The run's result does not
    depend on the history, so it is shown, with one warning line (the store's error: path, why, what to do).
    """
    try:
        return store.save(card, **kwargs)
    except RunStoreError as exc:
        card.setdefault("warnings", []).append(f"not saved to the run history: {exc}")
        return None


def run_task(config: RunConfig, *, key: str, store: RunStore | None = None, kind: str = "explore",
             validated: bool = False) -> WorkerFn:
    """A worker for one run: :func:`unlearn_core.pipeline.run`, MIA when available, saved to the run store.

    ``validated=True``: the caller has validated ``config`` (the page, at submission), so the run does not again.

    Returns ``{"card", "run_id", "weights"}``; the weights are bytes of the unlearned state dict.
    """

    def work(progress: Callable[[dict[str, Any]], None], cancel: threading.Event) -> dict[str, Any]:
        from unlearn_core.jsonio import to_jsonable
        from unlearn_core.pipeline import run
        from unlearn_core.service.runstore import state_dict_bytes

        _fit_threads(config)

        result = run(config, progress=progress, cancel=cancel, validated=validated)
        progress({"stage": "metrics"})
        card = dict(result.card)
        mia = _optional_mia(result)
        if mia is not None:
            card["mia"] = mia
        card = to_jsonable(card)
        run_id = None
        if store is not None:  # the weights live in the store only; the page downloads them from there
            run_id = save_or_warn(store, card, config_hash=key, kind=kind, weights=state_dict_bytes(result.unlearned))
        return {"card": card, "run_id": run_id}

    return work


#: Experiments of :mod:`unlearn_core.experiments` that the dashboard runs in the background, and the field's
#: evaluation (:func:`unlearn_core.field_evaluation.evaluate`, kind ``evaluate``).
EXPERIMENT_KINDS = ("compare", "sequential", "sensitivity", "audit", "forget_size", "frontier", "evaluate")


def experiment_function(kind: str) -> Callable[..., Any]:
    """The engine function of an experiment kind (all in :mod:`unlearn_core.experiments` but ``evaluate``)."""
    if kind == "evaluate":
        from unlearn_core.field_evaluation import evaluate

        return evaluate
    from unlearn_core import experiments

    return getattr(experiments, kind)


def experiment_card(kind: str, base: RunConfig, df: Any, *, seeds: Sequence[int], options: Mapping[str, Any],
                    label: str) -> dict[str, Any]:
    """A JSON run card for an experiment: its configuration and its tidy rows (what the Runs page reopens).

    ``config.method`` is the label (e.g. ``"certified_newton, finetune"``) so the history's columns stay readable;
    the rows carry everything else.
    """
    from unlearn_core.jsonio import to_jsonable

    return to_jsonable({
        "config": {**base.to_json(), "method": label},
        "experiment": {"kind": kind, "seeds": [int(s) for s in seeds], "options": dict(options),
                       "columns": list(df.columns), "rows": df.to_dict("records")},
    })


def experiment_task(
    kind: str,
    base: RunConfig,
    *,
    seeds: Sequence[int],
    key: str,
    store: RunStore | None = None,
    label: str = "",
    executor: Executor | None = None,
    **options: Any,
) -> WorkerFn:
    """A worker for ``unlearn_core.experiments.<kind>(base, seeds=seeds, **options)`` (Compare, Sequential,
    Sensitivity pages): several seeds, tidy DataFrame out, the same code path as the CLI's ``experiment``.

    Why the models are prepared here first (serial executor): the experiment's prepare cells report no training
    progress, so the worker calls :func:`unlearn_core.pipeline.prepare` for every seed beforehand — with the live
    loss chart — and the experiment then finds them in the disk cache. With a parallel executor
    (``executor``, e.g. :func:`unlearn_core.executors.executor_from_env`) the experiment's own prepare cells train
    the seeds in parallel instead. The experiment's cell progress (cells done / total, ETA) is forwarded, and the
    cancel event reaches the running cells.

    Returns ``{"kind", "table" (DataFrame), "card" (JSON, see :func:`experiment_card`), "run_id"}``.
    """
    if kind not in EXPERIMENT_KINDS:
        raise ConfigError(f"experiment {kind!r} is not valid: choose one of {', '.join(EXPERIMENT_KINDS)}")
    seeds = [int(s) for s in seeds]

    def work(progress: Callable[[dict[str, Any]], None], cancel: threading.Event) -> dict[str, Any]:
        from unlearn_core.pipeline import prepare

        _fit_threads(base)
        serial = executor is None or getattr(executor, "name", "serial") == "serial"
        # forget_size prepares one model per size; the one-run audit trains its own canary models
        own_models = kind == "forget_size" or options.get("mode") == "one_run"
        for seed in seeds if serial and not own_models else ():
            if cancel.is_set():
                raise Cancelled("cancelled")
            # The seeds were checked with the base configuration at submission; the seed is its only change.
            prepare(dataclasses.replace(base, seed=seed, compute_retrained=True), progress=progress, cancel=cancel,
                    validated=True)

        plans: list[str] = []

        def forward(info: dict[str, Any]) -> None:
            if cancel.is_set():
                raise Cancelled("cancelled")
            if info.get("stage") == "plan":  # where the cells ran and why: kept for the card, not a progress step
                plans.append(str(info.get("message", "")))
                return
            record = dict(info)
            if isinstance(record.get("run"), int) and isinstance(record.get("runs"), int):
                record.update(step=record["run"] - 1, steps=record["runs"])  # drives the progress bar
            progress(record)

        df = experiment_function(kind)(base, seeds=seeds, progress=forward, cancel=cancel, executor=executor,
                                       **options)
        card = experiment_card(kind, base, df, seeds=seeds, options=options, label=label or kind)
        if executor is not None:
            card["executor"] = {"describe": executor.describe(), "plans": plans}
        run_id = (save_or_warn(store, card, config_hash=key, kind=kind, label=label or kind) if store is not None
                  else None)
        return {"kind": kind, "table": df, "card": card, "run_id": run_id}

    return work
