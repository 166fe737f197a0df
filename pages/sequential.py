"""Sequential: k deletion requests in a row — gradient norm, bound and utility per request (Zhang et al. §2.5)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _common as ui
from pages._figures import figure
from unlearn_core import ui_state
from unlearn_core.errors import ConfigError
from unlearn_core.jobs import job_key, run_task
from unlearn_core.pipeline import validate_config
from unlearn_core.unlearners import get_unlearner

PREFIX = "sequential"

st.title("Sequential unlearning")
st.caption("The forget set is split into k requests served one after another, each from the previous released "
           "model. Zhang et al. claim the bound Δ (so σ) stays constant while the gradient norm shrinks.")

ui.init_page(PREFIX)
ui.presets_sidebar(PREFIX)
sequential_methods = [n for n in ui_state.method_names()
                      if any(p.name == "requests" for p in get_unlearner(n).schema)]
if not sequential_methods:
    st.info("No registered method supports sequential requests yet.")
    st.stop()
if st.session_state.get(f"{PREFIX}.method") not in sequential_methods:
    st.session_state[f"{PREFIX}.method"] = sequential_methods[0]
ui.config_widgets(PREFIX, method=False)
method = st.selectbox("Method", sequential_methods, key=f"{PREFIX}.method")
with st.form(f"{PREFIX}.form"):
    ui.param_widgets(PREFIX, method)
    submitted = st.form_submit_button("Run requests", type="primary", icon=":material/play_arrow:")

try:
    cfg = ui.read_config(PREFIX, method=method)
except ConfigError as exc:
    ui.engine_error(exc)
    st.stop()
ui.sync_url(cfg)

if submitted:
    st.session_state[f"{PREFIX}._warnings"] = []
    try:
        run_config = cfg.to_run_config()
        resolved = validate_config(run_config)
    except ConfigError as exc:
        ui.engine_error(exc)
        st.stop()
    key = job_key({"page": "sequential", "config": {**run_config.to_json(), "params": resolved}})
    ui.submit(PREFIX, key, run_task(run_config, key=key, store=ui.get_store(), kind="sequential"),
              label=f"{resolved.get('requests')} requests, {method} on {cfg.dataset}/{cfg.model}")


def on_done(job) -> None:
    card = job.result["card"]
    steps = card.get("diagnostics", {}).get("steps") or []
    st.subheader("Per request")
    if steps:
        cols = [c for c in ("step", "n_forget_step", "grad_norm", "grad_norm_after", "delta_bound", "sigma_required",
                            "sigma_used", "certified", "acc_test", "acc_forget", "acc_retain", "approx_error")
                if c in steps[0]]
        st.dataframe(pd.DataFrame(steps)[cols].set_index("step"), width="stretch")
        fig = figure("sequential_curves", card)
        if fig is not None:
            st.plotly_chart(fig, width="stretch", key=f"{PREFIX}.fig")
    else:
        st.info("This method reported no per-request diagnostics.")
    ui.certificate_card(card)
    ui.downloads(PREFIX, card, figures={}, weights=None, name=f"sequential-{cfg.dataset}-{cfg.model}")


ui.job_panel(PREFIX, on_done=on_done)
