"""Audit: put every certified method's claim to a test — many runs of the unlearner and of the noisy retrain.

Runs :func:`unlearn_core.experiments.audit` in the background (the CLI's ``experiment audit``) and draws it with
:func:`unlearn_core.plots.audit_epsilon_figure` and :func:`unlearn_core.plots.audit_attacks_figure`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common, downloads, results, status, widgets
from unlearn_core.errors import ConfigError
from unlearn_core.experiments import certified_methods
from unlearn_core.service import ui_state

PREFIX = "audit"
FACTORS = (1.0, 0.1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10)

common.require_router()
st.title("Audit")
st.caption("Each certified method claims that its output is (ε, δ)-indistinguishable from the *noisy retrain*: the "
           "same mechanism applied to the model retrained without the forget set. The audit runs both many times, "
           "each run with its own randomness, and tests how well they can be told apart.")
st.info(
    "**What an audit can and cannot show.** Its ε is a *lower* bound (95 % confidence, Clopper–Pearson): if it "
    "exceeds the claimed ε, the claim is false for this data set — the audit **refutes** it. If it stays below, "
    "nothing is confirmed: the certificate is a worst case over all data sets and all attacks, the audit tries one "
    "data set, two statistics and a finite number of runs (it can never show more than the 'largest ε these runs "
    "can show'). More runs make it sharper. Per-example ε and LiRA are estimates, read against the noisy retrain's "
    "own value.", icon="🔎")

widgets.init_page(PREFIX)
widgets.presets_row(PREFIX)
widgets.config_widgets(PREFIX, method=False)
methods = certified_methods()  # the registry's certified family, never a hand list
if not methods:
    st.info("No certified method is registered.")
    st.stop()
if f"{PREFIX}.methods" not in st.session_state:
    st.session_state[f"{PREFIX}.methods"] = list(methods)
for m in methods:
    quick = ui_state.quick_params(m)  # the method's own fast demo settings (Unlearner.demo_params)
    if quick:
        widgets.seed_params_once(PREFIX, m, quick)

with st.form(f"{PREFIX}.form", enter_to_submit=False):
    st.multiselect("Certified methods", methods, key=f"{PREFIX}.methods")
    c1, c2, c3 = st.columns(3)
    runs = c1.slider("Runs per arm", 16, 500, 100, step=4, key=f"{PREFIX}.runs",
                     help="Independent runs of the unlearner, and as many of the noisy retrain. Half choose the "
                          "test, half count its errors; more runs can show a larger ε.")
    factors = c2.multiselect("σ multipliers", list(FACTORS), default=[1.0], key=f"{PREFIX}.factors",
                             format_func=lambda f: "× 1 (as certified)" if f == 1.0 else f"× {f:g} (under-noised)",
                             help="The audited σ is this factor times the σ the method certifies with. An "
                                  "under-noised σ is what a correct audit must catch.")
    with c3:
        n_seeds = widgets.seeds_widget(PREFIX)
    widgets.method_param_tabs(PREFIX, methods)
    submitted = st.form_submit_button("Run audit", type="primary", icon=":material/play_arrow:")

chosen = list(st.session_state[f"{PREFIX}.methods"])
cfg = widgets.config_or_stop(PREFIX, method=methods[0])

if submitted:
    if not chosen or not factors:
        common.engine_error(ConfigError("pick at least one certified method and one σ multiplier"))
        st.stop()
    params = {m: widgets.read_params(PREFIX, m) for m in chosen}
    base, _ = widgets.run_config_or_stop(cfg, method=chosen[0], params=params[chosen[0]])
    status.submit_experiment(PREFIX, "audit", base, n_seeds=n_seeds, label=f"audit of {', '.join(chosen)}",
                             methods=chosen, params=params, sigma_factors=sorted(factors, reverse=True), runs=int(runs))


def _verdict(row: pd.Series) -> str:
    if row["refutes_certificate"]:
        return "refutes the certificate"
    if row["refutes_claim"]:
        return "refutes the claimed ε"
    return "not refuted (nothing confirmed)"


def render(df, card, run_id) -> None:
    st.subheader("Results")
    n = df["seed"].nunique()
    runs_per_arm = int(df["runs"].iloc[0]) if len(df) else 0
    st.caption(f"{runs_per_arm} runs per arm, {n} seed{'s' if n > 1 else ''}: {len(df) * 2 * runs_per_arm} "
               "unlearner runs. Reference: " + (str(df["reference"].iloc[0]) if len(df) else "—") + ".")
    table = pd.DataFrame({
        "method": df["method"], "σ ×": df["sigma_factor"], "σ": df["sigma"], "status": df["status"],
        "claimed ε": df["epsilon"], "δ (guaranteed)": df["delta_guaranteed"],
        "ε certified at σ": df["epsilon_certified"],
        "ε lower (audit)": df["epsilon_lower"], "largest ε showable": df["epsilon_lower_cap"],
        "statistic": df["statistic"], "verdict": df.apply(_verdict, axis=1),
        "per-example ε (median)": df["pe_epsilon_median"], "… noisy retrain vs itself": df["pe_epsilon_median_null"],
        "LiRA AUC": df.get("lira_auc"), "… noisy retrain": df.get("lira_auc_reference"),
        "acc test": df["acc_test"], "acc test, noisy retrain": df["acc_test_reference"], "s per run": df["time_s"],
    })
    if n > 1:
        table.insert(0, "seed", df["seed"])
    st.dataframe(table, hide_index=True, width="stretch")
    refuted = df[df["refutes_claim"] | df["refutes_certificate"]]
    for _, row in refuted.iterrows():
        st.error(f"**{row['method']}** at σ × {row['sigma_factor']:g}: the audit's ε ≥ {row['epsilon_lower']:.2f} "
                 f"(95 %) exceeds the claimed ε = {row['epsilon']:g} — this release is not ({row['epsilon']:g}, "
                 f"{row['delta_guaranteed']:.2g})-private on this data set.", icon="🚨")
    downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, "audit", df),
                                  name=f"audit-{cfg.dataset}-{cfg.model}")


status.experiment_panel(PREFIX, render)
