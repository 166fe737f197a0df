"""A UI-free background job registry: training and unlearning never run on the dashboard's script thread.

Why this exists: a Streamlit rerun interrupts the script at every ``st.*`` call and kills work in flight, and
Streamlit's Stop button does not cancel the script. So the dashboard submits work here and *polls* it. The
registry is plain Python (threads, events, locks) and never imports streamlit; the app keeps one instance in
``st.cache_resource``, so every browser session talks to the same registry.

* **One thread per job, keyed by a configuration hash.** :func:`job_key` hashes a JSON-able description of the
  work; :meth:`JobRegistry.submit` with a key that is already queued, running or finished returns the *same*
  :class:`Job`, so two sessions asking for the same model share one job (deduplication). A failed or cancelled
  job is replaced by a fresh one when the key is submitted again.
* **Progress record.** The worker function receives ``progress(dict)``; the job keeps the latest record and a
  bounded history (for a live loss chart), plus a derived fraction and a one-line label with the ETA.
* **Cooperative cancellation.** Python threads cannot be killed, so each job owns a ``threading.Event`` that the
  engine checks every step (it raises :class:`~unlearn_core.progress.Cancelled`).
* **A device lock with a visible queue.** Jobs run one at a time (two trainings at once on a 2-core CPU or one
  GPU only slow each other down and double memory); waiting jobs are served first-in first-out and report their
  queue position, instead of being refused as in peer tools.
* **Watchers belong to live sessions.** A session that waits for a job is its *watcher* and renews that with a
  heartbeat (the page's poller, and an app-wide one every few seconds). A watcher whose session has ended (the
  ``is_live`` hook asks Streamlit) or has not been heard from for :data:`WATCHER_TIMEOUT_S` no longer counts, so
  Cancel in any other session works at once when no *live* session waits; and a job nobody watches any more is
  cancelled after :data:`ORPHAN_GRACE_S` by a reaper thread, so a closed tab never holds the device queue.
* **A journal that outlives the process.** With a ``journal`` (the run store's
  :class:`~unlearn_core.service.runstore.JobJournal`), every job is written down when it is submitted, its progress
  every :data:`JOURNAL_EVERY_S`, and struck out when it ends. A server stopped mid-job (SIGTERM, a crash) leaves its
  rows; the next registry marks them interrupted, and the page that started the job says so after the restart
  instead of showing an empty result.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import traceback
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from unlearn_core.cache import config_hash
from unlearn_core.errors import ConfigError, DataUnavailableError, DivergenceError
from unlearn_core.progress import Cancelled

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL_STATES = (DONE, FAILED, CANCELLED)

#: A watcher not heard from for this long no longer counts. Why 90 s: the poller beats every 0.5 s and the app-wide
#: heartbeat every few seconds, but browsers throttle timers of hidden tabs to about once a minute; a user who
#: switched tabs is still waiting.
WATCHER_TIMEOUT_S = 90.0
#: A job without a live watcher for this long is cancelled. Why two minutes: long enough for a reload or a dropped
#: connection to come back and rejoin (the job keeps its key), short enough that a closed tab's 30-minute MNIST run
#: does not hold the device queue; its results would be lost anyway, since nobody waits for them.
ORPHAN_GRACE_S = 120.0
#: How often the reaper thread looks for orphans.
REAP_EVERY_S = 5.0
#: How often a running job's progress is written to the journal (a restart then says how far it had got).
JOURNAL_EVERY_S = 5.0
#: How long a stopping server waits for its jobs to stop at their next step.
STOP_TIMEOUT_S = 10.0

# Errors whose message is meant for the user; anything else is a bug and keeps its traceback in ``Job.traceback``.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, DataUnavailableError, DivergenceError)

WorkerFn = Callable[[Callable[[dict[str, Any]], None], threading.Event], Any]

STAGE_LABELS = {
    "data": "loading the data",
    "train": "training the original model",
    "retrain": "retraining the oracle on the retain set",
    "unlearn": "unlearning",
    "noisy": "unlearning: the noisy phase",
    "finetune": "unlearning: fine-tuning",
    "retrain_step": "retraining at this request",
    "metrics": "computing metrics",
    "prepare": "preparing the models",
    "cells": "cells done",
}

#: The stages of one run, in order (:func:`unlearn_core.pipeline.run`, then the metrics): what the total ETA adds up.
#: A method's own stages ("noisy", "finetune", "cure_newton"...) all count as "unlearn".
RUN_STAGES = ("data", "train", "retrain", "unlearn", "metrics")
#: A stage that took less than this was loaded from the cache rather than computed: its duration predicts nothing.
CACHED_STAGE_S = 0.3


def run_stage(stage: Any) -> str:
    """The run stage (:data:`RUN_STAGES`) a progress record's ``stage`` belongs to."""
    return stage if stage in RUN_STAGES else "unlearn"


def stage_fraction(record: Mapping[str, Any]) -> float | None:
    """How far a progress record is through its stage (``step/steps``, ``iteration/iterations`` or
    ``epoch/epochs``), or ``None`` when it does not say."""
    for num, den in (("step", "steps"), ("iteration", "iterations"), ("epoch", "epochs"), ("it", "its")):
        if isinstance(record.get(num), (int, float)) and isinstance(record.get(den), (int, float)) and record[den] > 0:
            return float(min(1.0, max(0.0, record[num] / record[den])))
    return None


def job_key(payload: Any) -> str:
    """A stable key for a job: SHA-256 of the canonical JSON of ``payload`` (dicts, lists, numbers, strings)."""
    return config_hash({"job": payload})


@dataclass
class Job:
    """One unit of background work and everything the UI shows about it.

    Attributes are written by the worker thread and read by any number of UI sessions; reads of single
    attributes are atomic in CPython, and :meth:`report` swaps the progress record under the lock.
    """

    key: str
    label: str
    fn: WorkerFn
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = QUEUED
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    history: deque = field(default_factory=lambda: deque(maxlen=2000))
    #: Per run stage (:data:`RUN_STAGES`): ``[first seen, last seen, fraction reached]`` (``time.time()``), kept
    #: apart from the bounded history so that a long run still knows when each stage started (the total ETA).
    stage_marks: dict[str, list[float]] = field(default_factory=dict)
    #: When the first experiment run began (records with ``run``/``runs``): the ETA over all runs.
    first_run_at: float | None = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    # The UI sessions waiting for this job, each with when it was last heard from (the registry's clock). Cancel
    # from one of them only detaches it while another *live* one still waits, so one person's Cancel never throws
    # away the run someone else is waiting for — and a closed tab never blocks a Cancel (see JobRegistry).
    watchers: dict[str, float] = field(default_factory=dict)
    #: True once any session watched it: only such jobs are reaped when nobody watches any more (a job submitted
    #: by code — tests, the CLI style — has no watchers and is never reaped).
    watched: bool = False
    #: When the last live watcher went away (registry clock), ``None`` while someone watches.
    orphaned_since: float | None = None
    #: Why it was cancelled, when the registry did it (e.g. no session watched it for two minutes).
    cancel_reason: str | None = None
    #: What the submitter wants remembered with the job in the journal (the page, its URL query).
    meta: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- called from the worker thread -------------------------------------------------------------------
    def report(self, info: dict[str, Any]) -> None:
        """The progress callback handed to the engine: keep the latest record and a bounded history."""
        now = time.time()
        record = {**info, "t": now}
        with self._lock:
            previous = self.progress.get("t", now)  # a stage's work began when the record before its first ended
            self.progress = record
            self.history.append(record)
            if "stage" in record:
                mark = self.stage_marks.setdefault(run_stage(record["stage"]), [previous, now, 0.0])
                mark[1] = now
                fraction = stage_fraction(record)
                if fraction is not None:
                    mark[2] = fraction
            if isinstance(record.get("run"), int) and self.first_run_at is None:
                self.first_run_at = now

    # -- called from the UI ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop at its next step (cooperative); a queued job never starts."""
        self.cancel_event.set()

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    def fraction(self) -> float:
        """Progress in [0, 1] within the current stage (``step/steps``, else ``epoch/epochs``); 1 when done."""
        if self.state == DONE:
            return 1.0
        fraction = stage_fraction(self.progress)
        return 0.0 if fraction is None else fraction

    def eta_s(self, now: float | None = None) -> tuple[float | None, bool]:
        """The time left for the whole job, and whether that estimate covers every remaining stage.

        An experiment (records with ``run`` of ``runs``) extrapolates from the runs done so far. A run adds the
        current stage's remainder (the engine's ``eta_s`` where it gives one, else the stage's own rate) and an
        estimate of each later stage: retraining takes about
        as long as training did, unlearning about as long as retraining (the only prior there is before it has
        run); a stage is only used as an estimate if it was computed, not loaded from the cache
        (:data:`CACHED_STAGE_S`). ``(None, False)`` before anything can be estimated.
        """
        now = time.time() if now is None else now
        p = self.progress
        prediction = self.meta.get("prediction")
        if isinstance(prediction, Mapping) and prediction and "stage" in p and not isinstance(p.get("run"), int) \
                and p.get("stage") != "cells":
            return self._eta_from_prediction(prediction, now)
        if isinstance(p.get("run"), int) and isinstance(p.get("runs"), int) and p["runs"] > 0:
            done = p["run"] - 1
            if done <= 0 or self.first_run_at is None:
                return None, False
            per_run = (now - self.first_run_at) / done
            return per_run * (p["runs"] - done), True
        current = run_stage(p.get("stage")) if "stage" in p else None
        if current is None:
            return None, False
        marks = {k: list(v) for k, v in self.stage_marks.items()}
        start, _, fraction = marks.get(current, [now, now, 0.0])
        elapsed = now - start
        left: float | None = None
        if isinstance(p.get("eta_s"), (int, float)):  # the engine's own estimate for this stage (training)
            left = max(0.0, float(p["eta_s"]) - (now - float(p.get("t", now))))
        elif fraction >= 0.02 and elapsed > 0:
            left = elapsed / fraction * (1.0 - fraction)
        durations = {k: v[1] - v[0] for k, v in marks.items() if k != current}
        durations[current] = elapsed + (left or 0.0)

        def estimate(stage: str) -> float | None:
            for source in {"retrain": ("train",), "unlearn": ("retrain", "train")}.get(stage, ()):
                if durations.get(source, 0.0) >= CACHED_STAGE_S:
                    return durations[source]
            return None

        later = RUN_STAGES[RUN_STAGES.index(current) + 1:] if current in RUN_STAGES else ()
        complete = left is not None
        total = left or 0.0
        for stage in later:
            if stage == "metrics":
                continue  # the metrics take about a second: not worth a guess
            guess = estimate(stage)
            if guess is None:
                complete = False
            else:
                total += guess
        if left is None and total == 0.0:
            return None, False
        return total, complete

    def _eta_from_prediction(self, prediction: Mapping[str, float], now: float) -> tuple[float, bool]:
        """The time left from the estimate made before Run (``meta["prediction"]``: seconds per run stage on this
        device, :mod:`unlearn_core.device_time`), corrected by what the run has measured so far.

        The correction is one ratio, measured over the stages that ran (not loaded from the cache): actual seconds
        over predicted seconds. Before any stage has finished, the current stage's own rate gives it once 5 % of it
        is done. The current stage's remainder is extrapolated from its progress (the engine's ``eta_s`` when it
        reports one); each later stage is its prediction times the ratio. So the estimate starts at the prediction
        and converges to the truth as the stages report — where "retraining ≈ training, unlearning ≈ retraining"
        (the rule without a prediction) could be off by any factor (the Paper preset: 825 s left at 160 s, 889 s
        left at 686 s).
        """
        p = self.progress
        current = run_stage(p.get("stage"))
        marks = {k: list(v) for k, v in self.stage_marks.items()}
        start, _, fraction = marks.get(current, [now, now, 0.0])
        elapsed = max(0.0, now - start)
        actual = predicted = 0.0
        for stage, (first, last, _) in marks.items():
            if stage == current or stage not in prediction:
                continue
            if last - first >= CACHED_STAGE_S and float(prediction[stage]) > 0:
                actual += last - first
                predicted += float(prediction[stage])
        ratio = actual / predicted if predicted > 0 else None
        expected = float(prediction.get(current, 0.0) or 0.0)
        if ratio is None and fraction >= 0.05 and expected > 0:
            ratio = (elapsed / fraction) / expected
        ratio = 1.0 if ratio is None else min(max(ratio, 0.05), 50.0)
        if isinstance(p.get("eta_s"), (int, float)):
            left = max(0.0, float(p["eta_s"]) - (now - float(p.get("t", now))))
        elif fraction >= 0.02 and elapsed > 0:
            left = elapsed / fraction * (1.0 - fraction)
        else:
            left = max(0.0, expected * ratio - elapsed)
        later = RUN_STAGES[RUN_STAGES.index(current) + 1:] if current in RUN_STAGES else ()
        return left + sum(float(prediction.get(stage, 0.0) or 0.0) * ratio for stage in later), True

    def describe(self) -> str:
        """One line for ``st.status``/``st.progress``: stage, which method / request / value, epoch or step, loss,
        and the time left for the whole job (:meth:`eta_s`)."""
        if self.state == QUEUED:
            return "queued"
        if self.state in FINAL_STATES:
            cancelled = f"cancelled: {self.cancel_reason}" if self.cancel_reason else "cancelled"
            return {DONE: "finished", FAILED: f"failed: {self.error}", CANCELLED: cancelled}[self.state]
        p = self.progress
        stage = p.get("stage")
        parts = [STAGE_LABELS.get(stage, str(stage)) if stage else "starting"]
        if stage == "cells":  # an experiment's cells (unlearn_core.executors): which one, how many done, ETA
            parts = [f"{p.get('phase', 'cells')}: {p.get('step', 0)} of {p.get('steps', '?')} done"]
            if p.get("cell"):
                parts.append(str(p["cell"]))
            eta = p.get("eta_s")
            if isinstance(eta, (int, float)) and eta >= 1:
                parts.append(f"about {eta:.0f} s left")
            return " · ".join(parts)
        if stage == "data" and p.get("dataset"):
            parts[0] += f" ({p['dataset']})"
        if p.get("method"):  # experiments: which method, which setting, which run
            what = str(p["method"])
            for key, name in (("epsilon", "ε"), ("value", "value"), ("budget", "budget")):
                if isinstance(p.get(key), (int, float)):
                    what += f", {name} = {p[key]:g}"
            parts.append(what)
        if isinstance(p.get("run"), int) and isinstance(p.get("runs"), int):
            parts.append(f"run {p['run']} of {p['runs']}")
        elif isinstance(p.get("seed"), int) and stage == "prepare":
            parts.append(f"seed {p['seed']}")
        if isinstance(p.get("request"), int) and isinstance(p.get("requests"), int) and p["requests"] > 1:
            parts.append(f"request {p['request']} of {p['requests']}")
        if "iteration" in p and "iterations" in p:  # full-batch L-BFGS
            parts.append(f"L-BFGS iteration {p['iteration']}/{p['iterations']}")
        elif "epoch" in p and "epochs" in p:
            parts.append(f"epoch {p['epoch']}/{p['epochs']}")
        elif "step" in p and "steps" in p and not isinstance(p.get("run"), int):
            parts.append(f"step {p['step']}/{p['steps']}")
        if isinstance(p.get("loss"), (int, float)):
            parts.append(f"loss {p['loss']:.4f}")
        eta, complete = self.eta_s()
        if eta is not None and eta >= 1:
            parts.append(f"about {eta:.0f} s left" if complete else f"at least {eta:.0f} s left")
        return " · ".join(parts)


class JobRegistry:
    """Thread-safe registry of background jobs with deduplication and a FIFO device queue.

    Args:
        max_finished: how many finished jobs to keep for reuse before the oldest are forgotten (their results
            live on in the run store; the registry only bounds memory).
        torch_threads: torch's intra-op threads inside each job (``torch.set_num_threads`` in the worker thread);
            ``None`` leaves torch's setting alone. See :func:`default_torch_threads`.
        is_live: ``is_live(watcher) -> bool | None``: whether that UI session still exists (``None``: unknown).
            The dashboard asks Streamlit's runtime; without it only the heartbeat timeout applies.
        watcher_timeout_s, orphan_grace_s: see :data:`WATCHER_TIMEOUT_S` and :data:`ORPHAN_GRACE_S`.
        reap_every_s: period of the reaper thread (started with the first watched job); ``None``: no thread,
            call :meth:`reap` yourself (tests).
        clock: the time source for watchers (monotonic; tests pass a fake one).
        journal: where jobs in progress are written down (``started``/``progress``/``finished``/
            ``mark_interrupted``, e.g. :class:`~unlearn_core.service.runstore.JobJournal`); on creation the registry
            marks the jobs of processes that are gone as interrupted.
    """

    def __init__(
        self,
        *,
        max_finished: int = 32,
        torch_threads: int | None = None,
        is_live: Callable[[str], bool | None] | None = None,
        watcher_timeout_s: float = WATCHER_TIMEOUT_S,
        orphan_grace_s: float = ORPHAN_GRACE_S,
        reap_every_s: float | None = REAP_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        warm_up: WarmUp | None = None,
        journal: Any = None,
    ) -> None:
        self.max_finished = int(max_finished)
        self.journal = journal
        #: Set when the process is stopping (SIGTERM to the server): jobs cut short then are journalled as
        #: interrupted, not struck out, so that the next server can say so.
        self._stopping = threading.Event()
        if journal is not None:
            journal.mark_interrupted()
            atexit.register(_stop_at_exit, weakref.ref(self))
        self.warm_up = warm_up
        self.torch_threads = torch_threads
        self.is_live = is_live
        self.watcher_timeout_s = float(watcher_timeout_s)
        self.orphan_grace_s = float(orphan_grace_s)
        self.reap_every_s = reap_every_s
        self.clock = clock
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._device = threading.Condition()
        self._waiting: list[str] = []  # job ids in FIFO order
        self._busy = False
        self._reaper: threading.Thread | None = None
        self._closed = threading.Event()
        _INSTANCES.add(self)

    # -- submission --------------------------------------------------------------------------------------
    def submit(self, key: str, fn: WorkerFn, *, label: str = "", watcher: str | None = None,
               meta: Mapping[str, Any] | None = None) -> Job:
        """Start ``fn(progress, cancel)`` in a thread under ``key``, or return the live/finished job with that key.

        A job that failed or was cancelled is replaced: submitting again is how a user retries. ``watcher``
        (a UI session id) is recorded on the job, so that :meth:`cancel` knows who else is waiting for it.
        ``meta`` (``page``, ``query``) goes to the journal with the job.
        """
        with self._lock:
            existing = self._jobs.get(key)
            if existing is not None and existing.state not in (FAILED, CANCELLED):
                if watcher is not None:
                    self._watch(existing, watcher)
                return existing
            job = Job(key=key, label=label or key[:12], fn=fn, meta=dict(meta or {}))
            if watcher is not None:
                self._watch(job, watcher)
            self._jobs[key] = job
            with self._device:
                self._waiting.append(job.id)
            job.thread = threading.Thread(target=self._work, args=(job,), name=f"unlearn-job-{job.id}", daemon=True)
            self._trim()
        if self.journal is not None:
            self.journal.started(key, label=job.label, page=job.meta.get("page"), query=job.meta.get("query"))
        job.thread.start()
        if watcher is not None:
            self._start_reaper()
        return job

    def _watch(self, job: Job, watcher: str) -> None:
        """(Re)register ``watcher`` on ``job`` as heard from now (caller holds ``self._lock``)."""
        job.watchers[watcher] = self.clock()
        job.watched = True
        job.orphaned_since = None

    def heartbeat(self, watcher: str, keys: Sequence[str] = ()) -> None:
        """``watcher`` is alive: renew it on every unfinished job it watches, and (re)join the jobs in ``keys``.

        The page's poller passes the job it shows (a tab whose watcher timed out while hidden rejoins on its next
        poll); the app-wide heartbeat passes nothing and only renews.
        """
        now = self.clock()
        with self._lock:
            for job in self._jobs.values():
                if job.done:
                    continue
                if watcher in job.watchers or job.key in keys:
                    job.watchers[watcher] = now
                    job.watched = True
                    job.orphaned_since = None

    def live_watchers(self, job: Job) -> list[str]:
        """The watchers of ``job`` whose session is alive and was heard from within the timeout; drops the rest."""
        now = self.clock()
        with self._lock:
            return self._prune(job, now)

    def _prune(self, job: Job, now: float) -> list[str]:
        for watcher, seen in list(job.watchers.items()):
            dead = now - seen > self.watcher_timeout_s
            if not dead and self.is_live is not None:
                try:
                    dead = self.is_live(watcher) is False
                except Exception:  # a liveness hook must not break the registry
                    dead = False
            if dead:
                del job.watchers[watcher]
        return list(job.watchers)

    def reap(self) -> list[Job]:
        """Cancel watched jobs that no live session has watched for :attr:`orphan_grace_s`; return them."""
        now = self.clock()
        reaped = []
        with self._lock:
            for job in self._jobs.values():
                if job.done or not job.watched or job.cancel_event.is_set():
                    continue
                if self._prune(job, now):
                    job.orphaned_since = None
                elif job.orphaned_since is None:
                    job.orphaned_since = now
                elif now - job.orphaned_since >= self.orphan_grace_s:
                    job.cancel_reason = (f"no open page waited for it for {self.orphan_grace_s:.0f} s (the tab was "
                                         "closed), so it stopped to free the device")
                    reaped.append(job)
        for job in reaped:
            job.cancel()
        if reaped:
            with self._device:
                self._device.notify_all()
        return reaped

    def _start_reaper(self) -> None:
        if self.reap_every_s is None or self._reaper is not None:
            return
        with self._lock:
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(target=self._reap_loop, name="unlearn-job-reaper", daemon=True)
        self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._closed.wait(self.reap_every_s):
            try:
                self.reap()
            except Exception:  # keep reaping; a bug here must not kill the thread silently forever
                traceback.print_exc()

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 for the one after, ...; ``None`` once it runs or has finished."""
        with self._device:
            try:
                return self._waiting.index(job.id) + 1
            except ValueError:
                return None

    def cancel(self, key: str, *, watcher: str | None = None) -> bool:
        """Cancel the job under ``key``; returns whether it was cancelled.

        With ``watcher``, that session stops waiting; the job is cancelled only if no other *live* session still
        waits for it (a shared job keeps running for the others, and ``False`` is returned). A closed tab, or
        one silent for longer than the watcher timeout, does not count. Without ``watcher`` the job is
        cancelled outright.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.done:
                return False
            if watcher is not None:
                job.watchers.pop(watcher, None)
                if self._prune(job, self.clock()):  # another *live* session still waits
                    return False
        job.cancel()
        with self._device:
            self._device.notify_all()  # a queued job wakes up and leaves the queue
        return True

    def forget(self, key: str) -> None:
        """Drop a finished job (e.g. after its run was deleted from the history)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.done:
                del self._jobs[key]

    def shutdown(self, *, timeout: float = 30.0) -> None:
        """Cancel every active job and join the threads (tests' teardown, app shutdown)."""
        self._closed.set()
        for job in self.jobs():
            if not job.done:
                job.cancel()
        with self._device:
            self._device.notify_all()
        deadline = time.time() + timeout
        for job in self.jobs():
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.time()))

    def wait(self, key: str, *, timeout: float | None = None) -> Job:
        """Block until the job under ``key`` has finished (for tests and the CLI-style callers)."""
        job = self.get(key)
        if job is None:
            raise KeyError(key)
        if job.thread is not None:
            job.thread.join(timeout)
        return job

    # -- internals ---------------------------------------------------------------------------------------
    def _trim(self) -> None:
        finished = [j for j in self._jobs.values() if j.done]
        finished.sort(key=lambda j: j.finished_at or 0.0)
        for job in finished[: max(0, len(finished) - self.max_finished)]:
            del self._jobs[job.key]

    def _acquire_device(self, job: Job) -> bool:
        """Wait until ``job`` is first in the queue and the device is free; False if it was cancelled meanwhile."""
        with self._device:
            while True:
                if job.cancel_event.is_set():
                    self._waiting.remove(job.id)
                    self._device.notify_all()
                    return False
                if not self._busy and self._waiting and self._waiting[0] == job.id:
                    self._waiting.pop(0)
                    self._busy = True
                    return True
                self._device.wait(timeout=0.5)

    def _release_device(self) -> None:
        with self._device:
            self._busy = False
            self._device.notify_all()

    def _work(self, job: Job) -> None:
        try:
            self._run(job)
        finally:
            if self.journal is not None:
                if self._stopping.is_set() and job.state != DONE:
                    self.journal.interrupt(job.key)
                else:
                    self.journal.finished(job.key)

    def stop_for_exit(self, *, timeout: float = STOP_TIMEOUT_S) -> None:
        """The process is ending (the server got SIGTERM): cancel every job cooperatively, give them ``timeout``
        seconds to stop at their next step, and leave their journal rows *interrupted*.

        Why: the job threads are daemons; left running into the interpreter's teardown, a thread inside torch
        ended the server with SIGABRT (exit status −6, seen on every SIGTERM mid-training).
        """
        self._stopping.set()
        for job in self.jobs():
            if not job.done:
                job.cancel_reason = "the server stopped"
        self.shutdown(timeout=timeout)

    def _reporter(self, job: Job) -> Callable[[dict[str, Any]], None]:
        """``job.report``, plus the journal's progress every :data:`JOURNAL_EVERY_S`."""
        if self.journal is None:
            return job.report
        last = [0.0]

        def report(info: dict[str, Any]) -> None:
            job.report(info)
            now = time.monotonic()
            if now - last[0] >= JOURNAL_EVERY_S:
                last[0] = now
                self.journal.progress(job.key, {**job.progress, "describe": job.describe(),
                                                "fraction": job.fraction()})

        return report

    def _run(self, job: Job) -> None:
        if self.warm_up is not None:
            self.warm_up.wait(cancel=job.cancel_event)  # the job's imports are the warm-up's: never both at once
        if not self._acquire_device(job):
            job.state, job.finished_at = CANCELLED, time.time()
            return
        job.state, job.started_at = RUNNING, time.time()
        try:
            if self.torch_threads is not None:
                import torch

                torch.set_num_threads(int(self.torch_threads))
            result = job.fn(self._reporter(job), job.cancel_event)
        except Cancelled:
            job.state = CANCELLED
        except USER_ERRORS as exc:
            job.error, job.state = str(exc).splitlines()[0] if str(exc) else type(exc).__name__, FAILED
        except Exception as exc:  # a bug: keep the traceback for the log, show the message
            job.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            job.traceback = traceback.format_exc()
            job.state = FAILED
        else:
            job.result, job.state = result, DONE
        finally:
            job.finished_at = time.time()
            self._release_device()
            with self._lock:
                self._trim()


_INSTANCES: weakref.WeakSet[JobRegistry] = weakref.WeakSet()


def _stop_at_exit(ref: weakref.ReferenceType) -> None:
    registry = ref()
    if registry is not None:
        try:
            registry.stop_for_exit()
        except Exception:  # the process is ending: never fail its exit
            traceback.print_exc()


def default_torch_threads() -> int | None:
    """Intra-op threads for the dashboard's jobs: all cores but one, unless ``OMP_NUM_THREADS`` is set (then ``None``).

    Why: the job shares the machine with the Streamlit server (which reruns the status fragment every 0.5 s) and,
    for a local user, the browser. With every core given to torch, OpenMP's spinning workers and those processes
    preempt each other: on a 2-core CPU the quick demo took 17-20 s from click to results with 2 torch threads
    and 10-11 s with 1 (measured side by side in a real browser; docs/dashboard.md).
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 1) - 1)


#: Modules the first job of a fresh process would import lazily, on the user's clock: torch.optim's first
#: optimizer imports ``torch._dynamo`` (≈ 2 s on a 2-core CPU); the data loaders import torchvision, the digits
#: loader and the membership-inference attacks scikit-learn (≈ 0.6 s), the run store sqlite3, the certificates
#: dp_accounting and scipy.stats, noisy fine-tuning's accountant opacus.
LAZY_IMPORTS = (
    "torch._dynamo",
    # The Gaussian mechanism's σ (certificate.sigma_analytic imports it when first needed), ≈ 1 s with scipy.signal.
    "dp_accounting",
    "torchvision.datasets",
    "scipy.stats",
    "opacus.accountants.analysis.rdp",  # noisy fine-tuning's RDP accountant (the quick demo), ≈ 0.6 s
    "sqlite3",
    "sklearn.datasets",
    "sklearn.datasets.data",  # the digits files' resource packages
    "sklearn.datasets.descr",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.linear_model",
    "sklearn.svm",
    "sklearn.ensemble",
    "sklearn.neural_network",
    "sklearn.tree",
    "sklearn.preprocessing",
    "sklearn.pipeline",
)


def warm_imports(modules: Sequence[str] = LAZY_IMPORTS) -> list[str]:
    """Import ``modules`` now; return the names that failed (a warm-up never raises).

    Why: in a fresh dashboard process the first quick demo took ≈ 3.9 s in the engine, of which ≈ 2.2 s were these
    imports; imported beforehand, 1.2–1.7 s (measured in-process, empty model cache). The dashboard calls this
    once per process through :class:`WarmUp`, in a background thread that every job waits for.
    """
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # an optional speed-up must not take the app down
            failed.append(name)
    return failed


def calibrate_for_jobs() -> None:
    """Measure this device's speed (:func:`unlearn_core.device_time.calibrate`) at the thread counts the dashboard's
    jobs use — one for small models, :func:`default_torch_threads` for large ones — for the time shown beside Run
    before it is pressed. The warm-up thread calls it once per process; a page only reads the result."""
    from unlearn_core.device_time import calibrate

    for threads in sorted({1, default_torch_threads() or os.cpu_count() or 1}):
        calibrate(None, threads=threads)


#: How long a job waits for the warm-up before it starts anyway (the imports then happen in the job, as without one).
WARM_UP_TIMEOUT_S = 120.0


class WarmUp:
    """The first job's lazy imports (:func:`warm_imports`), once, in a background thread; jobs wait for it.

    Why a thread that jobs wait for. On the script thread (where it was), the warm-up kept the first page's script
    run going for ≈ 2.5 s after the page was drawn, and a click on Run in that window ran the right configuration
    but left the browser showing the form's widgets at their widget defaults (ε = 0.001, model logreg) beside the
    right results — Streamlit's frontend lost the seeded values of a script run interrupted by the click (1 in 3
    early clicks in Chromium on a busy machine; 0 in 3 without the warm-up). In a thread, the script run ends at
    once; a job submitted meanwhile waits for the imports (:meth:`wait`) instead of importing alongside them, so
    the first Run costs what it did.
    """

    def __init__(self, modules: Sequence[str] = LAZY_IMPORTS) -> None:
        self.modules = tuple(modules)
        self.done = threading.Event()
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start the imports unless they were started before; return whether this call started them."""
        with self._lock:
            if self._thread is not None:
                return False
            self._thread = threading.Thread(target=self._run, name="unlearn-warm-up", daemon=True)
            self._thread.start()
            return True

    def _run(self) -> None:
        try:
            self.failed = warm_imports(self.modules)
            try:
                calibrate_for_jobs()
            except Exception:
                self.failed.append("unlearn_core.device_time.calibrate")
        finally:
            self.done.set()

    def wait(self, *, timeout: float = WARM_UP_TIMEOUT_S, cancel: threading.Event | None = None) -> bool:
        """Block until a started warm-up has finished (at once when none was started); ``False`` on timeout or
        when ``cancel`` is set first."""
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        while not self.done.wait(0.2):
            if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                return False
        return True


#: The dashboard's process-wide warm-up (``dashboard/common.warm_up`` starts it; its registry's jobs wait for it).
WARM_UP = WarmUp()


def shutdown_all(*, timeout: float = 30.0) -> None:
    """Cancel and join the jobs of every registry in this process (test teardown)."""
    for registry in list(_INSTANCES):
        registry.shutdown(timeout=timeout)
