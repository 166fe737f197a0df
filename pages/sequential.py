"""Sequential: k deletion requests in a row — gradient norm, bound and utility per request (Zhang et al. §2.5, Fig. 3).

Runs :func:`unlearn_core.experiments.sequential` in the background and plots it with
:func:`unlearn_core.plots.sequential_figure`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common, downloads, results, status, widgets
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

if submitted:
    st.session_state[f"{PREFIX}._warnings"] = []
    params = {k: v for k, v in cfg.params.items() if k not in OWN_CONTROLS}
    base, _ = widgets.run_config_or_stop(cfg, params=params)
    status.submit_experiment(PREFIX, "sequential", base, n_seeds=n_seeds,
                             label=f"{method}, {requests} requests", method=method, requests=int(requests),
                             params=params, retrain_each_step=bool(each))


def causes(df: pd.DataFrame) -> pd.DataFrame:
    """Each request's Δ flag and, for a request that is not certified, why — from its own row: an infinite bound, or
    σ required above the σ fixed at the first request (the chain keeps one σ)."""
    out = df.copy()
    bound = pd.to_numeric(out["delta_bound"], errors="coerce") if "delta_bound" in out else pd.Series(
        index=out.index, dtype=float)
    required = pd.to_numeric(out.get("sigma_required"), errors="coerce")
    used = pd.to_numeric(out.get("sigma_used"), errors="coerce")
    why = []
    for i in out.index:
        if out.at[i, "status"] != "not certified" if "status" in out else True:
            why.append(None)
        elif pd.isna(bound.get(i)):
            why.append("the bound does not apply at this request")
        elif pd.notna(required.get(i)) and pd.notna(used.get(i)) and required[i] > used[i]:
            why.append(f"σ required {fmt.sig(required[i])} > σ used {fmt.sig(used[i])}, fixed at request 1")
        else:
            why.append("a condition of the bound fails at this request")
    out["why"] = why
    out["delta_bound_infinite"] = bound.isna() & out["status"].notna() if "status" in out else False
    return out


def story(df: pd.DataFrame) -> str:
    """The chain's conclusion in one sentence: Δ across the requests against the shrinking gradient, and which
    requests are not certified (between certified ones: said so)."""
    by = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in ("grad_norm", "delta_bound") if c in df}
                   ).groupby("step").mean(numeric_only=True).sort_index()
    parts = []
    if "delta_bound" in by and by["delta_bound"].notna().all():
        lo, hi = by["delta_bound"].min(), by["delta_bound"].max()
        parts.append(f"Δ stays between {fmt.sig(lo)} and {fmt.sig(hi)} over {len(by)} requests"
                     + (" — nearly constant, as Zhang et al. claim" if hi <= 1.25 * lo else ""))
    if "grad_norm" in by and by["grad_norm"].notna().all() and len(by) > 1:
        parts.append(f"the retain gradient goes from {fmt.sig(by['grad_norm'].iloc[0])} to "
                     f"{fmt.sig(by['grad_norm'].iloc[-1])}")
    text = ("; ".join(parts) + ".") if parts else ""
    status = df.groupby("step")["status"].agg(lambda v: "not certified" if (v == "not certified").any() else
                                              next((x for x in v if isinstance(x, str)), None)).sort_index()
    bad = [int(k) for k, v in status.items() if v == "not certified"]
    good = [int(k) for k, v in status.items() if isinstance(v, str) and v != "not certified"]
    if bad:
        between = [k for k in bad if any(g < k for g in good) and any(g > k for g in good)]
        text += (f" Request{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} "
                 f"{'are' if len(bad) > 1 else 'is'} not certified")
        text += (" — between certified requests: the chain's σ is fixed at request 1, and a later request whose "
                 "σ required is larger is not covered by it (the table says by how much)." if between else ".")
    return text.strip()


def render(df, card, run_id) -> None:
    st.subheader("Per request")
    if df.empty:
        st.info("This method reported no per-request diagnostics.")
        return
    n = df["seed"].nunique()
    df = causes(df)
    conclusion = story(df)
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
