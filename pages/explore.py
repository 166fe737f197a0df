"""Explore: one configuration, one unlearner — a verdict first, then accuracies, distance to retraining, the
certificate and diagnostics.

Layout (why): at 1024 × 768 the setup, the Run button and the verdict must all be visible without scrolling, so
the setup is one row, the method's basic hyperparameters sit in a form on the left and the verdict appears on the
right; the details follow at full width below.
"""

from __future__ import annotations

import streamlit as st

from dashboard import common, downloads, results, status, widgets
from unlearn_core import plots
from unlearn_core.service.jobs import job_key
from unlearn_core.service.tasks import run_task

PREFIX = "explore"

common.require_router()
st.title("Explore")
st.caption("Train a model, forget part of its training set with one method, and compare it with retraining from "
           "scratch, the gold standard.")
widgets.init_page(PREFIX)
widgets.presets_row(PREFIX)
widgets.config_widgets(PREFIX)

method = st.session_state[f"{PREFIX}.method"]
left, right = st.columns([5, 6], gap="large")
with left, st.form(f"{PREFIX}.form", border=True, enter_to_submit=False):
    # Run right under the basic hyperparameters, the "Advanced" expander after it: with certified Newton's five basic
    # knobs Run sat at y = 770 on a 1024 × 768 screen (issue 20); now it is on screen for every preset.
    widgets.param_widgets(PREFIX, method, columns=2, part="basic")
    submitted = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    widgets.param_widgets(PREFIX, method, columns=2, part="advanced")
top = right.container()
details = st.container()

cfg = widgets.config_or_stop(PREFIX)
status.estimate_caption(left, PREFIX, cfg)  # beside Run, before it is pressed (#20 item 14)

if submitted:
    st.session_state[f"{PREFIX}._warnings"] = []
    run_config, resolved = widgets.run_config_or_stop(cfg)
    key = job_key({"page": "explore", "config": {**run_config.to_json(), "params": resolved}})
    status.submit_or_reuse(PREFIX, key, lambda: run_task(run_config, key=key, store=common.get_store(), validated=True),
                           label=f"{cfg.method} on {cfg.dataset}/{cfg.model}, forget {cfg.forget}")


def render(card: dict, *, run_id: str | None, reused: bool = False) -> None:
    """The results of one run, from its JSON run card: the verdict on the right, the details below."""
    method = card["method"]
    with top:
        st.subheader(f"Results: {method['name']}")
        results.verdict_box(card)
        if reused:
            st.info(f"Reused the finished run {run_id} with this exact configuration (nothing was recomputed). "
                    "Change a value, or delete it on the Runs page, to recompute.", icon=":material/recycling:")
    with details:
        for warning in card.get("warnings") or []:
            st.warning(warning, icon=":material/warning:")
        table, cert = st.columns([3, 2])
        with table:
            st.markdown("**Accuracy** — closer to the retrained model is better (over-forgetting is a failure too)")
            results.accuracy_dataframe(card)
            results.headline_metrics(card)
        with cert:
            results.certificate_card(card)

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
        downloads.downloads(PREFIX, card, figures=figures,
                            weights=(lambda: downloads.load_weights_bytes(run_id)) if run_id else None,
                            name=f"{card['config']['dataset']}-{card['config']['model']}-{method['name']}")


def on_done(job) -> None:
    result = job.result
    render(result["card"], run_id=result.get("run_id"))


with right:
    status.stored_or_job(PREFIX, show_stored=lambda stored: render(stored.card, run_id=stored.id, reused=True),
                         on_done=on_done)
    if status.current_job(PREFIX) is None and not st.session_state.get(f"{PREFIX}.stored"):
        st.markdown("**Results appear here**, starting with a verdict in plain words: *does the unlearned model "
                    "behave like retraining, is it certified, and what did it cost?*")
        st.caption("New here? Press **Quick demo** above, then **Run**: a certified method forgets every image of "
                   "the digit 3 in a few seconds. The other presets each tell one story; the Learn page explains "
                   "them.")
