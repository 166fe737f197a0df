"""Compare: several methods on one configuration — a table and charts against retraining."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _common as ui
from pages._figures import figure
from unlearn_core import ui_state
from unlearn_core.errors import ConfigError
from unlearn_core.jobs import job_key, methods_task
from unlearn_core.pipeline import validate_config

PREFIX = "compare"

st.title("Compare")
st.caption("Run several unlearners on the same data, forget set and trained model (trained once, shared), and see "
           "which gets closest to retraining for how much time. Each method uses its default hyperparameters.")


def _methods(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    bad = [n for n in names if n not in ui_state.method_names()]
    if bad:
        raise ConfigError(f"methods={text!r} is not valid: choose from {', '.join(ui_state.method_names())}")
    return names


extras = ui.init_page(PREFIX, extra_fields={"methods": _methods})
ui.presets_sidebar(PREFIX)
ui.config_widgets(PREFIX, method=False)
all_methods = ui_state.method_names()
if f"{PREFIX}.methods" not in st.session_state:
    st.session_state[f"{PREFIX}.methods"] = extras.get("methods") or all_methods
with st.form(f"{PREFIX}.form"):
    st.multiselect("Methods", all_methods, key=f"{PREFIX}.methods")
    submitted = st.form_submit_button("Run comparison", type="primary", icon=":material/play_arrow:")

try:
    cfg = ui.read_config(PREFIX, method=all_methods[0])
except ConfigError as exc:
    ui.engine_error(exc)
    st.stop()
chosen = list(st.session_state[f"{PREFIX}.methods"])
ui.sync_url(cfg, extra={"methods": ",".join(chosen)})

if submitted:
    if not chosen:
        st.error("methods=[] is not valid: pick at least one method", icon="🚫")
        st.stop()
    try:
        runs = []
        for name in chosen:
            run_config = cfg.to_run_config(method=name, params={})
            params = validate_config(run_config)
            runs.append((name, name, params))
    except ConfigError as exc:
        ui.engine_error(exc)
        st.stop()
    base = cfg.to_run_config(method=chosen[0], params={})
    key = job_key({"page": "compare", "config": {**base.to_json(), "method": None, "params": None}, "runs": runs})
    ui.submit(PREFIX, key, methods_task(base, runs, key=key, store=ui.get_store()),
              label=f"{len(runs)} methods on {cfg.dataset}/{cfg.model}")


def on_done(job) -> None:
    cards, labels = job.result["cards"], job.result["labels"]
    rows = []
    for card, label in zip(cards, labels, strict=True):
        u = card["models"]["unlearned"]
        cert = card.get("certificate") or {}
        rows.append({
            "method": label, "family": card["method"]["family"],
            "acc forget": u["acc_forget"], "acc retain": u["acc_retain"], "acc test": u["acc_test"],
            "‖w − w_retrained‖": card["distance"]["unlearned_to_retrained"],
            "time (s)": card["timing_s"]["unlearn"],
            "certificate": cert.get("label") if cert else (
                "approximate (uncertified)" if card["method"]["family"] == "approximate" else "—"),
        })
    retrained = cards[0]["models"].get("retrained")
    if retrained:
        rows.append({"method": "retrained (reference)", "family": "oracle", "acc forget": retrained["acc_forget"],
                     "acc retain": retrained["acc_retain"], "acc test": retrained["acc_test"],
                     "‖w − w_retrained‖": 0.0, "time (s)": cards[0]["timing_s"]["retrain"], "certificate": "exact"})
    st.subheader("Results")
    st.dataframe(pd.DataFrame(rows).set_index("method"), width="stretch")
    figs = {"Time vs closeness": figure("compare_scatter", cards, labels),
            "Accuracy per method": figure("compare_accuracy", cards, labels)}
    cols = st.columns(2)
    for col, (title, fig) in zip(cols, figs.items(), strict=True):
        if fig is not None:
            col.plotly_chart(fig, width="stretch", key=f"{PREFIX}.fig.{title}")
    ui.downloads(PREFIX, {"runs": cards, "labels": labels, "models": {}}, figures={k: v for k, v in figs.items() if v},
                 weights=None, name=f"compare-{cfg.dataset}-{cfg.model}")


ui.job_panel(PREFIX, on_done=on_done)
