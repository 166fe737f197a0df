"""What every dashboard page shares: the process-wide job registry and run store, this session's id, widget keys,
and the one-line error.

The page helpers are split by purpose: :mod:`dashboard.widgets` (the configuration widgets, generated from the run
configuration's schema; hyperparameter widgets; presets), :mod:`dashboard.status` (job submission, polling, heartbeat,
progress), :mod:`dashboard.results` (verdict, certificate card, accuracy tables, figures) and :mod:`dashboard.downloads`
(CSV, JSON, HTML report, weights). Pages stay thin: they read widgets, call :mod:`unlearn_core` through the service
layer (:mod:`unlearn_core.service`) and render; nothing here trains a model or does maths.
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from dashboard.router import require_router as require_router  # every page's first line
from unlearn_core import paths
from unlearn_core.service.jobs import WARM_UP, JobRegistry, default_torch_threads
from unlearn_core.service.runstore import JobJournal, RunStore
from unlearn_core.service.text import plain

POLL_SECONDS = 0.5


FAMILY_BADGE = {
    "certified": ":green-badge[certified method]",
    "approximate": ":orange-badge[approximate (uncertified)]",
    "heuristic": ":gray-badge[heuristic (uncertified)]",
    "oracle": ":blue-badge[exact (oracle)]",
}


@st.cache_resource(show_spinner=False)
def get_registry() -> JobRegistry:
    """The process-wide job registry (thread-safe); two sessions with the same config share one job.

    Jobs leave one core to the server and the browser (:func:`unlearn_core.service.jobs.default_torch_threads`). A
    watcher counts only while its Streamlit session is connected (:func:`session_is_live`) and beating.
    """
    return JobRegistry(torch_threads=default_torch_threads(), is_live=lambda session: session_is_live(session),
                       warm_up=WARM_UP, journal=get_journal())


def get_journal() -> JobJournal:
    """The journal of jobs in progress (in the run store's file): what a restart lost, for the page to say so."""
    return _journal_for(str(paths.cache_dir()))


@st.cache_resource(show_spinner=False)
def _journal_for(root: str) -> JobJournal:
    return JobJournal(_store_for(root))


def session_is_live(session: str) -> bool | None:
    """Whether the browser session ``session`` is still connected (``None`` when Streamlit cannot say: AppTest).

    Streamlit drops a session from its active ones when its websocket closes (tab closed, browser gone); a
    reconnect after a network blip makes it active again.
    """
    try:
        from streamlit import runtime

        if not runtime.exists():
            return None
        return runtime.get_instance().is_active_session(session)
    except Exception:  # an internal API: unknown is the safe answer
        return None


def warm_up() -> bool:
    """Start, once per server process, the background import of what the first job would import lazily
    (:class:`unlearn_core.service.jobs.WarmUp`); the registry's jobs wait for it. Returns whether this call started
    it."""
    return WARM_UP.start()


@st.cache_resource(show_spinner=False)
def _store_for(root: str) -> RunStore:
    return RunStore(root)


def get_store() -> RunStore:
    """The run history in the cache directory (``UNLEARN_CACHE_DIR`` or the user cache)."""
    return _store_for(str(paths.cache_dir()))


def delete_runs(runs: list[Any]) -> None:
    """Delete stored runs and forget their finished jobs, so that the next Run with that configuration recomputes.

    The registry keeps finished jobs by configuration hash (the run's ``config_hash``) for reuse; without this,
    pressing Run again would hand back the deleted result.
    """
    store, registry = get_store(), get_registry()
    for run in runs:
        store.delete(run.id)
        registry.forget(run.config_hash)


def state_key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}"


def param_key(prefix: str, method: str, name: str) -> str:
    return f"{prefix}.p.{method}.{name}"


def seed_once(key: str, value: Any) -> None:
    """Give widget ``key`` its value before the widget exists (a URL value or a default), unless it has one.

    Widgets seeded this way are created without ``value=``: Streamlit warns when both set a widget's value.
    """
    if key not in st.session_state:
        st.session_state[key] = value


def session_id() -> str:
    """This browser session's id (who is waiting for a shared job): Streamlit's own, so that the registry can ask
    the runtime whether the session is still connected; a random one where there is no runtime context."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if runtime.exists() and ctx is not None and getattr(ctx, "session_id", None):
        return str(ctx.session_id)
    if "_session_id" not in st.session_state:  # AppTest: no runtime, and every AppTest has the same ctx id
        st.session_state["_session_id"] = uuid.uuid4().hex
    return st.session_state["_session_id"]


def engine_error(exc: BaseException) -> None:
    """Engine errors appear as one ``st.error`` line, never a traceback, and as plain text (a message may quote a
    value from the URL: :func:`unlearn_core.service.text.plain`)."""
    st.error(plain(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, limit=1000), icon=":material/error:")
