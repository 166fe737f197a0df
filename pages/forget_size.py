"""Forget-set size: how cost, accuracy and the certificate scale as the forget set grows.

Runs :func:`unlearn_core.experiments.forget_size` in the background (the CLI's ``experiment forget-size``) and
draws it with :func:`unlearn_core.plots.forget_size_figure`.
"""

from __future__ import annotations

import streamlit as st

from pages import _common as common
from pages import _downloads as downloads
from pages import _results as results
from pages import _status as status
from pages import _widgets as widgets
from unlearn_core.errors import ConfigError
from unlearn_core.service import ui_state

PREFIX = "forget_size"
COLUMNS = {
    "time_s": "time (s)", "speedup": "speed-up vs retrain", "acc_forget": "acc forget", "acc_test": "acc test",
    "dist_to_retrained": "‖w − w_retrained‖", "status": "certificate", "sigma_required": "σ required",
    "epsilon_certified": "ε certified",
}

common.require_router()
st.title("Forget-set size")
st.caption("Random forget sets of growing size n_u, each with its own retrained model (trained once, cached): the "
           "unlearning time against retraining, the accuracy against the retrained model, and the noise the "
           "certificate requires.")

widgets.init_page(PREFIX)
widgets.presets_row(PREFIX)
widgets.config_widgets(PREFIX, method=False)
all_methods = [n for n in ui_state.method_names() if n != "retrain"]  # retraining is the reference row
if f"{PREFIX}.methods" not in st.session_state:
    st.session_state[f"{PREFIX}.methods"] = [m for m in ("certified_newton", "noisy_finetune") if m in all_methods] \
        or all_methods[:1]
for m in all_methods:
    quick = ui_state.quick_params(m)  # the method's own fast demo settings (Unlearner.demo_params)
    if quick:
        widgets.seed_params_once(PREFIX, m, quick)

with st.form(f"{PREFIX}.form", enter_to_submit=False):
    st.multiselect("Methods", all_methods, key=f"{PREFIX}.methods")
    c1, c2 = st.columns(2)
    sizes_text = c1.text_input("Forget-set sizes (points, comma-separated)", value="10,50,100,200",
                               key=f"{PREFIX}.sizes", help="Counts ≥ 1, or fractions below 1 of the training set.")
    with c2:
        n_seeds = widgets.seeds_widget(PREFIX)
    widgets.method_param_tabs(PREFIX, all_methods)
    submitted = st.form_submit_button("Run sweep", type="primary", icon=":material/play_arrow:")

chosen = list(st.session_state[f"{PREFIX}.methods"])
cfg = widgets.config_or_stop(PREFIX, method=all_methods[0])
try:  # before Run (#20 item 14); a malformed list is said when Run is pressed
    status.experiment_estimate_caption(st, "forget_size", cfg, n_seeds=n_seeds, methods=chosen,
                                       sizes=[float(t) for t in sizes_text.split(",") if t.strip()],
                                       params={m: widgets.read_params(PREFIX, m) for m in chosen})
except ValueError:
    pass

if submitted:
    try:
        if not chosen:
            raise ConfigError("methods=[] is not valid: pick at least one method")
        try:
            sizes = [float(t) for t in sizes_text.split(",") if t.strip()]
        except ValueError:
            raise ConfigError(f"sizes={sizes_text!r} is not valid: expected comma-separated numbers") from None
        if not sizes:
            raise ConfigError("sizes is empty: give at least one forget-set size")
    except ConfigError as exc:
        common.engine_error(exc)
        st.stop()
    params = {m: widgets.read_params(PREFIX, m) for m in chosen}
    base, _ = widgets.run_config_or_stop(cfg, method=chosen[0], params=params[chosen[0]])
    status.submit_experiment(PREFIX, "forget_size", base, n_seeds=n_seeds, label=", ".join(chosen), methods=chosen,
                             sizes=sizes, params=params)


def render(df, card, run_id) -> None:
    st.subheader("Results")
    n = df["seed"].nunique()
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}, one row per (method, n_u); `retrained` is the reference "
               "(its time is the retraining time).")
    grouped = df.assign(group=[f"{m} · n_u = {k}" for m, k in zip(df["method"], df["n_forget"], strict=True)])
    st.dataframe(results.mean_table(grouped, by="group", columns=COLUMNS), width="stretch")
    downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, "forget_size", df),
                                  name=f"forget-size-{cfg.dataset}-{cfg.model}")


status.experiment_panel(PREFIX, render)
