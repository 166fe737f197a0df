"""Evaluate: the field's scores of each method, and each certified ε against the attacked ε, on one axis.

Runs :func:`unlearn_core.field_evaluation.evaluate` in the background (the CLI's ``experiment compare --scores``):
N released and N retrained models per method for the NeurIPS 2023 challenge score and tug-of-war, M shadow models
for U-LiRA, optionally the audit; draws :func:`unlearn_core.plots_evaluation.certified_vs_attacked_figure`. Every
setting is in the URL: methods, N, M, audit runs, scores and each method's hyperparameters (``p.<method>.<name>``).

Why a page of its own rather than a section of Compare or Audit: it needs its own many-model experiment (N released
and N retrained models, shadows) that neither runs, and it is where the certificate (an upper bound) meets the
attacks (lower bounds and per-example estimates) — the one question this page answers.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from dashboard import common, downloads, results, status, widgets
from unlearn_core.errors import ConfigError
from unlearn_core.experiments import certified_methods
from unlearn_core.field_evaluation import MODELS_RANGE, SCORES, SHADOWS_RANGE, parse_scores, summary_table
from unlearn_core.refutation import CLAIM_REFUTED, NEVER_CONFIRMS, NO_ATTACK, NOT_REFUTED, REFUTED
from unlearn_core.service import ui_state

PREFIX = "evaluate"
SCORE_LABELS = {"challenge": "challenge", "tow": "ToW", "ulira": "U-LiRA"}
COLUMNS = {
    "status": "certificate", "epsilon_certified": "certified ε (upper bound)",
    "attacked_epsilon": "attacked ε (lower bound)", "attacked_by": "by", "reading": "reading",
    "challenge_forget_score": "challenge F", "challenge_final": "challenge final", "tow": "ToW",
    "ulira_auc": "U-LiRA AUC", "ulira_accuracy": "U-LiRA accuracy", "acc_forget": "acc forget",
    "acc_test": "acc test", "time_s": "s per run",
}

common.require_router()
st.title("Evaluate")
st.caption("How the field scores unlearning, on many models per method — the NeurIPS 2023 challenge score, "
           "tug-of-war (ToW) and U-LiRA, a per-example attack with shadow models unlearned the same way — and each "
           "certified ε against the attacks' ε on one axis.")
st.info(f"**{NEVER_CONFIRMS}** A certificate is an upper bound on ε, an attack a lower bound: one above the "
        "certified ε proves the certificate false for this run; one below it proves nothing (the certificate covers "
        "every data set and attack). Per-example ε are estimates, biased upwards with few models: read them against "
        "the `retrained` control.", icon=":material/balance:")


def _methods(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    allowed = [n for n in ui_state.method_names() if n != "retrain"]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ConfigError(f"methods={text!r} is not valid: choose from {', '.join(allowed)}")
    return names


extras = widgets.init_page(PREFIX, extra_fields={
    "methods": _methods, "models": ui_state.int_field("models", low=MODELS_RANGE[0], high=MODELS_RANGE[1]),
    "shadows": ui_state.int_field("shadows", low=SHADOWS_RANGE[0], high=SHADOWS_RANGE[1]),
    "audit": ui_state.int_field("audit", low=0, high=100_000), "scores": parse_scores,
})
all_methods = [n for n in ui_state.method_names() if n != "retrain"]  # retraining is the control
certified = [n for n in certified_methods() if n in all_methods]
common.seed_once(f"{PREFIX}.methods", [m for m in (extras.get("methods") or certified or all_methods[:1])
                                      if m in all_methods])
common.seed_once(f"{PREFIX}.models", int(extras.get("models", 16)))
common.seed_once(f"{PREFIX}.shadows", int(extras.get("shadows", 16)))
common.seed_once(f"{PREFIX}.audit", int(extras.get("audit", 0)))
common.seed_once(f"{PREFIX}.scores", list(extras.get("scores") or SCORES))
for m in all_methods:
    quick = ui_state.quick_params(m)  # the method's own fast demo settings, unless the URL or the user sets one
    if quick:
        widgets.seed_params_once(PREFIX, m, quick)
if not st.session_state.get(f"{PREFIX}._method_params"):
    by_method, lines = ui_state.method_params_from_query(st.query_params.to_dict())
    for method_name, values in by_method.items():
        widgets.seed_method_params(PREFIX, method_name, {**widgets.read_params(PREFIX, method_name), **values})
    for line in lines:
        st.warning(line, icon=":material/warning:")
    st.session_state[f"{PREFIX}._method_params"] = True
widgets.config_widgets(PREFIX, method=False)
st.multiselect("Methods", all_methods, key=f"{PREFIX}.methods",
               help="Each runs N times from the trained model; certified ones also N times from the retrained model "
                    "(the noisy retrain their certificate is about).")
chosen = list(st.session_state[f"{PREFIX}.methods"])
with st.form(f"{PREFIX}.form", enter_to_submit=False):
    c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
    models = c1.number_input("N models", min_value=MODELS_RANGE[0], max_value=MODELS_RANGE[1], step=4,
                             key=f"{PREFIX}.models", help="Released and retrained models per method. The challenge "
                             "used 512; with N models no ε above ⌈ln(N − 1)⌉ can score a point.")
    shadows = c2.number_input("M shadows", min_value=SHADOWS_RANGE[0], max_value=SHADOWS_RANGE[1], step=2,
                              key=f"{PREFIX}.shadows", help="U-LiRA's shadow models per method (even): each trains "
                              "on the retain set plus half the forget set, then unlearns that half.")
    audit_runs = c3.number_input("Audit runs", min_value=0, max_value=100_000, step=8, key=f"{PREFIX}.audit",
                                 help="0: no audit. Otherwise the Audit page's test on every certified method, with "
                                      "this many runs per arm (at least 8).")
    c4.multiselect("Scores", list(SCORES), key=f"{PREFIX}.scores", format_func=SCORE_LABELS.get,
                   help="challenge: the NeurIPS 2023 unlearning challenge's score (per-example ε → points, × utility); "
                        "ToW: tug-of-war, how close the three accuracies are to retraining's; U-LiRA: the per-example "
                        "likelihood-ratio attack (Hayes et al. 2025).")
    if chosen:
        with st.expander("Hyperparameters of each method (each method's demo settings unless you change them)",
                         icon=":material/tune:"):
            widgets.method_param_tabs(PREFIX, chosen)
    submitted = st.form_submit_button("Run evaluation", type="primary", icon=":material/play_arrow:")

scores = list(st.session_state[f"{PREFIX}.scores"])
params = {m: widgets.read_params(PREFIX, m) for m in chosen}
n_cert = sum(m in certified for m in chosen)
st.caption(f"Work: {int(models)} retrained models and, per method, {int(models)} unlearning runs"
           + (f" (+ {int(models)} noisy retrains per certified method) and {int(shadows)} shadows"
              if "ulira" in scores else "")
           + (f"; the audit adds {2 * int(audit_runs)} runs per certified method" if audit_runs and n_cert else "")
           + ". The controls (doing nothing, a second retraining) run with the same N and M.")
cfg = widgets.config_or_stop(PREFIX, method=all_methods[0], with_params=False, extra={
    "methods": ",".join(chosen), "models": int(models), "shadows": int(shadows), "audit": int(audit_runs),
    "scores": ",".join(scores), **ui_state.method_params_to_query(params),
})

if submitted:
    try:
        if not chosen:
            raise ConfigError("methods=[] is not valid: pick at least one method")
        if not scores:
            raise ConfigError("scores=[] is not valid: pick at least one score")
        if audit_runs and audit_runs < 8:
            raise ConfigError(f"audit runs={int(audit_runs)} is not valid: 0 (no audit) or at least 8")
        if int(shadows) % 2:
            raise ConfigError(f"shadows={int(shadows)} is not valid: expected an even number (complementary halves)")
    except ConfigError as exc:
        common.engine_error(exc)
        st.stop()
    for method_name in chosen:  # every method's hyperparameters validated before anything runs
        widgets.run_config_or_stop(dataclasses.replace(cfg, method=method_name, params=params[method_name]))
    base, _ = widgets.run_config_or_stop(cfg, method=chosen[0], params={})
    status.submit_experiment(PREFIX, "evaluate", base, n_seeds=1, label=", ".join(chosen), methods=chosen,
                             params=params, scores=scores, models=int(models), shadows=int(shadows),
                             audit_runs=int(audit_runs))


def _reading_box(row: pd.Series) -> None:
    name, text = row["method"], row.get("reading_text") or ""
    reading = row.get("reading")
    if reading == REFUTED:
        st.error(f"**{name}** — {text}", icon=":material/report:")
    elif reading == CLAIM_REFUTED:
        st.warning(f"**{name}** — {text}", icon=":material/warning:")
    elif reading in (NOT_REFUTED, NO_ATTACK):
        st.info(f"**{name}** — {text}", icon=":material/verified_user:")


def render(df: pd.DataFrame, card, run_id) -> None:
    st.subheader("Results")
    for _, row in df[df["family"] != "reference"].iterrows():
        _reading_box(row)
    n, m = int(df["models"].iloc[0]), df["shadows"].iloc[0] if "shadows" in df else None
    st.caption(f"N = {n} released and {n} retrained models per method"
               + (f", M = {int(m)} shadows" if m is not None and pd.notna(m) else "")
               + ". `original` (doing nothing) and `retrained` (a second, independent retraining: what a perfect "
                 "unlearner scores with this many models) are the controls: read each score against them.")
    table = df.set_index("method")[[c for c in COLUMNS if c in df.columns]].rename(columns=COLUMNS)
    for name in table.columns:  # three significant digits: a certified ε of 2·10¹² stays readable
        if pd.api.types.is_float_dtype(table[name]):
            table[name] = [f"{v:.3g}" if pd.notna(v) else "—" for v in table[name]]
    st.dataframe(table, width="stretch")
    figures = results.experiment_figures(PREFIX, "evaluate", df)  # as the Runs page draws it when reopened
    downloads.experiment_downloads(PREFIX, summary_table(df), card, figures=figures,
                                  name=f"evaluate-{cfg.dataset}-{cfg.model}")


status.experiment_panel(PREFIX, render)
