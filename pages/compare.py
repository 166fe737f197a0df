"""Compare: several methods on one configuration — a table and charts against retraining (Zhang et al. Table 1).

Runs :func:`unlearn_core.experiments.compare` in the background (the CLI's ``experiment compare``), so the page
and the command line produce the same tidy rows; the figures come from :mod:`unlearn_core.plots`.
"""

from __future__ import annotations

import streamlit as st

from pages import _common as ui
from unlearn_core import ui_state
from unlearn_core.errors import ConfigError

PREFIX = "compare"
COLUMNS = {
    "family": "family", "status": "certificate", "acc_forget": "acc forget", "acc_retain": "acc retain",
    "acc_test": "acc test", "dist_to_retrained": "‖w − w_retrained‖", "js_forget": "JS to retrained (forget)",
    "mia_loss_auc": "loss MIA AUC", "relearn_steps": "relearn steps", "time_s": "time (s)",
    "speedup": "speed-up vs retrain",
}

st.title("Compare")
st.caption("Run several unlearners on the same data, forget set and trained models (trained once per seed, shared) "
           "and see which gets closest to retraining for how much time. Each method uses its default "
           "hyperparameters; `original` and `retrained` are the reference rows.")


def _methods(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    bad = [n for n in names if n not in ui_state.method_names()]
    if bad:
        raise ConfigError(f"methods={text!r} is not valid: choose from {', '.join(ui_state.method_names())}")
    return names


extras = ui.init_page(PREFIX, extra_fields={"methods": _methods})
ui.presets_sidebar(PREFIX)
ui.config_widgets(PREFIX, method=False)
all_methods = [n for n in ui_state.method_names() if n != "retrain"]  # retraining is the reference row
if f"{PREFIX}.methods" not in st.session_state:
    st.session_state[f"{PREFIX}.methods"] = [m for m in (extras.get("methods") or all_methods) if m in all_methods]
with st.form(f"{PREFIX}.form"):
    st.multiselect("Methods", all_methods, key=f"{PREFIX}.methods")
    c1, c2, c3 = st.columns(3)
    with c1:
        n_seeds = ui.seeds_widget(PREFIX)
    mia = c2.checkbox("Membership inference", value=True, key=f"{PREFIX}.mia",
                      help="Three held-out attacks per model (loss, posterior difference, SVC).")
    relearn = c3.checkbox("Relearn time", value=True, key=f"{PREFIX}.relearn",
                          help="SGD steps on the forget set until the original forget accuracy is back.")
    submitted = st.form_submit_button("Run comparison", type="primary", icon=":material/play_arrow:")

chosen = list(st.session_state[f"{PREFIX}.methods"])
cfg = ui.config_or_stop(PREFIX, method=all_methods[0], extra={"methods": ",".join(chosen)})

if submitted:
    if not chosen:
        ui.engine_error(ConfigError("methods=[] is not valid: pick at least one method"))
        st.stop()
    base, _ = ui.run_config_or_stop(cfg, method=chosen[0], params={})
    ui.submit_experiment(PREFIX, "compare", base, n_seeds=n_seeds,
                         label=", ".join(chosen), methods=chosen, mia=mia, relearn=relearn)


def render(df, card, run_id) -> None:
    n = df["seed"].nunique()
    st.subheader("Results")
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}. Read every number against the `retrained` row: closer "
               "is better, and far below it (e.g. a lower forget accuracy) is over-unlearning.")
    st.dataframe(ui.mean_table(df, by="method", columns=COLUMNS), width="stretch")
    ui.experiment_results(PREFIX, "compare", df, card, name=f"compare-{cfg.dataset}-{cfg.model}")


ui.experiment_panel(PREFIX, render)
