"""The dashboard's one router: every page runs inside ``app.py``'s ``st.navigation``, never on its own.

Why this exists: while ``pages/`` exists, Streamlit starts every server process in its legacy multipage mode, and
stays in it until a script run calls ``st.navigation``. A fresh server whose first request is a deep link such as
``/sensitivity?method=…`` therefore ran ``pages/sensitivity.py`` by itself — no page config, no heartbeat, no top
navigation (``client.showSidebarNavigation = false`` in ``.streamlit/config.toml`` hides the legacy sidebar that
listed the files of ``pages/``, but not this). AppTest does the same on every run after its first one. So
:func:`require_router`, the first line of every page, notices a page run outside the router and runs ``app.py`` in
its place, in the same script run: ``app.py``'s ``st.navigation`` ends the legacy mode (as Streamlit documents) and
routes to the same page (same URL path and query), and nothing of the click or widget change that started the run is
lost (a rerun would lose it). Public API only.

Light on purpose (Streamlit only): ``app.py`` draws the navigation before it imports the engine.
"""

from __future__ import annotations

import contextlib
import runpy
import threading
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

#: The router script (the repository's layout is fixed: ``app.py`` beside ``pages/`` and ``dashboard/``).
APP = Path(__file__).resolve().parent.parent / "app.py"

_ROUTER = threading.local()


@contextlib.contextmanager
def routed() -> Iterator[None]:
    """``app.py`` runs the selected page inside this: :func:`require_router` then knows the router is running.

    A thread-local flag: each script run of a session runs in one thread, and a page's fragments rerun only their
    own function, never the page's first line.
    """
    previous = getattr(_ROUTER, "active", False)
    _ROUTER.active = True
    try:
        yield
    finally:
        _ROUTER.active = previous


def inside_router() -> bool:
    """Whether this script run is ``app.py``'s (the page was selected by its ``st.navigation``)."""
    return bool(getattr(_ROUTER, "active", False))


def require_router() -> None:
    """First line of every page: a page run outside ``app.py``'s router runs ``app.py`` instead (which routes to
    this same page), then ends this run of the page on its own."""
    if inside_router():
        return
    runpy.run_path(str(APP), run_name="__main__")
    st.stop()
