"""Background jobs on a page: submission (or reuse of a stored run), polling with a live status and loss chart,
cancel, and the app-wide heartbeat that keeps a session's watchers alive.

The job bodies are :mod:`unlearn_core.service.tasks`; the registry is :mod:`unlearn_core.service.jobs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.common import POLL_SECONDS, engine_error, get_journal, get_registry, get_store, session_id, state_key
from unlearn_core.errors import ConfigError
from unlearn_core.service.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    Job,
    JobRegistry,
    job_key,
)
from unlearn_core.service.runstore import RunStoreError
from unlearn_core.service.tasks import experiment_task
from unlearn_core.service.text import plain

#: The app-wide heartbeat's period: each open page renews its watchers this often, whatever page it shows.
HEARTBEAT_SECONDS = 5.0


@st.fragment(run_every=HEARTBEAT_SECONDS)
def session_heartbeat() -> None:
    """Called once per run by ``app.py``: keeps this session's watchers alive on every page (a user reading the
    Learn page while Explore's job runs is still waiting for it), and catches a finished job whose results the page
    has not shown (a missed transition): it reruns the app, which renders them."""
    registry = get_registry()
    registry.heartbeat(session_id())
    if finished_unshown(registry, st.session_state):
        st.rerun(scope="app")


def finished_unshown(registry: JobRegistry, state: Mapping[str, Any]) -> bool:
    """Whether the job of the page last rendered (``state["_panel"]``) has finished but its results were not drawn."""
    prefix = state.get("_panel")
    key = state.get(state_key(prefix, "job")) if prefix else None
    job = registry.get(key) if key else None
    return job is not None and job.done and state.get(state_key(prefix, "shown")) != job.id


def submit(prefix: str, key: str, fn: Callable[..., Any], *, label: str) -> Job:
    """Start (or join) the background job ``key`` and remember it as the page's current job.

    The journal records the page and its URL (which holds the whole configuration), so that after a restart the
    same link can say that this run was interrupted (:func:`interrupted_notice`).
    """
    query = {str(k): str(v) for k, v in st.query_params.to_dict().items()}
    meta: dict[str, Any] = {"page": prefix, "query": query}
    shown = st.session_state.get(state_key(prefix, "_estimate"))
    if shown and shown[0] == query:  # the estimate shown beside Run is this very configuration's: the ETA starts there
        meta["prediction"] = shown[1]
    job = get_registry().submit(key, fn, label=label, watcher=session_id(), meta=meta)
    st.session_state[state_key(prefix, "job")] = key
    return job


#: :func:`_run_estimate`'s answer for a configuration that cannot run (the page says why elsewhere, e.g. the
#: missing-data notice): nothing is shown beside Run — never "measuring this device's speed", which it is not.
INVALID_CONFIG = ("", {})


@st.cache_data(ttl=20, show_spinner=False, max_entries=64)
def _run_estimate(query: tuple[tuple[str, str], ...], cache_root: str,
                  _cfg: Any) -> tuple[str, dict[str, float]] | None:
    """(one line, seconds per stage) for the run configuration ``_cfg`` (the URL ``query`` is its key); ``None``
    while this device's speed is not measured yet; :data:`INVALID_CONFIG` when the configuration is invalid.
    Cached a few seconds per URL: a finished run puts models into the cache, which makes the next estimate
    shorter."""
    from unlearn_core.device import resolve_device
    from unlearn_core.device_time import calibrate, describe_estimate, stage_seconds
    from unlearn_core.pipeline import cached_stages, validate_config
    from unlearn_core.preflight import estimate_run
    from unlearn_core.unlearners import get_unlearner

    try:
        run_config = _cfg.to_run_config()
        params = validate_config(run_config)
        calibration = calibrate(resolve_device(run_config.device), threads=job_threads(run_config), measure=False)
        if calibration is None:
            return None
        estimate = estimate_run(run_config, get_unlearner(run_config.method), params)
        seconds = stage_seconds(estimate, calibration, cached=cached_stages(run_config))
    except ConfigError:
        return INVALID_CONFIG
    return describe_estimate(seconds, caps=bool(estimate.caps)), seconds


def job_threads(run_config: Any) -> int:
    """The torch threads a dashboard job of ``run_config`` runs with: the registry's setting, lowered to what the work
    size calls for (:func:`unlearn_core.service.tasks._fit_threads`); the estimate is measured at that count."""
    import os

    from unlearn_core.preflight import threads_for
    from unlearn_core.service.jobs import default_torch_threads

    registry = default_torch_threads() or (os.cpu_count() or 1)
    return max(1, min(registry, threads_for(run_config)))


def estimate_caption(container: Any, prefix: str, cfg: Any) -> None:
    """Beside Run, before it is pressed: the run's estimated time on this device (its work from ``limits``,
    calibrated by this device's measured step, :mod:`unlearn_core.device_time`); cached models count nothing.
    The job started by Run then begins its ETA from this estimate (:meth:`~unlearn_core.service.jobs.Job.eta_s`)."""
    from dashboard.common import warm_up
    from unlearn_core import paths

    query = {str(k): str(v) for k, v in st.query_params.to_dict().items()}
    found = _run_estimate(tuple(sorted(query.items())), str(paths.cache_dir()), cfg)
    if found is None:
        warm_up()  # measures this device in the background (once per process)
        container.caption(":material/timer: Estimated time: measuring this device's speed…")
        return
    if found == INVALID_CONFIG:
        return
    text, seconds = found
    st.session_state[state_key(prefix, "_estimate")] = (query, seconds)
    container.caption(f":material/timer: Estimated time: {plain(text)}; models already in the cache count nothing.")


def experiment_estimate_caption(container: Any, kind: str, cfg: Any, *, n_seeds: int, **options: Any) -> None:
    """Beside an experiment page's Run: the whole experiment's estimated time on this device (every seed's models,
    every cell's method: :func:`unlearn_core.experiment_options.experiment_estimate`). Says nothing while the
    settings are invalid or the device is not measured yet."""
    from unlearn_core.device import resolve_device
    from unlearn_core.device_time import calibrate, describe_estimate, stage_seconds
    from unlearn_core.experiment_options import experiment_estimate

    try:
        base = cfg.to_run_config(params={})  # each method's hyperparameters travel in ``options``
        calibration = calibrate(resolve_device(base.device), threads=job_threads(base), measure=False)
        if calibration is None:
            container.caption(":material/timer: Estimated time: measuring this device's speed…")
            return
        seeds = [base.seed + i for i in range(int(n_seeds))]
        estimate = experiment_estimate(kind, base, seeds=seeds, **options)
    except (ConfigError, KeyError, TypeError, ValueError):
        return
    text = describe_estimate(stage_seconds(estimate, calibration), caps=bool(estimate.caps))
    container.caption(f":material/timer: Estimated time: {plain(text)}, every seed's models included (unless "
                      "they are in the cache).")


def store_warning(exc: Exception) -> None:
    """A broken run history (:class:`~unlearn_core.service.runstore.RunStoreError`): one warning line, and the page
    goes on without it — a run is computed and shown, only not reused or stored."""
    st.warning(plain(f"{str(exc).splitlines()[0]} (runs are computed and shown, but not reused or stored until "
                     "then)", limit=1000), icon=":material/warning:")


def find_stored(key: str) -> Any:
    """The stored run with this configuration hash, or ``None`` — also when the history cannot be read (said)."""
    try:
        return get_store().find(key)
    except RunStoreError as exc:
        store_warning(exc)
        return None


def interrupted_notice(prefix: str) -> bool:
    """Say that this page's run with this very URL was interrupted by a server stop (from the job journal); return
    whether it did. After a restart, the tab reconnects with its URL and the page used to show "Results appear
    here" as if nothing had been asked."""
    import datetime as dt

    query = {str(k): str(v) for k, v in st.query_params.to_dict().items()}
    registry = get_registry()  # a new server's registry marks the jobs its predecessor left as interrupted
    shown = False
    for row in get_journal().interrupted(page=prefix):
        if row["query"] != query or registry.get(row["key"]) is not None:
            continue
        started = dt.datetime.fromtimestamp(row["started"]).strftime("%H:%M:%S")
        updated = dt.datetime.fromtimestamp(row["updated"]).strftime("%H:%M:%S")
        where = str((row["progress"] or {}).get("describe") or "")
        where = where.split(" · about ")[0].split(" · at least ")[0]  # its time left then means nothing now
        st.warning(plain(f"This run ({row['label']}) was interrupted: the server stopped while it ran (started "
                         f"{started}, last heard of at {updated}{', ' + where if where else ''}). Nothing of it was "
                         "kept — press Run to start it again."), icon=":material/restart_alt:")
        if st.button("Dismiss", key=state_key(prefix, f"interrupted.{row['key'][:12]}"), type="tertiary"):
            get_journal().dismiss(row["key"])
            st.rerun()
        shown = True
    return shown


def current_job(prefix: str) -> Job | None:
    key = st.session_state.get(state_key(prefix, "job"))
    return None if key is None else get_registry().get(key)


#: The live loss chart of a running job, as a plain Vega-Lite spec. Why not ``st.line_chart``: it builds its spec
#: through Altair, ≈ 55 ms of Python (holding the GIL the job's thread needs) on every 0.5-s poll; in a real
#: browser the quick demo took 9.6–10.5 s from click to results with it and 5.8–6.6 s without any chart.
LOSS_CHART: dict[str, Any] = {
    "mark": {"type": "line", "point": True},
    "height": 180,
    "encoding": {
        # Epochs are integers: whole-number ticks (a one-epoch run showed "1.000000").
        "x": {"field": "epoch", "type": "quantitative", "title": "epoch", "axis": {"format": "d", "tickMinStep": 1}},
        "y": {"field": "loss", "type": "quantitative", "title": "training loss", "axis": {"format": ".3~g"}},
        "color": {"field": "stage", "type": "nominal", "title": "stage"},
    },
}


def _status_body(job: Job, registry: JobRegistry) -> None:
    if job.state == QUEUED:
        pos = registry.queue_position(job)
        st.write(f"Waiting for the device — position {pos} in the queue." if pos else "Starting…")
    st.progress(job.fraction(), text=job.describe())
    losses = [(r.get("stage"), r.get("epoch"), r.get("loss")) for r in list(job.history)
              if isinstance(r.get("loss"), (int, float)) and r.get("stage") in ("train", "retrain", "unlearn")]
    if losses:
        frame = pd.DataFrame(losses, columns=["stage", "epoch", "loss"])
        frame = frame.drop_duplicates(["stage", "epoch"], keep="last")
        st.vega_lite_chart(frame, LOSS_CHART, width="stretch")
    st.caption(f"{job.elapsed_s:.1f} s elapsed")


def job_panel(prefix: str, *, on_done: Callable[[Job], None]) -> None:
    """Show the page's current job: a polling status while it runs, ``on_done(job)`` once it has finished."""
    st.session_state["_panel"] = prefix  # the heartbeat watches this page's job for a missed transition
    detached = st.session_state.pop(state_key(prefix, "detached"), None)
    if detached is not None:
        st.info(f"Stopped waiting for “{detached}”: another open page is waiting for the same run, so it keeps "
                "running for them (press Run again to rejoin it).", icon=":material/stop_circle:")
    job = current_job(prefix)
    if job is None:
        return
    if job.done:
        st.session_state[state_key(prefix, "shown")] = job.id
    if job.state == DONE:
        on_done(job)
        return
    if job.state == FAILED:
        st.error(plain(job.error or "the job failed", limit=1000), icon=":material/error:")
        return
    if job.state == CANCELLED:
        st.info(f"The run was {job.describe()}." if job.cancel_reason else "The run was cancelled.",
                icon=":material/stop_circle:")
        return
    _poller(prefix)


@st.fragment(run_every=POLL_SECONDS)
def _poller(prefix: str) -> None:
    registry = get_registry()
    job = current_job(prefix)
    if job is None:
        return
    registry.heartbeat(session_id(), keys=[job.key])  # this page still waits (rejoins if its watcher timed out)
    if job.done:
        st.rerun(scope="app")
        return
    with st.status(f"Running: {job.label}", state="running", expanded=True):
        _status_body(job, registry)
        if st.button("Cancel", key=state_key(prefix, "cancel"), icon=":material/stop_circle:"):
            if not registry.cancel(job.key, watcher=session_id()):
                # another session still waits for this shared job: it keeps running for them; we stop watching
                st.session_state.pop(state_key(prefix, "job"), None)
                st.session_state[state_key(prefix, "detached")] = job.label
            st.rerun(scope="app")


def submit_or_reuse(prefix: str, key: str, make_task: Callable[[], Any], *, label: str) -> None:
    """Reuse the stored run with this configuration hash (nothing is recomputed), else start ``make_task()``."""
    stored = find_stored(key)
    ss = st.session_state
    if stored is not None:
        ss[state_key(prefix, "job")] = None
        ss[state_key(prefix, "stored")] = stored.id
        return
    ss[state_key(prefix, "stored")] = None
    submit(prefix, key, make_task(), label=label)


def stored_or_job(prefix: str, *, show_stored: Callable[[Any], None], on_done: Callable[[Job], None]) -> None:
    """The page's result: the reused stored run (``show_stored(stored)``, without weights), else its job panel."""
    ss = st.session_state
    key = ss.get(state_key(prefix, "job"))
    if key and get_registry().get(key) is None:
        # The registry no longer has the page's job (it keeps 32 finished ones; a restart empties it): a job that
        # finished saved its run, so show that rather than nothing.
        found = find_stored(key)
        ss[state_key(prefix, "job")] = None
        if found is not None:
            ss[state_key(prefix, "stored")] = found.id
    stored_id = ss.get(state_key(prefix, "stored"))
    if stored_id:
        try:
            stored = get_store().get(stored_id, with_weights=False)
        except RunStoreError as exc:  # the history broke meanwhile
            store_warning(exc)
            ss[state_key(prefix, "stored")] = None
        except ConfigError:  # deleted on the Runs page meanwhile
            ss[state_key(prefix, "stored")] = None
        else:
            show_stored(stored)
            return
    if current_job(prefix) is None:
        interrupted_notice(prefix)
    job_panel(prefix, on_done=on_done)


def submit_experiment(prefix: str, kind: str, base: Any, *, n_seeds: int, label: str, **options: Any) -> None:
    """Reuse a stored experiment with this exact configuration, else start it in the background.

    It runs over ``n_seeds`` consecutive seeds from the configuration's own.
    """
    seeds = [base.seed + i for i in range(int(n_seeds))]
    # The executor changes where the cells run, never the rows: it is not part of the key.
    key = job_key({"page": kind, "config": base.to_json(), "seeds": seeds, "options": options})
    executor = configured_executor()
    submit_or_reuse(
        prefix, key,
        lambda: experiment_task(kind, base, seeds=seeds, key=key, store=get_store(), label=label,
                                executor=executor, **options),
        label=f"{kind}: {label} on {base.dataset}/{base.model}, {len(seeds)} seed(s)",
    )


def configured_executor() -> Any:
    """The executor an operator configured (``UNLEARN_EXECUTOR`` & co., no widget), or ``None`` (serial).

    A bad setting stops the page with one ``st.error`` line.
    """
    from unlearn_core.executors import executor_from_env

    try:
        return executor_from_env()
    except ConfigError as exc:
        engine_error(exc)
        st.stop()


def executor_caption() -> None:
    """Say where the experiment's cells run — only when an operator configured an executor."""
    executor = configured_executor()
    if executor is not None:
        st.caption(f"Cells run on **{executor.describe()}** (set by `UNLEARN_EXECUTOR`); results are the same as "
                   "a serial run's.")


def experiment_panel(prefix: str, render: Callable[[pd.DataFrame, dict[str, Any], str | None], None]) -> None:
    """The page's experiment result: a reused stored one, or the background job (polled) and then its table."""

    def show_stored(stored: Any) -> None:
        st.info(f"Reused the stored experiment {stored.id} with this exact configuration (nothing was "
                "recomputed). Delete it on the Runs page to recompute.", icon=":material/recycling:")
        exp = stored.card["experiment"]
        render(pd.DataFrame(exp["rows"], columns=exp["columns"]), stored.card, stored.id)

    def done(job: Job) -> None:
        for warning in job.result["card"].get("warnings") or []:  # e.g. not saved to a broken run history
            st.warning(plain(warning, limit=1000), icon=":material/warning:")
        render(job.result["table"], job.result["card"], job.result.get("run_id"))

    executor_caption()
    stored_or_job(prefix, show_stored=show_stored, on_done=done)
