"""unlearn-explorer: the dashboard's entry point (``streamlit run app.py``).

A router only: the page list lives here, in one place (``st.navigation`` stops Streamlit from auto-discovering
``pages/``), plus the shared sidebar. Pages are thin; all work happens in :mod:`unlearn_core`; what pages share is in
:mod:`dashboard`.

The navigation is drawn before the engine is imported (torch and friends: 2–4 s on a fresh server), so a fresh
server's first screen is the real navigation, never a blank page or Streamlit's legacy list of ``pages/``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import router

ROOT = Path(__file__).resolve().parent

st.set_page_config(page_title="unlearn-explorer", page_icon=str(ROOT / "assets" / "logo.svg"), layout="wide",
                   initial_sidebar_state="collapsed")
st.logo(str(ROOT / "assets" / "logo.svg"), size="large")
# Less empty space above the title (Streamlit's default is 8rem under the top navigation), so that a page's setup,
# its Run button and the verdict fit on a 1024 × 768 screen. Style only: nothing breaks if the test id changes.
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 4rem; }</style>")

# Ten pages do not fit one row of the top navigation at 1024 px (Streamlit folds the overflow into "2 more", which
# hid Learn and Runs): the five experiment pages share one menu, the pages a visitor starts from stay in the row.
EXPERIMENT_PAGES = [
    st.Page(ROOT / "pages" / "compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page(ROOT / "pages" / "sequential.py", title="Sequential", icon=":material/timeline:"),
    st.Page(ROOT / "pages" / "sensitivity.py", title="Sensitivity", icon=":material/tune:"),
    st.Page(ROOT / "pages" / "forget_size.py", title="Forget-set size", icon=":material/stacked_line_chart:"),
    st.Page(ROOT / "pages" / "audit.py", title="Audit", icon=":material/policy:"),
    st.Page(ROOT / "pages" / "evaluate.py", title="Evaluate", icon=":material/balance:"),
]
PAGES = {
    "": [
        st.Page(ROOT / "pages" / "explore.py", title="Explore", icon=":material/science:", default=True),
        st.Page(ROOT / "pages" / "playground.py", title="Playground", icon=":material/touch_app:"),
        st.Page(ROOT / "pages" / "learn.py", title="Learn", icon=":material/school:"),
        st.Page(ROOT / "pages" / "runs.py", title="Runs", icon=":material/history:"),
    ],
    "Experiments": EXPERIMENT_PAGES,
}

page = st.navigation(PAGES, position="top")

# The engine, after the navigation is on screen (see the module docstring).
from dashboard import common, status, widgets  # noqa: E402
from unlearn_core import __version__, paths  # noqa: E402

widgets.begin_script_run()

with st.sidebar:
    st.caption(f"unlearn-explorer {__version__} — certified machine unlearning of neural networks")
    from unlearn_core.device import describe_device, resolve_device

    st.caption(f"Device (auto): **{describe_device(resolve_device('auto'))}**")
    st.caption(f"Cache: `{paths.cache_dir()}`")

# Every few seconds, on every page: this session still waits for its jobs, and a finished job whose results the
# page missed is shown (dashboard/status.session_heartbeat). The page that renders a job panel sets "_panel".
st.session_state["_panel"] = None
with st.sidebar:
    status.session_heartbeat()

with router.routed():  # dashboard/router.require_router: the page knows it runs inside this router
    page.run()

# Once per process, after the first page is on screen: the first job's lazy imports (torch._dynamo, scikit-learn,
# the accountants; ≈ 2.5 s) start in a background thread, and jobs wait for them (unlearn_core.service.jobs.WarmUp): the
# script run ends at once, so an early click on Run cannot interrupt it.
common.warm_up()
widgets.end_script_run()
