"""Runs: the history of finished runs (SQLite in the cache directory) — reopen, compare, delete, export."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from pages import _common as ui
from unlearn_core import plots
from unlearn_core.errors import ConfigError

PREFIX = "runs"

st.title("Runs")
store = ui.get_store()
st.caption(f"Every finished run is stored in `{store.path}`; it survives restarts, and Explore reuses a run with an "
           "identical configuration instead of recomputing it.")

runs = store.list()
if not runs:
    st.info("No runs yet: run something on the Explore page (try the “Quick demo” preset).")
    st.stop()

rows = []
for r in runs:
    models = r.card.get("models", {})
    unl = models.get("unlearned", {})
    cert = r.card.get("certificate") or {}
    rows.append({
        "select": False, "id": r.id,
        "when": dt.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M:%S"),
        "page": r.kind, "dataset": r.dataset, "model": r.model, "method": r.method, "forget": r.forget,
        "label": r.label, "acc test": unl.get("acc_test"), "acc forget": unl.get("acc_forget"),
        "‖w − w_retrained‖": (r.card.get("distance") or {}).get("unlearned_to_retrained"),
        "certificate": cert.get("label", "—"), "device": r.card.get("device"),
    })
table = st.data_editor(pd.DataFrame(rows), hide_index=True, width="stretch", key=f"{PREFIX}.table",
                       disabled=[c for c in rows[0] if c != "select"])
selected = [row["id"] for _, row in table.iterrows() if row["select"]]

c1, c2, c3 = st.columns(3)
c1.download_button("Export all (JSON)", data=store.export_json, file_name="unlearn-runs.json",
                   mime="application/json", on_click="ignore", icon="🧾")
c2.download_button("Export all (CSV)", data=store.export_csv, file_name="unlearn-runs.csv", mime="text/csv",
                   on_click="ignore", icon="📄")
if selected and c3.button(f"Delete {len(selected)} selected", icon="🗑️", key=f"{PREFIX}.delete"):
    for run_id in selected:
        store.delete(run_id)
    st.rerun()

if len(selected) >= 2:
    st.subheader("Compare selected")
    cards = [store.get(i).card for i in selected]
    labels = [f"{c['config'].get('method')} ({i})" for c, i in zip(cards, selected, strict=True)]
    figs = [f for f in (plots.cards_tradeoff(cards, labels), plots.cards_accuracy(cards, labels)) if f is not None]
    if not figs:
        st.caption("The selected runs are experiments (Compare, Sequential, Sensitivity): reopen them one at a time.")
    for i, fig in enumerate(figs):
        st.plotly_chart(fig, width="stretch", key=f"{PREFIX}.selected.{i}")

st.subheader("Reopen a run")
choice = st.selectbox("Run", [r.id for r in runs], format_func=lambda i: next(
    f"{r.id} — {r.method} on {r.dataset}/{r.model}, forget {r.forget}" for r in runs if r.id == i),
    index=0 if not selected else [r.id for r in runs].index(selected[0]), key=f"{PREFIX}.open")
try:
    stored = store.get(choice)
except ConfigError as exc:
    ui.engine_error(exc)
    st.stop()
card = stored.card
if "experiment" in card:
    exp = card["experiment"]
    df = pd.DataFrame(exp["rows"], columns=exp["columns"])
    st.caption(f"A {exp['kind']} experiment over seeds {exp['seeds']}: every row (every seed) below.")
    st.dataframe(df, width="stretch", hide_index=True)
    figs = {f"{exp['kind']} {i + 1}": make(df) for i, make in enumerate(plots.EXPERIMENT_FIGURES[exp["kind"]])}
    for title, fig in figs.items():
        st.plotly_chart(fig, width="stretch", key=f"{PREFIX}.open.{title}")
    ui.experiment_downloads(PREFIX, df, card, figures=figs, name=f"run-{stored.id}")
else:
    st.dataframe(ui.accuracy_table(card), width="stretch")
    ui.certificate_card(card)
    ui.headline_metrics(card)
    figs = {title: fig for title, make in plots.CARD_FIGURES.items() if (fig := make(card)) is not None}
    for i in range(0, len(figs), 2):
        for col, (title, fig) in zip(st.columns(2), list(figs.items())[i : i + 2], strict=False):
            col.plotly_chart(fig, width="stretch", key=f"{PREFIX}.open.{title}")
    ui.downloads(PREFIX, card, figures=figs, weights=(lambda: stored.weights) if stored.has_weights else None,
                 name=f"run-{stored.id}")
with st.expander("Run card (JSON)"):
    st.json(card, expanded=False)
