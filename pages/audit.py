"""Audit: put every certified method's claim to a test — many runs of the unlearner and of the noisy retrain, or one
run with many canaries.

Runs :func:`unlearn_core.experiments.audit` in the background (the CLI's ``experiment audit``) and draws it with
:func:`unlearn_core.plots.audit_epsilon_figure` and :func:`unlearn_core.plots.audit_attacks_figure`. Before Run the
page says what the chosen design can show (:func:`unlearn_core.experiments.audit_power`); every setting is in the URL.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard import common, downloads, results, status, widgets
from unlearn_core import one_run_audit as ora
from unlearn_core.errors import ConfigError
from unlearn_core.experiments import AUDIT_MODES, audit_per_example_note, audit_power, certified_methods
from unlearn_core.metrics import audit_runs_needed
from unlearn_core.service import ui_state
from unlearn_core.unlearners import get_unlearner

PREFIX = "audit"
FACTORS = (1.0, 0.1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10)
#: The σ multipliers a first run audits: the release as certified, and one under-noised so far that every certified
#: method's release is told apart from its noisy retrain — what a correct audit must catch.
DEFAULT_FACTORS = (1.0, 1e-10)
RUNS_RANGE, RUNS_STEP = (16, 500), 4
MODE_LABELS = {"runs": "Many runs (a distinguishing test)", "one_run": "One run with many canaries"}


def _methods(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in certified_methods()]
    if not names or unknown:
        raise ConfigError(f"methods={text!r} is not valid: expected certified methods from "
                          f"{', '.join(certified_methods())}")
    return names


def _factors(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v not in FACTORS for v in values):
        raise ConfigError(f"factors={text!r} is not valid: expected comma-separated values from "
                          f"{', '.join(f'{f:g}' for f in FACTORS)}")
    return values


def _smallest_runs(methods: list[str]) -> int:
    """The fewest runs per arm on the slider's grid whose ceiling is above every selected method's claimed ε."""
    claims = [p.epsilon for p in audit_power(methods=methods, params=None, runs=RUNS_RANGE[0]) if p.epsilon]
    need = max([audit_runs_needed(e) or RUNS_RANGE[1] for e in claims], default=RUNS_RANGE[0])
    return int(min(RUNS_RANGE[1], max(RUNS_RANGE[0], RUNS_STEP * math.ceil(need / RUNS_STEP))))


common.require_router()
st.title("Audit")
st.caption("Each certified method claims that its output is (ε, δ)-indistinguishable from the *noisy retrain*: the "
           "same mechanism applied to the model retrained without the forget set. The audit runs both many times, "
           "each run with its own randomness, and tests how well they can be told apart — or, in one run, deletes "
           "half of many canaries at random and counts how well it can tell which.")
st.info(
    "**What an audit can and cannot show.** Its ε is a *lower* bound (95 % confidence): if it exceeds the claimed ε, "
    "the claim is false for this data set — the audit **refutes** it. If it stays below, nothing is confirmed: the "
    "certificate is a worst case over all data sets and all attacks, the audit tries one data set, a few statistics "
    "and a finite number of runs or canaries (it can never show more than the 'largest ε showable'). Per-example ε "
    "and LiRA are estimates, read against the noisy retrain's own value.", icon=":material/search:")

methods = certified_methods()  # the registry's certified family, never a hand list
extras = widgets.init_page(PREFIX, extra_fields={
    "methods": _methods, "mode": ui_state.choice_field("mode", AUDIT_MODES),
    "runs": ui_state.int_field("runs", low=RUNS_RANGE[0], high=RUNS_RANGE[1]), "factors": _factors,
    "canaries": ui_state.int_field("canaries", low=2, high=100_000),
    "guesses": ui_state.int_field("guesses", low=1, high=50_000),
    "seeds": ui_state.int_field("seeds", low=1, high=10),
})
if not methods:
    st.info("No certified method is registered.")
    st.stop()
if not st.session_state.get(f"{PREFIX}._method_params"):
    for m in methods:
        # The method's fast demo settings, and no fine-tuning after the noise: that is post-processing, which can
        # only hide what the noise did (never make a release less private), so the audit looks at the noisy release.
        quick = dict(ui_state.quick_params(m))
        if "finetune_epochs" in {p.name for p in get_unlearner(m).schema}:
            quick["finetune_epochs"] = 0
        widgets.seed_params_once(PREFIX, m, quick)
    by_method, warnings = ui_state.method_params_from_query(st.query_params.to_dict())
    for method_name, values in by_method.items():  # the link's p.<method>.<name>
        if method_name in methods:
            widgets.seed_method_params(PREFIX, method_name, {**widgets.read_params(PREFIX, method_name), **values})
    for line in warnings:
        st.warning(line, icon=":material/warning:")
    st.session_state[f"{PREFIX}._method_params"] = True
chosen_default = [m for m in (extras.get("methods") or methods) if m in methods]
common.seed_once(f"{PREFIX}.methods", chosen_default)
common.seed_once(f"{PREFIX}.mode", extras.get("mode", "runs"))
common.seed_once(f"{PREFIX}.runs", extras.get("runs") or _smallest_runs(chosen_default))
common.seed_once(f"{PREFIX}.factors", list(extras.get("factors") or DEFAULT_FACTORS))
common.seed_once(f"{PREFIX}.canaries", extras.get("canaries", ora.ONE_RUN_CANARIES))
common.seed_once(f"{PREFIX}.guesses", extras.get("guesses", ora.ONE_RUN_GUESSES))
common.seed_once(f"{PREFIX}.nseeds", extras.get("seeds", 1))

widgets.presets_row(PREFIX)
widgets.config_widgets(PREFIX, method=False)
st.multiselect("Certified methods", methods, key=f"{PREFIX}.methods")
chosen = list(st.session_state[f"{PREFIX}.methods"])
c1, c2 = st.columns([2, 3])
mode = c1.radio("Audit", AUDIT_MODES, key=f"{PREFIX}.mode", format_func=MODE_LABELS.get, horizontal=False,
                help="Many runs: the unlearner and the noisy retrain, each run with its own randomness; half the runs "
                     "choose a test, half count its errors (Clopper–Pearson). One run: canaries inserted then "
                     "deleted, or never inserted, by a fair coin; one unlearning run; the bound of Steinke, Nasr & "
                     "Jagielski (NeurIPS 2023) from the guesses.")
c2.multiselect("σ multipliers", list(FACTORS), key=f"{PREFIX}.factors",
               format_func=lambda f: "× 1 (as certified)" if f == 1.0 else f"× {f:g} (under-noised)",
               help="The audited σ is this factor times the σ the method certifies with. An under-noised σ is what a "
                    "correct audit must catch.")
factors = list(st.session_state[f"{PREFIX}.factors"])
if mode == "runs":
    c2.slider("Runs per arm", *RUNS_RANGE, step=RUNS_STEP, key=f"{PREFIX}.runs",
              help="Independent runs of the unlearner, and as many of the noisy retrain. Half choose the test, half "
                   "count its errors; more runs can show a larger ε.")
else:
    g1, g2 = c2.columns(2)
    g1.number_input("Canaries", min_value=2, max_value=100_000, step=32, key=f"{PREFIX}.canaries",
                    help="Noise inputs with random labels, each inserted into training then deleted, or never "
                         "inserted, by a fair coin. The model must be able to memorise them (epochs, capacity).")
    g2.number_input("Guesses per side", min_value=1, max_value=50_000, step=8, key=f"{PREFIX}.guesses",
                    help="The audit guesses 'deleted' for this many highest scores and 'never inserted' for as many "
                         "lowest; it abstains on the rest. More guesses raise the largest ε it can show.")
runs = int(st.session_state[f"{PREFIX}.runs"])
canaries, guesses = int(st.session_state[f"{PREFIX}.canaries"]), int(st.session_state[f"{PREFIX}.guesses"])

# What this design can show, before Run.
if chosen:
    try:
        power = audit_power(methods=chosen, params={m: widgets.read_params(PREFIX, m) for m in chosen}, runs=runs,
                            mode=mode, canaries=canaries, guesses=guesses)
        if mode == "one_run":
            ora.check_one_run_args(canaries=canaries, guesses=guesses)
    except ConfigError as exc:
        common.engine_error(exc)
        st.stop()
    weak = [p for p in power if not p.can_refute]
    ceiling = power[0].ceiling
    plural = "s" * (len(chosen) > 1)
    cost = (f"{len(chosen)} method{plural} × {len(factors)} σ × 2 arms × {runs} runs = "
            f"{len(chosen) * len(factors) * 2 * runs:,} unlearning runs" if mode == "runs" else
            f"{len(chosen)} canary model{plural} trained, {len(chosen) * len(factors)} unlearning runs")
    design = (f"{runs} runs per arm" if mode == "runs" else f"{canaries} canaries, {guesses} guesses per side")
    if weak:
        need = "; ".join(p.message(mode=mode, runs=runs) for p in weak)
        st.warning(f"**This design cannot refute every claim.** {need}.", icon=":material/warning:")
    else:
        claims = ", ".join(sorted({f"{p.epsilon:g}" for p in power if p.epsilon is not None}))
        st.caption(f"**Before Run:** {design} can show ε up to {ceiling:.2f}, above the claimed ε = {claims} — a "
                   f"perfect test refutes it. Cost: {cost}.")

with st.form(f"{PREFIX}.form", enter_to_submit=False):
    c1, _ = st.columns([1, 3])
    with c1:
        n_seeds = widgets.seeds_widget(PREFIX)
    if chosen:
        widgets.method_param_tabs(PREFIX, chosen, note="the quick demo's, with no fine-tuning after the noise "
                                                       "(post-processing: it can only hide a leak), or the link's")
    submitted = st.form_submit_button("Run audit", type="primary", icon=":material/play_arrow:")

params = {m: widgets.read_params(PREFIX, m) for m in chosen}
cfg = widgets.config_or_stop(PREFIX, method=methods[0], with_params=False, extra={
    "methods": ",".join(chosen), "mode": mode, "runs": runs, "factors": ",".join(f"{f:g}" for f in factors),
    "canaries": canaries, "guesses": guesses, "seeds": int(n_seeds), **ui_state.method_params_to_query(params),
})

if submitted:
    if not chosen or not factors:
        common.engine_error(ConfigError("pick at least one certified method and one σ multiplier"))
        st.stop()
    base, _ = widgets.run_config_or_stop(cfg, method=chosen[0], params=params[chosen[0]])
    options = {"methods": chosen, "params": params, "sigma_factors": sorted(factors, reverse=True), "runs": runs,
               "mode": mode}
    if mode == "one_run":
        options.update(canaries=canaries, guesses=guesses)
    status.submit_experiment(PREFIX, "audit", base, n_seeds=n_seeds, label=f"audit of {', '.join(chosen)}",
                             **options)


def _g(value: object) -> str:
    """Three significant digits for the table (∞ as ∞; an ε certified at 10¹⁸ reads 2.13e+18, not 19 digits)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "∞" if value == math.inf else ("—" if value != value else f"{value:.3g}")
    return "—" if value is None else str(value)


def _verdict(row: pd.Series) -> str:
    if row["refutes_certificate"]:
        return "refutes the certificate"
    if row["refutes_claim"]:
        return "refutes the claimed ε"
    return "not refuted (nothing confirmed)"


def render(df, card, run_id) -> None:
    st.subheader("Results")
    n = df["seed"].nunique()
    one_run = "mode" in df and (df["mode"] == "one_run").all()
    if one_run:
        st.caption(f"One run per σ with {int(df['canaries'].iloc[0])} canaries and {int(df['guesses'].iloc[0])} "
                   f"guesses, {n} seed{'s' if n > 1 else ''}. Reference: {df['reference'].iloc[0]}.")
    else:
        runs_per_arm = int(df["runs"].iloc[0]) if len(df) else 0
        st.caption(f"{runs_per_arm} runs per arm, {n} seed{'s' if n > 1 else ''}: {len(df) * 2 * runs_per_arm} "
                   "unlearner runs. Reference: " + (str(df["reference"].iloc[0]) if len(df) else "—") + ".")
    # The verdict right after the method and σ, so that it is on screen at 1024 px; the rest after it.
    table = pd.DataFrame({
        "method": df["method"], "σ": df["sigma_factor"].map(lambda f: f"× {f:g}"),
        "verdict": df.apply(_verdict, axis=1), "ε lower (audit)": df["epsilon_lower"].map(_g),
        "claimed ε": df["epsilon"].map(_g), "largest ε showable": df["epsilon_lower_cap"].map(_g),
        "ε certified at σ": df["epsilon_certified"].map(_g), "acc test": df["acc_test"].map(lambda v: f"{v:.3f}"),
    })
    if n > 1:
        table.insert(0, "seed", df["seed"])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "verdict": st.column_config.TextColumn("verdict", width="medium"),
        "method": st.column_config.TextColumn("method", width="medium"),
    })
    details = {"status": df["status"], "σ": df["sigma"], "δ (guaranteed)": df["delta_guaranteed"]}
    if one_run:
        details.update({"guesses": df["guesses"], "correct": df["correct"],
                        "score, deleted": df["score_deleted_mean"], "score, never inserted": df["score_never_mean"],
                        "acc test, original": df["acc_test_original"]})
    else:
        details.update({
            "statistic": df["statistic"], "per-example ε (median)": df["pe_epsilon_median"],
            "… noisy retrain vs itself": df["pe_epsilon_median_null"], "LiRA AUC": df.get("lira_auc"),
            "… noisy retrain": df.get("lira_auc_reference"), "acc test, noisy retrain": df["acc_test_reference"]})
    details["s per run"] = df["time_s"]
    with st.expander("All columns"):
        st.dataframe(pd.DataFrame({"method": df["method"], "σ ×": df["sigma_factor"], **details}), hide_index=True,
                     width="stretch")
    for _, row in df[df["refutes_claim"] | df["refutes_certificate"]].iterrows():
        st.error(f"**{row['method']}** at σ × {row['sigma_factor']:g}: the audit's ε ≥ {row['epsilon_lower']:.2f} "
                 f"(95 %) exceeds the claimed ε = {row['epsilon']:g} — this release is not ({row['epsilon']:g}, "
                 f"{row['delta_guaranteed']:.2g})-private on this data set.", icon=":material/report:")
    for _, row in df.iterrows():
        note = audit_per_example_note(row)
        if note:
            st.warning(note, icon=":material/info:")
    plans = (card or {}).get("executor", {}).get("plans") or []
    if plans:
        st.caption("Where the cells ran: " + " · ".join(plans))
    if not one_run:
        downloads.experiment_downloads(PREFIX, df, card, figures=results.experiment_figures(PREFIX, "audit", df),
                                      name=f"audit-{cfg.dataset}-{cfg.model}")
    else:
        downloads.experiment_downloads(PREFIX, df, card, figures={}, name=f"audit-one-run-{cfg.dataset}-{cfg.model}")


status.experiment_panel(PREFIX, render)
