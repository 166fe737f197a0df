"""Sensitivity: sweep λ, ε or δ and watch the bound, the noise, the real error and the utility move."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages import _common as ui
from pages._figures import figure
from unlearn_core import ui_state
from unlearn_core.errors import ConfigError
from unlearn_core.jobs import job_key, methods_task
from unlearn_core.pipeline import validate_config
from unlearn_core.unlearners import get_unlearner

PREFIX = "sensitivity"
SWEEPABLE = ("lam", "epsilon", "delta")

st.title("Sensitivity")
st.caption("Larger λ gives a smaller bound but a more biased step; smaller ε or δ demand more noise and cost "
           "utility (Zhang et al. Fig. 4). One trained model, one run per value.")

ui.init_page(PREFIX)
ui.presets_sidebar(PREFIX)
methods = [n for n in ui_state.method_names() if any(p.name in SWEEPABLE for p in get_unlearner(n).schema)]
if not methods:
    st.info("No registered method has λ, ε or δ to sweep yet.")
    st.stop()
if st.session_state.get(f"{PREFIX}.method") not in methods:
    st.session_state[f"{PREFIX}.method"] = methods[0]
ui.config_widgets(PREFIX, method=False)
method = st.selectbox("Method", methods, key=f"{PREFIX}.method")
schema = {p.name: p for p in get_unlearner(method).schema}
names = [n for n in SWEEPABLE if n in schema]
with st.form(f"{PREFIX}.form"):
    c1, c2, c3, c4 = st.columns(4)
    name = c1.selectbox("Sweep", names, key=f"{PREFIX}.sweep")
    p = schema[name]
    default = float(p.default)
    low = c2.number_input("from", value=default / 100, format="%g", key=f"{PREFIX}.lo.{name}")
    high = c3.number_input("to", value=min(default * 100, p.high or default * 100), format="%g",
                           key=f"{PREFIX}.hi.{name}")
    count = c4.slider("values (log-spaced)", 2, 12, 5, key=f"{PREFIX}.n")
    st.markdown("**Other hyperparameters**")
    ui.param_widgets(PREFIX, method, skip=(name,))
    submitted = st.form_submit_button("Run sweep", type="primary", icon=":material/play_arrow:")

try:
    cfg = ui.read_config(PREFIX, method=method)
except ConfigError as exc:
    ui.engine_error(exc)
    st.stop()
ui.sync_url(cfg)

if submitted:
    try:
        if not (0 < low < high):
            raise ConfigError(f"sweep range [{low:g}, {high:g}] is not valid: expected 0 < from < to")
        values = [float(v) for v in np.geomspace(low, high, int(count))]
        runs = []
        for v in values:
            params = {**cfg.params, name: p.validate(v)}
            validate_config(cfg.to_run_config(params=params))
            runs.append((f"{name}={v:.3g}", method, params))
    except ConfigError as exc:
        ui.engine_error(exc)
        st.stop()
    base = cfg.to_run_config()
    key = job_key({"page": "sensitivity", "config": {**base.to_json(), "params": None}, "runs": runs})
    st.session_state[f"{PREFIX}.values"] = (name, values)
    ui.submit(PREFIX, key, methods_task(base, runs, key=key, store=ui.get_store(), kind="sensitivity"),
              label=f"{len(values)} values of {name}, {method} on {cfg.dataset}/{cfg.model}")


def on_done(job) -> None:
    cards, labels = job.result["cards"], job.result["labels"]
    swept, values = st.session_state.get(f"{PREFIX}.values", (labels[0].split("=")[0], []))
    if len(values) != len(cards):
        values = [float(label.split("=")[1]) for label in labels]
    rows = []
    for card, value in zip(cards, values, strict=True):
        cert = card.get("certificate") or {}
        rows.append({swept: value, "Δ bound": cert.get("delta_bound"), "σ required": cert.get("sigma_required"),
                     "σ used": cert.get("sigma_used"), "certificate": cert.get("label", "—"),
                     "actual error": (card.get("diagnostics") or {}).get("approx_error"),
                     "acc test": card["models"]["unlearned"]["acc_test"],
                     "acc forget": card["models"]["unlearned"]["acc_forget"]})
    st.subheader("Results")
    st.dataframe(pd.DataFrame(rows).set_index(swept), width="stretch")
    fig = figure("sensitivity_curves", cards, values, swept)
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key=f"{PREFIX}.fig")
    ui.downloads(PREFIX, {"runs": cards, "labels": labels, "models": {}}, figures={"sweep": fig} if fig else {},
                 weights=None, name=f"sensitivity-{swept}")


ui.job_panel(PREFIX, on_done=on_done)
