"""Sensitivity: sweep λ, ε or δ and watch the bound, the noise, the real error and the utility (Zhang et al. Fig. 4).

Runs :func:`unlearn_core.experiments.sensitivity` in the background and plots it with
:func:`unlearn_core.plots.sensitivity_figure` and :func:`unlearn_core.plots.bound_vs_actual_figure`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages import _common as ui
from unlearn_core import ui_state
from unlearn_core.errors import ConfigError
from unlearn_core.unlearners import get_unlearner

PREFIX = "sensitivity"
SWEEPABLE = ("lam", "epsilon", "delta")
COLUMNS = {
    "delta_bound": "Δ bound", "sigma_required": "σ required", "sigma_used": "σ used", "status": "certificate",
    "approx_error": "actual ‖w̃ − w̃*‖ (before noise)", "dist_to_retrained": "‖w⁻ − w̃*‖ (after noise)",
    "acc_test": "acc test", "acc_forget": "acc forget", "acc_test_retrained": "acc test, retrained",
}

st.title("Sensitivity")
st.caption("Larger λ gives a smaller bound but a more biased step; smaller ε or δ demand more noise and cost "
           "utility (Zhang et al. Fig. 4). The trained models are shared by every value; one run per value.")

ui.init_page(PREFIX)
ui.presets_sidebar(PREFIX)
methods = [n for n in ui_state.method_names() if any(p.name in SWEEPABLE for p in get_unlearner(n).schema)]
method = ui.method_select(PREFIX, methods, empty="No registered method has λ, ε or δ to sweep yet.")
schema = {p.name: p for p in get_unlearner(method).schema}
names = [n for n in SWEEPABLE if n in schema]
with st.form(f"{PREFIX}.form"):
    c1, c2, c3, c4, c5 = st.columns(5)
    name = c1.selectbox("Sweep", names, key=f"{PREFIX}.sweep")
    p = schema[name]
    default = float(p.default)
    low = c2.number_input("from", value=default / 10, format="%g", key=f"{PREFIX}.lo.{name}")
    high = c3.number_input("to", value=min(default * 100, p.high or default * 100), format="%g",
                           key=f"{PREFIX}.hi.{name}")
    count = c4.slider("values (log-spaced)", 2, 12, 4, key=f"{PREFIX}.n")
    with c5:
        n_seeds = ui.seeds_widget(PREFIX)
    st.markdown(f"**Other hyperparameters of `{method}`**")
    ui.param_widgets(PREFIX, method, skip=(name,))
    submitted = st.form_submit_button("Run sweep", type="primary", icon=":material/play_arrow:")

cfg = ui.config_or_stop(PREFIX, method=method)

if submitted:
    try:
        if not (0 < low < high):
            raise ConfigError(f"sweep range [{low:g}, {high:g}] is not valid: expected 0 < from < to")
        values = [float(v) for v in np.geomspace(low, high, int(count))]
        for v in values:
            p.validate(v)
    except ConfigError as exc:
        ui.engine_error(exc)
        st.stop()
    fixed = {k: v for k, v in cfg.params.items() if k != name}
    base, _ = ui.run_config_or_stop(cfg, params=fixed)
    ui.submit_experiment(PREFIX, "sensitivity", base, n_seeds=n_seeds,
                         label=f"{method}, {name} sweep", method=method, param=name, values=values, params=fixed)


def render(df, card, run_id) -> None:
    swept = str(df["param"].iloc[0]) if len(df) else "value"
    n = df["seed"].nunique() if len(df) else 0
    st.subheader("Results")
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}, one row per value of {swept}. Δ = ∞ where the bound "
               "does not apply (λ + λ_min ≤ 0): no σ certifies the release there, so none is added.")
    table = ui.mean_table(df, by="value", columns=COLUMNS).rename_axis(swept)
    for col in ("Δ bound", "σ required"):  # the engine serialises an infinite bound as null
        table[col] = table[col].fillna(float("inf"))
    st.dataframe(table, width="stretch")
    ui.experiment_results(PREFIX, "sensitivity", df, card, name=f"sensitivity-{swept}")


ui.experiment_panel(PREFIX, render)
