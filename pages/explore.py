"""Explore: one configuration, one unlearner — accuracies, distance to retraining, certificate, diagnostics."""

from __future__ import annotations

import streamlit as st

from pages import _common as ui
from unlearn_core import plots
from unlearn_core.jobs import job_key, run_task

PREFIX = "explore"

st.title("Explore")
st.caption("Train a model, forget part of its training set with one method, and compare it with retraining from "
           "scratch — the gold standard every number below is measured against.")
ui.init_page(PREFIX)
ui.presets_sidebar(PREFIX)
ui.config_widgets(PREFIX)

method = st.session_state[f"{PREFIX}.method"]
with st.form(f"{PREFIX}.form", border=True):
    st.markdown(f"**Hyperparameters of `{method}`**")
    ui.param_widgets(PREFIX, method)
    submitted = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")

cfg = ui.config_or_stop(PREFIX)

if submitted:
    st.session_state[f"{PREFIX}._warnings"] = []
    run_config, resolved = ui.run_config_or_stop(cfg)
    key = job_key({"page": "explore", "config": {**run_config.to_json(), "params": resolved}})
    ui.submit_or_reuse(PREFIX, key, lambda: run_task(run_config, key=key, store=ui.get_store()),
                       label=f"{cfg.method} on {cfg.dataset}/{cfg.model}, forget {cfg.forget}")


def render(card: dict, *, run_id: str | None, reused: bool = False) -> None:
    """The results of one run, from its JSON run card."""
    method = card["method"]
    st.subheader(f"Results: {method['name']}")
    if reused:
        st.info(f"Reused the finished run {run_id} with this exact configuration (nothing was recomputed). "
                "Change a value or delete it on the Runs page to recompute.", icon="♻️")
    for warning in card.get("warnings") or []:
        st.warning(warning, icon="⚠️")
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Accuracy** — closer to the retrained model is better (over-forgetting is a failure too)")
        st.dataframe(ui.accuracy_table(card).style.format("{:.4g}", na_rep="—"), width="stretch")
        ui.headline_metrics(card)
    with right:
        ui.certificate_card(card)

    # Each figure returns None when the card lacks its data (e.g. no LiSSA curve after an exact solve).
    figures = {title: fig for title, make in plots.CARD_FIGURES.items() if (fig := make(card)) is not None}
    names = list(figures)
    for i in range(0, len(names), 2):
        cols = st.columns(2)
        for col, title in zip(cols, names[i : i + 2], strict=False):
            with col:
                st.plotly_chart(figures[title], width="stretch", theme="streamlit", key=f"{PREFIX}.fig.{title}")
    if "mia" not in card:
        st.caption("Membership inference: not computed for this run (the MIA module is not available).")
    with st.expander("Diagnostics (JSON)"):
        st.json(card.get("diagnostics") or {}, expanded=False)
    ui.downloads(PREFIX, card, figures=figures,
                 weights=(lambda: ui.load_weights_bytes(run_id)) if run_id else None,
                 name=f"{card['config']['dataset']}-{card['config']['model']}-{method['name']}")


def on_done(job) -> None:
    result = job.result
    render(result["card"], run_id=result.get("run_id"))


ui.stored_or_job(PREFIX, show_stored=lambda stored: render(stored.card, run_id=stored.id, reused=True),
                 on_done=on_done)
