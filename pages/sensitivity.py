"""Sensitivity: sweep λ, ε or δ and watch the bound, the noise, the real error and the utility (Zhang et al. Fig. 4).

Runs :func:`unlearn_core.experiments.sensitivity` in the background and plots it with
:func:`unlearn_core.plots.sensitivity_figure` and :func:`unlearn_core.plots.bound_vs_actual_figure`.
"""

from __future__ import annotations

import streamlit as st

from dashboard import common, downloads, results, status, stories, widgets
from unlearn_core import formatting as fmt
from unlearn_core.errors import ConfigError, abbreviate
from unlearn_core.experiment_options import sweep_values, sweepable_params
from unlearn_core.service import ui_state
from unlearn_core.service.text import plain
from unlearn_core.unlearners import get_unlearner

PREFIX = "sensitivity"
COLUMNS = {
    "delta_bound": "Δ bound", "delta_bound_infinite": "_Δ infinite", "sigma_required": "σ required",
    "sigma_used": "σ used", "status": "certificate", "approx_error": "actual ‖w̃ − w̃*‖ (before noise)",
    "dist_to_retrained": "‖w⁻ − w̃*‖ (after noise)", "acc_test": "acc test",
    "acc_test_noiseless": "acc test before noise", "acc_forget": "acc forget",
    "acc_test_retrained": "acc test, retrained", "why_infinite": "_why ∞",
    "why_not_certified": "why not certified",
}

common.require_router()
st.title("Sensitivity")
st.caption("Larger λ gives a smaller bound but a more biased step; smaller ε or δ demand more noise and cost "
           "utility (Zhang et al. Fig. 4). The trained models are shared by every value; one run per value.")

# What each method can sweep comes from its schema (experiment_options.sweepable_params), never a list of names.
sweepable = {n: sweepable_params(n) for n in ui_state.method_names()}
# The sweep travels in the URL too (?sweep=lam&from=0.1&to=10&n=4&seeds=1), so a link reproduces the run.
extras = widgets.init_page(PREFIX, defaults=ui_state.PAGE_DEFAULTS["sensitivity"], extra_fields={
    "sweep": ui_state.choice_field("sweep", sorted({p for names in sweepable.values() for p in names})),
    "from": ui_state.float_field("from", low=0.0, high=1e6, low_open=True),
    "to": ui_state.float_field("to", low=0.0, high=1e6, low_open=True),
    "n": ui_state.int_field("n", low=2, high=12), "seeds": ui_state.int_field("seeds", low=1, high=10),
})
widgets.presets_row(PREFIX)
methods = [n for n, names in sweepable.items() if names]
method = widgets.method_select(PREFIX, methods, empty="No registered method has λ, ε or δ to sweep yet.",
                               why="it has no λ, ε or δ to sweep")
schema = {p.name: p for p in get_unlearner(method).schema}
names = sweepable[method]
if extras.get("sweep") is not None and extras["sweep"] not in names and not st.session_state.get(f"{PREFIX}._swept"):
    st.warning(plain(f"sweep={abbreviate(extras['sweep'])} is not a hyperparameter of {method}: choose one of "
                     f"{', '.join(names)} — using {names[0]}"), icon=":material/warning:")
common.seed_once(f"{PREFIX}.sweep", extras["sweep"] if extras.get("sweep") in names else names[0])
common.seed_once(f"{PREFIX}.n", extras.get("n", 5))
common.seed_once(f"{PREFIX}.nseeds", extras.get("seeds", 1))
with st.form(f"{PREFIX}.form", enter_to_submit=False):
    c1, c2, c3, c4, c5 = st.columns(5)
    name = c1.selectbox("Sweep", names, key=f"{PREFIX}.sweep")
    p = schema[name]
    default = float(p.default)
    first = extras.get("sweep") == name and not st.session_state.get(f"{PREFIX}._swept")
    common.seed_once(f"{PREFIX}.lo.{name}", extras["from"] if first and "from" in extras else default / 10)
    common.seed_once(f"{PREFIX}.hi.{name}", extras["to"] if first and "to" in extras
                     else min(default * 100, p.high or default * 100))
    low = c2.number_input("from", format="%g", key=f"{PREFIX}.lo.{name}")
    high = c3.number_input("to", format="%g", key=f"{PREFIX}.hi.{name}")
    count = c4.slider("values (log-spaced)", 2, 12, key=f"{PREFIX}.n")
    with c5:
        n_seeds = widgets.seeds_widget(PREFIX)
    st.markdown(f"**Other hyperparameters of `{method}`**")
    widgets.param_widgets(PREFIX, method, skip=(name,))
    submitted = st.form_submit_button("Run sweep", type="primary", icon=":material/play_arrow:")
st.session_state[f"{PREFIX}._swept"] = True  # the URL's sweep range seeds the widgets on the first visit only

cfg = widgets.config_or_stop(PREFIX, method=method, extra={"sweep": name, "from": float(low), "to": float(high),
                                                           "n": int(count), "seeds": int(n_seeds)})
try:
    values, grid_error = sweep_values(method, name, low=low, high=high, count=int(count)), None
except ConfigError as exc:
    values, grid_error = [], exc
if values:  # before Run (#20 item 14)
    status.experiment_estimate_caption(st, "sensitivity", cfg, n_seeds=n_seeds, method=method, param=name,
                                       values=values, params={k: v for k, v in cfg.params.items() if k != name})

if submitted:
    if grid_error is not None:
        common.engine_error(grid_error)
        st.stop()
    fixed = {k: v for k, v in cfg.params.items() if k != name}
    base, _ = widgets.run_config_or_stop(cfg, params=fixed)
    status.submit_experiment(PREFIX, "sensitivity", base, n_seeds=n_seeds,
                             label=f"{method}, {name} sweep", method=method, param=name, values=values, params=fixed)


def render(df, card, run_id) -> None:
    swept = str(df["param"].iloc[0]) if len(df) else "value"
    n = df["seed"].nunique() if len(df) else 0
    st.subheader("Results")
    conclusion = stories.sensitivity_story(df, swept)
    if conclusion:
        st.markdown(f"**{conclusion}**")
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}, one row per value of {swept}. An infinite bound names "
               "the condition that fails (the certificate card of Explore lists them all).")
    table = results.mean_table(df, by="value", columns=COLUMNS).rename_axis(swept)
    cause = table.pop("_why ∞") if "_why ∞" in table else None
    shown = results.display_table(table, percent=("acc test", "acc test before noise", "acc forget",
                                                  "acc test, retrained"),
                                  infinite={"Δ bound": "_Δ infinite"}, cause=cause)
    shown.index = [fmt.sig(v) for v in shown.index]
    st.dataframe(shown.rename_axis(swept), width="stretch")
    downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, "sensitivity", df),
                                  name=f"sensitivity-{swept}")


status.experiment_panel(PREFIX, render)
