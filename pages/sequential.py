"""Sequential: k deletion requests in a row — gradient norm, bound and utility per request (Zhang et al. §2.5, Fig. 3).

Runs :func:`unlearn_core.experiments.sequential` in the background and plots it with
:func:`unlearn_core.plots.sequential_figure`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common, downloads, results, status, stories, widgets
from unlearn_core import formatting as fmt
from unlearn_core.service import ui_state
from unlearn_core.unlearners import methods_with

PREFIX = "sequential"
OWN_CONTROLS = ("requests", "retrain_each_step")  # set by the experiment's own arguments below
COLUMNS = {
    "n_forget_step": "points removed", "grad_norm": "‖∇L‖ before", "grad_norm_after": "‖∇L‖ after",
    "delta_bound": "Δ bound", "delta_bound_infinite": "_Δ infinite", "sigma_required": "σ required",
    "sigma_used": "σ used", "status": "certificate", "acc_forget": "acc forgotten so far", "acc_retain": "acc retain",
    "acc_test": "acc test", "acc_test_noiseless": "acc test before noise", "approx_error": "‖w̃_k − w̃*_k‖",
    "why": "_why",
}

common.require_router()
st.title("Sequential unlearning")
st.caption("The forget set is split into k requests served one after another, each starting from the previous "
           "released model. Zhang et al. claim the bound Δ (so σ) stays constant while the gradient norm shrinks.")

# The page's own settings travel in the URL too (?requests=5&each=false&seeds=1), so a link reproduces the run.
extras = widgets.init_page(PREFIX, defaults=ui_state.PAGE_DEFAULTS["sequential"], extra_fields={
    "requests": ui_state.int_field("requests", low=2, high=20), "each": ui_state.bool_field("each"),
    "seeds": ui_state.int_field("seeds", low=1, high=10),
})
common.seed_once(f"{PREFIX}.requests", extras.get("requests", 5))
common.seed_once(f"{PREFIX}.each", extras.get("each", False))
common.seed_once(f"{PREFIX}.nseeds", extras.get("seeds", 1))
widgets.presets_row(PREFIX)
sequential_methods = methods_with("sequential")
method = widgets.method_select(PREFIX, sequential_methods,
                               empty="No registered method supports sequential requests yet.",
                               why="it has no sequential requests (no 'requests' hyperparameter)")
with st.form(f"{PREFIX}.form", enter_to_submit=False):
    c1, c2, c3 = st.columns(3)
    requests = c1.slider("Requests k", 2, 20, key=f"{PREFIX}.requests")
    with c2:
        n_seeds = widgets.seeds_widget(PREFIX)
    each = c3.checkbox("Retrain at every request (slow)", key=f"{PREFIX}.each",
                       help="Measures the actual error ‖w̃_k − w̃*_k‖ at every k by retraining k times; otherwise "
                            "only the last request has its retrained reference.")
    st.markdown(f"**Hyperparameters of `{method}`**")
    widgets.param_widgets(PREFIX, method, skip=OWN_CONTROLS)
    submitted = st.form_submit_button("Run requests", type="primary", icon=":material/play_arrow:")

cfg = widgets.config_or_stop(PREFIX, method=method, skip_params=OWN_CONTROLS,
                             extra={"requests": int(requests), "each": bool(each), "seeds": int(n_seeds)})
status.experiment_estimate_caption(st, "sequential", cfg, n_seeds=n_seeds, method=method, requests=int(requests),
                                   params={k: v for k, v in cfg.params.items() if k not in OWN_CONTROLS},
                                   retrain_each_step=bool(each))  # before Run (#20 item 14)

if submitted:
    st.session_state[f"{PREFIX}._warnings"] = []
    params = {k: v for k, v in cfg.params.items() if k not in OWN_CONTROLS}
    base, _ = widgets.run_config_or_stop(cfg, params=params)
    status.submit_experiment(PREFIX, "sequential", base, n_seeds=n_seeds,
                             label=f"{method}, {requests} requests", method=method, requests=int(requests),
                             params=params, retrain_each_step=bool(each))


def render(df, card, run_id) -> None:
    st.subheader("Per request")
    if df.empty:
        st.info("This method reported no per-request diagnostics.")
        return
    n = df["seed"].nunique()
    df = stories.sequential_causes(df)
    conclusion = stories.sequential_story(df)
    if conclusion:
        st.markdown(f"**{conclusion}**")
    st.caption(f"Mean over {n} seed{'s' if n > 1 else ''}; the dashed line is the model retrained without all "
               "k requests" + ("; ‖w̃_k − w̃*_k‖ is measured at the last request only (tick *Retrain at every "
                               "request* for all)." if not df.get("approx_error", pd.Series(dtype=float)).notna().all()
                               else "."))
    table = results.mean_table(df, by="step", columns=COLUMNS).rename_axis("request")
    why = table.pop("_why") if "_why" in table else None
    shown = results.display_table(table, percent=("acc forgotten so far", "acc retain", "acc test",
                                                  "acc test before noise"), counts=("points removed",),
                                  infinite={"Δ bound": "_Δ infinite"}, cause=why)
    if why is not None and why.notna().any():
        shown.insert(shown.columns.get_loc("certificate") + 1, "why not",
                     [w if isinstance(w, str) else "" for w in why])
    shown.index = [fmt.count(k) for k in shown.index]
    st.dataframe(shown.rename_axis("request"), width="stretch")
    downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, "sequential", df),
                                  name=f"sequential-{cfg.dataset}-{cfg.model}")


status.experiment_panel(PREFIX, render)
