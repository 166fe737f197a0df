"""Runs: the history of finished runs (SQLite in the cache directory) — reopen, compare, delete, export."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from pages import _common as ui
from pages._figures import figure
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
    cards_ok = [c for c in cards if c.get("models", {}).get("unlearned")]
    if len(cards_ok) == len(cards):
        cols = st.columns(2)
        for col, name in zip(cols, ("compare_scatter", "compare_accuracy"), strict=True):
            fig = figure(name, cards, labels)
            if fig is not None:
                col.plotly_chart(fig, width="stretch", key=f"{PREFIX}.{name}")

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
st.dataframe(ui.accuracy_table(card), width="stretch")
ui.certificate_card(card)
ui.headline_metrics(card)
figs = {}
for name in ("accuracy_bars", "time_bars"):
    fig = figure(name, card)
    if fig is not None:
        figs[name] = fig
cols = st.columns(2)
for col, (name, fig) in zip(cols, figs.items(), strict=False):
    col.plotly_chart(fig, width="stretch", key=f"{PREFIX}.open.{name}")
ui.downloads(PREFIX, card, figures=figs, weights=(lambda: stored.weights) if stored.has_weights else None,
             name=f"run-{stored.id}")
with st.expander("Run card (JSON)"):
    st.json(card, expanded=False)
